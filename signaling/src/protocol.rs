//! The client protocol on `/v1/rtc`: JSON messages tagged by `type`, version [`PROTOCOL_VERSION`].
//!
//! `docs/protocol.md` is the normative description with an example of every message. Everything
//! here is parsed from untrusted input, so each type carries its own shape checks
//! ([`DeviceBundle::validate`], [`KeyEnvelope::validate`]) and refuses what does not fit instead of
//! panicking. Key material stays opaque: the service checks lengths and routing fields only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use e2ee_frames::suite::CipherSuite;

use crate::policy::{RecordingPolicy, Role, RoomKind};

/// Length of the AES-256-GCM tag an HPKE envelope ciphertext ends with.
const HPKE_TAG_LEN: usize = 16;

/// The protocol version a client states in `join.v` and the server echoes in `joined.v`.
pub const PROTOCOL_VERSION: u32 = 1;

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
];

/// Every `type` the server sends, as counted in `signaling_messages_sent_total`.
pub const SERVER_MESSAGE_TYPES: &[&str] = &[
    "joined",
    "roster",
    "membership",
    "offer",
    "answer",
    "track_published",
    "track_unpublished",
    "speakers",
    "key_envelope",
    "key_ack",
    "key_request",
    "error",
    "left",
];

/// A message from a client.
#[derive(Debug, Deserialize)]
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
        }
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
#[derive(Deserialize)]
pub struct Join {
    /// Protocol version the client speaks; must equal [`PROTOCOL_VERSION`].
    pub v: u32,
    /// The room to join; must equal the token's room grant.
    pub room: String,
    /// The JWT (never logged).
    pub token: String,
    /// The device's public key bundle (docs/e2ee.md §2).
    pub device: DeviceBundle,
    /// Display name shown to others (untrusted, at most [`MAX_NAME_BYTES`]).
    #[serde(default)]
    pub name: Option<String>,
}

impl std::fmt::Debug for Join {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join")
            .field("v", &self.v)
            .field("room", &self.room)
            .field("token", &"<redacted>")
            .field("device", &self.device.device)
            .field("name", &self.name)
            .finish()
    }
}

/// A device's public bundle (docs/e2ee.md §2). The service checks its shape only; clients verify
/// the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBundle {
    /// Bundle format version (1).
    pub v: u32,
    /// Device id: 1–64 characters `[A-Za-z0-9_-]`.
    pub device: String,
    /// Ed25519 identity key, base64url of 32 bytes.
    pub identity_key: String,
    /// X25519 HPKE key, base64url of 32 bytes.
    pub hpke_key: String,
    /// Ed25519 signature by the identity key, base64url of 64 bytes.
    pub sig: String,
}

impl DeviceBundle {
    /// Checks version, device id syntax and key/signature lengths.
    pub fn validate(&self) -> Result<(), ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        validate_device_id(&self.device)?;
        check_b64_len("identity_key", &self.identity_key, 32)?;
        check_b64_len("hpke_key", &self.hpke_key, 32)?;
        check_b64_len("sig", &self.sig, 64)
    }
}

/// A shape problem in a bundle, envelope or policy: the message is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    /// The format version is not 1.
    #[error("unsupported format version {0}")]
    Version(u32),
    /// A device id is empty, longer than 64 characters or has a character outside `[A-Za-z0-9_-]`.
    #[error("device id must be 1-64 characters of [A-Za-z0-9_-]")]
    DeviceId,
    /// A field is not base64url without padding.
    #[error("{0} is not base64url without padding")]
    Base64(&'static str),
    /// A field decodes to the wrong number of bytes.
    #[error("{field} must be {expected} bytes, got {got}")]
    Length {
        /// Which field.
        field: &'static str,
        /// Bytes required.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// A numeric field is out of its range.
    #[error("{0} out of range")]
    Range(&'static str),
    /// A field is missing or of the wrong JSON type inside an embedded document.
    #[error("{0}")]
    Document(String),
}

/// Checks the device id syntax of docs/e2ee.md §2.
pub fn validate_device_id(id: &str) -> Result<(), ShapeError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ShapeError::DeviceId)
    }
}

