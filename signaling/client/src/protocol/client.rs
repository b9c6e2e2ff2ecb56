//! Client → server messages on `/v1/rtc` and the limits they are held to.

use serde::{Deserialize, Serialize};

use super::chat::ChatBody;
use super::hand::Hand;
use super::keys::{DeviceBundle, EnvelopeBody};
use super::media::{PublishRequest, SdpBody, Subscription, TrackAnnouncement, UnpublishRequest};
use super::media_state::MediaState;
use super::moderation::ModerationAction;

/// Longest display name accepted in `join.name`, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Longest SDP accepted in an `offer` or `answer`, in bytes (below the 64 KiB frame cap anyway).
pub const MAX_SDP_BYTES: usize = 60 * 1024;

/// Most entries in one `subscribe` message.
pub const MAX_SUBSCRIPTIONS: usize = 512;

/// Most announced tracks in one `offer` message.
pub const MAX_TRACKS_PER_OFFER: usize = 16;

/// Every `type` a client may send, as counted in `signaling_messages_received_total`.
pub const CLIENT_MESSAGE_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "subscribe",
    "key_envelope",
    "key_ack",
    "key_request",
    "stats",
    "leave",
    "media_state",
    "chat",
    "moderate",
    "hand",
    "publish",
    "unpublish",
];

/// A message from a client.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Authenticate and enter a room. The first and only valid message before joining.
    Join(Join),
    /// An SDP offer for the client's media session (first offer creates it).
    Offer(ClientOffer),
    /// An SDP answer to a server-initiated `offer`.
    Answer(SdpBody),
    /// Replace the set of subscribed tracks.
    Subscribe(SubscriptionUpdate),
    /// A wrapped sender key for one recipient device, relayed unopened.
    KeyEnvelope(EnvelopeBody),
    /// Acknowledges a key generation to the device that sent it.
    KeyAck(KeyAck),
    /// Asks a sending device to (re)send its current key to this device.
    KeyRequest(KeyRequest),
    /// Client-side statistics (decrypt failures feed a Prometheus counter).
    Stats(ClientStats),
    /// Leave the room and close the connection.
    Leave(Leave),
    /// This device's microphone, camera and screen share changed (or it just joined).
    MediaState(MediaState),
    /// An end-to-end encrypted chat message to everyone who sees this device.
    Chat(ChatBody),
    /// A moderator action (refused `forbidden` unless the token grants `moderator`).
    Moderate(ModerationAction),
    /// This device raises or lowers its hand.
    Hand(Hand),
    /// After the first answer: asks the SFU to receive a source (a screen share); the SFU
    /// offers a section for it and the device answers with the track on it.
    Publish(PublishRequest),
    /// After the first answer: stops a source published with `publish`; the SFU offers the
    /// section `inactive`.
    Unpublish(UnpublishRequest),
}

impl ClientMessage {
    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Join(_) => "join",
            ClientMessage::Offer(_) => "offer",
            ClientMessage::Answer(_) => "answer",
            ClientMessage::Subscribe(_) => "subscribe",
            ClientMessage::KeyEnvelope(_) => "key_envelope",
            ClientMessage::KeyAck(_) => "key_ack",
            ClientMessage::KeyRequest(_) => "key_request",
            ClientMessage::Stats(_) => "stats",
            ClientMessage::Leave(_) => "leave",
            ClientMessage::MediaState(_) => "media_state",
            ClientMessage::Chat(_) => "chat",
            ClientMessage::Moderate(_) => "moderate",
            ClientMessage::Hand(_) => "hand",
            ClientMessage::Publish(_) => "publish",
            ClientMessage::Unpublish(_) => "unpublish",
        }
    }
}

impl ClientMessage {
    /// Serializes to JSON text.
    pub fn to_json(&self) -> String {
        // Strings, numbers, enums and byte arrays as base64url: serializing cannot fail.
        serde_json::to_string(self).expect("client messages always serialize")
    }
}

/// Just the `type` field of any message, read first to count and classify it.
#[derive(Deserialize)]
pub struct TypeTag<'a> {
    /// The message type as sent (borrowed when unescaped).
    #[serde(rename = "type", borrow)]
    pub ty: std::borrow::Cow<'a, str>,
}

/// `join`: the token, the device's public bundle and an optional display name.
#[derive(Clone, Serialize, Deserialize)]
pub struct Join {
    /// Protocol version the client speaks; must equal [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
    pub v: u32,
    /// The room to join; must equal the token's room grant.
    pub room: String,
    /// The JWT (never logged).
    pub token: String,
    /// The device's public key bundle (docs/e2ee.md §2).
    pub device: DeviceBundle,
    /// Display name shown to others (untrusted, at most [`MAX_NAME_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The call and slot this device held on a connection it lost (a reconnect asking to be
    /// resumed; docs/protocol.md §1 "Resume"). Left out on a first join; servers that do not know
    /// it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeCall>,
}

/// `join.resume`: what a reconnecting device held before its connection was lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeCall {
    /// The call id of the lost session's `joined`.
    pub call: String,
    /// The slot of the lost session's `joined`.
    pub slot: u16,
    /// The device's peer connection did not survive the loss: when resumed, the service drops
    /// the device's media session on the media node at its next `offer`, which starts a fresh
    /// one (as after `media_reset`). Left out when false (the media session is kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub media_lost: bool,
}

