//! The vocabulary between the transport shard and the rest of the SFU: peer ids, what a peer
//! publishes, what the SFU sends it, and why it went away.

use std::fmt;
use std::time::Duration;

/// A peer connection's id, unique within its shard for the shard's lifetime (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// An audio track (Opus).
    Audio,
    /// A video track (VP8, VP9).
    Video,
}

/// One codec negotiated on a media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// RTP payload type on this peer connection.
    pub payload_type: u8,
    /// MIME type, e.g. `video/VP8`.
    pub mime_type: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// The `a=fmtp` line's parameters.
    pub fmtp: String,
    /// Payload type of the RTX (RFC 4588) codec repairing this one, when negotiated.
    pub rtx_payload_type: Option<u8>,
}

/// One RTP header extension negotiated on a media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedExtension {
    /// The extension's URI.
    pub uri: String,
    /// Its id on this peer connection (1–14 one-byte, up to 255 two-byte).
    pub id: u8,
}

/// A track a peer started to send, reported when its first RTP stream is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTrack {
    /// The media section's `a=mid`.
    pub mid: String,
    /// Simulcast RTP stream id (`a=rid`), when the track is simulcast.
    pub rid: Option<String>,
    /// The SSRC of the stream that opened the track.
    pub ssrc: u32,
    /// Audio or video.
    pub kind: MediaKind,
    /// Codecs negotiated on the media section, in preference order, RTX folded into its primary.
    pub codecs: Vec<NegotiatedCodec>,
    /// Header extensions negotiated on the media section.
    pub header_extensions: Vec<NegotiatedExtension>,
}

/// A media section the SFU added to receive on (`recvonly` on its side) when a participant
/// asked to publish a source after its first answer (docs/architecture.md §7.53). Its `a=mid`
/// is known once an offer carried it ([`ShardAccess::receive_section_mid`]).
///
/// [`ShardAccess::receive_section_mid`]: super::ShardAccess::receive_section_mid
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiveSection(pub(crate) usize);

/// A track the SFU sends to a peer (a subscriber's copy of some publisher's track).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingTrack {
    /// Audio or video.
    pub kind: MediaKind,
    /// SSRC the SFU will send with; the forwarding core rewrites packets to it.
    pub ssrc: u32,
    /// RTX SSRC, when the SFU retransmits with RTX on this track.
    pub rtx_ssrc: Option<u32>,
    /// `a=msid` stream id (typically the publisher's participant id).
    pub stream_id: String,
    /// `a=msid` track id (unique within the peer connection).
    pub track_id: String,
    /// MIME type of the codec to send, e.g. `video/VP8` or `audio/opus`.
    pub mime_type: String,
}

/// What a completed negotiation settled for one outgoing track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedOutgoingTrack {
    /// The outgoing track's SSRC.
    pub ssrc: u32,
    /// Its media section's `a=mid`, once negotiated.
    pub mid: Option<String>,
    /// Codecs the peer accepted for it (payload types are the peer's).
    pub codecs: Vec<NegotiatedCodec>,
    /// Header extensions the peer accepted for it.
    pub header_extensions: Vec<NegotiatedExtension>,
}

/// Why a peer connection ended. Every ending frees all of the peer's state in the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The SFU was told to remove it.
    Removed,
    /// RFC 7675: no authenticated STUN binding request within the consent timeout.
    ConsentExpired,
    /// ICE and DTLS did not complete within the connect timeout.
    ConnectTimeout,
    /// The DTLS handshake failed (an alert before the connection was up, e.g. a certificate that
    /// does not match the SDP fingerprint).
    DtlsFailed,
    /// The peer closed DTLS (close_notify) or the connection reported `closed`.
    PeerClosed,
    /// The connection reported `failed` (ICE failure).
    Failed,
    /// The shard is shutting down.
    Shutdown,
}

/// Events about peers, delivered inside the shard task to its [`MediaHandler`].
///
/// [`MediaHandler`]: super::MediaHandler
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PeerEvent {
    /// ICE and DTLS are up; media can flow.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Time from `AddPeer` to DTLS connected (the `sfu_join_latency_seconds` metric).
        join_latency: Duration,
    },
    /// The peer started sending a track.
    IncomingTrack {
        /// The peer.
        peer: PeerId,
        /// What the track is and how it was negotiated.
        track: IncomingTrack,
    },
    /// The SFU needs to renegotiate (it added or removed outgoing tracks): send this offer to the
    /// client and hand its answer back with `apply_answer`.
    LocalOffer {
        /// The peer.
        peer: PeerId,
        /// The offer SDP.
        sdp: String,
    },
    /// A negotiation completed; the payload types and extension ids to use on each outgoing track.
    Negotiated {
        /// The peer.
        peer: PeerId,
        /// Every outgoing track of the peer as now negotiated.
        outgoing: Vec<NegotiatedOutgoingTrack>,
    },
    /// The peer connection ended and all its state was freed.
    Closed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: CloseReason,
    },
}
