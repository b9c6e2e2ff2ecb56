//! `loadtest merge` over two JSON reports, as two generator processes would have written them:
//! counts are summed and the percentiles come from the summed histograms, not from averaging
//! the two reports' percentiles (which would put the median of 1,000 fast frames and 100 slow
//! ones at 100 ms).

use std::process::Command;

use loadtest::histogram::DurationHistogram;
use loadtest::receiver_stats::StatsTotals;
use loadtest::report::{Report, Scenario, StreamLoss};

fn histogram(samples_ms: &[(f64, usize)]) -> DurationHistogram {
    let mut h = DurationHistogram::new();
    for &(ms, n) in samples_ms {
        for _ in 0..n {
            h.record_ms(ms);
        }
    }
    h
}

fn stream(stream: u8, receivers: u64, expected: u64, received: u64) -> StreamLoss {
    StreamLoss {
        sender: 0,
        stream,
        receivers,
        expected,
        received,
        lost: expected - received,
        loss_pct: Some(100.0 * (expected - received) as f64 / expected as f64),
    }
}

/// One generator's broadcast report: `participants` joined in `joins_ms`, its receivers'
/// frames took `latency_ms`.
fn report(
    participants: u64,
    joins_ms: &[(f64, usize)],
    latency_ms: &[(f64, usize)],
    streams: Vec<StreamLoss>,
) -> Report {
    let mut r = Report::new(Scenario::Broadcast);
    r.room = Some("two-generators".into());
    r.target = Some("http://127.0.0.1:8080".into());
    r.duration_s = 3.0;
    r.participants = participants;
    r.joined = participants;
    r.set_join_times(&histogram(joins_ms));
    r.set_first_frame_times(&histogram(joins_ms));
    let totals = StatsTotals {
        latency: histogram(latency_ms),
        jitter: histogram(&[(1.0, 10)]),
        ..Default::default()
    };
    r.set_receiver_totals(&totals);
    r.frames_received = streams.iter().map(|s| s.received).sum();
    r.streams = Some(streams);
    r.outages = Some(Vec::new());
    r.decrypt_failures = Some(0);
    r.frames_without_key = Some(2);
    r.receivers_without_frames = Some(0);
    r
}

#[test]
fn merge_sums_counts_and_merges_histograms() {
    let dir = std::env::temp_dir().join(format!("loadtest-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The generator that hosts the room: presenter and 3 viewers, fast frames, quick joins.
    let mut a = report(
        4,
        &[(100.0, 1), (200.0, 1), (300.0, 1), (400.0, 1)],
        &[(5.0, 1000)],
        vec![stream(0, 3, 300, 297), stream(1, 3, 150, 150)],
    );
    a.frames_sent = 450;
    a.set_sfu_cost(2.0, 50 << 20, 10_000);
    // The generator that joined with 3 viewers: slow frames, slow joins, more loss.
    let mut b = report(
        3,
        &[(1000.0, 1), (1100.0, 1), (1200.0, 1)],
        &[(200.0, 100)],
        vec![stream(0, 3, 200, 190)],
    );
    b.duration_s = 4.0;
    b.decrypt_failures = Some(1);
    b.set_sfu_cost(1.0, 60 << 20, 5_000);
    let (path_a, path_b, out) = (dir.join("a.json"), dir.join("b.json"), dir.join("m.json"));
    a.write_json(&path_a).unwrap();
    b.write_json(&path_b).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .arg("merge")
        .arg(&path_a)
        .arg(&path_b)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The same summary table as a run, saying what it is.
    for row in [
        "merged from",
        "2 reports",
        "latency p99",
        "stream loss (worst 5)",
    ] {
        assert!(stdout.contains(row), "{row}: {stdout}");
    }
    let m: Report = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(m.scenario, Scenario::Broadcast);
    assert_eq!(m.room.as_deref(), Some("two-generators"));
    assert_eq!(m.merged_from, Some(2));
    assert_eq!(m.target.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(m.duration_s, 4.0, "the longer measured phase");
    // Counts add up.
    assert_eq!((m.participants, m.joined), (7, 7));
    assert_eq!(m.frames_sent, 450);
    assert_eq!(m.frames_received, 297 + 150 + 190);
    assert_eq!(m.decrypt_failures, Some(1));
    assert_eq!(m.frames_without_key, Some(4));
    assert_eq!(m.receivers_without_frames, Some(0));
    // Per stream, summed over both generators' receivers; loss recomputed from the counts.
    let streams = m.streams.as_ref().unwrap();
    assert_eq!(streams.len(), 2);
    let audio = &streams[0];
    assert_eq!((audio.sender, audio.stream), (0, 0));
    assert_eq!(
        (audio.receivers, audio.expected, audio.received, audio.lost),
        (6, 500, 487, 13)
    );
    assert!((audio.loss_pct.unwrap() - 2.6).abs() < 1e-9);
    assert!((m.loss_pct.unwrap() - 100.0 * 13.0 / 650.0).abs() < 1e-9);
    // The SFU's cost: CPU and forwarded packets summed, the rate recomputed, the largest peak.
    assert_eq!(m.sfu_cpu_seconds, Some(3.0));
    assert_eq!(m.packets_forwarded, Some(15_000));
    assert_eq!(m.forwarded_packets_per_cpu_second, Some(5_000.0));
    assert_eq!(m.sfu_peak_rss_bytes, Some(60 << 20));
    assert_eq!(m.outages, Some(Vec::new()));

    // Percentiles of the merged histograms: 1,000 frames at 5 ms and 100 at 200 ms have their
    // median at 5 ms and their p99 at 200 ms (averaging the reports' would give 102.5 ms).
    let within = |v: Option<f64>, want: f64| (v.unwrap() - want).abs() <= want * 0.001;
    assert!(within(m.latency_ms_p50, 5.0), "{:?}", m.latency_ms_p50);
    assert!(within(m.latency_ms_p99, 200.0), "{:?}", m.latency_ms_p99);
    // Joins 100..400 ms and 1000..1200 ms: the 4th of 7 is the median, the slowest the p99.
    assert!(within(m.join_ms_p50, 400.0), "{:?}", m.join_ms_p50);
    assert!(within(m.join_ms_p99, 1200.0), "{:?}", m.join_ms_p99);
    assert!(within(m.first_decrypted_frame_ms_p99, 1200.0));
    assert!(within(m.jitter_ms_p99, 1.0));
    // And exactly what one histogram of every sample says.
    let mut all = histogram(&[(5.0, 1000)]);
    all.merge(&histogram(&[(200.0, 100)]));
    assert_eq!(m.latency_ms_p50, all.p50_ms());
    assert_eq!(m.latency_ms_p99, all.p99_ms());
    let hist = m.histograms.as_ref().unwrap();
    assert_eq!(
        DurationHistogram::from_buckets(&hist.latency_us).count(),
        1100
    );
    assert_eq!(DurationHistogram::from_buckets(&hist.join_us).count(), 7);
}
