//! `loadtest meeting --record`: the real `recorder` binary, enrolled for the run and named in a
//! signed recording policy, records the meeting beside the real `sfu` and `signaling`; the
//! report carries its CPU and the frames it recorded beside the SFU's CPU.
//!
//! Needs `recorder`, `sfu` and `signaling` next to `loadtest`:
//! `cargo build -p sfu -p signaling -p recorder` first.

use std::path::Path;

use crate::scenarios_cli::{f, run, u};

#[test]
fn meeting_with_recorder_reports_recorder_cost() {
    let dir = Path::new(env!("CARGO_BIN_EXE_loadtest"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    assert!(
        dir.join("recorder").is_file(),
        "recorder binary missing next to loadtest: run `cargo build -p recorder` first"
    );
    let report = run(
        &["meeting", "--callers", "3", "--record", "--duration", "4"],
        "meeting-record",
    );
    // Everyone joined and decrypted (the loss and latency bounds of `scenarios_cli` are that
    // test's business: here the callers share the cores with a fourth process).
    assert_eq!(u(&report, "joined"), 3, "{report}");
    assert_eq!(u(&report, "decrypt_failures"), 0, "{report}");
    assert_eq!(u(&report, "receivers_without_frames"), 0, "{report}");
    let recorder = &report["recorder"];
    assert!(recorder.is_object(), "no recorder cost in {report}");
    let frames = u(recorder, "frames_recorded");
    // Three callers each sent audio (50/s) and video for 4 s; the recorder takes every
    // track (cameras at their top layer), so it decrypts far more than one caller's audio.
    assert!(frames > 200, "{report}");
    assert!(frames <= u(&report, "frames_sent"), "{report}");
    assert_eq!(u(recorder, "decrypt_failures"), 0, "{report}");
    let cpu = f(recorder, "cpu_seconds");
    assert!(cpu > 0.0, "{report}");
    let per_frame = f(recorder, "cpu_us_per_frame");
    assert!(
        (per_frame - cpu * 1e6 / frames as f64).abs() < 1e-6 * per_frame,
        "{report}"
    );
    assert!(
        (f(recorder, "cpu_seconds_per_participant") - cpu / 3.0).abs() < 1e-9,
        "{report}"
    );
    let sfu = f(&report, "sfu_cpu_seconds");
    assert_eq!(f(recorder, "sfu_cpu_seconds"), sfu, "{report}");
    assert!(
        (f(recorder, "recorder_to_sfu_cpu") - cpu / sfu).abs() < 1e-9,
        "{report}"
    );
    assert!(u(recorder, "peak_rss_bytes") > 1_000_000, "{report}");
}
