//! Server → client messages on `/v1/rtc`.

use serde::{Deserialize, Serialize};

use super::chat::ChatNotice;
use super::client::{RequestId, TypeTag};
use super::error_code::{ErrorBody, ErrorCode};
use super::hand::{DeviceHand, RaisedHand};
use super::keys::{DeviceBundle, EnvelopeBody};
use super::media::{SdpBody, Speaker, TrackInfo};
use super::media_state::DeviceMediaState;
use super::moderation::{ModerationState, MuteRequested, WaitingNotice};
use super::recording::RecordingPolicy;
use super::room::{Role, RoomKind};

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
    "slots",
    "media_reset",
    "key_envelope",
    "key_ack",
    "key_request",
    "error",
    "left",
    "media_state",
    "chat",
    "waiting",
    "moderation",
    "mute_requested",
    "recording_ready",
    "hand",
];

/// A message from the server.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    /// Which track each of this device's receive slots carries now (a layout hint: frames are
    /// attributed by their SFrame KID, never by this map).
    Slots(SlotMap),
    /// The media node lost this device's media session (it restarted): every published track
    /// is gone; start a fresh media session with a new `offer` (keys are unaffected).
    MediaReset(MediaResetNotice),
    /// A key envelope addressed to this device (boxed: its keys make it the largest message).
    KeyEnvelope(Box<EnvelopeBody>),
    /// A recipient acknowledged this device's key.
    KeyAck(KeyAckNotice),
    /// A device asks this device for its current key.
    KeyRequest(KeyRequestNotice),
    /// A request was refused or something went wrong.
    Error(ErrorBody),
    /// This device is out of the room (after `leave`, a kick or the room closing).
    Left(LeftNotice),
    /// A device's microphone, camera or screen share changed.
    MediaState(DeviceMediaState),
    /// An end-to-end encrypted chat message from a device this device sees.
    Chat(ChatNotice),
    /// The room's lobby is on: this join waits for a moderator (`joined` or `error`
    /// `join_denied` follows).
    Waiting(WaitingNotice),
    /// To moderators: the room's controls and who waits in the lobby.
    Moderation(ModerationState),
    /// A moderator asks this device to mute its microphone.
    MuteRequested(MuteRequested),
    /// Strict recording: a recorder of this recorded room now receives these tracks of this
    /// device, so they may carry media (until then the device holds them).
    RecordingReady(RecordingReady),
    /// A device's hand went up or down (this device's own too).
    Hand(DeviceHand),
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
            ServerMessage::Slots(_) => "slots",
            ServerMessage::MediaReset(_) => "media_reset",
            ServerMessage::KeyEnvelope(_) => "key_envelope",
            ServerMessage::KeyAck(_) => "key_ack",
            ServerMessage::KeyRequest(_) => "key_request",
            ServerMessage::Error(_) => "error",
            ServerMessage::Left(_) => "left",
            ServerMessage::MediaState(_) => "media_state",
            ServerMessage::Chat(_) => "chat",
            ServerMessage::Waiting(_) => "waiting",
            ServerMessage::Moderation(_) => "moderation",
            ServerMessage::MuteRequested(_) => "mute_requested",
            ServerMessage::RecordingReady(_) => "recording_ready",
            ServerMessage::Hand(_) => "hand",
        }
    }

    /// An `error` message that answers no particular request.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::error_answering(None, code, message)
    }

    /// An `error` message answering the client message whose `id` was `request_id`.
    pub fn error_answering(
        request_id: Option<RequestId>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        ServerMessage::Error(ErrorBody {
            code,
            message: message.into(),
            request_id,
        })
    }

    /// Parses one text message from the server as a client reads it: `Ok(None)` for a `type`
    /// this client does not know, which protocol §1 says to ignore (new server message types
    /// may appear within a version); unknown fields are ignored too. Anything else that does not
    /// fit is an error, naming the field.
    pub fn parse(text: &str) -> Result<Option<Self>, serde_json::Error> {
        match serde_json::from_str::<ServerMessage>(text) {
            Ok(message) => Ok(Some(message)),
            Err(e) => match serde_json::from_str::<TypeTag<'_>>(text) {
                Ok(tag) if !SERVER_MESSAGE_TYPES.contains(&&*tag.ty) => Ok(None),
                _ => Err(e),
            },
        }
    }

    /// Serializes to JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs (strings, numbers, enums, no maps with non-string keys)
        // cannot fail.
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// Body of `joined`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Joined {
    /// Protocol version spoken ([`PROTOCOL_VERSION`](super::PROTOCOL_VERSION)).
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
    /// Whether this device is a moderator (its token grants `moderator`; left out when not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
    /// Whether a media node (SFU) is attached; without one SDP is refused with `media_unavailable`.
    pub media: bool,
    /// The signed recording policy when the room is recorded (clients verify it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingPolicy>,
    /// The roster as this device sees it.
    pub roster: Roster,
    /// Tracks currently published.
    #[serde(default)]
    pub tracks: Vec<TrackInfo>,
    /// The latest `media_state` of each device in `roster` that has sent one (left out when
    /// none has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_states: Vec<DeviceMediaState>,
    /// The raised hands of the devices in `roster`, earliest first (left out when none is up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hands: Vec<RaisedHand>,
    /// TURN servers with credentials minted for this join (empty, and left out, when the
    /// service has no TURN servers configured or no media node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
    /// In a room with receive slots: how many receive sections of each kind the device's
    /// first offer should carry (`recvonly`, audio ones for `audio`, video ones for `video`
    /// and then `screen`); the SFU maps the room's tracks onto them and says which in `slots`
    /// messages. Absent in other rooms (the device subscribes per track).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_slots: Option<ReceiveSlotCounts>,
    /// Whether this join resumed the device's suspended membership (a `join` with `resume`
    /// within the grace window): same slot, nobody else was told anything, keys stay valid.
    /// Left out when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

