//! `loadtest merge`: the JSON reports of several generator processes (or machines) that drove
//! one room, added up into one report with the same fields and the same summary table.
//!
//! Counts are summed (participants, joined, frames, decrypt failures, per-stream expected and
//! lost frames, the SFU's forwarded packets and CPU seconds, the impairment relays' counters);
//! percentiles are taken from the sum of the reports' histograms ([`Report::histograms`]), never
//! averaged; loss is recomputed from the summed per-stream counts. Fields that cannot be added
//! are combined as documented in `loadtest/README.md` ("Several generators"): the longest
//! measured phase, the largest SFU peak memory, every outage as its report gave it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::histogram::{DurationHistogram, HistogramBuckets};
use crate::impairment::{DirectionStats, RelayStats};
use crate::report::{Report, ReportHistograms, Scenario, StreamLoss, per_second};

/// Why reports could not be merged.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MergeError {
    /// A report file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A report file is not a report.
    #[error("{}: not a loadtest report: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Nothing to merge.
    #[error("no report to merge")]
    Empty,
    /// The reports are of different scenarios.
    #[error(
        "{name} is a {found:?} report, {first} a {expected:?} one: only reports of one scenario merge"
    )]
    Scenario {
        /// The report that differs.
        name: String,
        /// Its scenario.
        found: Scenario,
        /// The first report.
        first: String,
        /// The first report's scenario.
        expected: Scenario,
    },
    /// Baselines are single-process measurements of a local relay.
    #[error("{0} is a baseline report: a baseline runs its own relay, there is nothing to merge")]
    Baseline(String),
    /// The reports are of different rooms.
    #[error(
        "{name} drove room {found:?}, {first} room {expected:?}: only reports of one room merge"
    )]
    Room {
        /// The report that differs.
        name: String,
        /// Its room.
        found: String,
        /// The first report naming a room.
        first: String,
        /// That room.
        expected: String,
    },
    /// A report lacks the histograms its percentiles came from.
    #[error(
        "{0} has no histograms (written by an older loadtest): its percentiles cannot be merged \
         without averaging them"
    )]
    NoHistograms(String),
}

/// Reads one JSON report.
pub fn read_report(path: &Path) -> Result<Report, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| MergeError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn sum_opt<T: std::ops::Add<Output = T> + Copy>(
    values: impl Iterator<Item = Option<T>>,
) -> Option<T> {
    values.fold(None, |acc, v| match (acc, v) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    })
}

/// The distinct values, in first-seen order, joined with `", "`; `None` when there are none.
fn distinct_joined<'a>(values: impl Iterator<Item = Option<&'a String>>) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for v in values.flatten() {
        if !seen.contains(&v.as_str()) {
            seen.push(v);
        }
    }
    (!seen.is_empty()).then(|| seen.join(", "))
}

fn add_direction(a: DirectionStats, b: DirectionStats) -> DirectionStats {
    DirectionStats {
        received: a.received + b.received,
        forwarded: a.forwarded + b.forwarded,
        forwarded_bytes: a.forwarded_bytes + b.forwarded_bytes,
        dropped_loss: a.dropped_loss + b.dropped_loss,
        dropped_queue: a.dropped_queue + b.dropped_queue,
        reordered: a.reordered + b.reordered,
        send_errors: a.send_errors + b.send_errors,
    }
}

fn add_relay(a: RelayStats, b: RelayStats) -> RelayStats {
    RelayStats {
        to_server: add_direction(a.to_server, b.to_server),
        to_client: add_direction(a.to_client, b.to_client),
        flows: a.flows + b.flows,
        flows_refused: a.flows_refused + b.flows_refused,
    }
}

/// The histograms of every report, added bucket by bucket.
struct MergedHistograms {
    join: DurationHistogram,
    first_frame: DurationHistogram,
    latency: DurationHistogram,
    jitter: DurationHistogram,
}

impl MergedHistograms {
    fn new() -> Self {
        MergedHistograms {
            join: DurationHistogram::new(),
            first_frame: DurationHistogram::new(),
            latency: DurationHistogram::new(),
            jitter: DurationHistogram::new(),
        }
    }

