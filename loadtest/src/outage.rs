//! Media that stopped: the outages receivers saw and the loss they imply, per stream.
//!
//! Loss counted within each received stream's sequence range (`receiver_stats`) cannot see
//! frames lost after the last one a receiver got: when the SFU dies mid-run, every stream simply
//! ends, and that count says 0 %. So publishers record the next sequence number of each stream
//! they send ([`SentStreams`]); at the end of the measured phase the scenario takes a snapshot of
//! it, and each receiver is judged against that snapshot ([`judge_receiver`]):
//!
//! - an **outage** is a stretch of at least [`OUTAGE_AFTER`] in which a receiver that had been
//!   decrypting frames decrypted none (every scenario's publishers send continuously, at least
//!   one audio frame every 20 ms): either a gap between two frames, or the time from its last
//!   frame to the end of the measured phase (an outage still going on at the end);
//! - for an outage still going on at the end, the frames the publishers sent on the streams the
//!   receiver had been getting, after the last one it got, count as lost (the "tail"). Streams
//!   that merely ended while others went on (a simulcast layer switch, a last-N change) are not
//!   charged a tail: the receiver was still getting media.
//!
//! [`merge`] turns the receivers' verdicts into the report's per-stream loss and its list of
//! outages (overlapping ones merged: one SFU crash is one outage seen by N receivers).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use crate::probe::Probe;
use crate::receiver_stats::{ReceiverStats, StreamKey};
use crate::report::{MediaOutage, StreamLoss};

/// How long a receiver may go without a decrypted frame before it counts as an outage.
pub const OUTAGE_AFTER: Duration = Duration::from_secs(2);

/// [`OUTAGE_AFTER`] in microseconds of the run clock.
pub const OUTAGE_AFTER_US: u64 = OUTAGE_AFTER.as_micros() as u64;

/// The next sequence number of every stream every publisher of the run has sealed, shared by
/// the publishers (who record) and the scenario (which takes the snapshot).
#[derive(Debug, Default)]
pub struct SentStreams {
    next_seq: Mutex<HashMap<StreamKey, u32>>,
}

impl SentStreams {
    /// Records that the frame carrying `probe` was sealed and handed to the transport.
    pub fn record(&self, probe: &Probe) {
        let key = StreamKey {
            sender: probe.sender,
            stream: probe.stream,
        };
        let next = probe.seq.wrapping_add(1);
        // A poisoned lock means a publisher panicked mid-insert; the map is still usable.
        let mut map = self
            .next_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(key).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// The next sequence number of every stream, as of now.
    pub fn snapshot(&self) -> HashMap<StreamKey, u32> {
        self.next_seq
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A stretch of the run clock in which one receiver decrypted no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// Arrival time (µs, run clock) of the last frame before the gap.
    pub start_us: u64,
    /// Arrival time of the first frame after it, or `None` when none came before the end.
    pub end_us: Option<u64>,
    /// The streams the receiver had been getting before the gap.
    pub streams: Vec<StreamKey>,
}

/// The measured phase on the run clock (µs since the run's epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasuredWindow {
    /// When the measured phase began.
    pub from_us: u64,
    /// When it ended (the publishers' snapshot was taken then).
    pub to_us: u64,
}

/// What one receiver's frames say about the run.
#[derive(Debug, Clone, Default)]
pub struct ReceiverVerdict {
    /// Per stream: frames expected, received and lost, the tail included.
    pub streams: BTreeMap<StreamKey, StreamCounts>,
    /// Outages that overlap the measured phase.
    pub outages: Vec<Gap>,
}

/// Frame counts of one stream at one receiver (or summed over receivers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamCounts {
    /// Receivers the counts are summed over.
    pub receivers: u64,
    /// Frames expected: the sequence range received, plus the tail of an outage at the end.
    pub expected: u64,
    /// Distinct frames received.
    pub received: u64,
    /// `expected - received`.
    pub lost: u64,
}

