//! The events of `GET /control/events`: what the node tells signaling, one JSON object per line,
//! tagged by `"type"`. The SFU converts its own node events into these (field for field), so a
//! remote listener reads exactly what an embedded one receives.

use serde::{Deserialize, Serialize};

/// What a published track carries, as the node classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackClass {
    /// Opus audio (microphone or screen audio).
    Audio,
    /// Camera video.
    Camera,
    /// Screen-share video (the publisher named its media section as screen).
    Screen,
}

/// Which way the media of a quality figure flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityDirection {
    /// Media the participant sends, measured by the SFU.
    Publisher,
    /// Media the participant receives, from its receiver reports.
    Subscriber,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaClass {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// One active speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveSpeaker {
    /// Device name.
    pub device: String,
    /// Smoothed audio level, 0 (silence) to 1 (0 dBov).
    pub level: f32,
}

/// One receive slot of a [`NodeEvent::Slots`] map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotEntry {
    /// The slot: `a0…` audio, `v0…` video, `s0…` screen share.
    pub slot: String,
    /// The media section (`a=mid`) of the subscriber's SDP that is this slot.
    pub mid: String,
    /// The track it carries (or switches to at its next switch point), `null` when empty.
    pub track: Option<String>,
    /// The device publishing that track, `null` when empty.
    pub publisher: Option<String>,
}

