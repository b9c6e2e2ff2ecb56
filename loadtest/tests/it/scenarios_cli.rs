//! The `loadtest` binary's `meeting` and `broadcast` scenarios, small and short, against the
//! real `sfu` and `signaling serve` processes it starts itself: everyone joins over the real
//! protocol, every frame is SFrame-encrypted with keys exchanged through signaling, and the
//! report says so.
//!
//! Needs the `sfu` and `signaling` binaries in the same target directory:
//! `cargo build -p sfu -p signaling` first (the test names the command if they are missing).

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn report_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("loadtest-{name}-{}.json", std::process::id()))
}

pub(crate) fn run(args: &[&str], name: &str) -> serde_json::Value {
    require_services();
    let path = report_path(name);
    let output = loadtest()
        .args(args)
        .arg("--report")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    report
}

pub(crate) fn u(report: &serde_json::Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {report}"))
}

pub(crate) fn f(report: &serde_json::Value, field: &str) -> f64 {
    report[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {report}"))
}

/// What every scenario report must show: everyone joined, every frame that arrived with a
/// key decrypted, little loss, and an SFU that forwarded packets at a measured cost.
pub(crate) fn check_common(report: &serde_json::Value, participants: u64) {
    assert_eq!(u(report, "participants"), participants, "{report}");
    assert_eq!(u(report, "joined"), participants, "{report}");
    assert_eq!(u(report, "decrypt_failures"), 0, "{report}");
    assert_eq!(u(report, "receivers_without_frames"), 0, "{report}");
    assert!(u(report, "frames_received") > 0, "{report}");
    assert!(f(report, "loss_pct") < 2.0, "{report}");
    let (p50, p99) = (f(report, "join_ms_p50"), f(report, "join_ms_p99"));
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 15_000.0, "{report}");
    let first = f(report, "first_decrypted_frame_ms_p99");
    assert!(first > 0.0 && first < 15_000.0, "{report}");
    let (l50, l99) = (f(report, "latency_ms_p50"), f(report, "latency_ms_p99"));
    assert!(l50 > 0.0 && l50 <= l99 && l99 < 2_000.0, "{report}");
    assert!(f(report, "jitter_ms_p99") >= 0.0);
    let forwarded = u(report, "packets_forwarded");
    assert!(forwarded > 0, "{report}");
    let cpu = f(report, "sfu_cpu_seconds");
    assert!(cpu > 0.0, "{report}");
    assert!(u(report, "sfu_peak_rss_bytes") > 1_000_000, "{report}");
    let rate = f(report, "forwarded_packets_per_cpu_second");
    assert!(
        (rate - forwarded as f64 / cpu).abs() < 1e-6 * rate,
        "{report}"
    );
    assert!(report["relay_packets_per_cpu_second"].is_null());
}

#[test]
fn meeting_of_six_callers_all_join_and_decrypt() {
    let report = run(&["meeting", "--callers", "6", "--duration", "3"], "meeting");
    assert_eq!(report["scenario"], "meeting");
    check_common(&report, 6);
    // Six publishers sent audio and three camera layers.
    assert!(u(&report, "frames_sent") > 6 * 3 * 50, "{report}");
}

#[test]
fn broadcast_to_twenty_viewers_all_join_and_decrypt() {
    let report = run(
        &[
            "broadcast",
            "--viewers",
            "20",
            "--join-rate",
            "40/s",
            "--duration",
            "3",
        ],
        "broadcast",
    );
    assert_eq!(report["scenario"], "broadcast");
    check_common(&report, 21);
    // Every viewer got at least the presenter's audio for the measured phase.
    assert!(u(&report, "frames_received") > 20 * 100, "{report}");
}

/// With `--impair`, every client's media crosses the impairment relay in front of the SFU
/// (signaling does not): packets are dropped both ways, yet everyone joins, nothing fails to
/// decrypt, and NACK/RTX plus the receivers' reassembly (which waits for a late packet) win
/// most lost video back. Audio is not retransmitted, so about 2 % of it stays lost each way.
#[test]
fn broadcast_through_an_impaired_link_joins_decrypts_and_recovers_most_losses() {
    let report = run(
        &[
            "broadcast",
            "--viewers",
            "4",
            "--duration",
            "4",
            "--impair",
            "loss=2%,delay=20ms,jitter=5ms",
        ],
        "broadcast-impaired",
    );
    assert_eq!(
        report["impairment"], "loss=2%,delay=20ms,jitter=5ms",
        "{report}"
    );
    let relay = &report["impairment_relay"];
    assert_eq!(relay["flows"], 5, "one flow per participant: {report}");
    let dropped = |dir: &str| relay[dir]["dropped_loss"].as_u64().unwrap();
    assert!(
        dropped("to_server") > 0 && dropped("to_client") > 0,
        "{report}"
    );
    assert_eq!(u(&report, "joined"), 5, "{report}");
    assert_eq!(u(&report, "decrypt_failures"), 0, "{report}");
    assert_eq!(u(&report, "receivers_without_frames"), 0, "{report}");
    // Without recovery a 2.5 Mb/s screen frame (about 20 packets) would be lost about half the
    // time each way; with it the frame loss stays near the audio's.
    let loss = f(&report, "loss_pct");
    assert!(loss > 0.0 && loss < 10.0, "{report}");
}