/// Judges one receiver: its outages within `window` and its per-stream counts, with the frames
/// `sent` (next sequence numbers at the window's end) after its last frame counted as lost when
/// an outage lasted to the end.
pub fn judge_receiver(
    stats: &ReceiverStats,
    window: MeasuredWindow,
    sent: &HashMap<StreamKey, u32>,
) -> ReceiverVerdict {
    let mut verdict = ReceiverVerdict::default();
    for (key, s) in stats.streams() {
        verdict.streams.insert(
            *key,
            StreamCounts {
                receivers: 1,
                expected: s.expected(),
                received: s.received(),
                lost: s.lost(),
            },
        );
    }
    let overlaps = |g: &Gap| g.end_us.is_none_or(|end| end > window.from_us);
    verdict.outages = stats
        .gaps()
        .iter()
        .filter(|g| g.start_us < window.to_us && overlaps(g))
        .cloned()
        .collect();
    let Some(last_us) = stats.last_arrival_us() else {
        return verdict;
    };
    if window.to_us.saturating_sub(last_us) < OUTAGE_AFTER_US {
        return verdict;
    }
    // Silent from `last_us` to the end: the streams it had been getting, and their tails.
    let active = stats.streams_active_before(last_us);
    for key in &active {
        let (Some(counts), Some(stream), Some(&next)) = (
            verdict.streams.get_mut(key),
            stats.streams().get(key),
            sent.get(key),
        ) else {
            continue;
        };
        let tail = u64::from(next.saturating_sub(stream.highest_seq().saturating_add(1)));
        counts.expected += tail;
        counts.lost += tail;
    }
    verdict.outages.push(Gap {
        start_us: last_us,
        end_us: None,
        streams: active,
    });
    verdict
}

