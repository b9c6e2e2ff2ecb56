//! The sans-IO viewer engine (`--viewer-engine sansio`) against the real `sfu` and `signaling
//! serve`: many viewers on one event loop each do ICE, DTLS and SRTP, get their keys through
//! signaling and decrypt every frame (most packets on the short receive path, which skips
//! `rtc`'s pipeline); the report carries the generator's own cost. The old
//! `async` engine still runs behind its flag.
//!
//! Needs `cargo build -p sfu -p signaling` first, like `scenarios_cli`.

use crate::scenarios_cli::{check_common, f, run, u};

#[test]
fn many_viewers_share_one_event_loop() {
    let report = run(
        &[
            "broadcast",
            "--viewers",
            "20",
            "--workers",
            "1",
            "--viewer-engine",
            "sansio",
            "--duration",
            "3",
        ],
        "viewer-engine",
    );
    assert_eq!(report["viewer_engine"], "sansio", "{report}");
    // Everyone joined, zero decrypt failures, every viewer decrypted frames, loss under 2 %.
    check_common(&report, 21);
    // Every viewer got the presenter's audio (50 frames a second) for most of the phase.
    assert!(u(&report, "frames_received") > 20 * 100, "{report}");
    let packets = u(&report, "generator_packets_received");
    assert!(packets > 20 * 150, "{report}");
    // The short receive path took all but each stream's first packets (and retransmissions).
    let short = u(&report, "generator_packets_short_path");
    assert!(short <= packets && short * 10 > packets * 9, "{report}");
    let cpu = f(&report, "generator_cpu_seconds");
    assert!(cpu > 0.0, "{report}");
    let per_packet = f(&report, "generator_cpu_ns_per_received_packet");
    assert!(
        (per_packet - cpu * 1e9 / packets as f64).abs() < 1e-6 * per_packet,
        "{report}"
    );
}

#[test]
fn the_async_viewer_engine_still_runs_behind_its_flag() {
    let report = run(
        &[
            "broadcast",
            "--viewers",
            "4",
            "--viewer-engine",
            "async",
            "--duration",
            "2",
        ],
        "viewer-engine-async",
    );
    assert_eq!(report["viewer_engine"], "async", "{report}");
    check_common(&report, 5);
    assert!(f(&report, "generator_cpu_seconds") > 0.0, "{report}");
    // The async engine does not count its packets: no made-up figure.
    assert!(
        report["generator_cpu_ns_per_received_packet"].is_null(),
        "{report}"
    );
}

/// What a run with `--viewers-miss-keys` must show: every viewer lost the key envelopes sent
/// to it before it asked, saw frames it could not open, asked the presenter with a
/// `key_request` (the key policy's recovery, as the browser does) and then decrypted.
fn check_recovered_through_key_request(report: &serde_json::Value, viewers: u64) {
    check_common(report, viewers + 1);
    assert!(u(report, "frames_without_key") >= viewers, "{report}");
    assert!(u(report, "key_requests_sent") >= viewers, "{report}");
    // Rate-limited: at most one request a second per sender, not one per frame.
    let duration = f(report, "duration_s");
    assert!(
        (u(report, "key_requests_sent") as f64) < viewers as f64 * (duration + 20.0),
        "{report}"
    );
}

#[test]
fn a_sansio_viewer_that_missed_its_key_recovers_through_key_request() {
    let report = run(
        &[
            "broadcast",
            "--viewers",
            "4",
            "--workers",
            "1",
            "--viewer-engine",
            "sansio",
            "--viewers-miss-keys",
            "--duration",
            "3",
        ],
        "viewer-missed-key-sansio",
    );
    check_recovered_through_key_request(&report, 4);
}

#[test]
fn an_async_viewer_that_missed_its_key_recovers_through_key_request() {
    let report = run(
        &[
            "broadcast",
            "--viewers",
            "2",
            "--viewer-engine",
            "async",
            "--viewers-miss-keys",
            "--duration",
            "3",
        ],
        "viewer-missed-key-async",
    );
    check_recovered_through_key_request(&report, 2);
}