/// `joined.receive_slots`: the receive slots of each kind a device gets in a room with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveSlotCounts {
    /// Audio slots `a0…` (loudest-N plus one spare).
    pub audio: u32,
    /// Video (camera) slots `v0…` (last-N).
    pub video: u32,
    /// Screen-share slots `s0…`.
    pub screen: u32,
}

/// One entry of `joined.ice_servers`: what a client passes to `RTCPeerConnection` as an
/// `RTCIceServer` (`urls`, `username`, `credential`). `Debug` leaves the credential out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:`/`turns:` URLs of the TURN server(s).
    pub urls: Vec<String>,
    /// `<unix expiry>:<opaque id>` (no identity in it).
    pub username: String,
    /// base64(HMAC-SHA1(shared secret, username)).
    pub credential: String,
    /// Seconds the credential stays valid from `joined`.
    pub ttl: u64,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &"<secret>")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A full roster snapshot.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Roster {
    /// Roster version: grows with every change in the room (a device may see gaps).
    pub version: u64,
    /// Devices visible to this device, itself included.
    pub devices: Vec<RosterEntry>,
}

/// One device in the roster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// Device id.
    pub device: String,
    /// The token identity the device joined as.
    pub identity: String,
    /// Display name, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RosterDelta {
    /// New roster version.
    pub version: u64,
    /// Devices that joined.
    pub added: Vec<RosterEntry>,
    /// Device ids that left.
    pub removed: Vec<String>,
}

/// What a sender must do about a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MembershipAction {
    /// Someone joined: ratchet the current key forward and send it to the joiners only.
    Ratchet,
    /// Someone left: make a new generation and send it to everyone remaining.
    Rekey,
}

/// Body of `membership`, sent to devices that may publish.
#[derive(Clone, Debug, Serialize, Deserialize)]
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

/// Body of `track_published`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrackPublished {
    /// The track.
    pub track: TrackInfo,
}

