//! Runs the real `loadtest` binary: `baseline` for about two seconds must produce a sane report,
//! and the scenarios that need services must say so instead of printing numbers.

use std::process::Command;

fn loadtest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
}

#[test]
fn baseline_two_seconds_writes_a_sane_report() {
    let dir = std::env::temp_dir().join(format!("loadtest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report_path = dir.join("baseline.json");
    let output = loadtest()
        .args([
            "baseline",
            "--receivers",
            "20",
            "--duration",
            "2",
            "--report",
        ])
        .arg(&report_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("relay pkts / cpu s"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(report["scenario"], "baseline");
    assert_eq!(report["participants"], 20);
    assert_eq!(report["joined"], 20);
    let duration = report["duration_s"].as_f64().unwrap();
    assert!((1.9..4.0).contains(&duration), "duration {duration}");
    // About 50 audio + 180 video packets per second for two seconds.
    let sent = report["frames_sent"].as_u64().unwrap();
    assert!((300..=700).contains(&sent), "sent {sent}");
    let forwarded = report["packets_forwarded"].as_u64().unwrap();
    assert!(
        forwarded >= sent * 20 * 95 / 100,
        "forwarded {forwarded} of {sent} x 20"
    );
    assert!(forwarded <= sent * 20);
    // The receivers read (about) every packet and decrypted every frame they completed.
    let read = report["generator_packets_received"].as_u64().unwrap();
    assert!(
        read <= forwarded && read >= forwarded * 95 / 100,
        "read {read}"
    );
    let frames = report["frames_received"].as_u64().unwrap();
    assert!(
        frames > 0 && frames < read,
        "frames {frames} of {read} packets"
    );
    assert_eq!(report["decrypt_failures"], 0);
    let receiver_cpu = report["generator_cpu_seconds"].as_f64().unwrap();
    assert!(receiver_cpu > 0.0, "receiver cpu {receiver_cpu}");
    assert!(
        report["generator_cpu_ns_per_received_packet"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let loss = report["loss_pct"].as_f64().unwrap();
    assert!((0.0..5.0).contains(&loss), "loss {loss}");
    let p50 = report["latency_ms_p50"].as_f64().unwrap();
    let p99 = report["latency_ms_p99"].as_f64().unwrap();
    assert!(
        p50 > 0.0 && p50 <= p99 && p99 < 1000.0,
        "latency {p50} {p99}"
    );
    assert!(report["jitter_ms_p99"].as_f64().unwrap() >= 0.0);
    let cpu = report["relay_cpu_seconds"].as_f64().unwrap();
    assert!(cpu > 0.0 && cpu < duration, "relay cpu {cpu}");
    let rate = report["relay_packets_per_cpu_second"].as_f64().unwrap();
    assert!((rate - forwarded as f64 / cpu).abs() < 1e-6 * rate);
    // No SFU and no joins in the baseline: those are null, not zero.
    for field in ["sfu_cpu_seconds", "sfu_peak_rss_bytes", "join_ms_p99"] {
        assert!(report[field].is_null(), "{field} should be null");
    }
}

#[test]
fn baseline_with_impairment_reports_the_loss() {
    let output = loadtest()
        .args([
            "baseline",
            "--receivers",
            "3",
            "--duration",
            "2",
            "--impair",
            "loss=10%,delay=5ms",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let loss_line = stdout.lines().find(|l| l.starts_with("loss ")).unwrap();
    let loss: f64 = loss_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // Loss counts frames, as a viewer sees them (a frame with a lost packet does not decrypt):
    // 10 % of the audio frames (one packet each) and about half of the video frames (about 7
    // packets each at the default 1.7 Mbit/s: 1 - 0.9^7) are lost, about 25 % of 160 frames;
    // within a generous binomial margin.
    assert!((14.0..37.0).contains(&loss), "{loss_line}");
    let p50_line = stdout
        .lines()
        .find(|l| l.starts_with("latency p50"))
        .unwrap();
    let p50: f64 = p50_line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(p50 >= 5.0, "{p50_line}");
}

#[test]
fn scenarios_against_absent_services_fail_clearly() {
    for args in [
        &["meeting", "--callers", "2", "--duration", "1"][..],
        &[
            "broadcast",
            "--viewers",
            "2",
            "--join-rate",
            "5/s",
            "--duration",
            "1",
        ][..],
    ] {
        // Nothing listens on port 1: nobody can join, and no report is made up.
        let output = loadtest()
            .args(args)
            .args(["--url", "http://127.0.0.1:1"])
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(output.stdout.is_empty(), "no fake output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no participant joined"), "{stderr}");
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    for args in [
        &["meeting", "--callers", "101"][..],
        &["baseline", "--duration", "0"][..],
        &["baseline", "--impair", "loss=200%"][..],
        &["baseline", "--url", "http://127.0.0.1:1"][..],
    ] {
        let output = loadtest().args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn version_flag_prints_the_package_version() {
    let output = loadtest().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("loadtest {}", env!("CARGO_PKG_VERSION"))
    );
}