    fn add(&mut self, h: &ReportHistograms) {
        let add = |into: &mut DurationHistogram, b: &HistogramBuckets| {
            into.merge(&DurationHistogram::from_buckets(b));
        };
        add(&mut self.join, &h.join_us);
        add(&mut self.first_frame, &h.first_decrypted_frame_us);
        add(&mut self.latency, &h.latency_us);
        add(&mut self.jitter, &h.jitter_us);
    }

    fn apply_to(&self, report: &mut Report) {
        report.set_join_times(&self.join);
        report.set_first_frame_times(&self.first_frame);
        report.latency_ms_p50 = self.latency.p50_ms();
        report.latency_ms_p99 = self.latency.p99_ms();
        report.jitter_ms_p99 = self.jitter.p99_ms();
        let histograms = report.histograms.get_or_insert_with(Default::default);
        histograms.latency_us = self.latency.buckets();
        histograms.jitter_us = self.jitter.buckets();
    }
}

/// Per-stream counts summed over the reports, keyed by sender and stream.
fn merge_streams(reports: &[(String, Report)]) -> Option<Vec<StreamLoss>> {
    let mut merged: BTreeMap<(u16, u8), StreamLoss> = BTreeMap::new();
    let mut any = false;
    for s in reports.iter().filter_map(|(_, r)| r.streams.as_ref()) {
        any = true;
        for s in s {
            let m = merged.entry((s.sender, s.stream)).or_insert(StreamLoss {
                sender: s.sender,
                stream: s.stream,
                receivers: 0,
                expected: 0,
                received: 0,
                lost: 0,
                loss_pct: None,
            });
            m.receivers += s.receivers;
            m.expected += s.expected;
            m.received += s.received;
            m.lost += s.lost;
        }
    }
    any.then(|| {
        merged
            .into_values()
            .map(|mut s| {
                s.loss_pct = (s.expected > 0).then(|| 100.0 * s.lost as f64 / s.expected as f64);
                s
            })
            .collect()
    })
}

