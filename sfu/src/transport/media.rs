//! The seam between the transport shard and the forwarding core: a [`MediaHandler`] runs inside
//! the shard task, receives decrypted RTP/RTCP as borrowed bytes (no per-packet channel hop, no
//! copy into an owned buffer) and sends through an [`Outbox`] that encrypts and queues on the
//! shard's socket directly. Forwarded RTP takes the short way: assembled in one reused buffer,
//! SRTP-protected into a datagram buffer from the shard's pool and batched for `sendmmsg`
//! ([`super::send_batch`], [`super::datagram_pool`]), without crossing the `rtc` pipeline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::sansio::Protocol;

use super::error::TransportError;
use super::events::{PeerEvent, PeerId};
use super::peer::Peer;
use super::relay_srtp::RelayCrypto;
use super::send_batch::SendBatch;
use super::shard::ShardAccess;

/// What the rest of the SFU plugs into a shard. All calls happen on the shard's task, in the
/// order packets and events occur; a call must not block.
pub trait MediaHandler: Send + 'static {
    /// A peer connected, opened a track, needs an offer delivered, finished a negotiation or
    /// closed.
    fn on_peer_event(&mut self, event: PeerEvent, out: &mut Outbox<'_>);

    /// An SRTP-decrypted RTP packet (header, extensions and payload as received; RTX of a
    /// declared stream already de-encapsulated by `rtc`; padding-only probes and packets of
    /// SSRCs no SDP names as received). `arrival` is its datagram's arrival time: when the
    /// kernel received it (`SO_TIMESTAMPNS`), or when it was read where no kernel time comes and
    /// for ICE-TCP frames; the arrival time transport-cc feedback reports. [`Outbox::now`] is
    /// the shard's time for this pass (not earlier than `arrival`; what the handler sends
    /// leaves at the end of the pass). The slice is valid for this call only.
    fn on_rtp(&mut self, peer: PeerId, rtp: &[u8], arrival: Instant, out: &mut Outbox<'_>);

    /// An SRTCP-decrypted RTCP compound packet, with its datagram's arrival time as for
    /// [`MediaHandler::on_rtp`]. The slice is valid for this call only.
    fn on_rtcp(&mut self, peer: PeerId, rtcp: &[u8], arrival: Instant, out: &mut Outbox<'_>);

    /// A datagram (RTP or RTCP by its first byte) from an address no peer proved: offered to
    /// the handler before it is dropped as from an unknown source, for the SFU-to-SFU relay
    /// links the handler owns (§7.55), which it recognises by their address and authenticates
    /// with their SRTP keys. Returns whether the handler took it (counted there, taken or
    /// refused); `false` leaves it to the shard's `unknown_source` count. The datagram may be
    /// decrypted in place: the buffer is the shard's.
    fn on_unbound_datagram(
        &mut self,
        src: std::net::SocketAddr,
        data: &mut [u8],
        arrival: Instant,
        out: &mut Outbox<'_>,
    ) -> bool {
        let _ = (src, data, arrival, out);
        false
    }

    /// When the handler's own timers are due next ([`MediaHandler::on_timeout`]); the shard
    /// wakes at the earlier of this and its peers' timers. `None`: no timer. Asked once per
    /// pass of the shard's loop, so it should be cheap.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The time [`MediaHandler::poll_timeout`] named has come (`now` is not earlier).
    fn on_timeout(&mut self, now: Instant, out: &mut Outbox<'_>) {
        let _ = (now, out);
    }

    /// Runs work a callback queued that needs the shard itself (a peer's outgoing tracks
    /// changed, say: that makes an offer, whose event comes back to the handler, which a
    /// callback cannot take while it runs). Called by the shard after each pass's callbacks.
    fn run_deferred(shard: &mut ShardAccess<'_, Self>)
    where
        Self: Sized,
    {
        let _ = shard;
    }
}

/// Sends media on the shard's peers from inside a [`MediaHandler`] callback. Packets are
/// SRTP-encrypted with the peer's keys and written to the socket when the shard's pass ends
/// (several packets to several peers in as few system calls as the kernel takes).
pub struct Outbox<'a> {
    pub(crate) peers: &'a mut HashMap<PeerId, Peer>,
    pub(crate) dirty: &'a mut Vec<PeerId>,
    pub(crate) batch: &'a mut SendBatch,
    pub(crate) now: Instant,
}

impl Outbox<'_> {
    /// The time the shard is processing.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Whether `peer` exists and its DTLS-SRTP is up (sending before that fails).
    pub fn is_connected(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.connected)
    }

    /// Sends an RTP packet to `peer`, given as the bytes of its start (fixed header, CSRCs,
    /// header extensions and any payload bytes the forwarder rewrote) and the rest of its
    /// payload; the two are joined in a reused buffer and encrypted into a buffer of the shard's
    /// pool, nothing allocated per copy once the pool is warm. Its SSRC should
    /// be one of the peer's outgoing tracks (or their RTX SSRCs) and its payload type one
    /// negotiated for it; nothing checks that on this path, the receiving client does.
    pub fn send_rtp(
        &mut self,
        peer_id: PeerId,
        head: &[u8],
        payload: &[u8],
    ) -> Result<(), TransportError> {
        let peer = connected_peer(self.peers, peer_id)?;
        let assembly = &mut self.batch.assembly;
        assembly.clear();
        assembly.extend_from_slice(head);
        assembly.extend_from_slice(payload);
        let mut datagram = self.batch.pool.take();
        let dest = match peer.pc.protect_rtp_into(assembly, &mut datagram) {
            Ok(dest) => dest,
            Err(e) => {
                self.batch.pool.give_back(datagram);
                return Err(TransportError::MalformedPacket(e.to_string()));
            }
        };
        if !peer.addresses.contains(&dest) {
            self.batch.pool.give_back(datagram);
            self.batch.unvalidated_destination += 1;
            return Err(TransportError::UnvalidatedDestination(peer_id));
        }
        self.batch.datagrams.push((dest, datagram));
        Ok(())
    }

    /// Sends an RTP packet given as one buffer (see [`Outbox::send_rtp`]).
    pub fn send_rtp_bytes(&mut self, peer: PeerId, rtp: &[u8]) -> Result<(), TransportError> {
        self.send_rtp(peer, rtp, &[])
    }

    /// Parses and sends an RTCP compound packet given as bytes.
    pub fn send_rtcp_bytes(&mut self, peer: PeerId, rtcp: &[u8]) -> Result<(), TransportError> {
        let mut buf = rtcp;
        let packets = rtc::rtcp::packet::unmarshal(&mut buf)
            .map_err(|e| TransportError::MalformedPacket(e.to_string()))?;
        self.write(peer, RTCMessage::RtcpPacket(String::new(), packets))
    }

    /// Sends an RTP packet on a relay link (§7.55) to `dest`, given as [`Outbox::send_rtp`]
    /// takes it and protected with the link's `crypto` into a buffer of the shard's pool.
    /// Returns the datagram's size. `dest` is the address the link was created with; the
    /// caller (the link's owner) vouches for it.
    pub fn send_relay_rtp(
        &mut self,
        dest: SocketAddr,
        crypto: &mut RelayCrypto,
        head: &[u8],
        payload: &[u8],
    ) -> Result<usize, TransportError> {
        let assembly = &mut self.batch.assembly;
        assembly.clear();
        assembly.extend_from_slice(head);
        assembly.extend_from_slice(payload);
        let mut datagram = self.batch.pool.take();
        if let Err(e) = crypto.protect_rtp_into(assembly, &mut datagram) {
            self.batch.pool.give_back(datagram);
            return Err(TransportError::MalformedPacket(e));
        }
        let size = datagram.len();
        self.batch.datagrams.push((dest, datagram));
        Ok(size)
    }

    /// Sends an RTCP compound packet on a relay link (see [`Outbox::send_relay_rtp`]).
    pub fn send_relay_rtcp(
        &mut self,
        dest: SocketAddr,
        crypto: &mut RelayCrypto,
        rtcp: &[u8],
    ) -> Result<usize, TransportError> {
        let datagram = crypto
            .protect_rtcp(rtcp)
            .map_err(TransportError::MalformedPacket)?;
        let size = datagram.len();
        self.batch.datagrams.push((dest, datagram));
        Ok(size)
    }

    fn write(&mut self, peer_id: PeerId, message: RTCMessage) -> Result<(), TransportError> {
        let peer = connected_peer(self.peers, peer_id)?;
        peer.pc.handle_write(TaggedRTCMessage {
            now: self.now,
            message,
        })?;
        if !peer.dirty {
            peer.dirty = true;
            self.dirty.push(peer_id);
        }
        Ok(())
    }
}

/// The peer `id` if it exists and its DTLS-SRTP is up (nothing can be sent to it before).
fn connected_peer(
    peers: &mut HashMap<PeerId, Peer>,
    id: PeerId,
) -> Result<&mut Peer, TransportError> {
    let peer = peers.get_mut(&id).ok_or(TransportError::UnknownPeer(id))?;
    if !peer.connected {
        return Err(TransportError::NotConnected(id));
    }
    Ok(peer)
}
