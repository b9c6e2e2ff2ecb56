//! The bounds on one joined device's `stats` messages, so that no client can move
//! `signaling_client_decrypt_failures_total` (and its alert) by more than a real client could:
//!
//! - at most [`STATS_BURST`] messages back to back, then [`STATS_PER_SECOND`]; more are refused
//!   (`rate_limited`);
//! - the frames a report claims (`decrypt_failures + frames_decrypted`) come out of an allowance
//!   that grows by [`MAX_FRAMES_PER_SECOND`] per second since the join (one second's worth at
//!   the join, at most [`MAX_STATS_SPAN_SECONDS`]' worth saved up); a report claiming more, or
//!   with a ratio or time out of range, is refused whole (`malformed`) and adds nothing.
//!
//! So one device adds at most `MAX_FRAMES_PER_SECOND × (1 + seconds joined)` to the counter.
//! Sans-IO: time is passed in.

use std::time::Instant;

use crate::protocol::{
    ClientStats, ErrorCode, MAX_FRAMES_PER_SECOND, MAX_STATS_SPAN_SECONDS, STATS_BURST,
    STATS_PER_SECOND,
};

/// Why a `stats` message was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StatsRefusal {
    /// Over the message rate for `stats`.
    TooFrequent,
    /// A value no real client could report; the text says which.
    OutOfBounds(String),
}

impl StatsRefusal {
    /// The error code sent back.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            StatsRefusal::TooFrequent => ErrorCode::RateLimited,
            StatsRefusal::OutOfBounds(_) => ErrorCode::Malformed,
        }
    }

    /// The `reason` label of `signaling_rejected_total` it is counted under.
    pub(crate) fn metric_reason(&self) -> &'static str {
        match self {
            StatsRefusal::TooFrequent => "stats_too_frequent",
            StatsRefusal::OutOfBounds(_) => "stats_out_of_bounds",
        }
    }

    /// The message sent back.
    pub(crate) fn message(&self) -> String {
        match self {
            StatsRefusal::TooFrequent => format!(
                "stats: at most {STATS_BURST} at once, then {STATS_PER_SECOND} per second; dropped"
            ),
            StatsRefusal::OutOfBounds(why) => format!("stats refused: {why}"),
        }
    }
}

/// The `stats` allowances of one joined device.
#[derive(Debug)]
pub(crate) struct StatsGate {
    /// When the allowances were last brought up to date.
    updated: Instant,
    /// Messages that may still be sent now (up to [`STATS_BURST`]).
    messages: f64,
    /// Frames that may still be reported now.
    frames: f64,
}

