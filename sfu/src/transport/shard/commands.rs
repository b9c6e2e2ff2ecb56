//! The shard's command channel: the [`ShardHandle`] other tasks hold, and the shard's side of
//! each request. Besides the transport's own requests, [`ShardHandle::run`] runs a job on the
//! shard's task with the media handler and the shard together ([`ShardAccess`]): how the node
//! changes its state without a lock.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::trace;

use super::ShardState;
use super::access::ShardAccess;
use crate::transport::error::TransportError;
use crate::transport::events::{CloseReason, OutgoingTrack, PeerId};
use crate::transport::kernel_drops;
use crate::transport::media::MediaHandler;
use crate::transport::stats::ShardStats;

/// The result of adding a peer.
#[derive(Debug, Clone)]
pub struct PeerAdded {
    /// The new peer's id.
    pub peer: PeerId,
    /// The SDP answer to send back to the client.
    pub answer: String,
}

/// A job run on the shard's task with its handler and transport ([`ShardHandle::run`]).
pub(super) type ShardJob<H> = Box<dyn for<'a, 'b> FnOnce(&'a mut ShardAccess<'b, H>) + Send>;

pub(super) enum Command<H> {
    AddPeer {
        offer: String,
        outgoing: Vec<OutgoingTrack>,
        reply: oneshot::Sender<Result<PeerAdded, TransportError>>,
    },
    ApplyOffer {
        peer: PeerId,
        sdp: String,
        reply: oneshot::Sender<Result<String, TransportError>>,
    },
    ApplyAnswer {
        peer: PeerId,
        sdp: String,
        reply: oneshot::Sender<Result<(), TransportError>>,
    },
    UpdateOutgoing {
        peer: PeerId,
        remove: Vec<u32>,
        add: Vec<OutgoingTrack>,
        reply: oneshot::Sender<Result<(), TransportError>>,
    },
    SendRtp {
        peer: PeerId,
        rtp: Bytes,
    },
    SendRtcp {
        peer: PeerId,
        rtcp: Bytes,
    },
    RemovePeer {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    Stats {
        reply: oneshot::Sender<ShardStats>,
    },
    /// Run a job against the handler and the shard (it answers on its own channel).
    Run(ShardJob<H>),
}

/// Commands into a running shard whose media handler is an `H`. Cheap to clone; the shard stops
/// when every handle is dropped.
pub struct ShardHandle<H> {
    pub(super) commands: mpsc::Sender<Command<H>>,
    pub(super) local_addr: SocketAddr,
    /// The ICE-TCP listener's bound address, when it is on.
    pub(super) ice_tcp_addr: Option<SocketAddr>,
    /// The socket's inode, where `/proc` reports its kernel drops.
    pub(super) socket_inode: Option<u64>,
}

impl<H> Clone for ShardHandle<H> {
    fn clone(&self) -> Self {
        ShardHandle {
            commands: self.commands.clone(),
            local_addr: self.local_addr,
            ice_tcp_addr: self.ice_tcp_addr,
            socket_inode: self.socket_inode,
        }
    }
}

impl<H: MediaHandler> ShardHandle<H> {
    /// The socket's bound address (its port is the advertised port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The ICE-TCP listener's bound address (its port is the advertised TCP port); `None` when
    /// ICE-TCP is off.
    pub fn ice_tcp_addr(&self) -> Option<SocketAddr> {
        self.ice_tcp_addr
    }