/// Decodes base64url without padding and checks the length; returns the bytes.
pub(crate) fn decode_b64(field: &'static str, value: &str) -> Result<Vec<u8>, ShapeError> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| ShapeError::Base64(field))
}

fn check_b64_len(field: &'static str, value: &str, expected: usize) -> Result<(), ShapeError> {
    // A base64 string much longer than needed is refused before decoding anything.
    if value.len() > expected * 2 {
        return Err(ShapeError::Length {
            field,
            expected,
            got: value.len() * 3 / 4,
        });
    }
    let got = decode_b64(field, value)?.len();
    if got == expected {
        Ok(())
    } else {
        Err(ShapeError::Length {
            field,
            expected,
            got,
        })
    }
}

/// A key envelope in its JSON wire form (docs/e2ee.md §3), relayed untouched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnvelope {
    /// Format version (1).
    pub v: u32,
    /// Room name; must be the sender's room.
    pub room: String,
    /// Call id; must be the room's current call.
    pub call: String,
    /// Sending device; must be the sending connection's own device.
    pub sender: String,
    /// Recipient device; must be in the sender's roster.
    pub recipient: String,
    /// Sender slot (0–4095).
    pub slot: u16,
    /// Key generation.
    pub generation: u16,
    /// Ratchet step.
    pub step: u8,
    /// SFrame cipher suite (1–5).
    pub suite: u16,
    /// HPKE encapsulated key, base64url of 32 bytes.
    pub enc: String,
    /// HPKE ciphertext, base64url: the base key (32 bytes at step 0, the suite's hash length
    /// once ratcheted) plus the 16-byte tag, so 48 or 80 bytes.
    pub ct: String,
    /// Ed25519 signature, base64url of 64 bytes.
    pub sig: String,
}

impl KeyEnvelope {
    /// Checks version, ids, ranges and lengths; never opens anything.
    pub fn validate(&self) -> Result<(), ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        validate_device_id(&self.sender)?;
        validate_device_id(&self.recipient)?;
        if self.slot > 4095 {
            return Err(ShapeError::Range("slot"));
        }
        let suite = CipherSuite::try_from(self.suite).map_err(|_| ShapeError::Range("suite"))?;
        check_b64_len("enc", &self.enc, 32)?;
        // The same rule the clients seal and open by (docs/e2ee.md §3).
        let key_len = e2ee_frames::envelope::envelope_key_len(suite, self.step);
        check_b64_len("ct", &self.ct, key_len + HPKE_TAG_LEN)?;
        check_b64_len("sig", &self.sig, 64)
    }
}

/// Body of `key_envelope` in both directions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvelopeBody {
    /// The envelope, untouched.
    pub envelope: KeyEnvelope,
}

/// `offer` from a client: SDP plus the tracks it announces for publishing.
#[derive(Deserialize)]
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

/// An SDP body (`answer` from a client; `offer`/`answer` from the server).
#[derive(Clone, Serialize, Deserialize)]
pub struct SdpBody {
    /// The SDP (never logged).
    pub sdp: String,
}

impl std::fmt::Debug for SdpBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdpBody")
            .field("sdp_bytes", &self.sdp.len())
            .finish()
    }
}

/// What a publisher says about one track it sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackAnnouncement {
    /// The SDP media id (`a=mid`) carrying the track.
    pub mid: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// What the track shows.
    pub source: TrackSource,
    /// Simulcast layers sent (empty when not simulcast).
    #[serde(default)]
    pub layers: Vec<Layer>,
}

/// Media kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Opus audio.
    Audio,
    /// VP8/VP9 video.
    Video,
}

/// Track source, matching the KID stream field of docs/e2ee.md §1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// Microphone audio (stream 0).
    Microphone,
    /// Camera video (stream 1).
    Camera,
    /// Screen-share video (stream 2).
    Screen,
    /// Screen-share audio (stream 3).
    ScreenAudio,
}

/// A simulcast layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The lowest resolution layer.
    Low,
    /// The middle layer.
    Medium,
    /// The full resolution layer.
    High,
}

