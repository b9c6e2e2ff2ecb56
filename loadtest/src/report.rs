//! The outcome of a run: a JSON report (`--report FILE`) and the table printed at the end.
//!
//! A field that a scenario did not measure is `null` in JSON and `-` in the table, never a
//! made-up zero: the baseline has no joins and no SFU, a run against `--url` services started
//! elsewhere has no SFU process to read. Field meanings are listed in `loadtest/README.md`.

use std::fmt::Write as _;
use std::path::Path;

use crate::impairment::RelayStats;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::histogram::{DurationHistogram, HistogramBuckets};
use crate::receiver_stats::StatsTotals;
use crate::recorder_cost::RecorderCost;
use crate::renegotiation::RenegotiationStats;

/// Which scenario produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Callers all publishing and subscribing to each other.
    Meeting,
    /// A presenter and many subscribe-only viewers.
    Broadcast,
    /// The plain UDP relay, for the cost of moving the same packets without an SFU.
    Baseline,
}

/// Everything a run measured. See the crate README for each field's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// Wall-clock seconds of the measured phase (after joining).
    pub duration_s: f64,
    /// The services' URL, or `null` when no services were involved.
    pub target: Option<String>,
    /// Meeting and broadcast: the room the participants joined; `null` for the baseline.
    #[serde(default)]
    pub room: Option<String>,
    /// How many reports `loadtest merge` added up into this one; `null` for a single run.
    #[serde(default)]
    pub merged_from: Option<u64>,
    /// The link impairment applied, in `--impair` syntax, or `null`.
    pub impairment: Option<String>,
    /// Simulated participants (callers; presenter plus viewers; for the baseline, receivers).
    pub participants: u64,
    /// Participants that completed joining (for the baseline: receivers that got a packet).
    pub joined: u64,
    /// Median time from starting to join to having the SFU's answer and a connected transport.
    pub join_ms_p50: Option<f64>,
    /// 99th percentile of the join time.
    pub join_ms_p99: Option<f64>,
    /// 99th percentile over receivers of the time from joining to the first decrypted frame.
    pub first_decrypted_frame_ms_p99: Option<f64>,
    /// Median end-to-end latency of a frame: send time in the probe to decrypted arrival.
    pub latency_ms_p50: Option<f64>,
    /// 99th percentile of that latency.
    pub latency_ms_p99: Option<f64>,
    /// Packets (frames) missing within each received stream's sequence range, in percent.
    pub loss_pct: Option<f64>,
    /// 99th percentile of the RFC 3550 interarrival jitter estimate, sampled at every arrival.
    pub jitter_ms_p99: Option<f64>,
    /// Distinct frames (packets, for the baseline) received over all receivers.
    pub frames_received: u64,
    /// Frames (packets) sent by all publishers.
    pub frames_sent: u64,
    /// Frames that failed SFrame authentication or decryption at a receiver.
    pub decrypt_failures: Option<u64>,
    /// Frames that arrived at a receiver before the key of their KID (not authentication
    /// failures: the receiver held no key to try).
    pub frames_without_key: Option<u64>,
    /// `key_request`s receivers sent for frames they held no key for (the key policy's
    /// recovery, at most one a second per sender).
    #[serde(default)]
    pub key_requests_sent: Option<u64>,
    /// Participants expected to receive media that decrypted no frame at all.
    pub receivers_without_frames: Option<u64>,
    /// Packets the SFU (or the baseline relay) sent to subscribers during the run.
    pub packets_forwarded: Option<u64>,
    /// CPU seconds (user + system) the SFU process used during the run.
    pub sfu_cpu_seconds: Option<f64>,
    /// The SFU process' peak resident memory (VmHWM) in bytes.
    pub sfu_peak_rss_bytes: Option<u64>,
    /// `packets_forwarded / sfu_cpu_seconds`.
    pub forwarded_packets_per_cpu_second: Option<f64>,
    /// CPU seconds of the baseline relay thread.
    pub relay_cpu_seconds: Option<f64>,
    /// Baseline only: packets relayed per CPU second of the relay thread.
    pub relay_packets_per_cpu_second: Option<f64>,
    /// Meeting and broadcast with `--impair`: what the impairment relay between the clients and
    /// the SFU did (packets per direction, dropped by loss or queue, reordered), or `null`.
    #[serde(default)]
    pub impairment_relay: Option<RelayStats>,
    /// Meeting and broadcast: loss per sending stream, summed over its receivers, with the
    /// frames sent after an outage that lasted to the end counted as lost; `null` for the
    /// baseline.
    #[serde(default)]
    pub streams: Option<Vec<StreamLoss>>,
    /// Meeting and broadcast: every stretch of at least 2 s in which receivers that had been
    /// getting media got none while the publishers kept sending (overlapping ones merged);
    /// empty when media never stopped, `null` for the baseline. A run with an outage exits
    /// with status 2.
    #[serde(default)]
    pub outages: Option<Vec<MediaOutage>>,
    /// The samples behind the percentiles (join, first decrypted frame, latency, jitter), so
    /// that `loadtest merge` takes the percentiles of the added histograms; `null` in reports
    /// of versions that did not keep them.
    #[serde(default)]
    pub histograms: Option<ReportHistograms>,
    /// Meeting and broadcast: the engine that ran the viewers (`sansio` or `async`).
    #[serde(default)]
    pub viewer_engine: Option<String>,
    /// Meeting and broadcast: CPU seconds (user + system, every thread) of the load generator
    /// itself, this `loadtest` process, during the measured phase (from `/proc/self`).
    #[serde(default)]
    pub generator_cpu_seconds: Option<f64>,
    /// RTP packets the generator's viewers received (after SRTP; every one reassembled and its
    /// frame SFrame-decrypted and probe-checked) during the measured phase; `null` where the
    /// engine does not count them (`async`).
    #[serde(default)]
    pub generator_packets_received: Option<u64>,
    /// Of `generator_packets_received`, the packets the viewers' short path took (SRTP
    /// decrypted without `rtc`'s read pipeline); the rest (each stream's first packets,
    /// retransmissions) crossed the pipeline.
    #[serde(default)]
    pub generator_packets_short_path: Option<u64>,
    /// `generator_cpu_seconds` per received packet, in nanoseconds.
    #[serde(default)]
    pub generator_cpu_ns_per_received_packet: Option<f64>,
    /// Meeting and broadcast: what joins cost the participants already there (SFU offers
    /// after their first answer, the SFU's renegotiation and slot-reassignment counters).
    #[serde(default)]
    pub renegotiation: Option<RenegotiationStats>,
    /// Meeting with `--record`: what the `recorder` process spent recording the room over the
    /// measured phase (CPU, frames recorded, CPU per frame and per caller, beside the SFU's
    /// CPU); `null` otherwise.
    #[serde(default)]
    pub recorder: Option<RecorderCost>,
}

