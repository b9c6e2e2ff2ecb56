//! Two generator processes drive one room: process A (`broadcast --viewers 3 --room R`) starts
//! `sfu` and `signaling serve`, hosts the presenter and three viewers; process B joins the same
//! room from A's `--url` with `--viewers-only --viewers 3`, its API key and admin token from the
//! environment (`LOADTEST_API_KEY`, `LOADTEST_ADMIN_TOKEN`). Both reports show their viewers
//! decrypting the one presenter (A's participant 0), B's latency is measured on the clock both
//! processes share, and `loadtest merge` adds the two reports up.
//!
//! Needs the `sfu` and `signaling` binaries next to `loadtest` (`cargo build -p sfu -p
//! signaling`).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::poll_until;

/// A's measured phase: long enough for B to join, measure and leave inside it.
const HOST_DURATION_S: &str = "20";

fn loadtest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
}

fn require_services() {
    let dir = Path::new(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for name in ["sfu", "signaling"] {
        assert!(
            dir.join(name).is_file(),
            "{name} binary missing next to loadtest: run `cargo build -p sfu -p signaling` \
             with the same CARGO_TARGET_DIR first"
        );
    }
}

fn read_json(path: &PathBuf) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// What both generators' reports show: every participant joined, every viewer decrypted
/// frames of the presenter (sender 0: A's first participant) and no frame failed.
fn check_viewers_decrypted_the_presenter(report: &serde_json::Value, participants: u64) {
    assert_eq!(report["participants"], participants, "{report}");
    assert_eq!(report["joined"], participants, "{report}");
    assert_eq!(report["decrypt_failures"], 0, "{report}");
    assert_eq!(report["receivers_without_frames"], 0, "{report}");
    assert!(report["frames_received"].as_u64().unwrap() > 0, "{report}");
    let streams = report["streams"].as_array().expect("per-stream counts");
    assert!(!streams.is_empty(), "{report}");
    for s in streams {
        assert_eq!(s["sender"], 0, "only the presenter sends: {report}");
        assert_eq!(s["receivers"], 3, "every viewer got {s}: {report}");
    }
    assert_eq!(report["outages"], serde_json::json!([]), "{report}");
    let (p50, p99) = (
        report["latency_ms_p50"].as_f64().unwrap(),
        report["latency_ms_p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 2_000.0, "{report}");
}

#[test]
fn two_generators_drive_one_room() {
    require_services();
    let run_id = std::process::id();
    let dir = std::env::temp_dir().join(format!("loadtest-two-generators-{run_id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let room = format!("two-gen-{run_id}");
    let (api_key, admin_token) = (format!("twogen:key-{run_id}"), format!("admin-{run_id}"));
    let (report_a, report_b, merged) = (
        dir.join("a.json"),
        dir.join("b.json"),
        dir.join("merged.json"),
    );

    // A hosts: starts the services (accepting exactly this key and admin token) and the room.
    let mut host = loadtest()
        .args(["broadcast", "--viewers", "3", "--duration", HOST_DURATION_S])
        .args([
            "--room",
            &room,
            "--api-key",
            &api_key,
            "--admin-token",
            &admin_token,
        ])
        .arg("--report")
        .arg(&report_a)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadtest A");
    let host_err = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = host_err.clone();
        let stderr = host.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let host_text = || host_err.lock().unwrap().join("\n");
    poll_until(
        Duration::from_secs(90),
        "generator A's measured phase",
        || host_text().contains("measuring for") || matches!(host.try_wait(), Ok(Some(_))),
    );
    assert!(
        host_text().contains("measuring for"),
        "A ended before measuring: {}",
        host_text()
    );
    // "room R at http://127.0.0.1:PORT (participants numbered from 0)"
    let url = host_text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("room {room} at ")))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("A names its room and URL: {}", host_text()));

    // B joins A's room with viewers only; credentials from the environment, --url after the
    // subcommand (the combination clap once refused).
    let joiner = loadtest()
        .args([
            "broadcast",
            "--viewers",
            "3",
            "--viewers-only",
            "--duration",
            "3",
        ])
        .args(["--room", &room, "--url", &url])
        .arg("--report")
        .arg(&report_b)
        .env("LOADTEST_API_KEY", &api_key)
        .env("LOADTEST_ADMIN_TOKEN", &admin_token)
        .output()
        .expect("run loadtest B");
    let joiner_log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&joiner.stdout),
        String::from_utf8_lossy(&joiner.stderr)
    );

    let mut status = None;
    poll_until(Duration::from_secs(90), "generator A to finish", || {
        status = host.try_wait().expect("wait for A");
        status.is_some()
    });
    let _ = reader.join();
    let host_log = host_text();
    assert!(joiner.status.success(), "B failed: {joiner_log}");
    assert!(status.is_some_and(|s| s.success()), "A failed: {host_log}");
    assert!(
        joiner_log.contains("room ") && !joiner_log.contains("numbered from 0)"),
        "B numbers its participants apart from A's: {joiner_log}"
    );

    let (a, b) = (read_json(&report_a), read_json(&report_b));
    check_viewers_decrypted_the_presenter(&a, 4);
    check_viewers_decrypted_the_presenter(&b, 3);
    assert_eq!(a["room"], room.as_str());
    assert_eq!(b["room"], room.as_str());
    assert!(a["frames_sent"].as_u64().unwrap() > 0, "{a}");
    assert_eq!(b["frames_sent"], 0, "B has no publisher: {b}");
    assert!(a["sfu_cpu_seconds"].as_f64().is_some(), "{a}");
    assert!(b["sfu_cpu_seconds"].is_null(), "B measured no SFU: {b}");

    let merge = loadtest()
        .arg("merge")
        .arg(&report_a)
        .arg(&report_b)
        .arg("--out")
        .arg(&merged)
        .output()
        .expect("run loadtest merge");
    assert!(
        merge.status.success(),
        "{}",
        String::from_utf8_lossy(&merge.stderr)
    );
    let m = read_json(&merged);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(m["participants"], 7, "{m}");
    assert_eq!(m["joined"], 7, "{m}");
    assert_eq!(m["receivers_without_frames"], 0, "{m}");
    assert_eq!(
        m["frames_received"].as_u64(),
        Some(a["frames_received"].as_u64().unwrap() + b["frames_received"].as_u64().unwrap()),
        "{m}"
    );
    for s in m["streams"].as_array().unwrap() {
        assert_eq!(s["receivers"], 6, "the six viewers of both generators: {m}");
    }
}