/// `subscribe`: the full set of wanted tracks (replaces the previous set).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubscriptionUpdate {
    /// Wanted tracks; at most [`MAX_SUBSCRIPTIONS`].
    pub subscriptions: Vec<Subscription>,
}

/// One wanted track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Track id as published in `track_published`.
    pub track: String,
    /// Highest layer wanted; absent lets the SFU choose from the visible size and bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    /// Width in CSS pixels the track is shown at (0 = hidden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in CSS pixels the track is shown at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// `key_ack` from a client: it holds `to`'s key of this generation and step.
#[derive(Clone, Debug, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
pub struct KeyRequest {
    /// The sending device asked for its key.
    pub to: String,
    /// The generation the requester failed to find, when known.
    #[serde(default)]
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

/// Most decrypt failures one `stats` message may add to the counter (a liar cannot overflow it).
pub const MAX_DECRYPT_FAILURES_PER_REPORT: u64 = 1_000_000;

/// `leave`: no fields.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Leave {}

// ----------------------------------------------------------------------------------------------
// Server → client

/// A message from the server.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Join accepted: this device's slot, the room and the roster snapshot.
    Joined(Box<Joined>),
    /// Roster change (delta) with the new roster version.
    Roster(RosterDelta),
    /// Membership changed: senders ratchet (join) or start a new key generation (leave).
    Membership(MembershipNotice),
    /// A server-initiated SDP offer (renegotiation by the SFU).
    Offer(SdpBody),
    /// The SFU's answer to the client's offer.
    Answer(SdpBody),
    /// A track became available.
    TrackPublished(TrackPublished),
    /// A track went away.
    TrackUnpublished(TrackUnpublished),
    /// The current active speakers, loudest first.
    Speakers(Speakers),
    /// A key envelope addressed to this device.
    KeyEnvelope(EnvelopeBody),
    /// A recipient acknowledged this device's key.
    KeyAck(KeyAckNotice),
    /// A device asks this device for its current key.
    KeyRequest(KeyRequestNotice),
    /// A request was refused or something went wrong.
    Error(ErrorBody),
    /// This device is out of the room (after `leave`, a kick or the room closing).
    Left(LeftNotice),
}

impl ServerMessage {
    /// The `type` tag of this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::Joined(_) => "joined",
            ServerMessage::Roster(_) => "roster",
            ServerMessage::Membership(_) => "membership",
            ServerMessage::Offer(_) => "offer",
            ServerMessage::Answer(_) => "answer",
            ServerMessage::TrackPublished(_) => "track_published",
            ServerMessage::TrackUnpublished(_) => "track_unpublished",
            ServerMessage::Speakers(_) => "speakers",
            ServerMessage::KeyEnvelope(_) => "key_envelope",
            ServerMessage::KeyAck(_) => "key_ack",
            ServerMessage::KeyRequest(_) => "key_request",
            ServerMessage::Error(_) => "error",
            ServerMessage::Left(_) => "left",
        }
    }

    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error(ErrorBody {
            code,
            message: message.into(),
        })
    }

    /// Serializes to JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs (strings, numbers, enums, no maps with non-string keys)
        // cannot fail.
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// Body of `joined`.
#[derive(Clone, Debug, Serialize)]
pub struct Joined {
    /// Protocol version spoken ([`PROTOCOL_VERSION`]).
    pub v: u32,
    /// Room name.
    pub room: String,
    /// Current call id (binds key envelopes, docs/e2ee.md §3).
    pub call: String,
    /// Room kind.
    pub kind: RoomKind,
    /// This device id.
    pub device: String,
    /// This device's slot (KID bits 12–23).
    pub slot: u16,
    /// This device's role.
    pub role: Role,
    /// Whether this device may publish.
    pub can_publish: bool,
    /// Whether this device may subscribe.
    pub can_subscribe: bool,
    /// Whether a media node (SFU) is attached; without one SDP is refused with `media_unavailable`.
    pub media: bool,
    /// The signed recording policy when the room is recorded (clients verify it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingPolicy>,
    /// The roster as this device sees it.
    pub roster: Roster,
    /// Tracks currently published.
    pub tracks: Vec<TrackInfo>,
}

