//! The last phase of a join the node sees: from a participant's peer connection being connected
//! (ICE and DTLS; the phase before it is `sfu_join_latency_seconds`) to the first video
//! keyframe forwarded to it, the moment its first remote picture can be decoded
//! (`sfu_join_first_keyframe_seconds`). A participant with nothing to watch when it connects
//! waits for a camera, not for the node: its phase then starts when it is first given a
//! camera or screen to receive (a subscription or a filled video slot).

use std::time::{Duration, Instant};

use sfu_forwarding::ParticipantId;

use super::state::State;
use crate::transport::PeerId;

/// How far a participant's join has come, for the first-keyframe phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct JoinProgress {
    /// When its peer connection connected.
    connected: Option<Instant>,
    /// When it was first given video to receive.
    video_since: Option<Instant>,
    /// Whether a keyframe was forwarded to it since it connected (the phase is observed once).
    keyframe_seen: bool,
}

impl JoinProgress {
    /// Its peer connection connected at `now`.
    fn connected(&mut self, now: Instant) {
        self.connected.get_or_insert(now);
    }

    /// It was given a camera or screen to receive at `now`.
    fn video_given(&mut self, now: Instant) {
        self.video_since.get_or_insert(now);
    }

    /// A video keyframe started forwarding to it at `now`: the phase's duration, the first time
    /// after it connected (`None` otherwise).
    fn keyframe_forwarded(&mut self, now: Instant) -> Option<Duration> {
        let connected = self.connected?;
        if self.keyframe_seen {
            return None;
        }
        self.keyframe_seen = true;
        let start = self.video_since.map_or(connected, |v| v.max(connected));
        Some(now.saturating_duration_since(start))
    }
}

impl State {
    /// `peer` connected (ICE and DTLS) at `now`.
    pub(super) fn join_connected(&mut self, peer: PeerId, now: Instant) {
        if let Some(m) = self.peers.get(&peer).and_then(|p| self.members.get_mut(p)) {
            m.join.connected(now);
        }
    }

    /// `participant` was given a camera or screen to receive at `now`.
    pub(super) fn join_video_given(&mut self, participant: ParticipantId, now: Instant) {
        if let Some(m) = self.members.get_mut(&participant) {
            m.join.video_given(now);
        }
    }

    /// Video started forwarding to `participant` at a keyframe, at `now`.
    pub(super) fn join_keyframe_forwarded(&mut self, participant: ParticipantId, now: Instant) {
        let Some(m) = self.members.get_mut(&participant) else {
            return;
        };
        if let Some(wait) = m.join.keyframe_forwarded(now)
            && let Some(o) = &self.observer
        {
            o.first_keyframe(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_runs_from_connected_or_from_the_first_video_given_whichever_is_later() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        // Video to receive from the first answer: the phase starts at connected.
        let mut early = JoinProgress::default();
        early.video_given(t0);
        early.connected(t0 + s);
        assert_eq!(early.keyframe_forwarded(t0 + 3 * s), Some(2 * s));
        assert_eq!(early.keyframe_forwarded(t0 + 9 * s), None, "observed once");
        // Alone in the room at first: the phase starts when a camera arrives.
        let mut alone = JoinProgress::default();
        alone.connected(t0);
        alone.video_given(t0 + 5 * s);
        alone.video_given(t0 + 6 * s);
        assert_eq!(alone.keyframe_forwarded(t0 + 7 * s), Some(2 * s));
        // Not connected: nothing is observed (and the first keyframe after connecting still is).
        let mut connecting = JoinProgress::default();
        assert_eq!(connecting.keyframe_forwarded(t0), None);
        connecting.connected(t0 + s);
        assert_eq!(connecting.keyframe_forwarded(t0 + 2 * s), Some(s));
    }
}