impl ResumeCall {
    /// Whether `call` has the shape of a call id the service hands out (`c-` and 22 base64url
    /// characters, 16 random bytes): only such a call id may name a room a resuming join
    /// creates.
    pub fn has_call_id_shape(&self) -> bool {
        self.call.len() == 24
            && self.call.starts_with("c-")
            && self.call[2..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

impl std::fmt::Debug for Join {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join")
            .field("v", &self.v)
            .field("room", &self.room)
            .field("token", &"<redacted>")
            .field("device", &self.device.device)
            .field("name", &self.name)
            .field("resume", &self.resume)
            .finish()
    }
}

/// `offer` from a client: SDP plus the tracks it announces for publishing.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClientOffer {
    /// The SDP offer (never logged).
    pub sdp: String,
    /// Tracks the client publishes with this offer (empty for a subscribe-only client).
    #[serde(default)]
    pub tracks: Vec<TrackAnnouncement>,
}

impl std::fmt::Debug for ClientOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOffer")
            .field("sdp_bytes", &self.sdp.len())
            .field("tracks", &self.tracks)
            .finish()
    }
}

/// `subscribe`: the full set of wanted tracks (replaces the previous set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionUpdate {
    /// Wanted tracks; at most [`MAX_SUBSCRIPTIONS`].
    pub subscriptions: Vec<Subscription>,
}

/// `key_ack` from a client: it holds `to`'s key of this generation and step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAck {
    /// The device whose key is acknowledged.
    pub to: String,
    /// Acknowledged generation.
    pub generation: u16,
    /// Acknowledged ratchet step.
    #[serde(default)]
    pub step: u8,
}

/// `key_request` from a client: asks `to` to send its current key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    /// The sending device asked for its key.
    pub to: String,
    /// The generation the requester failed to find, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u16>,
}

/// `stats` from a client; counters are deltas since its previous `stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientStats {
    /// Frames that failed SFrame authentication or had no key since the last report.
    pub decrypt_failures: u64,
    /// Frames decrypted since the last report.
    pub frames_decrypted: u64,
    /// Round-trip time to the SFU in seconds, as the client's WebRTC stack sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_seconds: Option<f64>,
    /// Inbound loss ratio 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_ratio: Option<f64>,
    /// Inbound jitter in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_seconds: Option<f64>,
}

/// Most frames per second a client can receive, so most it can report (`decrypt_failures` plus
/// `frames_decrypted`) per second since its previous report. A meeting forwards at most 3 audio
/// streams above 10 participants (10 below: 500 frames/s at 50 frames/s) and 25 cameras
/// (1,500 frames/s at 60 fps), plus screen shares: about 2,100; 3,000 leaves room.
pub const MAX_FRAMES_PER_SECOND: u64 = 3_000;

/// Longest time a device's frame allowance accrues over (a background tab reports late).
pub const MAX_STATS_SPAN_SECONDS: u64 = 60;

/// `stats` messages accepted back to back; then [`STATS_PER_SECOND`].
pub const STATS_BURST: u32 = 2;

/// Sustained `stats` messages per second per connection (clients send one every few seconds).
pub const STATS_PER_SECOND: u32 = 1;

/// Largest `rtt_seconds` or `jitter_seconds` accepted.
pub const MAX_STATS_SECONDS: f64 = 60.0;

impl ClientStats {
    /// Checks the ratio and time fields: `loss_ratio` within 0–1, `rtt_seconds` and
    /// `jitter_seconds` within 0–[`MAX_STATS_SECONDS`]. The counters are bounded by time instead
    /// (see [`MAX_FRAMES_PER_SECOND`]).
    pub fn check_ranges(&self) -> Result<(), String> {
        let within =
            |v: Option<f64>, max: f64| v.is_none_or(|v| v.is_finite() && (0.0..=max).contains(&v));
        if !within(self.loss_ratio, 1.0) {
            return Err("loss_ratio must be within 0-1".into());
        }
        if !within(self.rtt_seconds, MAX_STATS_SECONDS)
            || !within(self.jitter_seconds, MAX_STATS_SECONDS)
        {
            return Err(format!(
                "rtt_seconds and jitter_seconds must be within 0-{MAX_STATS_SECONDS}"
            ));
        }
        Ok(())
    }

    /// Frames the report claims were received: `decrypt_failures + frames_decrypted`.
    pub fn frames_received(&self) -> u64 {
        self.decrypt_failures.saturating_add(self.frames_decrypted)
    }
}

/// `leave`: no fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {}

/// The optional `id` a client puts on any message it sends (protocol §1, "Request ids"): an
/// integer `0..=4294967295` of the client's choosing. The server echoes it as `request_id` on
/// every `error` that answers that message.
pub type RequestId = u32;

/// A client message with its optional request id, as it goes on the wire: `{"type": …, "id": 7,
/// …}`. The id is a field of the message object itself, beside `type`; old clients send none.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The request id the server names in an `error` answering this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// The message.
    #[serde(flatten)]
    pub message: ClientMessage,
}

impl ClientRequest {
    /// Serializes to JSON text.
    pub fn to_json(&self) -> String {
        // As for `ClientMessage::to_json`: serializing cannot fail.
        serde_json::to_string(self).expect("client messages always serialize")
    }
}

/// The `type` and `id` of any client message, read first (before the full message) so that
/// every answer to it, a refusal of its shape included, can name the request.
#[derive(Deserialize)]
pub struct RequestHeader<'a> {
    /// The message type as sent (borrowed when unescaped).
    #[serde(rename = "type", borrow)]
    pub ty: std::borrow::Cow<'a, str>,
    /// The request id, as sent.
    #[serde(default)]
    pub id: Option<RequestIdField>,
}

/// A client's `id` field as sent: a valid [`RequestId`], or something else (refused as
/// `malformed`, answered without a `request_id`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RequestIdField {
    /// An integer in range.
    Valid(RequestId),
    /// Anything else (a string, a negative or fractional number, `null`, an object).
    Invalid(serde::de::IgnoredAny),
}
