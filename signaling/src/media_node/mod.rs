//! The boundary between signaling and a media node (the SFU).
//!
//! Signaling owns rooms, identities, grants and keys; a media node owns peer connections and
//! forwarding. Everything signaling asks of an SFU is one of the async methods of [`MediaNode`],
//! and everything an SFU tells signaling is a [`MediaEvent`] on the stream returned by
//! [`MediaNode::events`]. The embedded SFU (`signaling dev`) and a remote SFU reached over its
//! control API both implement this trait; when no node is attached, the service answers SDP and
//! subscription messages with `media_unavailable` rather than pretending.
//!
//! Contract:
//! - `create_room` is called once before any participant of the room is added (for a room with
//!   receive slots it returns the slot counts; such a room takes no per-track subscriptions and
//!   reports [`MediaEvent::Slots`] instead), `close_room` once when the room closes (after which the node frees everything of the room and sends no more
//!   events for it).
//! - `add_participant` is called with a participant's first SDP offer and returns the answer;
//!   later offers and answers go through `renegotiate`. A node may start a renegotiation itself
//!   (new tracks to subscribe) by sending [`MediaEvent::Offer`]; the client's answer comes back
//!   through `renegotiate`. After the first answer a device asks for a new source with
//!   `publish` (and stops it with `unpublish`); the node then offers.
//! - The node enforces `can_publish`/`can_subscribe` of the [`ParticipantSpec`] itself as well
//!   (signaling already refuses offers that send media without `can_publish`).
//! - `remove_participant` is called when a device leaves, is kicked or its connection drops; it is
//!   idempotent.
//! - Events name rooms and devices by the ids signaling gave; unknown ones are ignored.
//! - When a node loses its state (a remote node restarted), the implementation re-creates the
//!   rooms it holds and sends [`MediaEvent::MediaReset`] for each; signaling then tells the
//!   room's clients (`media_reset`) to start fresh media sessions, whose first offer goes to
//!   `add_participant` again. [`MediaNode::is_attached`] says whether the node is reachable,
//!   [`MediaNode::state`] since when not.
//! - A pool moves the rooms of a node unreachable for longer than its failover delay to another
//!   node ([`SfuPool`]): the room is created there with its original spec, the lost node is told
//!   to forget it ([`MediaNode::abandon_room`]), and [`MediaEvent::MediaReset`] with
//!   `media_node_lost` goes out for it, as after a restart. With the node registry on Redis
//!   ([`SfuPool::with_registry`], [`watch_registry`]) placement also weighs each node's own
//!   record (participants, capacity, drain state). A pool spreads a broadcast over several
//!   nodes when its node is full (docs/architecture.md §7.57): viewers seated on edge nodes fed
//!   by SFU-to-SFU relays (`relay_*` calls); a lost edge resets only its viewers
//!   ([`MediaEvent::ParticipantsReset`]).
//!
//! Implementations: `EmbeddedSfu` runs an SFU node inside this process (`signaling dev`; only
//! with the `embedded-sfu` feature);
//! [`RemoteSfu`] drives a separate `sfu` process over its control API (`signaling serve
//! --sfu-url`); [`SfuPool`] spreads rooms over several such nodes (a comma-separated
//! `--sfu-url`). Both translate the node's events the same way (`translate`): a track's source
//! and simulcast layers come from what the publisher announced with its offer, which the node
//! does not know.

mod admin_view;
mod cascade;
#[cfg(feature = "embedded-sfu")]
mod embedded;
mod placement;
mod pool;
mod registry_view;
mod remote;
mod translate;

pub use admin_view::{MediaNodeList, MediaNodeView, media_node_list};
pub use cascade::{CascadeRole, NodeRoom, RelayCounts};
#[cfg(feature = "embedded-sfu")]
pub use embedded::{EmbeddedSfu, EmbeddedStartError};
pub use placement::{NodeState, NodeView, Registered, choose};
pub use pool::{NodeFactory, PoolSettings, SfuPool};
pub use registry_view::{READ_EVERY, RegistrySnapshot, watch_registry};
pub use remote::RemoteSfu;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
pub use sfu_control_api::PublishSource;
use sfu_control_api::relay::{RelayExport, RelayImported, RelayTracks};

use crate::policy::{Role, RoomKind};
use crate::protocol::{
    ReceiveSlotCounts, SlotMap, Speaker, Subscription, TrackAnnouncement, TrackInfo,
};

