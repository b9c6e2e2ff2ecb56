//! The per-subscriber bandwidth estimator, fed by transport-wide CC feedback.
//!
//! Every packet the SFU sends to a subscriber carries the SFU's own transport-wide sequence
//! number; the send time and size are kept in a ring of the last 4096. Each feedback tells which
//! of those arrived and when (on the subscriber's clock). From one feedback the estimator takes:
//!
//! - **loss**: lost / reported packets;
//! - **queuing delay**: the mean one-way delay of the received packets (arrival − send, which has
//!   an unknown constant clock offset) minus the smallest such delay seen over the last ~10 s
//!   (two 5 s windows). Growth of this value means a queue is building on the path;
//! - **acknowledged rate**: bytes received over the span of their arrival times, smoothed.
//!
//! The update (a simplified Google Congestion Control, RFC draft-ietf-rmcat-gcc, without its
//! Kalman/trendline filter) is then, with `dt` the time since the last update (at most 1 s):
//!
//! - loss above 10 %: `estimate *= 1 − loss / 2` (GCC's loss-based decrease);
//! - else queuing delay above 60 ms: `estimate = min(estimate, 0.85 × acknowledged rate)`;
//! - else loss below 2 % and queuing delay below 20 ms: `estimate *= 1 + 0.08 × dt`
//!   (GCC's multiplicative increase of 8 % per second);
//! - otherwise hold.
//!
//! The estimate is clamped to the configured bounds. It is not capped by the acknowledged rate
//! when increasing, since the SFU does not send probe padding: the estimate grows while the path
//! shows no loss and no queue, the allocator then tries the next layer, and the first sign of
//! congestion brings the estimate (and the layer) back down.

use std::time::{Duration, Instant};

use crate::twcc::PacketStatus;

const HISTORY: usize = 4096;
const DELAY_WINDOW: Duration = Duration::from_secs(5);

/// One sent packet in 8 bytes (the ring is written once per packet per subscriber, so it is kept
/// small): size 0 marks an empty slot; the send time is µs on the core's clock modulo 2^32
/// (71 minutes), unwrapped against the feedback's arrival time.
#[derive(Debug, Clone, Copy, Default)]
struct SendRecord {
    seq: u16,
    size: u16,
    sent_us: u32,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Bwe {
    history: Vec<SendRecord>,
    estimate: f64,
    min: f64,
    max: f64,
    window_min_us: Option<i64>,
    previous_window_min_us: Option<i64>,
    window_started: Option<Instant>,
    acked_bps: f64,
    last_update: Option<Instant>,
    /// Loss of the last feedback, 0–1.
    pub(crate) last_loss: f64,
    /// Queuing delay of the last feedback.
    pub(crate) last_queuing: Duration,
}

impl Bwe {
    pub(crate) fn new(initial_bps: u64, min_bps: u64, max_bps: u64) -> Self {
        Self {
            history: Vec::new(),
            estimate: initial_bps as f64,
            min: min_bps as f64,
            max: max_bps.max(min_bps) as f64,
            window_min_us: None,
            previous_window_min_us: None,
            window_started: None,
            acked_bps: 0.0,
            last_update: None,
            last_loss: 0.0,
            last_queuing: Duration::ZERO,
        }
    }

    /// The current estimate in bit/s.
    pub(crate) fn estimate_bps(&self) -> u64 {
        self.estimate as u64
    }

    /// Records a packet sent with transport-wide sequence number `seq` at `sent_us` (µs on the
    /// core's clock).
    pub(crate) fn on_sent(&mut self, seq: u16, sent_us: i64, size: usize) {
        if self.history.is_empty() {
            self.history.resize(HISTORY, SendRecord::default());
        }
        self.history[usize::from(seq) % HISTORY] = SendRecord {
            seq,
            size: size.clamp(1, usize::from(u16::MAX)) as u16,
            sent_us: sent_us as u32,
        };
    }

