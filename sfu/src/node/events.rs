//! What the node tells the control API (and through it, signaling).

use serde::Serialize;

/// Something that happened on the node, named by the room and device names the control API
/// gave. Delivered on [`NodeHandle::events`](super::NodeHandle::events).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        /// `audio`, `camera` or `screen`.
        kind: &'static str,
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
        speakers: Vec<String>,
    },
    /// The node dropped a participant's media session by itself (consent expired, DTLS
    /// failure, connect timeout, closed by the peer).
    ParticipantGone {
        /// Room name.
        room: String,
        /// Device name.
        device: String,
        /// Short reason, e.g. `consent_expired`.
        reason: &'static str,
    },
    /// A reception-quality figure about one participant (from RTCP reports).
    Quality {
        /// Room name.
        room: String,
        /// Device name.
        device: String,
        /// `publisher` (media it sends, measured by the SFU) or `subscriber` (media it
        /// receives, from its receiver reports).
        direction: &'static str,
        /// `audio` or `video`.
        kind: &'static str,
        /// Fraction lost in the report interval, 0–1.
        loss_ratio: f64,
        /// Interarrival jitter, seconds.
        jitter_seconds: f64,
        /// Round-trip time, seconds, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
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
}