/// What a media node is told about a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaRoomSpec {
    /// Room name.
    pub room: String,
    /// Meeting or broadcast.
    pub kind: RoomKind,
    /// Whether every participant gets receive slots (the node maps the room's tracks onto
    /// them; no per-track subscriptions).
    pub receive_slots: bool,
    /// Cameras of the most recent speakers each participant receives (the video slots of a
    /// room with receive slots); `None`: the node's default.
    pub last_n: Option<u32>,
}

/// One media session of a device on a media node: chosen by the room when the device joins and
/// again when its session is reset, and named in every call about the participant. The node
/// replaces a device's older session when a newer one is added, and refuses calls about a
/// session that is no longer the device's current one, so a late removal of a replaced
/// session (a reconnect) or an offer meant for it can never touch its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MediaSessionId(pub u64);

impl MediaSessionId {
    /// A fresh id: random, so ids of different signaling processes and restarts do not meet.
    pub fn random() -> Self {
        MediaSessionId(rand::random())
    }
}

/// What a media node is told about a participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParticipantSpec {
    /// The media session this add starts (it replaces the device's older one on the node).
    pub session: MediaSessionId,
    /// Device id, unique in the room.
    pub device: String,
    /// Slot assigned by signaling (KID bits 12–23).
    pub slot: u16,
    /// Role.
    pub role: Role,
    /// May publish.
    pub can_publish: bool,
    /// May subscribe.
    pub can_subscribe: bool,
}

/// An SDP offer or answer handed to [`MediaNode::renegotiate`].
#[derive(Clone, PartialEq, Eq)]
pub enum SessionDescription {
    /// A new offer from the client (it adds or removes tracks); the node answers.
    Offer(String),
    /// The client's answer to a node-initiated offer ([`MediaEvent::Offer`]).
    Answer(String),
}

impl std::fmt::Debug for SessionDescription {
    // SDP carries ICE credentials: show only the size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionDescription::Offer(s) => write!(f, "Offer({} bytes)", s.len()),
            SessionDescription::Answer(s) => write!(f, "Answer({} bytes)", s.len()),
        }
    }
}

/// Connection quality of one participant as the media node measures it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct MediaQuality {
    /// Round-trip time, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_seconds: Option<f64>,
    /// Loss ratio 0–1 of what the participant publishes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_loss_ratio: Option<f64>,
    /// Loss ratio 0–1 of what the participant receives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe_loss_ratio: Option<f64>,
    /// Jitter, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_seconds: Option<f64>,
    /// Estimated bandwidth towards the participant, bits per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bitrate_bps: Option<u64>,
}

/// Something a media node tells signaling.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaEvent {
    /// A publisher's track is flowing and can be subscribed to.
    TrackPublished {
        /// Room name.
        room: String,
        /// The track.
        track: TrackInfo,
    },
    /// A track stopped.
    TrackUnpublished {
        /// Room name.
        room: String,
        /// Track id.
        track: String,
    },
    /// The active speakers changed (loudest first).
    ActiveSpeakers {
        /// Room name.
        room: String,
        /// Speakers.
        speakers: Vec<Speaker>,
    },
    /// The node dropped a participant's media session (consent expired, DTLS failure...).
    ParticipantGone {
        /// Room name.
        room: String,
        /// Device id.
        device: String,
        /// Short reason for logs and the admin API.
        reason: String,
        /// The session that ended, when the node names it.
        session: Option<MediaSessionId>,
    },
    /// Periodic quality report for one participant.
    Quality {
        /// Room name.
        room: String,
        /// Device id.
        device: String,
        /// Measurements.
        quality: MediaQuality,
    },
    /// The node starts a renegotiation: signaling forwards this offer to the client.
    Offer {
        /// Room name.
        room: String,
        /// Device id.
        device: String,
        /// The SDP offer.
        sdp: String,
        /// The media session it is for, when the node names it (an offer for a session that
        /// was replaced since is dropped).
        session: Option<MediaSessionId>,
    },
    /// Subscriptions of `device` went live: the node applied its answer and forwards these
    /// tracks to it from now on.
    SubscriptionsLive {
        /// Room name.
        room: String,
        /// The subscriber.
        device: String,
        /// Track ids.
        tracks: Vec<String>,
    },
    /// Which track each of a device's receive slots carries now (rooms with receive slots).
    Slots {
        /// Room name.
        room: String,
        /// The device whose slots these are.
        device: String,
        /// The complete map, as the client receives it.
        map: SlotMap,
    },
    /// The node lost the room's media state (it restarted, or its events could not be
    /// resumed) and the room was re-created on it, or the node was lost and the room was moved
    /// to another: every media session of the room is gone, clients must start fresh ones.
    MediaReset {
        /// Room name.
        room: String,
        /// Why (restarted, events lost, or moved off a lost node).
        reason: crate::protocol::MediaResetReason,
    },
    /// Only these devices' media sessions are gone (a room spread over several nodes lost an
    /// edge node: its viewers' sessions went with it, the room stays on its origin;
    /// docs/architecture.md §7.57): each of them must start a fresh one.
    ParticipantsReset {
        /// Room name.
        room: String,
        /// The devices whose sessions are gone.
        devices: Vec<String>,
        /// Why.
        reason: crate::protocol::MediaResetReason,
    },
}