    /// Datagrams the kernel dropped on this shard's socket because its receive buffer was full
    /// (`/proc/net/udp`'s `drops`); `None` where the system does not report it.
    pub fn kernel_receive_drops(&self) -> Option<u64> {
        self.socket_inode.and_then(kernel_drops::receive_drops)
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command<H>,
    ) -> Result<T, TransportError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| TransportError::ShardStopped)?;
        rx.await.map_err(|_| TransportError::ShardStopped)
    }

    /// Adds a peer from its SDP offer and returns the answer. Each `outgoing` track gets a
    /// section of its own: in this answer when the offer has a `recvonly` section for it (a
    /// viewer's), otherwise in an offer the shard sends as soon as the peer is connected
    /// ([`PeerEvent::LocalOffer`]); never a section the client sends on.
    pub async fn add_peer(
        &self,
        offer: String,
        outgoing: Vec<OutgoingTrack>,
    ) -> Result<PeerAdded, TransportError> {
        self.request(|reply| Command::AddPeer {
            offer,
            outgoing,
            reply,
        })
        .await?
    }

    /// Answers a renegotiation offer from the client (e.g. a publisher adding a track).
    pub async fn apply_offer(&self, peer: PeerId, sdp: String) -> Result<String, TransportError> {
        self.request(|reply| Command::ApplyOffer { peer, sdp, reply })
            .await?
    }

    /// Applies the client's answer to the offer delivered in [`PeerEvent::LocalOffer`].
    pub async fn apply_answer(&self, peer: PeerId, sdp: String) -> Result<(), TransportError> {
        self.request(|reply| Command::ApplyAnswer { peer, sdp, reply })
            .await?
    }

    /// Adds a track the SFU sends to `peer`; the resulting offer arrives as
    /// [`PeerEvent::LocalOffer`].
    pub async fn add_outgoing_track(
        &self,
        peer: PeerId,
        track: OutgoingTrack,
    ) -> Result<(), TransportError> {
        self.update_outgoing(peer, Vec::new(), vec![track]).await
    }

    /// Stops sending the track with `ssrc` to `peer`; the resulting offer arrives as
    /// [`PeerEvent::LocalOffer`].
    pub async fn remove_outgoing_track(
        &self,
        peer: PeerId,
        ssrc: u32,
    ) -> Result<(), TransportError> {
        self.update_outgoing(peer, vec![ssrc], Vec::new()).await
    }

    /// Stops sending the tracks with the SSRCs in `remove` and starts sending `add`, negotiated
    /// by one offer ([`PeerEvent::LocalOffer`]; before the peer is connected, by the offer sent
    /// when it is). Stops at the first failure, keeping the changes before it.
    pub async fn update_outgoing(
        &self,
        peer: PeerId,
        remove: Vec<u32>,
        add: Vec<OutgoingTrack>,
    ) -> Result<(), TransportError> {
        self.request(|reply| Command::UpdateOutgoing {
            peer,
            remove,
            add,
            reply,
        })
        .await?
    }

    /// Sends one RTP packet to `peer` from outside the shard (the forwarding core running inside
    /// the shard uses [`Outbox`](crate::transport::Outbox) instead, without this channel hop).
    pub async fn send_rtp(&self, peer: PeerId, rtp: Bytes) -> Result<(), TransportError> {
        self.commands
            .send(Command::SendRtp { peer, rtp })
            .await
            .map_err(|_| TransportError::ShardStopped)
    }

    /// Sends one RTCP compound packet to `peer` from outside the shard.
    pub async fn send_rtcp(&self, peer: PeerId, rtcp: Bytes) -> Result<(), TransportError> {
        self.commands
            .send(Command::SendRtcp { peer, rtcp })
            .await
            .map_err(|_| TransportError::ShardStopped)
    }

    /// Closes and frees `peer`; `false` if there was no such peer.
    pub async fn remove_peer(&self, peer: PeerId) -> Result<bool, TransportError> {
        self.request(|reply| Command::RemovePeer { peer, reply })
            .await
    }

    /// A snapshot of the shard's counters and state sizes.
    pub async fn stats(&self) -> Result<ShardStats, TransportError> {
        self.request(|reply| Command::Stats { reply }).await
    }

    /// Runs `job` on the shard's task, between two packets, with the media handler and the
    /// shard's transport ([`ShardAccess`]), and returns what it returns. Nothing else runs on
    /// the shard meanwhile, so what the job changes cannot race a packet; the job must not
    /// block. What its calls emit reaches the handler as usual, and what it sends leaves when
    /// the shard's pass ends.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut ShardAccess<'_, H>) -> T + Send + 'static,
    ) -> Result<T, TransportError> {
        self.request(|reply| {
            Command::Run(Box::new(move |shard: &mut ShardAccess<'_, H>| {
                // The caller may have stopped waiting; the job's effects stay.
                let _ = reply.send(job(shard));
            }))
        })
        .await
    }
}

impl<H: MediaHandler> ShardState<H> {
    pub(super) fn on_command(&mut self, command: Command<H>) {
        let now = Instant::now();
        match command {
            Command::AddPeer {
                offer,
                outgoing,
                reply,
            } => {
                let _ = reply.send(self.add_peer(offer, &outgoing, now));
            }
            Command::ApplyOffer { peer, sdp, reply } => {
                let _ = reply.send(self.apply_offer(peer, sdp, now));
            }
            Command::ApplyAnswer { peer, sdp, reply } => {
                let _ = reply.send(self.apply_answer(peer, sdp, now));
            }
            Command::UpdateOutgoing {
                peer,
                remove,
                add,
                reply,
            } => {
                let _ = reply.send(self.change_outgoing(peer, remove, add, now));
            }
            Command::SendRtp { peer, rtp } => {
                if let Err(err) = self.outbox(now).send_rtp_bytes(peer, &rtp) {
                    trace!(%peer, %err, "send_rtp refused");
                }
            }
            Command::SendRtcp { peer, rtcp } => {
                if let Err(err) = self.outbox(now).send_rtcp_bytes(peer, &rtcp) {
                    trace!(%peer, %err, "send_rtcp refused");
                }
            }
            Command::RemovePeer { peer, reply } => {
                let _ = reply.send(self.remove_peer(peer, now));
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.stats_now());
            }
            Command::Run(job) => job(&mut ShardAccess { shard: self, now }),
        }
    }

    /// Closes and frees `peer` at the control surface's request; `false` if there was none.
    pub(super) fn remove_peer(&mut self, peer: PeerId, now: Instant) -> bool {
        let existed = self.peers.contains_key(&peer);
        if existed {
            self.close_peer(peer, CloseReason::Removed, now);
        }
        existed
    }

    /// The shard's counters with its current state sizes.
    pub(super) fn stats_now(&self) -> ShardStats {
        let mut stats = self.stats.clone();
        stats.peers = self.peers.len();
        stats.bound_addresses = self.by_addr.len();
        stats.registered_usernames = self.by_ufrag.len();
        stats.ice_tcp_connections = self.tcp_links.len();
        stats.datagrams_without_kernel_time = self.receiver.without_kernel_time;
        stats.send_buffers_allocated = self.batch.pool.allocated();
        stats.send_buffers_free = self.batch.pool.free();
        stats
    }
}
