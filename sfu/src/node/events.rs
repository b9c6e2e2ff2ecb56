//! What the node tells the control API (and through it, signaling). The same types travel as
//! newline-delimited JSON on `GET /control/events`, so a remote listener deserializes exactly
//! what an embedded one receives.

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
    /// The track it carries (or switches to at its next switch point), `None` when empty.
    pub track: Option<String>,
    /// The device publishing that track, `None` when empty.
    pub publisher: Option<String>,
}

/// Something that happened on the node, named by the room and device names the control API
/// gave. Delivered on [`NodeHandle::events`](super::NodeHandle::events).
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
        /// Track ids (as in [`NodeEvent::TrackPublished`]) now forwarded to it.
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
