//! Why a node command was refused.

use thiserror::Error;

use crate::transport::TransportError;

/// A refused or failed command of the [`NodeHandle`](super::NodeHandle).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// No room of that name exists on this node.
    #[error("unknown room")]
    UnknownRoom,
    /// A room of that name already exists.
    #[error("room already exists")]
    RoomExists,
    /// No participant of that name is in the room.
    #[error("unknown participant")]
    UnknownParticipant,
    /// A participant of that name is already in the room.
    #[error("participant already exists")]
    ParticipantExists,
    /// The media session of that id was removed: it cannot be added again.
    #[error("media session ended")]
    SessionEnded,
    /// No track of that id is published in the room.
    #[error("unknown track")]
    UnknownTrack,
    /// Per-track subscriptions were asked for in a room with receive slots, where the node
    /// maps the room's tracks onto each participant's slots itself.
    #[error("the room gives receive slots: no per-track subscriptions")]
    SlotRoom,
    /// The node is draining: it admits no new room or participant.
    #[error("node is draining")]
    Draining,
    /// A participant whose role may not publish offered media sections that send (their
    /// positions are named); nothing was created.
    #[error("a participant without the publish right offers to send in media section {0}")]
    SendsWithoutPublishRight(String),
    /// A participant whose role may not publish asked to publish a source.
    #[error("this participant's role may not publish")]
    PublishNotAllowed,
    /// The participant asked to publish a source it publishes already.
    #[error("the source is published already")]
    AlreadyPublished,
    /// The participant asked to unpublish a source it does not publish.
    #[error("the source is not published")]
    NotPublished,
    /// No relay link of that id (of the kind the request names) is on this node.
    #[error("unknown relay link")]
    UnknownLink,
    /// A relay link of that id, or to or from that media address, exists already.
    #[error("relay link exists already")]
    LinkExists,
    /// A relay request's media address is not `ip:port` of an address that can receive.
    #[error("media address is not ip:port")]
    BadRelayAddress,
    /// A relay import's keys are not hex of its profile's lengths.
    #[error("relay keys are not hex of the profile's lengths")]
    BadRelayKeys,
    /// The relay link's SRTP could not be set up.
    #[error("relay SRTP: {0}")]
    RelayCrypto(String),
    /// The forwarding core refused the command (policy, capacity, role).
    #[error("refused: {0}")]
    Refused(#[from] sfu_forwarding::Error),
    /// The transport refused or failed (bad SDP, negotiation in progress, shard gone).
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
}
