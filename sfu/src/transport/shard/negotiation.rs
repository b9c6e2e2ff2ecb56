//! Negotiation inside the shard: adding a peer from its offer, applying renegotiation offers
//! and answers, outgoing-track changes, and the offers the shard sends (at most one in flight
//! per peer; a change made meanwhile is offered once the peer is stable again).

use std::time::Instant;

use tracing::{debug, warn};

use super::ShardState;
use super::commands::PeerAdded;
use crate::transport::error::TransportError;
use crate::transport::events::{MediaKind, OutgoingTrack, PeerEvent, PeerId, ReceiveSection};
use crate::transport::media::MediaHandler;
use crate::transport::peer::Peer;

impl<H: MediaHandler> ShardState<H> {
    pub(super) fn add_peer(
        &mut self,
        offer: String,
        outgoing: &[OutgoingTrack],
        now: Instant,
    ) -> Result<PeerAdded, TransportError> {
        if self.peers.len() >= self.config.max_peers {
            return Err(TransportError::ShardFull);
        }
        let (ufrag, pwd) = loop {
            let (ufrag, pwd) = ice_credentials()?;
            if !self.by_ufrag.contains_key(&ufrag) {
                break (ufrag, pwd);
            }
        };
        let id = PeerId(self.next_id);
        self.next_id += 1;
        let (peer, answer) =
            Peer::from_offer(&self.factory, ufrag.clone(), pwd, offer, outgoing, now)?;
        self.by_ufrag.insert(ufrag, id);
        self.peers.insert(id, peer);
        self.mark_dirty(id);
        debug!(%id, "peer added");
        self.after_negotiation(id, now);
        Ok(PeerAdded { peer: id, answer })
    }

    /// Answers a renegotiation offer from the client; an offer of ours it crossed is withdrawn
    /// and made again after the answer (`Peer::apply_offer`).
    pub(super) fn apply_offer(
        &mut self,
        peer: PeerId,
        sdp: String,
        now: Instant,
    ) -> Result<String, TransportError> {
        let result = self.peer_mut(peer).and_then(|p| p.apply_offer(now, sdp));
        if let Ok((_, true)) = result {
            self.stats.offers_withdrawn += 1;
            debug!(%peer, "our offer crossed the client's: withdrawn, made again after the answer");
        }
        self.after_negotiation(peer, now);
        result.map(|(answer, _)| answer)
    }

    /// Applies the client's answer to the shard's offer.
    pub(super) fn apply_answer(
        &mut self,
        peer: PeerId,
        sdp: String,
        now: Instant,
    ) -> Result<(), TransportError> {
        let result = self.peer_mut(peer).and_then(|p| p.apply_answer(now, sdp));
        self.after_negotiation(peer, now);
        result
    }

    /// Applies an outgoing-track change and offers it when the peer can take an offer now.
    pub(super) fn change_outgoing(
        &mut self,
        peer: PeerId,
        remove: Vec<u32>,
        add: Vec<OutgoingTrack>,
        now: Instant,
    ) -> Result<(), TransportError> {
        let offer_now = self.update_outgoing(peer, remove, add)?;
        if offer_now {
            self.offer_if_stable(peer, now);
        }
        Ok(())
    }

    /// Adds a section the SFU receives `kind` on and offers it (once connected, and once any
    /// offer outstanding is answered).
    pub(super) fn add_receive_section(
        &mut self,
        peer: PeerId,
        kind: MediaKind,
        now: Instant,
    ) -> Result<ReceiveSection, TransportError> {
        let section = self.peer_mut(peer)?.add_receive_section(kind)?;
        self.offer_change(peer, now);
        Ok(section)
    }

    /// Turns a receive section `inactive` and offers the change.
    pub(super) fn stop_receiving(
        &mut self,
        peer: PeerId,
        section: ReceiveSection,
        now: Instant,
    ) -> Result<(), TransportError> {
        self.peer_mut(peer)?.stop_receiving(section)?;
        self.offer_change(peer, now);
        Ok(())
    }

    /// The `a=mid` of a receive section, once an offer carried it.
    pub(super) fn receive_section_mid(
        &mut self,
        peer: PeerId,
        section: ReceiveSection,
    ) -> Option<String> {
        self.peers.get_mut(&peer)?.receive_section_mid(section)
    }

    /// Offers a change of the peer's sections now, or once it is connected.
    fn offer_change(&mut self, peer: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.connected {
            self.offer_if_stable(peer, now);
        } else {
            p.offer_when_connected();
        }
    }

    /// Reports the negotiated outgoing tracks and sends a queued offer, if any.
    pub(super) fn after_negotiation(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.is_stable() {
            return;
        }
        if peer.has_outgoing() {
            let outgoing = peer.negotiated_outgoing();
            self.emit(PeerEvent::Negotiated { peer: id, outgoing }, now);
        }
        if self
            .peers
            .get(&id)
            .is_some_and(|p| p.renegotiate_after_answer)
        {
            self.offer_if_stable(id, now);
        }
        self.mark_dirty(id);
    }

    /// Applies an outgoing-track change; returns whether an offer should follow now (a peer not
    /// connected yet gets its tracks in the offer sent when it is).
    pub(super) fn update_outgoing(
        &mut self,
        peer: PeerId,
        remove: Vec<u32>,
        add: Vec<OutgoingTrack>,
    ) -> Result<bool, TransportError> {
        let p = self.peer_mut(peer)?;
        let mut changed = false;
        for ssrc in remove {
            p.detach_outgoing(ssrc)?;
            changed = true;
        }
        for track in add {
            if p.connected {
                p.attach_outgoing(&track)?;
                changed = true;
            } else {
                p.defer_outgoing(track);
            }
        }
        if changed && !p.connected {
            p.offer_when_connected();
        }
        Ok(changed && p.connected)
    }

    /// Attaches the outgoing tracks held back from a peer's first answer and offers them.
    pub(super) fn offer_deferred(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let (deferred, offer) = peer.take_deferred();
        if !offer {
            return;
        }
        for track in &deferred {
            if let Err(err) = peer.attach_outgoing(track) {
                warn!(%id, %err, ssrc = track.ssrc, "could not attach a deferred outgoing track");
            }
        }
        self.offer_if_stable(id, now);
    }

    pub(super) fn offer_if_stable(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.is_stable() {
            peer.renegotiate_after_answer = true;
            return;
        }
        peer.renegotiate_after_answer = false;
        match peer.create_offer(now) {
            Ok(sdp) => self.emit(PeerEvent::LocalOffer { peer: id, sdp }, now),
            Err(err) => warn!(%id, %err, "could not create a renegotiation offer"),
        }
        self.mark_dirty(id);
    }
}

/// ICE characters (RFC 8839 `ice-char`): ALPHA / DIGIT / "+" / "/". 64 of them, so a random
/// byte modulo 64 picks one without bias.
const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A fresh ufrag (8 characters, 48 bits) and password (24 characters, 144 bits) from the system
/// CSPRNG.
fn ice_credentials() -> Result<(String, String), TransportError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TransportError::Negotiation("system random source failed".to_owned()))?;
    let chars: String = bytes
        .iter()
        .map(|b| char::from(ICE_CHARS[usize::from(b % 64)]))
        .collect();
    Ok((chars[..8].to_owned(), chars[8..].to_owned()))
}
