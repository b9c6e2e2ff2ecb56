//! What a receiver measures from the probes in the frames it decrypted: end-to-end latency,
//! loss, reordering, duplicates and interarrival jitter, per sending stream.
//!
//! Jitter follows RFC 3550 §6.4.1 (and the code of its Appendix A.8): for consecutive packets
//! *i* and *j* in arrival order, `D(i,j) = (Rj - Ri) - (Sj - Si)`, and the estimate moves by
//! `J += (|D| - J) / 16`. Here `S` is the probe's send time and `R` the arrival time, both in
//! microseconds on the run's clock, so no RTP clock rate is involved.
//!
//! Loss per stream is `expected - received`, where `expected` runs from the first to the highest
//! sequence number seen (RFC 3550 §6.4.1 "cumulative number of packets lost"), except that
//! duplicates are recognised (within a window of recent sequence numbers) and not counted as
//! received twice. Packets lost after the last one received are invisible to any receiver;
//! senders report how many they sent, and the scenario compares.
//!
//! Arrival times are kept too (per stream and for the receiver as a whole), and every stretch of
//! at least [`OUTAGE_AFTER_US`] without a frame is recorded as a [`Gap`]: `outage.rs` turns them,
//! and the silence at the end of a run, into outages and the loss they hide.

use std::collections::HashMap;

use crate::histogram::DurationHistogram;
use crate::outage::{Gap, OUTAGE_AFTER_US};
use crate::probe::Probe;

/// How many sequence numbers below the highest one are remembered for duplicate detection.
const DUP_WINDOW: u32 = 1024;

/// Identifies one sending stream: a sender and one of its streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// The sending participant's index.
    pub sender: u16,
    /// The stream of that sender.
    pub stream: u8,
}

/// Counters and the running jitter estimate of one received stream.
#[derive(Debug, Clone)]
pub struct StreamStats {
    first_seq: u32,
    highest_seq: u32,
    /// Bit `k` set: sequence `highest_seq - k` was received (k < DUP_WINDOW).
    seen: Box<[u64; (DUP_WINDOW / 64) as usize]>,
    received: u64,
    duplicates: u64,
    reordered: u64,
    last_transit_us: i64,
    jitter_us: f64,
    last_arrival_us: u64,
}

impl StreamStats {
    fn new(first: &Probe, transit_us: i64, arrival_us: u64) -> Self {
        let mut seen = Box::new([0u64; (DUP_WINDOW / 64) as usize]);
        seen[0] = 1;
        StreamStats {
            first_seq: first.seq,
            highest_seq: first.seq,
            seen,
            received: 1,
            duplicates: 0,
            reordered: 0,
            last_transit_us: transit_us,
            jitter_us: 0.0,
            last_arrival_us: arrival_us,
        }
    }

    /// Marks `seq` as seen; returns false when it was seen before (a duplicate).
    fn mark_seen(&mut self, seq: u32) -> bool {
        if seq > self.highest_seq {
            let shift = seq - self.highest_seq;
            self.shift_window(shift);
            self.highest_seq = seq;
            self.seen[0] |= 1;
            true
        } else {
            let back = self.highest_seq - seq;
            if back >= DUP_WINDOW {
                // Too old to tell: count it as received (it is not a duplicate of anything
                // still in the window) but it is certainly reordered.
                return true;
            }
            let (word, bit) = ((back / 64) as usize, back % 64);
            let fresh = self.seen[word] & (1 << bit) == 0;
            self.seen[word] |= 1 << bit;
            fresh
        }
    }

    /// Moves the window so that bit 0 means `highest_seq + shift`.
    fn shift_window(&mut self, shift: u32) {
        let words = self.seen.len();
        if shift >= DUP_WINDOW {
            self.seen.fill(0);
            return;
        }
        let (word_shift, bit_shift) = ((shift / 64) as usize, shift % 64);
        for i in (0..words).rev() {
            let src = i.checked_sub(word_shift);
            let hi = src.map_or(0, |s| self.seen[s]);
            let lo = src
                .and_then(|s| s.checked_sub(1))
                .map_or(0, |s| self.seen[s]);
            self.seen[i] = if bit_shift == 0 {
                hi
            } else {
                (hi << bit_shift) | (lo >> (64 - bit_shift))
            };
        }
    }