/// A full roster snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Roster {
    /// Roster version: grows with every change in the room (a device may see gaps).
    pub version: u64,
    /// Devices visible to this device, itself included.
    pub devices: Vec<RosterEntry>,
}

/// One device in the roster.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RosterEntry {
    /// Device id.
    pub device: String,
    /// The token identity the device joined as.
    pub identity: String,
    /// Display name, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Role in the room.
    pub role: Role,
    /// Slot (KID bits 12–23).
    pub slot: u16,
    /// Whether it may publish (and so sends key envelopes).
    pub can_publish: bool,
    /// Its public bundle, as it sent it.
    pub bundle: DeviceBundle,
}

/// Body of `roster`: a delta against the previous version.
#[derive(Clone, Debug, Serialize)]
pub struct RosterDelta {
    /// New roster version.
    pub version: u64,
    /// Devices that joined.
    pub added: Vec<RosterEntry>,
    /// Device ids that left.
    pub removed: Vec<String>,
}

/// What a sender must do about a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipAction {
    /// Someone joined: ratchet the current key forward and send it to the joiners only.
    Ratchet,
    /// Someone left: make a new generation and send it to everyone remaining.
    Rekey,
}

/// Body of `membership`, sent to devices that may publish.
#[derive(Clone, Debug, Serialize)]
pub struct MembershipNotice {
    /// Ratchet or rekey.
    pub action: MembershipAction,
    /// Devices that joined (for `ratchet`).
    pub joined: Vec<String>,
    /// Devices that left since the previous rekey (for `rekey`).
    pub left: Vec<String>,
    /// Roster version the notice refers to.
    pub roster_version: u64,
}

/// A published track as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Track id (unique in the room), used in `subscribe`.
    pub id: String,
    /// Publishing device.
    pub publisher: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// What it shows.
    pub source: TrackSource,
    /// Simulcast layers available.
    #[serde(default)]
    pub layers: Vec<Layer>,
}

/// Body of `track_published`.
#[derive(Clone, Debug, Serialize)]
pub struct TrackPublished {
    /// The track.
    pub track: TrackInfo,
}

/// Body of `track_unpublished`.
#[derive(Clone, Debug, Serialize)]
pub struct TrackUnpublished {
    /// Track id.
    pub track: String,
}

/// Body of `speakers`.
#[derive(Clone, Debug, Serialize)]
pub struct Speakers {
    /// Loudest first.
    pub speakers: Vec<Speaker>,
}

/// One active speaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Speaker {
    /// Device id.
    pub device: String,
    /// Audio level 0–1 (1 = loudest).
    pub level: f32,
}

/// Body of a delivered `key_ack`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyAckNotice {
    /// The acknowledging device.
    pub from: String,
    /// Acknowledged generation.
    pub generation: u16,
    /// Acknowledged step.
    pub step: u8,
}

/// Body of a delivered `key_request`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyRequestNotice {
    /// The requesting device.
    pub from: String,
    /// The generation it failed to find, when it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u16>,
}

/// Body of `left`.
#[derive(Clone, Debug, Serialize)]
pub struct LeftNotice {
    /// Why: `leave`, `kicked`, `room_closed`, `replaced`.
    pub reason: LeaveReason,
}

/// The reason in `left`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The client asked to leave.
    Leave,
    /// An admin removed the device.
    Kicked,
    /// An admin closed the room.
    RoomClosed,
    /// The same device joined again on another connection.
    Replaced,
}

/// Body of `error`.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation (may change between versions).
    pub message: String,
}

