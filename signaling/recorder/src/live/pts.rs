//! Presentation times from RTP timestamps: a track's first frame is placed at its arrival time
//! from the session's start, every later frame at that plus its RTP timestamp's distance from
//! the first one (48 kHz for Opus, 90 kHz for VP8), the 32-bit timestamp unwrapped. Times always
//! fall on whole milliseconds (WebM's timecode unit) and go forward within a track, by at least
//! [`MIN_STEP`]: a capture instant
//! that arrives twice, once from each simulcast layer when the SFU switches layers, or a
//! reordered older frame, is placed just after the last one, never at the same time. A jump of more than [`REANCHOR_AFTER`] (a restarted sender) puts
//! the frame at its arrival time again.

use std::time::Duration;

/// A timestamp step larger than this (either way) is a restarted stream, not media time.
pub const REANCHOR_AFTER: Duration = Duration::from_secs(30);

/// The least distance between two frames of a track (a WebM block timecode is in milliseconds;
/// two frames at the same time make an invalid, non monotonic stream for players and ffmpeg).
pub const MIN_STEP: Duration = Duration::from_millis(1);

/// One track's RTP clock.
#[derive(Debug, Clone)]
pub struct RtpClock {
    rate: u32,
    /// The frame placed at `anchor_pts` had unwrapped timestamp `anchor_ts`.
    anchor: Option<Anchor>,
    /// The last frame's time (`None` before the first frame).
    last_pts: Option<Duration>,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    pts: Duration,
    ts: i64,
    /// The last frame's timestamp, unwrapped, and as received.
    last_unwrapped: i64,
    last_ts: u32,
}

impl RtpClock {
    /// A clock of `rate` ticks per second (48 000 Opus, 90 000 VP8).
    pub fn new(rate: u32) -> Self {
        RtpClock {
            rate: rate.max(1),
            anchor: None,
            last_pts: None,
        }
    }

    /// The presentation time of a frame with RTP timestamp `ts` that arrived `arrival` after
    /// the session started.
    pub fn pts(&mut self, ts: u32, arrival: Duration) -> Duration {
        let reanchor_ticks = REANCHOR_AFTER.as_secs() as i64 * i64::from(self.rate);
        let pts = match self.anchor {
            Some(mut a) => {
                let step = i64::from(ts.wrapping_sub(a.last_ts) as i32);
                if step.abs() > reanchor_ticks {
                    self.anchor_at(ts, arrival)
                } else {
                    a.last_unwrapped += step;
                    a.last_ts = ts;
                    self.anchor = Some(a);
                    let ticks = a.last_unwrapped - a.ts;
                    if ticks >= 0 {
                        a.pts + self.ticks(ticks)
                    } else {
                        a.pts.saturating_sub(self.ticks(ticks))
                    }
                }
            }
            None => self.anchor_at(ts, arrival),
        };
        // On a whole millisecond (WebM's timecode unit, which a muxer truncates to): two frames
        // 0.7 ms apart (a layer switch's rewritten timestamps) would share a timecode.
        let pts = Duration::from_millis(u64::try_from(pts.as_millis()).unwrap_or(u64::MAX));
        let pts = match self.last_pts {
            Some(last) if pts <= last => last + MIN_STEP,
            _ => pts,
        };
        self.last_pts = Some(pts);
        pts
    }

    fn anchor_at(&mut self, ts: u32, arrival: Duration) -> Duration {
        // A re-anchored track stays monotonic: never before the last frame.
        let pts = self.last_pts.map_or(arrival, |last| arrival.max(last));
        self.anchor = Some(Anchor {
            pts,
            ts: i64::from(ts),
            last_unwrapped: i64::from(ts),
            last_ts: ts,
        });
        pts
    }

    fn ticks(&self, ticks: i64) -> Duration {
        let ticks = ticks.unsigned_abs();
        let rate = u64::from(self.rate);
        Duration::from_secs(ticks / rate)
            + Duration::from_nanos(ticks % rate * 1_000_000_000 / rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pts_follows_the_rtp_clock_from_the_first_arrival() {
        let mut c = RtpClock::new(48_000);
        assert_eq!(c.pts(1000, 500 * MS), 500 * MS);
        // Arrival jitter does not matter after the first frame: the timestamps do.
        assert_eq!(c.pts(1000 + 960, 900 * MS), 520 * MS);
        assert_eq!(c.pts(1000 + 2 * 960, 530 * MS), 540 * MS);
    }

    #[test]
    fn pts_unwraps_the_32_bit_timestamp() {
        let mut c = RtpClock::new(90_000);
        let start = u32::MAX - 2999;
        assert_eq!(c.pts(start, Duration::ZERO), Duration::ZERO);
        // 3000 ticks later the timestamp wrapped to 0: 1/30 s, on its millisecond.
        assert_eq!(c.pts(0, 10 * MS), 33 * MS);
        assert_eq!(c.pts(3000, 20 * MS), 66 * MS);
    }

    #[test]
    fn frames_less_than_a_millisecond_apart_get_distinct_milliseconds() {
        let mut c = RtpClock::new(90_000);
        assert_eq!(c.pts(90_000, 76 * MS), 76 * MS);
        // 63 ticks = 0.7 ms later (a layer switch's rewritten timestamp): 77 ms, not 76.
        assert_eq!(c.pts(90_063, 77 * MS), 77 * MS);
        assert_eq!(c.pts(90_126, 77 * MS), 78 * MS);
        // The next regular frame keeps its own time.
        assert_eq!(c.pts(93_000, 110 * MS), 109 * MS);
    }

    #[test]
    fn pts_never_goes_backwards_and_a_restart_reanchors() {
        let mut c = RtpClock::new(90_000);
        assert_eq!(c.pts(90_000, Duration::ZERO), Duration::ZERO);
        assert_eq!(c.pts(180_000, 5 * MS), Duration::from_secs(1));
        // A reordered older frame (or a capture instant again, from another layer) is placed
        // just after the newest time so far.
        assert_eq!(
            c.pts(90_000 + 45_000, 6 * MS),
            Duration::from_secs(1) + MIN_STEP
        );
        assert_eq!(
            c.pts(180_000, 6 * MS),
            Duration::from_secs(1) + 2 * MIN_STEP
        );
        // A sender that restarted with a random timestamp: placed at its arrival time.
        let arrival = Duration::from_secs(7);
        assert_eq!(c.pts(2_000_000_000, arrival), arrival);
        assert_eq!(c.pts(2_000_090_000, arrival), Duration::from_secs(8));
    }
}