/// Body of `track_unpublished`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrackUnpublished {
    /// Track id.
    pub track: String,
}

/// Body of `recording_ready` (docs/protocol.md §6): in a room whose `joined.recording` names a
/// recorder, a device sends no media on a published track until a `recording_ready` names it.
/// The service sends it, to the publisher only, once it applied a recorder's answer that made
/// the recorder's subscription to the track live at the media node; once named, a track stays
/// ready for the rest of its life (a new track, after a `media_reset` say, waits again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingReady {
    /// Ids (as in `track_published`) of this device's tracks a recorder now receives.
    pub tracks: Vec<String>,
}

/// Body of `speakers`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Speakers {
    /// Loudest first.
    pub speakers: Vec<Speaker>,
}

/// Body of `slots` (docs/protocol.md §6): the complete map of this device's receive slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMap {
    /// The message format, 1; a client ignores a `slots` message of a `v` it does not know.
    pub v: u32,
    /// Grows by one per message for this device: a client drops a map older than the one it
    /// applied.
    pub version: u64,
    /// Every receive slot, empty ones included.
    pub slots: Vec<SlotAssignment>,
}

/// One receive slot of a [`SlotMap`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotAssignment {
    /// The slot's name: `a0…` audio, `v0…` video, `s0…` screen share.
    pub slot: String,
    /// What the slot carries.
    pub kind: ReceiveSlotKind,
    /// The m-section of the device's peer connection that is this slot.
    pub mid: String,
    /// The track the slot carries now, `null` when empty.
    pub track: Option<String>,
    /// The device the SFU says publishes that track, `null` when empty (a hint: the SFrame
    /// KID of each frame names its sender).
    pub source: Option<String>,
}

/// The kind of a receive slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiveSlotKind {
    /// Microphone audio (loudest-N plus one spare).
    Audio,
    /// Camera video (last-N).
    Video,
    /// Screen share.
    Screen,
}

/// Body of `media_reset`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MediaResetNotice {
    /// Why the media sessions were lost.
    pub reason: MediaResetReason,
}

/// The reason in `media_reset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaResetReason {
    /// The media node restarted and lost every session.
    MediaNodeRestarted,
    /// Signaling could not follow the media node's events and re-created the room on it.
    MediaEventsLost,
    /// The media node stayed unreachable and the room was moved to another node of the pool.
    MediaNodeLost,
}

impl MediaResetReason {
    /// The reason as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaResetReason::MediaNodeRestarted => "media_node_restarted",
            MediaResetReason::MediaEventsLost => "media_events_lost",
            MediaResetReason::MediaNodeLost => "media_node_lost",
        }
    }
}

impl std::fmt::Display for MediaResetReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of a delivered `key_ack`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyAckNotice {
    /// The acknowledging device.
    pub from: String,
    /// Acknowledged generation.
    pub generation: u16,
    /// Acknowledged step.
    pub step: u8,
}

/// Body of a delivered `key_request`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRequestNotice {
    /// The requesting device.
    pub from: String,
    /// The generation it failed to find, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u16>,
}

/// Body of `left`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeftNotice {
    /// Why: `leave`, `kicked`, `room_closed`, `replaced`, `call_ended`.
    pub reason: LeaveReason,
}

/// The reason in `left`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The client asked to leave.
    Leave,
    /// An admin or a moderator removed the device.
    Kicked,
    /// An admin closed the room.
    RoomClosed,
    /// The same device joined again on another connection.
    Replaced,
    /// A moderator (or the admin API) ended the call for everyone.
    CallEnded,
}

impl LeaveReason {
    /// The reason as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Leave => "leave",
            LeaveReason::Kicked => "kicked",
            LeaveReason::RoomClosed => "room_closed",
            LeaveReason::Replaced => "replaced",
            LeaveReason::CallEnded => "call_ended",
        }
    }
}