/// Stable error codes sent to clients (and used by the admin API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The message is not valid JSON or does not fit its type's shape.
    Malformed,
    /// The `type` is not one this server knows.
    UnknownType,
    /// `join.v` names a protocol version this server does not speak.
    UnsupportedVersion,
    /// The message is not valid in the connection's state (e.g. `offer` before `join`).
    WrongState,
    /// The token is malformed, badly signed, of a refused algorithm or from an unknown key.
    BadToken,
    /// The token's `exp` has passed.
    TokenExpired,
    /// The token's `nbf` is in the future.
    TokenNotYetValid,
    /// The token grants a different room than `join.room`.
    WrongRoom,
    /// The token lacks a required grant.
    MissingGrant,
    /// The grants do not allow this (e.g. a viewer publishing).
    Forbidden,
    /// The room does not exist.
    RoomNotFound,
    /// The room has no capacity left for this role.
    RoomFull,
    /// This role cannot join this kind of room (or is not named by the recording policy).
    RoleNotAllowed,
    /// The device bundle has the wrong shape.
    BadBundle,
    /// The key envelope has the wrong shape or names another room or call.
    BadEnvelope,
    /// The addressed device is not in this device's roster.
    NotInRoster,
    /// Another connection of a different identity holds this device id.
    DuplicateDevice,
    /// Too many messages; this one was dropped.
    RateLimited,
    /// The message exceeds the size cap (the connection closes with 1009).
    MessageTooBig,
    /// No media node (SFU) is attached, so SDP and subscriptions cannot be handled.
    MediaUnavailable,
    /// The media node refused or failed the request.
    MediaError,
    /// Something failed inside the server.
    Internal,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Malformed,
        ErrorCode::UnknownType,
        ErrorCode::UnsupportedVersion,
        ErrorCode::WrongState,
        ErrorCode::BadToken,
        ErrorCode::TokenExpired,
        ErrorCode::TokenNotYetValid,
        ErrorCode::WrongRoom,
        ErrorCode::MissingGrant,
        ErrorCode::Forbidden,
        ErrorCode::RoomNotFound,
        ErrorCode::RoomFull,
        ErrorCode::RoleNotAllowed,
        ErrorCode::BadBundle,
        ErrorCode::BadEnvelope,
        ErrorCode::NotInRoster,
        ErrorCode::DuplicateDevice,
        ErrorCode::RateLimited,
        ErrorCode::MessageTooBig,
        ErrorCode::MediaUnavailable,
        ErrorCode::MediaError,
        ErrorCode::Internal,
    ];

    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenNotYetValid => "token_not_yet_valid",
            ErrorCode::WrongRoom => "wrong_room",
            ErrorCode::MissingGrant => "missing_grant",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RoomNotFound => "room_not_found",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::RoleNotAllowed => "role_not_allowed",
            ErrorCode::BadBundle => "bad_bundle",
            ErrorCode::BadEnvelope => "bad_envelope",
            ErrorCode::NotInRoster => "not_in_roster",
            ErrorCode::DuplicateDevice => "duplicate_device",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MessageTooBig => "message_too_big",
            ErrorCode::MediaUnavailable => "media_unavailable",
            ErrorCode::MediaError => "media_error",
            ErrorCode::Internal => "internal",
        }
    }

    /// The `reason` label this refusal is counted under in `signaling_rejected_total`.
    pub fn metric_reason(self) -> &'static str {
        match self {
            ErrorCode::BadToken | ErrorCode::MissingGrant | ErrorCode::WrongRoom => "bad_token",
            ErrorCode::TokenExpired => "expired",
            ErrorCode::TokenNotYetValid => "not_yet_valid",
            ErrorCode::RoomFull => "capacity",
            ErrorCode::Forbidden | ErrorCode::RoleNotAllowed | ErrorCode::NotInRoster => {
                "forbidden"
            }
            ErrorCode::Malformed | ErrorCode::BadBundle | ErrorCode::BadEnvelope => "malformed",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::RoomNotFound => "room_not_found",
            ErrorCode::DuplicateDevice => "duplicate_device",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MessageTooBig => "oversized",
            ErrorCode::MediaUnavailable => "media_unavailable",
            ErrorCode::MediaError => "media_error",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Every `reason` label of `signaling_rejected_total` (pre-registered so the series exist at 0).
pub const REJECT_REASONS: &[&str] = &[
    "bad_token",
    "expired",
    "not_yet_valid",
    "capacity",
    "forbidden",
    "malformed",
    "unsupported_version",
    "unknown_type",
    "wrong_state",
    "room_not_found",
    "duplicate_device",
    "rate_limited",
    "oversized",
    "media_unavailable",
    "media_error",
    "internal",
    "idle_timeout",
    "slow_consumer",
];

/// Whether an SDP offers to send media: any media section whose direction is `sendrecv` or
/// `sendonly` (a section without a direction attribute is `sendrecv`, RFC 8866 §6.7).
///
/// Only direction attributes are read; nothing of the SDP is kept or logged.
pub fn sdp_sends_media(sdp: &str) -> bool {
    // Per media section: (accepted, direction seen, sends).
    let mut sections: Vec<(bool, bool, bool)> = Vec::new();
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("m=") {
            // A rejected section (port 0) carries nothing.
            let accepted = line
                .split_whitespace()
                .nth(1)
                .is_some_and(|port| port != "0");
            sections.push((accepted, false, false));
        } else if let Some(section) = sections.last_mut() {
            match line {
                "a=sendrecv" | "a=sendonly" => *section = (section.0, true, true),
                "a=recvonly" | "a=inactive" => *section = (section.0, true, false),
                _ => {}
            }
        }
    }
    sections
        .iter()
        .any(|&(accepted, seen, sends)| accepted && (sends || !seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(n: usize) -> String {
        URL_SAFE_NO_PAD.encode(vec![7u8; n])
    }

    fn bundle(device: &str) -> DeviceBundle {
        DeviceBundle {
            v: 1,
            device: device.into(),
            identity_key: b64(32),
            hpke_key: b64(32),
            sig: b64(64),
        }
    }

    #[test]
    fn bundle_shape_is_checked() {
        assert_eq!(bundle("dev-A_1").validate(), Ok(()));
        assert_eq!(bundle("").validate(), Err(ShapeError::DeviceId));
        assert_eq!(
            bundle(&"a".repeat(65)).validate(),
            Err(ShapeError::DeviceId)
        );
        assert_eq!(bundle("dev A").validate(), Err(ShapeError::DeviceId));
        let mut short = bundle("d");
        short.hpke_key = b64(31);
        assert!(matches!(
            short.validate(),
            Err(ShapeError::Length {
                field: "hpke_key",
                expected: 32,
                got: 31
            })
        ));
        let mut padded = bundle("d");
        padded.sig.push('=');
        assert!(padded.validate().is_err());
        let mut huge = bundle("d");
        huge.sig = "A".repeat(10_000);
        assert!(matches!(huge.validate(), Err(ShapeError::Length { .. })));
    }

    #[test]
    fn envelope_shape_is_checked() {
        let env = KeyEnvelope {
            v: 1,
            room: "r".into(),
            call: "c".into(),
            sender: "a".into(),
            recipient: "b".into(),
            slot: 3,
            generation: 7,
            step: 0,
            suite: 5,
            enc: b64(32),
            ct: b64(48),
            sig: b64(64),
        };
        assert_eq!(env.validate(), Ok(()));
        let mut bad = env.clone();
        bad.slot = 4096;
        assert_eq!(bad.validate(), Err(ShapeError::Range("slot")));
        let mut bad = env.clone();
        bad.suite = 6;
        assert_eq!(bad.validate(), Err(ShapeError::Range("suite")));
        let mut ratcheted = env.clone();
        ratcheted.step = 1;
        assert!(
            ratcheted.validate().is_err(),
            "a ratcheted suite-5 key is 64 bytes"
        );
        ratcheted.ct = b64(80);
        assert_eq!(ratcheted.validate(), Ok(()));
        ratcheted.suite = 4;
        assert!(
            ratcheted.validate().is_err(),
            "a ratcheted suite-4 key is 32 bytes"
        );
        let mut bad = env;
        bad.ct = b64(47);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn sdp_direction_scan() {
        let recv = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=inactive\r\n";
        assert!(!sdp_sends_media(recv));
        let send = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n";
        assert!(sdp_sends_media(send));
        let implicit = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n";
        assert!(sdp_sends_media(implicit));
        let rejected = "v=0\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\n";
        assert!(!sdp_sends_media(rejected));
        assert!(!sdp_sends_media(""));
        assert!(!sdp_sends_media("garbage\nwithout media"));
    }

    #[test]
    fn every_error_code_has_a_counted_reason() {
        for &code in ErrorCode::ALL {
            assert!(REJECT_REASONS.contains(&code.metric_reason()));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
    }
}