/// Adds up `reports` (each with a name for errors, e.g. its file) into one report.
pub fn merge_reports(reports: &[(String, Report)]) -> Result<Report, MergeError> {
    let Some((first_name, first)) = reports.first() else {
        return Err(MergeError::Empty);
    };
    let mut room: Option<(&str, &str)> = None;
    let mut histograms = MergedHistograms::new();
    for (name, r) in reports {
        if r.scenario == Scenario::Baseline {
            return Err(MergeError::Baseline(name.clone()));
        }
        if r.scenario != first.scenario {
            return Err(MergeError::Scenario {
                name: name.clone(),
                found: r.scenario,
                first: first_name.clone(),
                expected: first.scenario,
            });
        }
        if let Some(this) = &r.room {
            match room {
                Some((first_room, first_with)) if first_room != this => {
                    return Err(MergeError::Room {
                        name: name.clone(),
                        found: this.clone(),
                        first: first_with.to_owned(),
                        expected: first_room.to_owned(),
                    });
                }
                Some(_) => {}
                None => room = Some((this, name)),
            }
        }
        let h = r
            .histograms
            .as_ref()
            .ok_or_else(|| MergeError::NoHistograms(name.clone()))?;
        histograms.add(h);
    }
    let all = || reports.iter().map(|(_, r)| r);

    let mut merged = Report::new(first.scenario);
    merged.duration_s = all().map(|r| r.duration_s).fold(0.0, f64::max);
    merged.target = distinct_joined(all().map(|r| r.target.as_ref()));
    merged.room = room.map(|(r, _)| r.to_owned());
    merged.merged_from = Some(all().map(|r| r.merged_from.unwrap_or(1)).sum());
    merged.impairment = distinct_joined(all().map(|r| r.impairment.as_ref()));
    merged.participants = all().map(|r| r.participants).sum();
    merged.joined = all().map(|r| r.joined).sum();
    merged.frames_sent = all().map(|r| r.frames_sent).sum();
    merged.frames_received = all().map(|r| r.frames_received).sum();
    merged.decrypt_failures = sum_opt(all().map(|r| r.decrypt_failures));
    merged.frames_without_key = sum_opt(all().map(|r| r.frames_without_key));
    merged.key_requests_sent = sum_opt(all().map(|r| r.key_requests_sent));
    merged.receivers_without_frames = sum_opt(all().map(|r| r.receivers_without_frames));
    histograms.apply_to(&mut merged);

    merged.streams = merge_streams(reports);
    if let Some(streams) = &merged.streams {
        let (expected, lost) = streams
            .iter()
            .fold((0, 0), |(e, l), s| (e + s.expected, l + s.lost));
        merged.loss_pct = (expected > 0).then(|| 100.0 * lost as f64 / expected as f64);
    }
    merged.outages = all().filter_map(|r| r.outages.clone()).reduce(|mut a, b| {
        a.extend(b);
        a
    });

    merged.packets_forwarded = sum_opt(all().map(|r| r.packets_forwarded));
    merged.sfu_cpu_seconds = sum_opt(all().map(|r| r.sfu_cpu_seconds));
    merged.sfu_peak_rss_bytes = all().filter_map(|r| r.sfu_peak_rss_bytes).max();
    merged.forwarded_packets_per_cpu_second = merged
        .packets_forwarded
        .zip(merged.sfu_cpu_seconds)
        .and_then(|(packets, cpu)| per_second(packets, cpu));
    merged.impairment_relay = all().filter_map(|r| r.impairment_relay).reduce(add_relay);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: Scenario, room: &str) -> Report {
        let mut r = Report::new(scenario);
        r.room = Some(room.into());
        r.set_join_times(&DurationHistogram::new());
        r
    }

    #[test]
    fn reports_of_other_scenarios_rooms_or_without_histograms_are_refused() {
        let named = |r: Report, n: &str| (n.to_owned(), r);
        assert!(matches!(merge_reports(&[]), Err(MergeError::Empty)));
        assert!(matches!(
            merge_reports(&[
                named(report(Scenario::Broadcast, "r"), "a"),
                named(report(Scenario::Meeting, "r"), "b")
            ]),
            Err(MergeError::Scenario { .. })
        ));
        assert!(matches!(
            merge_reports(&[
                named(report(Scenario::Broadcast, "r"), "a"),
                named(report(Scenario::Broadcast, "s"), "b")
            ]),
            Err(MergeError::Room { .. })
        ));
        assert!(matches!(
            merge_reports(&[named(report(Scenario::Baseline, "r"), "a")]),
            Err(MergeError::Baseline(_))
        ));
        let mut old = report(Scenario::Broadcast, "r");
        old.histograms = None;
        let err = merge_reports(&[
            named(report(Scenario::Broadcast, "r"), "a"),
            named(old, "old.json"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("old.json"), "{err}");
    }

    #[test]
    fn unmeasured_fields_stay_unmeasured_and_merged_reports_merge_again() {
        let mut a = report(Scenario::Meeting, "r");
        a.sfu_cpu_seconds = Some(2.0);
        a.packets_forwarded = Some(1000);
        a.sfu_peak_rss_bytes = Some(10 << 20);
        let b = report(Scenario::Meeting, "r");
        let ab = merge_reports(&[("a".into(), a), ("b".into(), b.clone())]).unwrap();
        assert_eq!(ab.sfu_cpu_seconds, Some(2.0));
        assert_eq!(ab.forwarded_packets_per_cpu_second, Some(500.0));
        assert_eq!(ab.decrypt_failures, None);
        assert_eq!(ab.latency_ms_p50, None);
        assert_eq!(ab.streams, None);
        assert_eq!(ab.merged_from, Some(2));
        let abb = merge_reports(&[("ab".into(), ab), ("b".into(), b)]).unwrap();
        assert_eq!(abb.merged_from, Some(3));
        assert_eq!(abb.sfu_peak_rss_bytes, Some(10 << 20));
    }
}
