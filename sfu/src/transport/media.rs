//! The seam between the transport shard and the forwarding core: a [`MediaHandler`] runs inside
//! the shard task, receives decrypted RTP/RTCP as borrowed bytes (no per-packet channel hop, no
//! copy into an owned buffer) and sends through an [`Outbox`] that encrypts and queues on the
//! shard's socket directly.

use std::collections::HashMap;
use std::time::Instant;

use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::sansio::Protocol;
use rtc::shared::marshal::Unmarshal;

use super::error::TransportError;
use super::events::{PeerEvent, PeerId};
use super::peer::Peer;

/// What the rest of the SFU plugs into a shard. All calls happen on the shard's task, in the
/// order packets and events occur; a call must not block.
pub trait MediaHandler: Send + 'static {
    /// A peer connected, opened a track, needs an offer delivered, finished a negotiation or
    /// closed.
    fn on_peer_event(&mut self, event: PeerEvent, out: &mut Outbox<'_>);

    /// An SRTP-decrypted RTP packet (header, extensions and payload as received; RTX already
    /// de-encapsulated to the original stream by `rtc`). The slice is valid for this call only.
    fn on_rtp(&mut self, peer: PeerId, rtp: &[u8], now: Instant, out: &mut Outbox<'_>);

    /// An SRTCP-decrypted RTCP compound packet. The slice is valid for this call only.
    fn on_rtcp(&mut self, peer: PeerId, rtcp: &[u8], now: Instant, out: &mut Outbox<'_>);
}

/// Sends media on the shard's peers from inside a [`MediaHandler`] callback. Packets are
/// SRTP-encrypted by the peer's `rtc` connection and written to the socket when the callback
/// returns (several packets to several peers are written in one pass).
pub struct Outbox<'a> {
    pub(crate) peers: &'a mut HashMap<PeerId, Peer>,
    pub(crate) dirty: &'a mut Vec<PeerId>,
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

    /// Sends an RTP packet to `peer`. Its SSRC should be one of the peer's outgoing tracks (or
    /// their RTX SSRCs) and its payload type one negotiated for it; `rtc` does not check on this
    /// path, the receiving client does.
    pub fn send_rtp(
        &mut self,
        peer: PeerId,
        packet: rtc::rtp::Packet,
    ) -> Result<(), TransportError> {
        self.write(peer, RTCMessage::RtpPacket(String::new(), packet))
    }

    /// Parses and sends an RTP packet given as bytes.
    pub fn send_rtp_bytes(&mut self, peer: PeerId, mut rtp: &[u8]) -> Result<(), TransportError> {
        let packet = rtc::rtp::Packet::unmarshal(&mut rtp)
            .map_err(|e| TransportError::MalformedPacket(e.to_string()))?;
        self.send_rtp(peer, packet)
    }

    /// Parses and sends an RTCP compound packet given as bytes.
    pub fn send_rtcp_bytes(&mut self, peer: PeerId, rtcp: &[u8]) -> Result<(), TransportError> {
        let mut buf = rtcp;
        let packets = rtc::rtcp::packet::unmarshal(&mut buf)
            .map_err(|e| TransportError::MalformedPacket(e.to_string()))?;
        self.write(peer, RTCMessage::RtcpPacket(String::new(), packets))
    }

    fn write(&mut self, peer_id: PeerId, message: RTCMessage) -> Result<(), TransportError> {
        let peer = self
            .peers
            .get_mut(&peer_id)
            .ok_or(TransportError::UnknownPeer(peer_id))?;
        if !peer.connected {
            return Err(TransportError::NotConnected(peer_id));
        }
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
