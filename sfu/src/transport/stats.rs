//! Counters a shard keeps about itself. Plain integers owned by the shard task; a snapshot is
//! read with [`ShardHandle::stats`](super::ShardHandle::stats).

use super::ice_tcp::IceTcpCloses;

/// Why a STUN request was refused before reaching any peer connection (the `reason` label of
/// `sfu_stun_rejected_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StunRefusal {
    /// MESSAGE-INTEGRITY did not verify with the named peer's password.
    BadIntegrity,
    /// USERNAME names no peer of this shard.
    UnknownUsername,
    /// The source address is outside the allow-list.
    SourceNotAllowed,
    /// Not parseable as an ICE binding request.
    Malformed,
}

/// A snapshot of a shard's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Peer connections currently held.
    pub peers: usize,
    /// Remote addresses currently bound to peers (each learnt from an authenticated request).
    pub bound_addresses: usize,
    /// ICE usernames currently registered.
    pub registered_usernames: usize,
    /// STUN requests refused for bad MESSAGE-INTEGRITY.
    pub stun_bad_integrity: u64,
    /// STUN requests refused for an unknown USERNAME.
    pub stun_unknown_username: u64,
    /// Datagrams refused because their source is outside the allow-list.
    pub source_not_allowed: u64,
    /// STUN datagrams refused as malformed.
    pub stun_malformed: u64,
    /// Non-STUN datagrams from addresses bound to no peer (dropped unread).
    pub unknown_source: u64,
    /// Datagrams of no protocol the shard speaks: neither STUN, DTLS nor RTP/RTCP by their
    /// first byte (RFC 7983), dropped unread whatever their source.
    pub garbage: u64,
    /// Datagrams dropped because the socket's send queue was full.
    pub send_queue_full: u64,
    /// Datagrams the shard refused to send to an address not validated for that peer.
    pub send_unvalidated_destination: u64,
    /// Peers dropped for lack of consent (RFC 7675).
    pub consent_expired: u64,
    /// Offers of the SFU withdrawn (rolled back) because the client's own offer crossed them;
    /// each is made again once the client's offer is answered.
    pub offers_withdrawn: u64,
    /// RTP packets delivered to the media handler.
    pub rtp_in: u64,
    /// Of those, the packets that took the short receive path (decrypted by the peer's SRTP
    /// context without crossing its `rtc` pipeline: an established stream's SRTP).
    pub rtp_short_path: u64,
    /// RTCP compound packets delivered to the media handler.
    pub rtcp_in: u64,
    /// Datagrams written to the socket.
    pub datagrams_out: u64,
    /// Datagram buffers for forwarded RTP allocated because the shard's pool had none free
    /// (`transport/datagram_pool.rs`); once the pool is warm this stands still.
    pub send_buffers_allocated: u64,
    /// Datagram buffers free in the shard's pool now (at most 1024).
    pub send_buffers_free: usize,
    /// Datagrams read without a kernel receive timestamp: their read time stands in for their
    /// arrival time (in the transport-cc feedback too). Zero on Linux.
    pub datagrams_without_kernel_time: u64,
    /// SRTP/SRTCP packets from a connected peer seen before (replay protection, RFC 3711).
    pub srtp_replayed: u64,
    /// SRTP/SRTCP packets from a connected peer whose authentication tag did not verify.
    pub srtp_unauthenticated: u64,
    /// ICE-TCP connections currently open (accepted and not yet ended).
    pub ice_tcp_connections: usize,
    /// ICE-TCP connections that ended (or were refused at accept), by reason.
    pub ice_tcp_closed: IceTcpCloses,
    /// Frames read from ICE-TCP connections the shard holds.
    pub ice_tcp_frames_in: u64,
    /// Packets queued on ICE-TCP connections.
    pub ice_tcp_frames_out: u64,
    /// Other datagrams from a known peer its `rtc` session refused: RTP or RTCP malformed after
    /// decryption (the RTCP the SFU never sees), DTLS records it rejected, and datagrams its
    /// `handle_read` refused outright.
    pub transport_refused: u64,
}

impl ShardStats {
    /// Adds what a peer's `rtc` session refused since it was last asked.
    pub(crate) fn add_rtc_refusals(&mut self, e: &rtc::peer_connection::RTCReadErrors) {
        self.srtp_replayed += e.replayed;
        self.srtp_unauthenticated += e.unauthenticated;
        self.transport_refused += e.other;
    }

    pub(crate) fn count_refusal(&mut self, refusal: StunRefusal) {
        match refusal {
            StunRefusal::BadIntegrity => self.stun_bad_integrity += 1,
            StunRefusal::UnknownUsername => self.stun_unknown_username += 1,
            StunRefusal::SourceNotAllowed => self.source_not_allowed += 1,
            StunRefusal::Malformed => self.stun_malformed += 1,
        }
    }
}