    fn on_probe(&mut self, probe: &Probe, transit_us: i64) {
        if probe.seq < self.first_seq {
            // A packet from before the first one we saw arrived late: extend the range back so
            // it is not counted as extra.
            self.first_seq = probe.seq;
        }
        let in_order = probe.seq > self.highest_seq;
        if !self.mark_seen(probe.seq) {
            self.duplicates += 1;
            return;
        }
        self.received += 1;
        if !in_order {
            self.reordered += 1;
        }
        let d = (transit_us - self.last_transit_us).unsigned_abs() as f64;
        self.jitter_us += (d - self.jitter_us) / 16.0;
        self.last_transit_us = transit_us;
    }

    /// The highest sequence number seen.
    pub fn highest_seq(&self) -> u32 {
        self.highest_seq
    }

    /// Arrival time (µs, run clock) of the stream's latest frame.
    pub fn last_arrival_us(&self) -> u64 {
        self.last_arrival_us
    }

    /// Packets expected from the first to the highest sequence number seen.
    pub fn expected(&self) -> u64 {
        u64::from(self.highest_seq - self.first_seq) + 1
    }

    /// Distinct packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets missing between the first and the highest sequence number seen.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Packets received more than once (each extra copy counts once).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that arrived after a packet with a higher sequence number.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// The current RFC 3550 interarrival jitter estimate in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_us / 1000.0
    }
}

/// Everything one receiver (or, after [`ReceiverStats::merge`], a whole run) measured.
#[derive(Debug, Clone, Default)]
pub struct ReceiverStats {
    streams: HashMap<StreamKey, StreamStats>,
    latency: DurationHistogram,
    jitter: DurationHistogram,
    last_arrival_us: Option<u64>,
    gaps: Vec<Gap>,
}

impl ReceiverStats {
    /// An empty set of statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one frame (or packet) carrying `probe` that arrived at `arrival_us` on the
    /// run's clock.
    pub fn on_probe(&mut self, probe: &Probe, arrival_us: u64) {
        let transit_us = i64::try_from(arrival_us)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(probe.send_time_us).unwrap_or(i64::MAX));
        let key = StreamKey {
            sender: probe.sender,
            stream: probe.stream,
        };
        if let Some(last) = self.last_arrival_us
            && arrival_us.saturating_sub(last) >= OUTAGE_AFTER_US
        {
            self.gaps.push(Gap {
                start_us: last,
                end_us: Some(arrival_us),
                streams: self.streams_active_before(last),
            });
        }
        self.last_arrival_us = Some(
            self.last_arrival_us
                .map_or(arrival_us, |l| l.max(arrival_us)),
        );
        match self.streams.get_mut(&key) {
            Some(stream) => {
                let before = stream.duplicates;
                stream.last_arrival_us = stream.last_arrival_us.max(arrival_us);
                stream.on_probe(probe, transit_us);
                if stream.duplicates == before {
                    self.latency.record_us(transit_us.max(0).unsigned_abs());
                    self.jitter.record_us(stream.jitter_us.round() as u64);
                }
            }
            None => {
                self.streams
                    .insert(key, StreamStats::new(probe, transit_us, arrival_us));
                self.latency.record_us(transit_us.max(0).unsigned_abs());
                self.jitter.record_us(0);
            }
        }
    }

    /// Per-stream statistics, keyed by sender and stream.
    pub fn streams(&self) -> &HashMap<StreamKey, StreamStats> {
        &self.streams
    }

    /// Arrival time (µs, run clock) of the latest frame, or `None` before the first.
    pub fn last_arrival_us(&self) -> Option<u64> {
        self.last_arrival_us
    }

    /// Every stretch of at least [`OUTAGE_AFTER_US`] between two frames, in order.
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// The streams that had a frame within [`OUTAGE_AFTER_US`] before `at_us` (the streams a
    /// receiver was getting at that moment), sorted.
    pub fn streams_active_before(&self, at_us: u64) -> Vec<StreamKey> {
        let mut active: Vec<StreamKey> = self
            .streams
            .iter()
            .filter(|(_, s)| s.last_arrival_us + OUTAGE_AFTER_US > at_us)
            .map(|(k, _)| *k)
            .collect();
        active.sort_unstable();
        active
    }

    /// End-to-end latency of every distinct frame received.
    pub fn latency(&self) -> &DurationHistogram {
        &self.latency
    }

    /// The running jitter estimate, sampled at every distinct frame received.
    pub fn jitter(&self) -> &DurationHistogram {
        &self.jitter
    }

    /// Sums this receiver's streams into totals that can be merged across receivers.
    pub fn totals(&self) -> StatsTotals {
        let mut t = StatsTotals {
            streams: self.streams.len() as u64,
            latency: self.latency.clone(),
            jitter: self.jitter.clone(),
            ..StatsTotals::default()
        };
        for s in self.streams.values() {
            t.expected += s.expected();
            t.received += s.received();
            t.lost += s.lost();
            t.duplicates += s.duplicates();
            t.reordered += s.reordered();
        }
        t
    }
}

