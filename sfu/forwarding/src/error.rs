//! Errors: [`Error`] for refused commands, [`PacketError`] for dropped input packets.

use thiserror::Error;

use crate::{rtcp::RtcpError, rtp::RtpError, vp8::Vp8Error};

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// No room with this id (never existed or closed).
    #[error("unknown room")]
    UnknownRoom,
    /// No participant with this id.
    #[error("unknown participant")]
    UnknownParticipant,
    /// No track with this id.
    #[error("unknown track")]
    UnknownTrack,
    /// The subscriber has no subscription to this track.
    #[error("not subscribed to this track")]
    NotSubscribed,
    /// The room is full for this role.
    #[error("room is at capacity for this role")]
    Capacity,
    /// The role may not join this kind of room.
    #[error("role not allowed in this kind of room")]
    RoleNotAllowed,
    /// The participant's role may not publish (viewers and recorders never publish).
    #[error("role may not publish")]
    PublishNotAllowed,
    /// The policy asks for more than the product's hard limits (100 callers, 500 viewers).
    #[error("room policy exceeds the hard limits")]
    PolicyExceedsLimits,
    /// The codec is not allowed in E2EE rooms, or does not fit the track kind.
    #[error("codec not allowed for this track")]
    CodecNotAllowed,
    /// The track description is inconsistent (layer count, duplicate SSRC or mid, ...).
    #[error("invalid track description")]
    InvalidTrack,
    /// The participant already publishes the most tracks allowed
    /// ([`crate::MAX_TRACKS_PER_PARTICIPANT`]).
    #[error("too many tracks for one participant")]
    TooManyTracks,
    /// The subscriber and the track are in different rooms, or the track is the subscriber's own.
    #[error("cannot subscribe to this track")]
    CannotSubscribe,
    /// The subscriber already subscribes to this track, or reuses a downstream SSRC.
    #[error("duplicate subscription or downstream SSRC")]
    DuplicateSubscription,
    /// A receive-slot layout with too many slots of a kind or an SSRC used twice.
    #[error("invalid receive-slot layout")]
    InvalidSlotLayout,
}

/// Why an incoming packet was dropped. Every drop is also counted in
/// [`crate::Metrics::dropped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The RTP packet is malformed.
    #[error("malformed RTP: {0}")]
    MalformedRtp(#[from] RtpError),
    /// The VP8 payload descriptor is malformed.
    #[error("malformed VP8 payload descriptor: {0}")]
    MalformedVp8(#[from] Vp8Error),
    /// The RTCP packet is malformed.
    #[error("malformed RTCP: {0}")]
    MalformedRtcp(#[from] RtcpError),
    /// An RTX packet too short to hold its original sequence number.
    #[error("RTX packet without original sequence number")]
    MalformedRtx,
    /// The sender is not a known participant.
    #[error("unknown participant")]
    UnknownParticipant,
    /// The participant may not publish, so it may not send media.
    #[error("participant may not publish")]
    NotPublisher,
    /// The SSRC matches none of the participant's tracks (nor a mid/rid that would bind it).
    #[error("unknown SSRC")]
    UnknownSsrc,
    /// The payload type is not the track's media or RTX payload type.
    #[error("unexpected payload type")]
    UnknownPayloadType,
}
