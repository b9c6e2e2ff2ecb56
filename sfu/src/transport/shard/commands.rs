//! The shard's command channel: the [`ShardHandle`] other tasks hold, and the shard's side of
//! each request.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::trace;

use super::ShardState;
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

pub(super) enum Command {
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
}

/// Commands into a running shard. Cheap to clone; the shard stops when every handle is dropped.
#[derive(Clone)]
pub struct ShardHandle {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) local_addr: SocketAddr,
    /// The ICE-TCP listener's bound address, when it is on.
    pub(super) ice_tcp_addr: Option<SocketAddr>,
    /// The socket's inode, where `/proc` reports its kernel drops.
    pub(super) socket_inode: Option<u64>,
}

impl ShardHandle {
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
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
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
}

impl<H: MediaHandler> ShardState<H> {
    pub(super) fn on_command(&mut self, command: Command) {
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
                let result = self.peer_mut(peer).and_then(|p| p.apply_offer(now, sdp));
                self.after_negotiation(peer, now);
                let _ = reply.send(result);
            }
            Command::ApplyAnswer { peer, sdp, reply } => {
                let result = self.peer_mut(peer).and_then(|p| p.apply_answer(now, sdp));
                self.after_negotiation(peer, now);
                let _ = reply.send(result);
            }
            Command::UpdateOutgoing {
                peer,
                remove,
                add,
                reply,
            } => {
                let result = self.update_outgoing(peer, remove, add);
                if let Ok(true) = result {
                    self.offer_if_stable(peer, now);
                }
                let _ = reply.send(result.map(|_| ()));
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
                let existed = self.peers.contains_key(&peer);
                if existed {
                    self.close_peer(peer, CloseReason::Removed, now);
                }
                let _ = reply.send(existed);
            }
            Command::Stats { reply } => {
                let mut stats = self.stats.clone();
                stats.peers = self.peers.len();
                stats.bound_addresses = self.by_addr.len();
                stats.registered_usernames = self.by_ufrag.len();
                stats.ice_tcp_connections = self.tcp_links.len();
                stats.datagrams_without_kernel_time = self.receiver.without_kernel_time;
                let _ = reply.send(stats);
            }
        }
    }
}
