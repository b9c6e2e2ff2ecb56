//! Errors of the transport layer, one small enum per kind of failure.

use super::events::PeerId;

/// Why a command to a shard failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No peer with this id (never existed, or already closed).
    #[error("unknown peer {0}")]
    UnknownPeer(PeerId),
    /// The shard already holds its maximum number of peers.
    #[error("shard is full")]
    ShardFull,
    /// The SDP was refused or negotiation failed inside `rtc`.
    #[error("negotiation failed: {0}")]
    Negotiation(String),
    /// The requested change needs a stable signaling state (an offer is outstanding).
    #[error("an offer is outstanding; apply its answer first")]
    NegotiationInProgress,
    /// An RTP or RTCP packet handed to the shard could not be parsed.
    #[error("malformed packet: {0}")]
    MalformedPacket(String),
    /// The peer's DTLS-SRTP is not up yet, so nothing can be sent to it.
    #[error("peer {0} is not connected")]
    NotConnected(PeerId),
    /// `rtc` chose a destination the peer never proved with an authenticated binding request;
    /// nothing was sent.
    #[error("peer {0} has no validated address for its selected candidate pair")]
    UnvalidatedDestination(PeerId),
    /// The shard task is gone.
    #[error("shard stopped")]
    ShardStopped,
}

impl From<rtc::shared::error::Error> for TransportError {
    fn from(err: rtc::shared::error::Error) -> Self {
        Self::Negotiation(err.to_string())
    }
}

/// Why a shard could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding or configuring the UDP socket failed.
    #[error("socket: {0}")]
    Socket(#[from] std::io::Error),
    /// Generating the shard's DTLS certificate failed.
    #[error("certificate: {0}")]
    Certificate(String),
}