/// Merges the receivers' verdicts into the report's per-stream loss (by sender, then stream)
/// and its outages: gaps that overlap in time become one outage, with the number of receivers
/// that saw it and every stream involved; times are relative to the measured phase's start.
pub fn merge(
    verdicts: &[ReceiverVerdict],
    window: MeasuredWindow,
) -> (Vec<StreamLoss>, Vec<MediaOutage>) {
    let mut per_stream: BTreeMap<StreamKey, StreamCounts> = BTreeMap::new();
    let mut gaps: Vec<(u64, u64, bool, &[StreamKey])> = Vec::new();
    for v in verdicts {
        for (key, c) in &v.streams {
            let t = per_stream.entry(*key).or_default();
            t.receivers += c.receivers;
            t.expected += c.expected;
            t.received += c.received;
            t.lost += c.lost;
        }
        for g in &v.outages {
            let end = g.end_us.unwrap_or(window.to_us).min(window.to_us);
            let start = g.start_us.max(window.from_us);
            gaps.push((
                start,
                end,
                g.end_us.is_none_or(|e| e >= window.to_us),
                &g.streams,
            ));
        }
    }
    let streams = per_stream
        .into_iter()
        .map(|(key, c)| StreamLoss {
            sender: key.sender,
            stream: key.stream,
            receivers: c.receivers,
            expected: c.expected,
            received: c.received,
            lost: c.lost,
            loss_pct: (c.expected > 0).then(|| 100.0 * c.lost as f64 / c.expected as f64),
        })
        .collect();
    gaps.sort_by_key(|g| g.0);
    let mut outages: Vec<(u64, u64, bool, u64, BTreeSet<StreamKey>)> = Vec::new();
    for (start, end, ongoing, keys) in gaps {
        match outages.last_mut() {
            Some(o) if start <= o.1 => {
                o.1 = o.1.max(end);
                o.2 |= ongoing;
                o.3 += 1;
                o.4.extend(keys.iter().copied());
            }
            _ => outages.push((start, end, ongoing, 1, keys.iter().copied().collect())),
        }
    }
    let seconds = |us: u64| us as f64 / 1e6;
    let outages = outages
        .into_iter()
        .map(|(start, end, ongoing, receivers, keys)| MediaOutage {
            start_s: seconds(start - window.from_us),
            duration_s: seconds(end.saturating_sub(start)),
            ongoing_at_end: ongoing,
            receivers,
            streams: keys
                .into_iter()
                .map(|k| crate::report::StreamId {
                    sender: k.sender,
                    stream: k.stream,
                })
                .collect(),
        })
        .collect();
    (streams, outages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(sender: u16, stream: u8, seq: u32) -> Probe {
        Probe {
            sender,
            stream,
            seq,
            send_time_us: u64::from(seq) * 20_000,
        }
    }

    /// Two senders' audio every 20 ms; the receiver gets frames 0..=100 (2 s), then nothing.
    fn silent_after_two_seconds() -> ReceiverStats {
        let mut rx = ReceiverStats::new();
        for seq in 0..=100u32 {
            for sender in [1, 2] {
                rx.on_probe(&probe(sender, 0, seq), u64::from(seq) * 20_000 + 3_000);
            }
        }
        rx
    }

    #[test]
    fn media_that_stops_before_the_end_is_an_outage_with_its_tail_lost() {
        let rx = silent_after_two_seconds();
        let sent = SentStreams::default();
        for seq in 0..400 {
            sent.record(&probe(1, 0, seq));
            sent.record(&probe(2, 0, seq));
        }
        // Measured from 1 s to 8 s: the last frame came at 2.003 s.
        let window = MeasuredWindow {
            from_us: 1_000_000,
            to_us: 8_000_000,
        };
        let v = judge_receiver(&rx, window, &sent.snapshot());
        assert_eq!(v.outages.len(), 1);
        assert_eq!(v.outages[0].end_us, None);
        assert_eq!(v.outages[0].streams.len(), 2);
        let counts = v.streams[&StreamKey {
            sender: 1,
            stream: 0,
        }];
        assert_eq!(
            (counts.expected, counts.received, counts.lost),
            (400, 101, 299)
        );

        let (streams, outages) = merge(&[v.clone(), v], window);
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0].receivers, 2);
        assert_eq!(streams[0].lost, 598);
        assert!((streams[0].loss_pct.unwrap() - 74.75).abs() < 1e-9);
        assert_eq!(outages.len(), 1, "one outage seen by two receivers");
        let o = &outages[0];
        assert_eq!(o.receivers, 2);
        assert!(o.ongoing_at_end);
        assert!(
            (o.start_s - 1.003).abs() < 1e-9 && (o.duration_s - 5.997).abs() < 1e-9,
            "{o:?}"
        );
        assert_eq!(o.streams.len(), 2);
    }

    #[test]
    fn steady_media_and_a_stream_that_merely_ended_are_no_outage() {
        let mut rx = ReceiverStats::new();
        // Audio all along; a camera layer that stopped after 1 s (a layer switch).
        for seq in 0..400u32 {
            rx.on_probe(&probe(1, 0, seq), u64::from(seq) * 20_000 + 3_000);
            if seq < 50 {
                rx.on_probe(&probe(1, 3, seq), u64::from(seq) * 20_000 + 3_000);
            }
        }
        let sent: HashMap<StreamKey, u32> = [
            (
                StreamKey {
                    sender: 1,
                    stream: 0,
                },
                400,
            ),
            (
                StreamKey {
                    sender: 1,
                    stream: 3,
                },
                400,
            ),
        ]
        .into();
        let window = MeasuredWindow {
            from_us: 0,
            to_us: 8_000_000,
        };
        let v = judge_receiver(&rx, window, &sent);
        assert!(v.outages.is_empty(), "{:?}", v.outages);
        assert!(v.streams.values().all(|c| c.lost == 0));
        let (_, outages) = merge(&[v], window);
        assert!(outages.is_empty());
    }

    #[test]
    fn a_gap_between_frames_is_an_outage_and_its_frames_are_lost() {
        let mut rx = ReceiverStats::new();
        for seq in (0..400u32).filter(|s| !(100..250).contains(s)) {
            rx.on_probe(&probe(1, 0, seq), u64::from(seq) * 20_000 + 3_000);
        }
        let window = MeasuredWindow {
            from_us: 0,
            to_us: 8_000_000,
        };
        let v = judge_receiver(&rx, window, &HashMap::new());
        assert_eq!(v.outages.len(), 1);
        assert_eq!(v.outages[0].end_us, Some(250 * 20_000 + 3_000));
        let (streams, outages) = merge(&[v], window);
        assert_eq!(streams[0].lost, 150);
        assert!(!outages[0].ongoing_at_end);
        assert!((outages[0].duration_s - 3.02).abs() < 1e-9, "{outages:?}");
    }
}
