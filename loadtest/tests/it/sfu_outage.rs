//! The load test tells the truth when the SFU dies mid-run: a 3-caller meeting against `sfu` and
//! `signaling serve` processes this test starts (as `deploy/live-check` does), the SFU killed
//! with SIGKILL once media flows in the measured phase. The run must report the outage (every
//! receiver, every stream it was getting, lasting to the end), count the frames sent after it
//! as lost, and exit with status 2.
//!
//! Needs the `sfu` and `signaling` binaries next to `loadtest` (`cargo build -p sfu -p
//! signaling`).

use std::io::{BufRead as _, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadtest::metrics_scrape;
use loadtest::service_process::{ServiceProcess, ServiceSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::poll_until;

/// Packets the SFU must have forwarded before it is killed: about two seconds of a 3-caller
/// meeting (each caller's audio and one camera layer to two others), so every receiver has been
/// decrypting frames for a while.
const FORWARDED_BEFORE_KILL: f64 = 1500.0;

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free TCP port")
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

fn service(
    name: &str,
    args: &[String],
    env: &[(&str, String)],
    health: String,
    log_dir: &Path,
) -> ServiceProcess {
    let program = bin_dir().join(name);
    assert!(
        program.is_file(),
        "{name} binary missing next to loadtest: run `cargo build -p sfu -p signaling` with the \
         same CARGO_TARGET_DIR first"
    );
    ServiceProcess::spawn(&ServiceSpec {
        name: name.into(),
        program,
        args: args.iter().map(Into::into).collect(),
        env: env.iter().map(|(k, v)| ((*k).into(), v.into())).collect(),
        health_url: health,
        startup_timeout: Duration::from_secs(30),
        log: Some(log_dir.join(format!("{name}.log"))),
    })
    .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

#[test]
fn loadtest_reports_outage_when_sfu_killed() {
    let run_id = format!("{}-{}", std::process::id(), free_tcp_port());
    let dir = std::env::temp_dir().join(format!("loadtest-outage-{run_id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (control_secret, api_secret, admin_token) = (
        format!("control-{run_id}"),
        format!("api-{run_id}"),
        format!("admin-{run_id}"),
    );

    let (sfu_http, sfu_udp, signaling_port) = (free_tcp_port(), free_udp_port(), free_tcp_port());
    let sfu = service(
        "sfu",
        &[
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--advertised-address".into(),
            "127.0.0.1".into(),
            "--http-port".into(),
            sfu_http.to_string(),
            "--udp-port".into(),
            sfu_udp.to_string(),
        ],
        &[("SFU_CONTROL_SECRET", control_secret.clone())],
        format!("http://127.0.0.1:{sfu_http}/healthz"),
        &dir,
    );
    let sfu_pid = sfu.pid().expect("the SFU runs");
    let signaling = service(
        "signaling",
        &[
            "serve".into(),
            "--listen".into(),
            format!("127.0.0.1:{signaling_port}"),
        ],
        &[
            ("SIGNALING_API_KEYS", format!("outage:{api_secret}")),
            ("SIGNALING_ADMIN_TOKEN", admin_token.clone()),
            ("SIGNALING_SFU_URL", format!("http://127.0.0.1:{sfu_http}")),
            ("SIGNALING_SFU_CONTROL_SECRET", control_secret),
        ],
        format!("http://127.0.0.1:{signaling_port}/healthz"),
        &dir,
    );

    let report_path = dir.join("report.json");
    let sfu_metrics = format!("http://127.0.0.1:{sfu_http}/metrics");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["meeting", "--callers", "3", "--duration", "8"])
        .arg("--url")
        .arg(format!("http://127.0.0.1:{signaling_port}"))
        .arg("--sfu-pid")
        .arg(sfu_pid.to_string())
        .arg("--sfu-metrics")
        .arg(&sfu_metrics)
        .arg("--report")
        .arg(&report_path)
        // As arguments (two_generators_drive_one_room gives them through the environment).
        .arg("--api-key")
        .arg(format!("outage:{api_secret}"))
        .arg("--admin-token")
        .arg(admin_token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadtest");
    let stderr_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = stderr_lines.clone();
        let stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let stderr_text = || stderr_lines.lock().unwrap().join("\n");

    poll_until(
        Duration::from_secs(60),
        "the load test's measured phase",
        || stderr_text().contains("measuring for") || matches!(child.try_wait(), Ok(Some(_))),
    );
    if !stderr_text().contains("measuring for") {
        let _ = reader.join();
        panic!("loadtest ended before measuring: {}", stderr_text());
    }
    poll_until(
        Duration::from_secs(20),
        "the SFU forwarding the meeting's media",
        || {
            metrics_scrape::scrape(&sfu_metrics, Duration::from_secs(2))
                .ok()
                .and_then(|m| m.sum("sfu_packets_sent_total", &[]))
                .is_some_and(|n| n >= FORWARDED_BEFORE_KILL)
        },
    );
    kill(Pid::from_raw(sfu_pid as i32), Signal::SIGKILL).expect("kill -9 the SFU");

    let mut status = None;
    poll_until(Duration::from_secs(60), "the load test to finish", || {
        status = child.try_wait().expect("wait for loadtest");
        status.is_some()
    });
    let _ = reader.join();
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    let status = status.expect("exited");
    let log = format!("{stdout}\n{}", stderr_text());
    drop(signaling);
    drop(sfu);

    assert_eq!(
        status.code(),
        Some(2),
        "exit status 2 (media stopped): {log}"
    );
    assert!(
        stdout.contains("MEDIA STOPPED"),
        "summary names the outage: {log}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).expect("report written"))
            .expect("report is JSON");
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(report["joined"], 3, "{report}");
    let outages = report["outages"].as_array().expect("outages listed");
    assert_eq!(outages.len(), 1, "one crash, one outage: {report}");
    let outage = &outages[0];
    assert_eq!(outage["receivers"], 3, "every caller lost media: {report}");
    assert_eq!(outage["ongoing_at_end"], true, "{report}");
    let duration = outage["duration_s"].as_f64().unwrap();
    assert!((2.0..=9.0).contains(&duration), "{report}");
    // Each caller was getting the other two's audio and camera: at least six streams.
    let streams = outage["streams"].as_array().unwrap();
    assert!(streams.len() >= 6, "{report}");
    for s in streams {
        assert!(s["stream"].as_u64().is_some_and(|n| n <= 3), "{s}");
        assert!(s["sender"].as_u64().is_some_and(|n| n < 3), "{s}");
    }
    // The frames sent after the crash are lost, per stream and overall.
    let per_stream = report["streams"].as_array().expect("per-stream loss");
    assert!(per_stream.len() >= 6, "{report}");
    for s in per_stream.iter().filter(|s| s["stream"] == 0) {
        let pct = s["loss_pct"].as_f64().unwrap();
        assert!(pct > 10.0, "audio stream lost its tail: {s}");
    }
    let loss = report["loss_pct"].as_f64().unwrap();
    assert!(loss > 10.0 && loss < 100.0, "{report}");
}