/// Something that happened on the node, named by the room and device names the control API
/// gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeEvent {
    /// A publisher's track is flowing and can be subscribed to.
    TrackPublished {
        /// Room name.
        room: String,
        /// Publishing device.
        publisher: String,
        /// Track id, unique on the node (use it to subscribe).
        track: String,
        /// Audio, camera or screen.
        kind: TrackClass,
        /// The media section (`a=mid`) of the publisher's SDP carrying it.
        mid: String,
    },
    /// A track went away (unpublished, or its publisher left).
    TrackUnpublished {
        /// Room name.
        room: String,
        /// Publishing device.
        publisher: String,
        /// Track id.
        track: String,
    },
    /// The active speakers of a room changed, loudest first.
    ActiveSpeakers {
        /// Room name.
        room: String,
        /// Devices speaking, loudest first.
        speakers: Vec<ActiveSpeaker>,
    },
    /// The node dropped a participant's media session by itself (consent expired, DTLS
    /// failure, connect timeout, closed by the peer).
    ParticipantGone {
        /// Room name.
        room: String,
        /// Device name.
        device: String,
        /// Short reason, e.g. `consent_expired`.
        reason: String,
        /// The media session that ended ([`crate::AddParticipant::session`]), when it had an id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<u64>,
    },
    /// A reception-quality figure about one participant (from RTCP reports).
    Quality {
        /// Room name.
        room: String,
        /// Device name.
        device: String,
        /// Media it sends or media it receives.
        direction: QualityDirection,
        /// Audio or video.
        kind: MediaClass,
        /// Fraction lost in the report interval, 0–1.
        loss_ratio: f64,
        /// Interarrival jitter, seconds.
        jitter_seconds: f64,
        /// Round-trip time, seconds, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_seconds: Option<f64>,
    },
    /// The node starts a renegotiation (tracks added or removed): deliver this offer to the
    /// client and return its answer with `renegotiate`.
    Offer {
        /// Room name.
        room: String,
        /// Device name.
        device: String,
        /// The SDP offer.
        sdp: String,
        /// The media session it is for ([`crate::AddParticipant::session`]), when it has an
        /// id: an offer for a session that was replaced since is not the current one's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<u64>,
    },
    /// Subscriptions of `device` went live: the negotiation that added them finished (the
    /// subscriber's answer was applied) and the node forwards these tracks' packets to it from
    /// now on. Signaling tells a publisher when a recorder's subscription to its track is live
    /// (strict recording, docs/architecture.md).
    SubscriptionsLive {
        /// Room name.
        room: String,
        /// The subscriber.
        device: String,
        /// Track ids (as in `track_published`) now forwarded to it.
        tracks: Vec<String>,
    },
    /// A participant's receive slots carry other tracks (rooms with receive slots only): the
    /// complete map, every slot in layout order, empty ones included.
    Slots {
        /// Room name.
        room: String,
        /// The subscriber.
        device: String,
        /// Grows by one per map of this subscriber.
        version: u64,
        /// Every slot.
        slots: Vec<SlotEntry>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(event: NodeEvent, expected: serde_json::Value) {
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<NodeEvent>(expected).unwrap(),
            event
        );
    }

    #[test]
    fn track_events_round_trip() {
        round_trip(
            NodeEvent::TrackPublished {
                room: "r".into(),
                publisher: "d1".into(),
                track: "t1".into(),
                kind: TrackClass::Screen,
                mid: "2".into(),
            },
            json!({"type": "track_published", "room": "r", "publisher": "d1", "track": "t1", "kind": "screen", "mid": "2"}),
        );
        round_trip(
            NodeEvent::TrackUnpublished {
                room: "r".into(),
                publisher: "d1".into(),
                track: "t1".into(),
            },
            json!({"type": "track_unpublished", "room": "r", "publisher": "d1", "track": "t1"}),
        );
    }

    #[test]
    fn speakers_gone_and_offer_round_trip() {
        round_trip(
            NodeEvent::ActiveSpeakers {
                room: "r".into(),
                speakers: vec![ActiveSpeaker {
                    device: "d1".into(),
                    level: 0.5,
                }],
            },
            json!({"type": "active_speakers", "room": "r", "speakers": [{"device": "d1", "level": 0.5}]}),
        );
        round_trip(
            NodeEvent::ParticipantGone {
                room: "r".into(),
                device: "d1".into(),
                reason: "consent_expired".into(),
                session: None,
            },
            json!({"type": "participant_gone", "room": "r", "device": "d1", "reason": "consent_expired"}),
        );
        round_trip(
            NodeEvent::ParticipantGone {
                room: "r".into(),
                device: "d1".into(),
                reason: "dtls_failed".into(),
                session: Some(7),
            },
            json!({"type": "participant_gone", "room": "r", "device": "d1", "reason": "dtls_failed", "session": 7}),
        );
        round_trip(
            NodeEvent::Offer {
                room: "r".into(),
                device: "d1".into(),
                sdp: "v=0".into(),
                session: Some(9),
            },
            json!({"type": "offer", "room": "r", "device": "d1", "sdp": "v=0", "session": 9}),
        );
    }

    #[test]
    fn slots_round_trip_with_filled_and_empty_slots() {
        round_trip(
            NodeEvent::Slots {
                room: "r".into(),
                device: "d2".into(),
                version: 3,
                slots: vec![
                    SlotEntry {
                        slot: "a0".into(),
                        mid: "4".into(),
                        track: Some("t7".into()),
                        publisher: Some("d1".into()),
                    },
                    SlotEntry {
                        slot: "v0".into(),
                        mid: "5".into(),
                        track: None,
                        publisher: None,
                    },
                ],
            },
            json!({"type": "slots", "room": "r", "device": "d2", "version": 3, "slots": [
                {"slot": "a0", "mid": "4", "track": "t7", "publisher": "d1"},
                {"slot": "v0", "mid": "5", "track": null, "publisher": null},
            ]}),
        );
        round_trip(
            NodeEvent::SubscriptionsLive {
                room: "r".into(),
                device: "rec".into(),
                tracks: vec!["t7".into(), "t8".into()],
            },
            json!({"type": "subscriptions_live", "room": "r", "device": "rec", "tracks": ["t7", "t8"]}),
        );
    }

    #[test]
    fn quality_round_trips_with_and_without_rtt() {
        round_trip(
            NodeEvent::Quality {
                room: "r".into(),
                device: "d1".into(),
                direction: QualityDirection::Subscriber,
                kind: MediaClass::Video,
                loss_ratio: 0.25,
                jitter_seconds: 0.5,
                rtt_seconds: Some(0.125),
            },
            json!({"type": "quality", "room": "r", "device": "d1", "direction": "subscriber", "kind": "video", "loss_ratio": 0.25, "jitter_seconds": 0.5, "rtt_seconds": 0.125}),
        );
        round_trip(
            NodeEvent::Quality {
                room: "r".into(),
                device: "d1".into(),
                direction: QualityDirection::Publisher,
                kind: MediaClass::Audio,
                loss_ratio: 0.0,
                jitter_seconds: 0.0,
                rtt_seconds: None,
            },
            json!({"type": "quality", "room": "r", "device": "d1", "direction": "publisher", "kind": "audio", "loss_ratio": 0.0, "jitter_seconds": 0.0}),
        );
    }
}
