//! Flood detection for one connection: the messages its rate limit dropped, counted over a
//! sliding window. A connection that drops more than its allowance within the window is flooding
//! and is closed (1008), however many of its messages got through in between: an accepted
//! message does not reset the count (a client at 5,000 messages/s gets one through every 20 ms
//! at 50/s, and still floods).
//!
//! Sans-IO: time is passed in, so the rule is tested on virtual time.

use std::time::{Duration, Instant};

/// The window dropped messages are counted over.
pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

/// The window is counted in this many steps (one per second): a drop is forgotten 9 to 10 s
/// after it happened.
const STEPS: usize = 10;

/// Length of one step of the window, milliseconds.
const STEP_MS: u128 = FLOOD_WINDOW.as_millis() / STEPS as u128;

/// Dropped messages of one connection over the last [`FLOOD_WINDOW`].
#[derive(Debug)]
pub(crate) struct FloodDetector {
    /// Drops tolerated within the window; one more is a flood.
    allowance: u32,
    /// When counting began; steps are numbered from here.
    start: Instant,
    /// Number of the newest step that has a count.
    newest: u64,
    /// Drops per step, a ring indexed by step number modulo [`STEPS`].
    drops: [u32; STEPS],
}

impl FloodDetector {
    /// Tolerates `allowance` dropped messages within any [`FLOOD_WINDOW`], starting at `now`.
    pub(crate) fn new(allowance: u32, now: Instant) -> Self {
        FloodDetector {
            allowance,
            start: now,
            newest: 0,
            drops: [0; STEPS],
        }
    }

    /// Records one dropped message at `now`; true when the drops within the window now exceed
    /// the allowance (the connection floods).
    pub(crate) fn record_drop(&mut self, now: Instant) -> bool {
        let elapsed_ms = now.saturating_duration_since(self.start).as_millis();
        let step = u64::try_from(elapsed_ms / STEP_MS).unwrap_or(u64::MAX);
        if step > self.newest {
            // Steps that left the window are cleared (at most the whole ring).
            let passed = (step - self.newest).min(STEPS as u64);
            for k in 1..=passed {
                self.drops[ring_index(self.newest + k)] = 0;
            }
            self.newest = step;
        }
        let slot = &mut self.drops[ring_index(self.newest)];
        *slot = slot.saturating_add(1);
        self.dropped_in_window() > u64::from(self.allowance)
    }

    /// Drops counted within the window.
    fn dropped_in_window(&self) -> u64 {
        self.drops.iter().map(|&d| u64::from(d)).sum()
    }
}

fn ring_index(step: u64) -> usize {
    // The remainder is below STEPS, so it fits a usize.
    (step % STEPS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_over_the_allowance_floods() {
        let t0 = Instant::now();
        let mut f = FloodDetector::new(200, t0);
        for i in 0..200 {
            assert!(!f.record_drop(at(t0, i)), "drop {i} is tolerated");
        }
        assert!(f.record_drop(at(t0, 200)));
    }

    #[test]
    fn accepted_messages_in_between_do_not_reset_the_count() {
        // 5,000 messages/s against 50/s: one accepted every 20 ms, about 100 dropped between;
        // the detector only ever sees the drops, and they add up.
        let t0 = Instant::now();
        let mut f = FloodDetector::new(200, t0);
        let mut flooded_at = None;
        for i in 0..1_000u64 {
            // 0.2 ms apart.
            let now = t0 + Duration::from_micros(200 * i);
            if i % 100 != 0 && f.record_drop(now) {
                flooded_at = Some(i);
                break;
            }
        }
        let i = flooded_at.expect("a 5k/s flood is detected");
        assert!(i < 300, "detected within about 60 ms ({i} messages)");
    }

    #[test]
    fn a_steady_rate_at_the_allowance_is_tolerated() {
        // 20 drops per second is 200 per 10 s: never more than the allowance.
        let t0 = Instant::now();
        let mut f = FloodDetector::new(200, t0);
        for i in 0..2_000u64 {
            assert!(!f.record_drop(at(t0, i * 50)), "drop {i}");
        }
    }

    #[test]
    fn a_steady_rate_above_the_allowance_floods() {
        // 30 drops per second: over 200 within the first 10 s.
        let t0 = Instant::now();
        let mut f = FloodDetector::new(200, t0);
        let flooded = (0..400u64).find(|i| f.record_drop(at(t0, i * 1000 / 30)));
        let i = flooded.expect("floods");
        assert!((200..=300).contains(&i), "after {i} drops");
    }

    #[test]
    fn drops_older_than_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut f = FloodDetector::new(10, t0);
        for _ in 0..10 {
            assert!(!f.record_drop(t0));
        }
        // Long after: the earlier ten no longer count.
        let later = t0 + FLOOD_WINDOW + Duration::from_secs(1);
        for _ in 0..10 {
            assert!(!f.record_drop(later));
        }
        assert!(f.record_drop(later));
        // An hour later, everything was forgotten (the whole ring cleared at once).
        let much_later = t0 + Duration::from_secs(3600);
        assert!(!f.record_drop(much_later));
    }
}