/// The histograms a report's percentiles come from, bucket by bucket, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportHistograms {
    /// Join times of the participants (`join_ms_*`).
    pub join_us: HistogramBuckets,
    /// Time to the first decrypted frame of each receiver (`first_decrypted_frame_ms_p99`).
    pub first_decrypted_frame_us: HistogramBuckets,
    /// End-to-end latency of every received frame (`latency_ms_*`).
    pub latency_us: HistogramBuckets,
    /// The interarrival jitter estimate at every arrival (`jitter_ms_p99`).
    pub jitter_us: HistogramBuckets,
}

/// One sending stream: the sender's participant index and its probe stream (0 audio, 1-3 the
/// camera's simulcast layers low to high, 1 a presenter's screen share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamId {
    /// The sending participant's index.
    pub sender: u16,
    /// The stream of that sender.
    pub stream: u8,
}

/// Loss of one sending stream over all its receivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamLoss {
    /// The sending participant's index.
    pub sender: u16,
    /// The stream of that sender.
    pub stream: u8,
    /// Receivers that got at least one frame of it.
    pub receivers: u64,
    /// Frames expected, summed over those receivers.
    pub expected: u64,
    /// Distinct frames received.
    pub received: u64,
    /// `expected - received`.
    pub lost: u64,
    /// `lost / expected` in percent.
    pub loss_pct: Option<f64>,
}

/// A stretch in which media stopped for one or more receivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaOutage {
    /// Seconds from the start of the measured phase to the last frame before the outage.
    pub start_s: f64,
    /// How long no frame came, within the measured phase.
    pub duration_s: f64,
    /// Whether media had not come back by the end of the measured phase.
    pub ongoing_at_end: bool,
    /// Receivers that saw it.
    pub receivers: u64,
    /// The streams those receivers had been getting.
    pub streams: Vec<StreamId>,
}

/// Why a report could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Serialising failed (cannot happen for this struct, kept for the type's honesty).
    #[error("serialising report: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing the file failed.
    #[error("writing report: {0}")]
    Io(#[from] std::io::Error),
}

/// `numerator / denominator` when the denominator is meaningfully above zero.
pub fn per_second(numerator: u64, seconds: f64) -> Option<f64> {
    (seconds.is_finite() && seconds > 1e-6).then(|| numerator as f64 / seconds)
}