impl MediaEvent {
    /// The room the event is about.
    pub fn room(&self) -> &str {
        match self {
            MediaEvent::TrackPublished { room, .. }
            | MediaEvent::TrackUnpublished { room, .. }
            | MediaEvent::ActiveSpeakers { room, .. }
            | MediaEvent::ParticipantGone { room, .. }
            | MediaEvent::Quality { room, .. }
            | MediaEvent::Offer { room, .. }
            | MediaEvent::Slots { room, .. }
            | MediaEvent::SubscriptionsLive { room, .. }
            | MediaEvent::MediaReset { room, .. }
            | MediaEvent::ParticipantsReset { room, .. } => room,
        }
    }
}

/// Why a media node refused or failed a request.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// The node does not know the room.
    #[error("room not known to the media node")]
    UnknownRoom,
    /// The node does not know the participant.
    #[error("participant not known to the media node")]
    UnknownParticipant,
    /// A `publish` of a source that is published already, or an `unpublish` of one that is not.
    #[error("{0}")]
    Publication(String),
    /// The node holds a room of that name already (a copy left by an earlier owner: a
    /// signaling process killed without closing it, or a replica that was lost).
    #[error("the media node holds a room of that name already")]
    RoomExists,
    /// The SDP or the request was refused (bad SDP, codec not allowed in E2EE rooms...).
    #[error("refused by the media node: {0}")]
    Refused(String),
    /// The node could not be reached or failed inside.
    #[error("media node failure: {0}")]
    Failed(String),
}

/// What reading the node registry has counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegistryCounts {
    /// Reads that succeeded.
    pub reads_ok: u64,
    /// Reads that failed (Redis unreachable, slow or refusing).
    pub reads_failed: u64,
    /// Records not added to the pool: a control URL no allowed prefix matches, or one no node
    /// can be made from.
    pub nodes_refused: u64,
}

/// One media node as the admin API shows it.
#[derive(Clone, Debug)]
pub struct MediaNodeInfo {
    /// A remote node's control URL (what rooms' `media_node` names); `None` in this process.
    pub url: Option<String>,
    /// Attached, draining or detached.
    pub state: NodeState,
    /// Its live record in the node registry, when signaling reads one and the node has one.
    pub registered: Option<sfu_registry::NodeRecord>,
    /// The rooms a pool spread over several nodes holds on it (origin or edge) with the devices
    /// whose media sessions it holds; empty outside a pool.
    pub rooms: Vec<NodeRoom>,
}

