//! Demultiplexing: which peer a datagram on the shared socket (or a frame on an ICE-TCP
//! connection) belongs to.
//!
//! A STUN binding request is routed by the ufrag in its USERNAME (the SFU made every ufrag, so
//! it names the peer) and admitted only if its MESSAGE-INTEGRITY verifies with that peer's
//! password; the source address is then bound to the peer. Every other datagram is routed by
//! its source address, so only addresses that proved the ICE password reach a peer's DTLS and
//! SRTP. Sources outside the allow-list are dropped first, unread. A frame from an ICE-TCP
//! connection takes the same way, from the connection's remote address; a connection carries
//! one peer only.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tracing::{debug, trace};

use super::ShardState;
use super::short_receive::ShortReceive;
use crate::transport::dtls_alert;
use crate::transport::events::CloseReason;
use crate::transport::ice_tcp::IceTcpClose;
use crate::transport::media::{MediaHandler, Outbox};
use crate::transport::protocol_byte::is_webrtc_protocol;
use crate::transport::stats::StunRefusal;
use crate::transport::stun_gate::{self, StunMessage};

impl<H: MediaHandler> ShardState<H> {
    /// A datagram read from the UDP socket.
    /// Its bytes may be decrypted in place (the short receive path): the buffer is the shard's.
    pub(super) fn on_datagram(&mut self, src: SocketAddr, data: &mut [u8], now: Instant) {
        // An address with an ICE-TCP connection is that connection's: the peer's packets go
        // back on it, so the same address cannot also be proved over UDP.
        if !self.tcp_links.is_empty() && self.tcp_links.contains_key(&src) {
            self.stats.unknown_source += 1;
            return;
        }
        self.on_packet(src, TransportProtocol::UDP, data, now);
    }

    /// A packet from `src` over `protocol`: a UDP datagram, or a frame of the ICE-TCP connection
    /// from `src` (which the shard holds a link for). SRTP of an established stream is decrypted
    /// where it lies in `data`.
    pub(super) fn on_packet(
        &mut self,
        src: SocketAddr,
        protocol: TransportProtocol,
        data: &mut [u8],
        now: Instant,
    ) {
        if !self.config.allowed_sources.allows(src.ip()) {
            self.stats.count_refusal(StunRefusal::SourceNotAllowed);
            return;
        }
        if !is_webrtc_protocol(data) {
            self.stats.garbage += 1;
            return;
        }
        let local_addr = match (protocol, self.advertised_tcp) {
            (TransportProtocol::TCP, Some(tcp)) => tcp,
            _ => self.advertised,
        };
        let id = if stun_gate::looks_like_stun(data) {
            match stun_gate::parse(data) {
                Err(_) => {
                    self.stats.count_refusal(StunRefusal::Malformed);
                    return;
                }
                Ok(StunMessage::BindingRequest(request)) => {
                    let Some(&id) = self.by_ufrag.get(request.local_ufrag) else {
                        self.stats.count_refusal(StunRefusal::UnknownUsername);
                        return;
                    };
                    let Some(peer) = self.peers.get_mut(&id) else {
                        // by_ufrag and peers change together in add_peer and close_peer.
                        self.by_ufrag.remove(request.local_ufrag);
                        self.stats.count_refusal(StunRefusal::UnknownUsername);
                        return;
                    };
                    if !request.verify(peer.pwd.as_bytes()) {
                        self.stats.count_refusal(StunRefusal::BadIntegrity);
                        return;
                    }
                    if protocol == TransportProtocol::TCP {
                        let Some(link) = self.tcp_links.get_mut(&src) else {
                            // Frames reach here only from a connection the shard holds.
                            return;
                        };
                        if link.peer.is_some_and(|carried| carried != id) {
                            self.close_link(src, IceTcpClose::SecondPeer);
                            return;
                        }
                        link.authenticate(id);
                    }
                    // `peers` was not changed since `peer` was found in it.
                    let Some(peer) = self.peers.get_mut(&id) else {
                        return;
                    };
                    peer.last_consent = Some(now);
                    let forgotten = peer.bind_address(src);
                    if let Some(old) = forgotten {
                        if self.by_addr.get(&old) == Some(&id) {
                            self.by_addr.remove(&old);
                        }
                        if self.tcp_links.contains_key(&old) {
                            self.close_link(old, IceTcpClose::PeerClosed);
                        }
                    }
                    if let Some(previous) = self.by_addr.insert(src, id)
                        && previous != id
                        && let Some(prev_peer) = self.peers.get_mut(&previous)
                    {
                        // The address proved another peer's password: it belongs to that peer now.
                        prev_peer.addresses.retain(|a| *a != src);
                    }
                    id
                }
                Ok(StunMessage::Other) => match self.by_addr.get(&src) {
                    Some(&id) => id,
                    None => {
                        self.stats.unknown_source += 1;
                        return;
                    }
                },
            }
        } else {
            match self.by_addr.get(&src) {
                Some(&id) => id,
                None => {
                    // A relay link's datagram (§7.55), if the handler owns a link with `src`.
                    if protocol == TransportProtocol::UDP && self.offer_unbound(src, data, now) {
                        return;
                    }
                    self.stats.unknown_source += 1;
                    return;
                }
            }
        };

        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.connected && dtls_alert::contains_alert(data) {
            debug!(%id, "DTLS alert from peer before connection was up");
            self.close_peer(id, CloseReason::DtlsFailed, now);
            return;
        }
        // SRTP of an established stream skips the `rtc` pipeline (see `short_receive`).
        if let ShortReceive::Done = self.receive_short(id, data, now) {
            return;
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.pipeline_reads_pending = true;
        let result = peer.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr: src,
                ecn: None,
                transport_protocol: protocol,
            },
            message: BytesMut::from(&*data),
        });
        if let Err(err) = result {
            self.stats.transport_refused += 1;
            trace!(%id, %err, "rtc refused a datagram");
        }
        // What the session's handlers refused inside (SRTP replay and authentication, RTP/RTCP
        // malformed after decryption) is counted there, not returned.
        let refused = peer.pc.take_read_errors();
        if refused != Default::default() {
            self.stats.add_rtc_refusals(&refused);
        }
        self.mark_dirty(id);
    }
}

impl<H: MediaHandler> ShardState<H> {
    /// Offers a datagram from an address no peer proved to the handler's relay links.
    fn offer_unbound(&mut self, src: SocketAddr, data: &mut [u8], arrival: Instant) -> bool {
        let mut outbox = Outbox {
            peers: &mut self.peers,
            dirty: &mut self.dirty,
            batch: &mut self.batch,
            now: Instant::now().max(arrival),
        };
        self.handler
            .on_unbound_datagram(src, data, arrival, &mut outbox)
    }
}