impl Report {
    /// An empty report for `scenario`: counts zero, every measurement `None`.
    pub fn new(scenario: Scenario) -> Self {
        Report {
            scenario,
            duration_s: 0.0,
            target: None,
            room: None,
            merged_from: None,
            impairment: None,
            participants: 0,
            joined: 0,
            join_ms_p50: None,
            join_ms_p99: None,
            first_decrypted_frame_ms_p99: None,
            latency_ms_p50: None,
            latency_ms_p99: None,
            loss_pct: None,
            jitter_ms_p99: None,
            frames_received: 0,
            frames_sent: 0,
            decrypt_failures: None,
            frames_without_key: None,
            key_requests_sent: None,
            receivers_without_frames: None,
            packets_forwarded: None,
            sfu_cpu_seconds: None,
            sfu_peak_rss_bytes: None,
            forwarded_packets_per_cpu_second: None,
            relay_cpu_seconds: None,
            relay_packets_per_cpu_second: None,
            impairment_relay: None,
            streams: None,
            outages: None,
            histograms: None,
            viewer_engine: None,
            generator_cpu_seconds: None,
            generator_packets_received: None,
            generator_packets_short_path: None,
            generator_cpu_ns_per_received_packet: None,
            renegotiation: None,
            recorder: None,
        }
    }

    /// Whether media stopped for some receiver during the run (the binary exits with status 2).
    pub fn media_stopped(&self) -> bool {
        self.outages.as_ref().is_some_and(|o| !o.is_empty())
    }

    /// Fills latency, loss, jitter and frames received from the receivers' merged totals.
    pub fn set_receiver_totals(&mut self, totals: &StatsTotals) {
        self.latency_ms_p50 = totals.latency.p50_ms();
        self.latency_ms_p99 = totals.latency.p99_ms();
        self.jitter_ms_p99 = totals.jitter.p99_ms();
        self.loss_pct = totals.loss_pct();
        self.frames_received = totals.received;
        let histograms = self.histograms.get_or_insert_with(Default::default);
        histograms.latency_us = totals.latency.buckets();
        histograms.jitter_us = totals.jitter.buckets();
    }

    /// Fills the join percentiles from per-participant join times.
    pub fn set_join_times(&mut self, joins: &DurationHistogram) {
        self.join_ms_p50 = joins.p50_ms();
        self.join_ms_p99 = joins.p99_ms();
        self.histograms.get_or_insert_with(Default::default).join_us = joins.buckets();
    }

    /// Fills the first-decrypted-frame percentile from per-receiver times.
    pub fn set_first_frame_times(&mut self, first_frames: &DurationHistogram) {
        self.first_decrypted_frame_ms_p99 = first_frames.p99_ms();
        self.histograms
            .get_or_insert_with(Default::default)
            .first_decrypted_frame_us = first_frames.buckets();
    }

    /// Fills the SFU's cost: CPU seconds and peak memory of its process and the packets it
    /// forwarded (from its `/metrics`), and their ratio.
    pub fn set_sfu_cost(&mut self, cpu_seconds: f64, peak_rss_bytes: u64, packets_forwarded: u64) {
        self.sfu_cpu_seconds = Some(cpu_seconds);
        self.sfu_peak_rss_bytes = Some(peak_rss_bytes);
        self.packets_forwarded = Some(packets_forwarded);
        self.forwarded_packets_per_cpu_second = per_second(packets_forwarded, cpu_seconds);
    }

    /// Fills the baseline relay's cost.
    pub fn set_relay_cost(&mut self, cpu_seconds: f64, packets_relayed: u64) {
        self.relay_cpu_seconds = Some(cpu_seconds);
        self.packets_forwarded = Some(packets_relayed);
        self.relay_packets_per_cpu_second = per_second(packets_relayed, cpu_seconds);
    }

    /// Fills the load generator's own cost: its CPU seconds over the measured phase and, where
    /// counted, the packets its receivers got in that phase, and their ratio.
    pub fn set_generator_cost(&mut self, cpu_seconds: f64, packets_received: Option<u64>) {
        self.generator_cpu_seconds = Some(cpu_seconds);
        self.generator_packets_received = packets_received;
        self.generator_cpu_ns_per_received_packet = packets_received
            .filter(|&p| p > 0)
            .map(|p| cpu_seconds * 1e9 / p as f64);
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, ReportError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes the JSON report to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), ReportError> {
        let mut text = self.to_json()?;
        text.push('\n');
        std::fs::write(path, text)?;
        Ok(())
    }