    /// Updates the estimate from one feedback's statuses; `now_us` is `now` in µs on the clock
    /// `on_sent` used.
    pub(crate) fn on_feedback(&mut self, now: Instant, now_us: i64, statuses: &[PacketStatus]) {
        let (mut received, mut lost, mut delay_sum, mut bytes) = (0u64, 0u64, 0i64, 0u64);
        let (mut first_arrival, mut last_arrival) = (i64::MAX, i64::MIN);
        let mut min_delay = i64::MAX;
        for s in statuses {
            let Some(rec) = self.history.get(usize::from(s.seq) % HISTORY) else {
                continue;
            };
            if rec.size == 0 || rec.seq != s.seq {
                continue;
            }
            let sent_us = now_us - i64::from((now_us as u32).wrapping_sub(rec.sent_us));
            match s.received_at_us {
                Some(at) => {
                    let delay = at.saturating_sub(sent_us);
                    received += 1;
                    delay_sum = delay_sum.saturating_add(delay);
                    min_delay = min_delay.min(delay);
                    bytes += u64::from(rec.size);
                    first_arrival = first_arrival.min(at);
                    last_arrival = last_arrival.max(at);
                }
                None => lost += 1,
            }
        }
        let total = received + lost;
        if total == 0 {
            return;
        }
        let loss = lost as f64 / total as f64;
        let mut queuing_us = 0i64;
        if received > 0 {
            if self
                .window_started
                .is_none_or(|w| now.saturating_duration_since(w) >= DELAY_WINDOW)
            {
                self.previous_window_min_us = self.window_min_us;
                self.window_min_us = None;
                self.window_started = Some(now);
            }
            self.window_min_us = Some(self.window_min_us.map_or(min_delay, |m| m.min(min_delay)));
            let base = match (self.window_min_us, self.previous_window_min_us) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => min_delay,
            };
            queuing_us = (delay_sum / received as i64 - base).max(0);
            let span_us = (last_arrival - first_arrival).max(1_000);
            let rate = bytes as f64 * 8.0 * 1e6 / span_us as f64;
            self.acked_bps = if self.acked_bps == 0.0 {
                rate
            } else {
                0.8 * self.acked_bps + 0.2 * rate
            };
        }
        let dt = self
            .last_update
            .map(|t| now.saturating_duration_since(t).min(Duration::from_secs(1)))
            .unwrap_or(Duration::from_millis(100))
            .as_secs_f64();
        self.last_update = Some(now);
        if loss > 0.10 {
            self.estimate *= 1.0 - loss / 2.0;
        } else if queuing_us > 60_000 {
            let target = if self.acked_bps > 0.0 {
                0.85 * self.acked_bps
            } else {
                0.85 * self.estimate
            };
            self.estimate = self.estimate.min(target);
        } else if loss < 0.02 && queuing_us < 20_000 {
            self.estimate *= 1.0 + 0.08 * dt;
        }
        self.estimate = self.estimate.clamp(self.min, self.max);
        self.last_loss = loss;
        self.last_queuing = Duration::from_micros(queuing_us as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(bwe: &mut Bwe, now: Instant, first_seq: u16, n: u16, lost_every: u16, queue_us: i64) {
        let statuses: Vec<PacketStatus> = (0..n)
            .map(|i| {
                let seq = first_seq.wrapping_add(i);
                let lost = lost_every != 0 && i % lost_every == 0;
                PacketStatus {
                    seq,
                    received_at_us: (!lost).then_some(i64::from(seq) * 1000 + 30_000 + queue_us),
                }
            })
            .collect();
        bwe.on_feedback(now, 4_000_000, &statuses);
    }

    #[test]
    fn grows_without_congestion_and_falls_on_loss_or_queue() {
        let t0 = Instant::now();
        let mut bwe = Bwe::new(1_000_000, 50_000, 20_000_000);
        for seq in 0..4000u16 {
            bwe.on_sent(seq, i64::from(seq) * 1000 - 1_000_000, 1000);
        }
        for i in 0..10u16 {
            feed(
                &mut bwe,
                t0 + Duration::from_millis(100 * u64::from(i)),
                i * 100,
                100,
                0,
                0,
            );
        }
        let grown = bwe.estimate_bps();
        assert!(grown > 1_000_000, "estimate grew: {grown}");
        feed(&mut bwe, t0 + Duration::from_millis(1100), 1000, 100, 3, 0);
        let after_loss = bwe.estimate_bps();
        assert!(
            after_loss < grown * 9 / 10,
            "loss cut the estimate: {after_loss} < {grown}"
        );
        feed(
            &mut bwe,
            t0 + Duration::from_millis(1200),
            1100,
            100,
            0,
            200_000,
        );
        assert!(
            bwe.estimate_bps() <= after_loss,
            "a 200 ms queue does not raise it"
        );
        assert!(bwe.last_queuing >= Duration::from_millis(150));
    }
}