/// A media node (SFU) as signaling sees it. See the module docs for the contract.
#[async_trait]
pub trait MediaNode: Send + Sync + 'static {
    /// Prepares a room; for a room with receive slots, returns the slots of each kind every
    /// participant gets (the node's room policy decides them).
    async fn create_room(
        &self,
        room: &MediaRoomSpec,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError>;

    /// Takes on a room another signaling replica created (a room taken over from a lost
    /// replica, docs/architecture.md §7.56): on the node at `node_url` when this media node has
    /// one by that control URL, keeping the node's copy and the media sessions in it (they
    /// belong to devices that resume); created as new where the node does not hold it. The
    /// default, for media nodes that cannot hold another process's rooms, creates it.
    async fn adopt_room(
        &self,
        room: &MediaRoomSpec,
        node_url: Option<&str>,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        let _ = node_url;
        self.create_room(room).await
    }

    /// Closes a room and frees everything in it.
    async fn close_room(&self, room: &str) -> Result<(), MediaError>;

    /// Adds a participant with its first SDP offer and the tracks it announces; returns the
    /// SDP answer.
    async fn add_participant(
        &self,
        room: &str,
        participant: &ParticipantSpec,
        offer: String,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<String, MediaError>;

    /// Applies a later offer (returns the answer) or the answer to a node-initiated offer
    /// (returns `None`) in media session `session` of the device
    /// ([`MediaError::UnknownParticipant`] when that is not its current session).
    async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        description: SessionDescription,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<Option<String>, MediaError>;

    /// Replaces a participant's subscriptions (tracks, layers, visible sizes) in media session
    /// `session`.
    async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        subscriptions: Vec<Subscription>,
    ) -> Result<(), MediaError>;

    /// Asks the node to receive `source` from the device in media session `session`
    /// (docs/architecture.md §7.53): it adds a section for it and offers it
    /// ([`MediaEvent::Offer`]).
    /// [`MediaError::Publication`] when the source is published already.
    async fn publish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError>;

    /// Stops receiving `source`: the node offers its section `inactive` and unpublishes its
    /// track. [`MediaError::Publication`] when the source is not published.
    async fn unpublish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError>;

    /// Removes media session `session` of a participant (idempotent; a later session of the
    /// device stays, and `session` cannot be added again).
    async fn remove_participant(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
    ) -> Result<(), MediaError>;

    /// The node's events. Called once, when the node is attached.
    fn events(&self) -> BoxStream<'static, MediaEvent>;

    /// Whether the node is reachable now (`/healthz` reports `media: detached` otherwise). A
    /// node in this process always is.
    fn is_attached(&self) -> bool {
        !matches!(self.state(), NodeState::Detached { .. })
    }

    /// Whether the node is reachable, since when not, and whether it takes new rooms (placement
    /// and failover read it). A node in this process is always attached.
    fn state(&self) -> NodeState {
        NodeState::Attached
    }

    /// The state of every node behind this one, for `signaling_media_nodes` (one node: its own
    /// state).
    fn node_states(&self) -> Vec<NodeState> {
        vec![self.state()]
    }

    /// Every node behind this one with its state and, with a node registry, its last record,
    /// for the admin API's `GET /v1/media-nodes`.
    fn nodes(&self) -> Vec<MediaNodeInfo> {
        vec![MediaNodeInfo {
            url: None,
            state: self.state(),
            registered: None,
            rooms: Vec::new(),
        }]
    }

    /// The node registry's counters since the start (`signaling_registry_reads_total`,
    /// `signaling_registry_nodes_refused_total`); `None` without a registry.
    fn registry_reads(&self) -> Option<RegistryCounts> {
        None
    }

    /// The relays this node drove since the start (`signaling_relays`,
    /// `signaling_relay_setups_total`, `signaling_edge_failovers_total`); `None` for a node
    /// that drives none (a single node).
    fn relay_counts(&self) -> Option<RelayCounts> {
        None
    }

    /// Asks the node (the origin) to export `room` to the edge node whose media address is
    /// `edge_media_address` (docs/architecture.md §7.55). Refused by a node that cannot relay.
    async fn relay_export(
        &self,
        _room: &str,
        _edge_media_address: &str,
    ) -> Result<RelayExport, MediaError> {
        Err(MediaError::Refused("this media node does not relay".into()))
    }

    /// Asks the node (an edge) to import `room` with the origin's answer, unchanged.
    async fn relay_import(
        &self,
        _room: &str,
        _export: &RelayExport,
    ) -> Result<RelayImported, MediaError> {
        Err(MediaError::Refused("this media node does not relay".into()))
    }

    /// The tracks the origin's export `link` carries now.
    async fn relay_export_tracks(&self, _link: &str) -> Result<RelayTracks, MediaError> {
        Err(MediaError::Refused("this media node does not relay".into()))
    }

    /// Makes the edge's import `link` present exactly `tracks`.
    async fn relay_import_tracks(
        &self,
        _link: &str,
        _tracks: &RelayTracks,
    ) -> Result<RelayImported, MediaError> {
        Err(MediaError::Refused("this media node does not relay".into()))
    }

    /// Ends the origin's export `link`.
    async fn delete_relay_export(&self, _link: &str) -> Result<(), MediaError> {
        Err(MediaError::Refused("this media node does not relay".into()))
    }

    /// The room was moved to another node: forget it here without asking the node (it is
    /// unreachable). It is not re-created when the node comes back, and a copy the node still
    /// holds then is closed. No-op for a node that cannot be lost.
    fn abandon_room(&self, _room: &str) {}

    /// The name of the node holding `room` (a remote node's URL), for the admin API; `None`
    /// when not known or for a node in this process.
    fn node_of_room(&self, _room: &str) -> Option<String> {
        None
    }
}