    /// A two-column table of every field, for the end of a run.
    pub fn summary_table(&self) -> String {
        let opt_f = |v: Option<f64>, unit: &str| match v {
            Some(v) if v.abs() >= 1000.0 => format!("{v:.0}{unit}"),
            Some(v) => format!("{v:.2}{unit}"),
            None => "-".to_owned(),
        };
        let opt_u = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let mib = |v: Option<u64>| {
            v.map_or_else(
                || "-".to_owned(),
                |b| format!("{:.1} MiB", b as f64 / 1_048_576.0),
            )
        };
        let scenario = match self.scenario {
            Scenario::Meeting => "meeting",
            Scenario::Broadcast => "broadcast",
            Scenario::Baseline => "baseline",
        };
        let rows: Vec<(&str, String)> = vec![
            ("scenario", scenario.to_owned()),
            ("duration", format!("{:.1} s", self.duration_s)),
            ("target", self.target.clone().unwrap_or_else(|| "-".into())),
            ("room", self.room.clone().unwrap_or_else(|| "-".into())),
            (
                "merged from",
                self.merged_from
                    .map_or_else(|| "-".into(), |n| format!("{n} reports")),
            ),
            (
                "impairment",
                self.impairment.clone().unwrap_or_else(|| "-".into()),
            ),
            ("participants", self.participants.to_string()),
            ("joined", self.joined.to_string()),
            ("join p50", opt_f(self.join_ms_p50, " ms")),
            ("join p99", opt_f(self.join_ms_p99, " ms")),
            (
                "first decrypted frame p99",
                opt_f(self.first_decrypted_frame_ms_p99, " ms"),
            ),
            ("latency p50", opt_f(self.latency_ms_p50, " ms")),
            ("latency p99", opt_f(self.latency_ms_p99, " ms")),
            ("loss", opt_f(self.loss_pct, " %")),
            ("jitter p99", opt_f(self.jitter_ms_p99, " ms")),
            ("frames sent", self.frames_sent.to_string()),
            ("frames received", self.frames_received.to_string()),
            ("decrypt failures", opt_u(self.decrypt_failures)),
            ("frames without key", opt_u(self.frames_without_key)),
            ("key requests sent", opt_u(self.key_requests_sent)),
            (
                "receivers without frames",
                opt_u(self.receivers_without_frames),
            ),
            ("packets forwarded", opt_u(self.packets_forwarded)),
            ("sfu cpu", opt_f(self.sfu_cpu_seconds, " s")),
            ("sfu peak rss", mib(self.sfu_peak_rss_bytes)),
            (
                "forwarded pkts / cpu s",
                opt_f(self.forwarded_packets_per_cpu_second, ""),
            ),
            (
                "viewer engine",
                self.viewer_engine.clone().unwrap_or_else(|| "-".into()),
            ),
            ("generator cpu", opt_f(self.generator_cpu_seconds, " s")),
            (
                "generator pkts received",
                opt_u(self.generator_packets_received),
            ),
            (
                "generator cpu / pkt",
                opt_f(self.generator_cpu_ns_per_received_packet, " ns"),
            ),
            ("relay cpu", opt_f(self.relay_cpu_seconds, " s")),
            (
                "relay pkts / cpu s",
                opt_f(self.relay_packets_per_cpu_second, ""),
            ),
            (
                "impairment drops",
                self.impairment_relay.map_or_else(
                    || "-".into(),
                    |r| {
                        format!(
                            "{} of {} to the SFU, {} of {} to clients",
                            r.to_server.dropped_loss + r.to_server.dropped_queue,
                            r.to_server.received,
                            r.to_client.dropped_loss + r.to_client.dropped_queue,
                            r.to_client.received
                        )
                    },
                ),
            ),
        ];
        let mut rows = rows;
        rows.push((
            "renegotiation",
            self.renegotiation
                .as_ref()
                .map_or_else(|| "-".into(), RenegotiationStats::summary),
        ));
        rows.push((
            "recorder",
            self.recorder
                .as_ref()
                .map_or_else(|| "-".into(), RecorderCost::summary),
        ));
        rows.push(("outages", self.outage_summary()));
        rows.push(("stream loss (worst 5)", self.stream_loss_summary()));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

impl Report {
    fn outage_summary(&self) -> String {
        let Some(outages) = &self.outages else {
            return "-".into();
        };
        if outages.is_empty() {
            return "none".into();
        }
        outages
            .iter()
            .map(|o| {
                let streams: Vec<String> = o
                    .streams
                    .iter()
                    .map(|s| format!("{}/{}", s.sender, s.stream))
                    .collect();
                format!(
                    "MEDIA STOPPED at {:.1} s for {:.1} s{} at {} receiver(s), streams {}",
                    o.start_s,
                    o.duration_s,
                    if o.ongoing_at_end {
                        " (to the end)"
                    } else {
                        ""
                    },
                    o.receivers,
                    streams.join(" ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn stream_loss_summary(&self) -> String {
        let Some(streams) = &self.streams else {
            return "-".into();
        };
        let mut worst: Vec<&StreamLoss> = streams.iter().collect();
        worst.sort_by(|a, b| {
            b.loss_pct
                .unwrap_or(0.0)
                .total_cmp(&a.loss_pct.unwrap_or(0.0))
                .then((a.sender, a.stream).cmp(&(b.sender, b.stream)))
        });
        if worst.is_empty() {
            return "no stream received".into();
        }
        worst
            .iter()
            .take(5)
            .map(|s| {
                format!(
                    "{}/{} {:.2} % ({} of {})",
                    s.sender,
                    s.stream,
                    s.loss_pct.unwrap_or(0.0),
                    s.lost,
                    s.expected
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Probe;
    use crate::receiver_stats::ReceiverStats;

    #[test]
    fn json_has_every_documented_field_and_nulls_for_unmeasured() {
        let report = Report::new(Scenario::Baseline);
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        for field in [
            "scenario",
            "participants",
            "joined",
            "join_ms_p50",
            "join_ms_p99",
            "first_decrypted_frame_ms_p99",
            "latency_ms_p50",
            "latency_ms_p99",
            "loss_pct",
            "jitter_ms_p99",
            "decrypt_failures",
            "packets_forwarded",
            "sfu_cpu_seconds",
            "sfu_peak_rss_bytes",
            "forwarded_packets_per_cpu_second",
            "relay_packets_per_cpu_second",
            "room",
            "merged_from",
            "histograms",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(json["scenario"], "baseline");
        assert!(json["sfu_cpu_seconds"].is_null());
        assert!(json["latency_ms_p99"].is_null());
    }

    #[test]
    fn receiver_totals_and_costs_fill_the_report() {
        let mut rx = ReceiverStats::new();
        for seq in (0..200u32).filter(|s| s % 50 != 7) {
            let sent = u64::from(seq) * 10_000;
            let latency = if seq % 100 == 99 { 80_000 } else { 4_000 };
            rx.on_probe(
                &Probe {
                    sender: 1,
                    stream: 0,
                    seq,
                    send_time_us: sent,
                },
                sent + latency,
            );
        }
        let mut report = Report::new(Scenario::Meeting);
        report.set_receiver_totals(&rx.totals());
        report.set_sfu_cost(2.0, 50 << 20, 10_000);
        let mut joins = DurationHistogram::new();
        for ms in 1..=100 {
            joins.record_ms(f64::from(ms));
        }
        report.set_join_times(&joins);
        assert_eq!(report.frames_received, 196);
        assert_eq!(report.loss_pct, Some(2.0));
        // Percentiles are exact to the histogram's 0.1 %.
        let approx = |v: Option<f64>, want: f64| (v.unwrap() - want).abs() <= want * 0.001;
        assert!(
            approx(report.latency_ms_p50, 4.0),
            "{:?}",
            report.latency_ms_p50
        );
        // 2 of 196 samples are 80 ms: p99 (the 195th smallest) is 80 ms.
        assert!(
            approx(report.latency_ms_p99, 80.0),
            "{:?}",
            report.latency_ms_p99
        );
        assert_eq!(report.forwarded_packets_per_cpu_second, Some(5000.0));
        assert!(approx(report.join_ms_p50, 50.0));
        assert!(approx(report.join_ms_p99, 99.0));
        let back: Report = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(back, report);
        let table = report.summary_table();
        assert!(
            table.contains("loss") && table.contains("2.00 %"),
            "{table}"
        );
        assert!(table.contains("50.0 MiB"), "{table}");
    }

    #[test]
    fn zero_cpu_gives_no_rate_instead_of_infinity() {
        let mut report = Report::new(Scenario::Baseline);
        report.set_relay_cost(0.0, 1000);
        assert_eq!(report.relay_packets_per_cpu_second, None);
        assert!(report.summary_table().contains("relay pkts / cpu s"));
    }

    #[test]
    fn writes_json_to_a_file() {
        let dir = std::env::temp_dir().join(format!("loadtest-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        let mut report = Report::new(Scenario::Broadcast);
        report.participants = 501;
        report.write_json(&path).unwrap();
        let back: Report = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back.participants, 501);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
