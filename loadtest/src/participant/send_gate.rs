//! Strict recording on the publisher's side (docs/architecture.md, "Strict recording"): in a room
//! whose `joined.recording` names a recorder, a track carries no media until the service says a
//! recorder receives it (`recording_ready`) and a recorder acknowledged this device's key
//! (`key_ack`: its first frame can be opened). The control loop keeps a [`SendGate`] per media
//! session; the publisher reads it before every frame.

use std::collections::{BTreeMap, BTreeSet};

use call_client::protocol::{TrackInfo, TrackKind};

/// Where one local track stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TrackGate {
    /// No media may go out yet. `published`: the SFU announced the track (its padding probe
    /// arrived), so no further probe is sent (a subscriber would receive it).
    Held {
        /// The SFU published the track.
        published: bool,
    },
    /// Media flows: the room is not recorded, or a recorder receives the track.
    Open,
}

impl TrackGate {
    /// Whether frames may be sent.
    pub(super) fn is_open(self) -> bool {
        self == TrackGate::Open
    }

    /// Whether the publisher should send a padding probe so that the SFU publishes the track.
    pub(super) fn wants_probe(self) -> bool {
        self == TrackGate::Held { published: false }
    }
}

/// The gates of a publisher's two tracks, as the publisher task reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SendGate {
    /// The microphone.
    pub(super) audio: TrackGate,
    /// The camera or the screen share.
    pub(super) video: TrackGate,
}

impl SendGate {
    /// The gates a new media session starts with: held in a recorded room, open otherwise.
    pub(super) fn start(recorded: bool) -> Self {
        let gate = if recorded {
            TrackGate::Held { published: false }
        } else {
            TrackGate::Open
        };
        Self {
            audio: gate,
            video: gate,
        }
    }

    fn of_kind(&mut self, kind: TrackKind) -> &mut TrackGate {
        match kind {
            TrackKind::Audio => &mut self.audio,
            TrackKind::Video => &mut self.video,
        }
    }
}

/// The control loop's side: this device's published tracks by id and the gates they set.
#[derive(Debug)]
pub(super) struct OwnTracks {
    /// The recorders the room's policy names (empty: the room is not recorded).
    recorders: BTreeSet<String>,
    /// A recorder acknowledged a key of this device.
    recorder_has_key: bool,
    kinds: BTreeMap<String, TrackKind>,
    /// Held or named ready by `recording_ready`, per kind.
    gate: SendGate,
}

impl OwnTracks {
    /// A fresh media session's tracks (none published yet); `recorders` as the room's recording
    /// policy names them, none in a room that is not recorded.
    pub(super) fn new(recorders: BTreeSet<String>) -> Self {
        Self {
            gate: SendGate::start(!recorders.is_empty()),
            recorder_has_key: recorders.is_empty(),
            recorders,
            kinds: BTreeMap::new(),
        }
    }

    /// The gates now: a track named ready stays held until a recorder holds this device's key.
    pub(super) fn gate(&self) -> SendGate {
        if self.recorder_has_key {
            return self.gate;
        }
        let hold = |g: TrackGate| match g {
            TrackGate::Open => TrackGate::Held { published: true },
            held => held,
        };
        SendGate {
            audio: hold(self.gate.audio),
            video: hold(self.gate.video),
        }
    }

    /// A `key_ack` from `from`: when a recorder the policy names sent it, it can open this
    /// device's frames.
    pub(super) fn key_acked(&mut self, from: &str) {
        if self.recorders.contains(from) {
            self.recorder_has_key = true;
        }
    }

    /// A `track_published` of one of this device's tracks.
    pub(super) fn published(&mut self, track: &TrackInfo) {
        self.kinds.insert(track.id.clone(), track.kind);
        let gate = self.gate.of_kind(track.kind);
        if let TrackGate::Held { published } = gate {
            *published = true;
        }
    }

    /// A `recording_ready`: the named tracks of this device open. Returns how many of the ids
    /// were not this device's tracks (a service that names others' tracks is wrong; counted).
    pub(super) fn recording_ready(&mut self, tracks: &[String]) -> usize {
        let mut unknown = 0;
        for id in tracks {
            match self.kinds.get(id).copied() {
                Some(kind) => *self.gate.of_kind(kind) = TrackGate::Open,
                None => unknown += 1,
            }
        }
        unknown
    }

    /// A new media session (after `media_reset`): its tracks are new, held again when recorded
    /// (the keys are unchanged: a recorder that acked one still holds it).
    pub(super) fn reset(&mut self) {
        self.kinds.clear();
        self.gate = SendGate::start(!self.recorders.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use call_client::protocol::TrackSource;

    fn track(id: &str, kind: TrackKind) -> TrackInfo {
        TrackInfo {
            id: id.into(),
            publisher: "me".into(),
            kind,
            source: TrackSource::Microphone,
            layers: Vec::new(),
        }
    }

    fn recorders() -> BTreeSet<String> {
        ["rec-1".to_owned()].into()
    }

    #[test]
    fn a_recorded_room_holds_each_track_until_it_is_named_ready() {
        let mut own = OwnTracks::new(recorders());
        own.key_acked("rec-1");
        assert!(own.gate().audio.wants_probe() && own.gate().video.wants_probe());
        own.published(&track("a", TrackKind::Audio));
        own.published(&track("v", TrackKind::Video));
        assert_eq!(own.gate().audio, TrackGate::Held { published: true });
        assert!(!own.gate().audio.wants_probe());
        assert_eq!(own.recording_ready(&["a".into(), "other".into()]), 1);
        assert!(own.gate().audio.is_open());
        assert!(!own.gate().video.is_open());
        own.recording_ready(&["v".into()]);
        assert!(own.gate().video.is_open());
        own.reset();
        assert!(
            !own.gate().audio.is_open(),
            "a new session's tracks wait again"
        );
    }

    #[test]
    fn a_track_named_ready_waits_for_a_recorder_to_hold_the_key() {
        let mut own = OwnTracks::new(recorders());
        own.published(&track("a", TrackKind::Audio));
        own.recording_ready(&["a".into()]);
        own.key_acked("dev-other");
        assert_eq!(own.gate().audio, TrackGate::Held { published: true });
        own.key_acked("rec-1");
        assert!(own.gate().audio.is_open());
    }

    #[test]
    fn a_room_without_recording_sends_at_once() {
        let own = OwnTracks::new(BTreeSet::new());
        assert!(own.gate().audio.is_open() && own.gate().video.is_open());
        assert!(!own.gate().audio.wants_probe());
    }
}
