//! [`ShardAccess`]: the shard as a job run on its task sees it ([`ShardHandle::run`]) — the
//! media handler and the transport's peer operations together, called directly, so a change that
//! spans both (add a peer, then record its id in the handler) happens in one step between two
//! packets.
//!
//! [`ShardHandle::run`]: super::ShardHandle::run

use std::time::Instant;

use super::ShardState;
use super::commands::PeerAdded;
use crate::transport::error::TransportError;
use crate::transport::events::{MediaKind, OutgoingTrack, PeerId, ReceiveSection};
use crate::transport::media::{MediaHandler, Outbox};
use crate::transport::stats::ShardStats;

/// The shard's handler and transport, lent to a job on the shard's task (or to
/// [`MediaHandler::run_deferred`]). The peer operations are the [`ShardHandle`]'s
/// (`super::ShardHandle`) requests, done at once: what they emit
/// ([`PeerEvent`](crate::transport::PeerEvent)s) reaches the handler before they return.
pub struct ShardAccess<'a, H> {
    pub(super) shard: &'a mut ShardState<H>,
    pub(super) now: Instant,
}

impl<H: MediaHandler> ShardAccess<'_, H> {
    /// The time this job runs at.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The shard's media handler.
    pub fn handler(&mut self) -> &mut H {
        &mut self.shard.handler
    }

    /// The handler with an [`Outbox`] to send with (what it sends leaves when the pass ends).
    pub fn handler_and_outbox(&mut self) -> (&mut H, Outbox<'_>) {
        let shard = &mut *self.shard;
        (
            &mut shard.handler,
            Outbox {
                peers: &mut shard.peers,
                dirty: &mut shard.dirty,
                batch: &mut shard.batch,
                now: self.now,
            },
        )
    }

    /// Adds a peer from its SDP offer (see [`ShardHandle::add_peer`](super::ShardHandle::add_peer)).
    pub fn add_peer(
        &mut self,
        offer: String,
        outgoing: &[OutgoingTrack],
    ) -> Result<PeerAdded, TransportError> {
        self.shard.add_peer(offer, outgoing, self.now)
    }

    /// Answers a renegotiation offer from the client.
    pub fn apply_offer(&mut self, peer: PeerId, sdp: String) -> Result<String, TransportError> {
        self.shard.apply_offer(peer, sdp, self.now)
    }

    /// Applies the client's answer to the shard's offer.
    pub fn apply_answer(&mut self, peer: PeerId, sdp: String) -> Result<(), TransportError> {
        self.shard.apply_answer(peer, sdp, self.now)
    }

    /// Stops sending `remove` and starts sending `add` to `peer`, in one offer (see
    /// [`ShardHandle::update_outgoing`](super::ShardHandle::update_outgoing)).
    pub fn update_outgoing(
        &mut self,
        peer: PeerId,
        remove: Vec<u32>,
        add: Vec<OutgoingTrack>,
    ) -> Result<(), TransportError> {
        self.shard.change_outgoing(peer, remove, add, self.now)
    }

    /// Adds a media section the SFU receives `kind` on (`recvonly` on its side) and offers it
    /// to `peer` (docs/architecture.md §7.53).
    pub fn add_receive_section(
        &mut self,
        peer: PeerId,
        kind: MediaKind,
    ) -> Result<ReceiveSection, TransportError> {
        self.shard.add_receive_section(peer, kind, self.now)
    }

    /// Turns a receive section `inactive` and offers the change.
    pub fn stop_receiving(
        &mut self,
        peer: PeerId,
        section: ReceiveSection,
    ) -> Result<(), TransportError> {
        self.shard.stop_receiving(peer, section, self.now)
    }

    /// The `a=mid` of a receive section, once an offer carried it (`None` before).
    pub fn receive_section_mid(&mut self, peer: PeerId, section: ReceiveSection) -> Option<String> {
        self.shard.receive_section_mid(peer, section)
    }

    /// Closes and frees `peer`; `false` if there was no such peer.
    pub fn remove_peer(&mut self, peer: PeerId) -> bool {
        self.shard.remove_peer(peer, self.now)
    }

    /// The shard's counters and state sizes.
    pub fn stats(&self) -> ShardStats {
        self.shard.stats_now()
    }
}
