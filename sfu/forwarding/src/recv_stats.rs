//! Reception statistics of one incoming source, as RFC 3550 Appendix A.3 and A.8 define them:
//! extended highest sequence number, cumulative and interval loss, interarrival jitter. They make
//! the report blocks of the RRs the SFU sends to publishers, and those the load generator's
//! sans-IO viewers send the SFU (`loadtest/src/viewer_engine/feedback.rs`).

use std::time::Instant;

use crate::{rtcp::ReportBlock, seq::seq_newer};

/// See the module docs.
#[derive(Debug, Default)]
pub struct RecvStats {
    started: bool,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Jitter in RTP timestamp units, as a float (RFC 3550 A.8 uses a scaled integer).
    jitter: f64,
    last_transit: Option<i64>,
    /// Middle 32 bits of the last SR's NTP time and when it arrived.
    pub(crate) last_sr: Option<(u32, Instant)>,
}

impl RecvStats {
    /// Records one packet; `arrival_ticks` is the arrival time in RTP clock units.
    pub fn update(&mut self, seq: u16, timestamp: u32, arrival_ticks: i64) {
        if !self.started {
            self.started = true;
            self.base_seq = u32::from(seq);
            self.max_seq = seq;
        } else if seq_newer(seq, self.max_seq) {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(1 << 16);
            }
            self.max_seq = seq;
        }
        self.received += 1;
        let transit = arrival_ticks - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            // Timestamps wrap at 2^32: the difference is taken modulo 2^32 as a signed value.
            let d = ((transit - last) as i32).unsigned_abs();
            self.jitter += (f64::from(d) - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// The sequence numbers skipped if `seq` arrives next: (first missing, count), when the gap
    /// is 1 to `max_gap` packets. Larger jumps are a stream restart, not loss.
    pub fn missing_before(&self, seq: u16, max_gap: u16) -> Option<(u16, u16)> {
        if !self.started || !seq_newer(seq, self.max_seq) {
            return None;
        }
        let gap = seq.wrapping_sub(self.max_seq).wrapping_sub(1);
        (1..=max_gap)
            .contains(&gap)
            .then(|| (self.max_seq.wrapping_add(1), gap))
    }

    /// Records a sender report of this source (its 64-bit NTP time) that arrived at `now`: the
    /// next report block echoes it, so the sender can measure the round trip.
    pub fn on_sender_report(&mut self, ntp: u64, now: Instant) {
        self.last_sr = Some(((ntp >> 16) as u32, now));
    }

    /// Whether any packet was received.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Jitter in RTP units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Makes a report block and starts a new interval. Returns the block and the interval's
    /// fraction lost as 0–1.
    pub fn report(&mut self, ssrc: u32, now: Instant) -> (ReportBlock, f64) {
        let extended_max = u64::from(self.cycles) + u64::from(self.max_seq);
        let expected = (extended_max + 1).saturating_sub(u64::from(self.base_seq));
        let lost = expected as i64 - self.received as i64;
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0.0
        } else {
            lost_interval as f64 / expected_interval as f64
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((mid, at)) => {
                let d = now.saturating_duration_since(at).as_secs_f64() * 65536.0;
                (mid, d.min(f64::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        let block = ReportBlock {
            ssrc,
            fraction_lost: (fraction * 256.0).min(255.0) as u8,
            cumulative_lost: lost.clamp(-(1 << 23), (1 << 23) - 1) as i32,
            highest_seq: extended_max as u32,
            jitter: self.jitter as u32,
            last_sr,
            delay_since_last_sr,
        };
        (block, fraction)
    }
}