impl StatsGate {
    /// The allowances of a device that joined at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        StatsGate {
            updated: now,
            messages: f64::from(STATS_BURST),
            frames: MAX_FRAMES_PER_SECOND as f64,
        }
    }

    /// Admits `stats` at `now`, taking its message and frames from the allowances, or refuses it
    /// (a refused report takes no frames; every message takes from the message allowance).
    pub(crate) fn admit(&mut self, stats: &ClientStats, now: Instant) -> Result<(), StatsRefusal> {
        self.catch_up(now);
        if self.messages < 1.0 {
            return Err(StatsRefusal::TooFrequent);
        }
        self.messages -= 1.0;
        stats.check_ranges().map_err(StatsRefusal::OutOfBounds)?;
        let claimed = stats.frames_received();
        let allowed = self.frames.floor();
        if claimed as f64 > allowed {
            return Err(StatsRefusal::OutOfBounds(format!(
                "decrypt_failures + frames_decrypted = {claimed} is more than this device can have \
                 received since its previous report (at most {allowed})"
            )));
        }
        self.frames -= claimed as f64;
        Ok(())
    }

    fn catch_up(&mut self, now: Instant) {
        let seconds = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = self.updated.max(now);
        self.messages =
            (self.messages + seconds * f64::from(STATS_PER_SECOND)).min(f64::from(STATS_BURST));
        let most = (MAX_FRAMES_PER_SECOND * MAX_STATS_SPAN_SECONDS) as f64;
        self.frames = (self.frames + seconds * MAX_FRAMES_PER_SECOND as f64).min(most);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn report(failures: u64, decrypted: u64) -> ClientStats {
        ClientStats {
            decrypt_failures: failures,
            frames_decrypted: decrypted,
            ..ClientStats::default()
        }
    }

    #[test]
    fn a_real_client_every_five_seconds_is_admitted() {
        let t0 = Instant::now();
        let mut gate = StatsGate::new(t0);
        for i in 1..=100u64 {
            let now = t0 + Duration::from_secs(5 * i);
            // 25 cameras at 30 fps and 10 audio streams for 5 s, a few failures.
            let r = report(3, 5 * (25 * 30 + 10 * 50));
            assert_eq!(gate.admit(&r, now), Ok(()), "report {i}");
        }
    }

    #[test]
    fn a_million_failures_are_refused_and_add_nothing() {
        let t0 = Instant::now();
        let mut gate = StatsGate::new(t0);
        let now = t0 + Duration::from_secs(5);
        let refusal = gate.admit(&report(1_000_000, 0), now).expect_err("refused");
        assert_eq!(refusal.metric_reason(), "stats_out_of_bounds");
        assert_eq!(refusal.code(), ErrorCode::Malformed);
        // The whole allowance (1 s at the join + 5 s) is still there.
        assert_eq!(
            gate.admit(&report(6 * MAX_FRAMES_PER_SECOND, 0), now),
            Ok(())
        );
        let refusal = gate.admit(&report(1, 0), now + Duration::from_secs(1));
        assert_eq!(refusal, Ok(()));
    }

    #[test]
    fn a_burst_is_cut_to_the_rate() {
        let t0 = Instant::now();
        let mut gate = StatsGate::new(t0);
        let admitted = (0..50)
            .filter(|_| gate.admit(&report(0, 0), t0).is_ok())
            .count();
        assert_eq!(admitted, STATS_BURST as usize);
        let refusal = gate.admit(&report(0, 0), t0).expect_err("refused");
        assert_eq!(refusal.code(), ErrorCode::RateLimited);
        assert_eq!(refusal.metric_reason(), "stats_too_frequent");
        assert_eq!(
            gate.admit(&report(0, 0), t0 + Duration::from_secs(1)),
            Ok(())
        );
    }

    #[test]
    fn the_frame_allowance_bounds_what_a_liar_adds_over_time() {
        // A liar reporting the most it may, once a second for ten minutes, adds at most
        // MAX_FRAMES_PER_SECOND per second (plus the first second's worth).
        let t0 = Instant::now();
        let mut gate = StatsGate::new(t0);
        let mut added = 0;
        for s in 1..=600u64 {
            let now = t0 + Duration::from_secs(s);
            for claim in [10 * MAX_FRAMES_PER_SECOND, MAX_FRAMES_PER_SECOND] {
                if gate.admit(&report(claim, 0), now).is_ok() {
                    added += claim;
                }
            }
        }
        assert!(added <= MAX_FRAMES_PER_SECOND * 601, "{added}");
    }

    #[test]
    fn ratios_and_times_out_of_range_are_refused() {
        let t0 = Instant::now();
        let bad = [
            ClientStats {
                loss_ratio: Some(1.5),
                ..ClientStats::default()
            },
            ClientStats {
                loss_ratio: Some(-0.1),
                ..ClientStats::default()
            },
            ClientStats {
                rtt_seconds: Some(1e9),
                ..ClientStats::default()
            },
            ClientStats {
                jitter_seconds: Some(-1.0),
                ..ClientStats::default()
            },
        ];
        for stats in bad {
            let mut gate = StatsGate::new(t0);
            let refusal = gate.admit(&stats, t0).expect_err("refused");
            assert_eq!(refusal.metric_reason(), "stats_out_of_bounds", "{stats:?}");
        }
    }
}