/// Counts and histograms summed over streams and receivers: what a report is made from.
#[derive(Debug, Clone, Default)]
pub struct StatsTotals {
    /// Received streams (a stream seen by two receivers counts twice).
    pub streams: u64,
    /// Packets expected from the first to the highest sequence number, summed.
    pub expected: u64,
    /// Distinct packets received.
    pub received: u64,
    /// Packets missing within each stream's seen range.
    pub lost: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Packets that arrived after a higher-numbered one.
    pub reordered: u64,
    /// End-to-end latency of every distinct packet.
    pub latency: DurationHistogram,
    /// The running RFC 3550 jitter estimate, sampled at every distinct packet.
    pub jitter: DurationHistogram,
}

impl StatsTotals {
    /// Adds another receiver's totals.
    pub fn merge(&mut self, other: &StatsTotals) {
        self.streams += other.streams;
        self.expected += other.expected;
        self.received += other.received;
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.latency.merge(&other.latency);
        self.jitter.merge(&other.jitter);
    }

    /// Lost packets as a percentage of expected ones, or `None` when nothing was expected.
    pub fn loss_pct(&self) -> Option<f64> {
        (self.expected > 0).then(|| 100.0 * self.lost as f64 / self.expected as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::{RngExt, SeedableRng};
    use std::collections::HashSet;

    fn probe(seq: u32, send_ms: u64) -> Probe {
        Probe {
            sender: 7,
            stream: 1,
            seq,
            send_time_us: send_ms * 1000,
        }
    }

    #[test]
    fn steady_stream_has_no_loss_and_no_jitter() {
        let mut rx = ReceiverStats::new();
        for seq in 0..100u32 {
            let sent = u64::from(seq) * 20;
            rx.on_probe(&probe(seq, sent), (sent + 15) * 1000);
        }
        let t = rx.totals();
        assert_eq!((t.expected, t.received, t.lost), (100, 100, 0));
        assert_eq!(t.loss_pct(), Some(0.0));
        let p50 = t.latency.p50_ms().unwrap();
        assert!((p50 - 15.0).abs() <= 0.015, "{p50}");
        assert_eq!(t.jitter.p99_ms(), Some(0.0));
    }

    #[test]
    fn gaps_count_as_loss() {
        let mut rx = ReceiverStats::new();
        for seq in (0..100u32).filter(|s| s % 10 != 5) {
            rx.on_probe(&probe(seq, u64::from(seq)), u64::from(seq) * 1000 + 500);
        }
        let t = rx.totals();
        assert_eq!((t.expected, t.received, t.lost), (100, 90, 10));
        assert_eq!(t.loss_pct(), Some(10.0));
    }

    #[test]
    fn jitter_follows_rfc3550_recurrence() {
        // Transit alternates 10 ms / 20 ms, so |D| = 10 ms for every packet after the first and
        // J_n = 10 ms * (1 - (15/16)^n) after n differences.
        let mut rx = ReceiverStats::new();
        let n = 40u32;
        for seq in 0..=n {
            let sent = u64::from(seq) * 20;
            let transit = if seq % 2 == 0 { 10 } else { 20 };
            rx.on_probe(&probe(seq, sent), (sent + transit) * 1000);
        }
        let stream = rx.streams().values().next().unwrap();
        let expected = 10.0 * (1.0 - (15.0f64 / 16.0).powi(n as i32));
        assert!(
            (stream.jitter_ms() - expected).abs() < 1e-9,
            "{}",
            stream.jitter_ms()
        );
    }

    #[test]
    fn duplicates_and_reordering_are_told_apart_from_loss() {
        let mut rx = ReceiverStats::new();
        for seq in [0u32, 2, 1, 1, 3, 3, 4] {
            rx.on_probe(&probe(seq, 0), 1000);
        }
        let t = rx.totals();
        assert_eq!(t.received, 5);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.reordered, 1);
        assert_eq!(t.lost, 0);
    }

    #[test]
    fn duplicate_window_agrees_with_a_set_within_its_span() {
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(3);
        for _round in 0..20 {
            // A shuffled block of sequence numbers with repeats, all within the window.
            let span = rng.random_range(1..DUP_WINDOW);
            let mut seqs: Vec<u32> = (0..span).collect();
            for _ in 0..span / 3 {
                let dup = rng.random_range(0..span);
                seqs.push(dup);
            }
            seqs.shuffle(&mut rng);
            let base = rng.random_range(0..1_000_000u32);
            let mut rx = ReceiverStats::new();
            let mut set = HashSet::new();
            let mut dups = 0;
            for s in &seqs {
                if !set.insert(*s) {
                    dups += 1;
                }
                rx.on_probe(&probe(base + s, 0), 0);
            }
            let t = rx.totals();
            assert_eq!(t.received, u64::from(span));
            assert_eq!(t.duplicates, dups);
            assert_eq!(t.lost, 0);
        }
    }

    #[test]
    fn large_jumps_clear_the_window() {
        let mut rx = ReceiverStats::new();
        rx.on_probe(&probe(0, 0), 0);
        rx.on_probe(&probe(100_000, 0), 0);
        rx.on_probe(&probe(100_000, 0), 0);
        rx.on_probe(&probe(99_999 - 63, 0), 0);
        rx.on_probe(&probe(99_999 - 64, 0), 0);
        let t = rx.totals();
        assert_eq!(t.received, 4);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.expected, 100_001);
    }

    #[test]
    fn totals_merge_across_receivers() {
        let mut a = ReceiverStats::new();
        let mut b = ReceiverStats::new();
        for seq in 0..10 {
            a.on_probe(&probe(seq, 0), 5_000);
            if seq != 4 {
                b.on_probe(&probe(seq, 0), 9_000);
            }
        }
        let mut t = a.totals();
        t.merge(&b.totals());
        assert_eq!((t.streams, t.expected, t.received, t.lost), (2, 20, 19, 1));
        assert_eq!(t.latency.count(), 19);
        let (lo, hi) = (
            t.latency.quantile_ms(0.0).unwrap(),
            t.latency.quantile_ms(1.0).unwrap(),
        );
        assert!(
            (lo - 5.0).abs() <= 0.005 && (hi - 9.0).abs() <= 0.009,
            "{lo} {hi}"
        );
    }
}
