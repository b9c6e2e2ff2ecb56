//! The shard: one tokio task owning one UDP socket and many peer connections.
//!
//! Its jobs, one file each: [`commands`] (the [`ShardHandle`] other tasks hold and the shard's
//! side of each request), [`access`] (the handler and the transport as a job on the shard's
//! task sees them), [`demux`] (which peer a datagram belongs to), [`negotiation`] (offers,
//! answers and outgoing-track changes), [`drive`] (the task's loop: receive, drive `rtc`,
//! timers, the pass's send batch), [`short_receive`] (SRTP of established streams to the media
//! handler without the `rtc` pipeline) and [`tcp_links`] (the ICE-TCP connections it holds and what
//! it sends on them). This file holds the state they share, the start, and what every job
//! needs: events to the handler, the dirty list, closing a peer.

mod access;
mod commands;
mod demux;
mod drive;
mod negotiation;
mod short_receive;
mod tcp_links;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::peer_connection::message::RTCMessage;
use rtc::sansio::Protocol;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tracing::info;

use super::config::TransportConfig;
use super::error::{StartError, TransportError};
use super::events::{CloseReason, PeerEvent, PeerId};
use super::ice_tcp::{self, IceTcpClose, TcpInput, TcpLink};
use super::kernel_drops;
use super::media::{MediaHandler, Outbox};
use super::peer::{Peer, PeerFactory};
use super::send_batch::SendBatch;
use super::stats::ShardStats;
use super::udp_receive::UdpReceiver;

pub use access::ShardAccess;
pub use commands::{PeerAdded, ShardHandle};

/// Largest datagram read from the socket.
const RECV_BUFFER: usize = 2048;
/// Datagrams read per wake-up before peers are driven (bounds the work per wake-up).
const RECV_BATCH: usize = 64;
/// Capacity of the command channel.
const COMMAND_CAPACITY: usize = 1024;
/// Capacity of the channel from the ICE-TCP listener and connections (frames, opens, closes).
const TCP_INPUT_CAPACITY: usize = 1024;

/// Binds the shard's socket, spawns its task on the current tokio runtime and returns a handle.
pub async fn start_shard<H: MediaHandler>(
    config: TransportConfig,
    handler: H,
) -> Result<ShardHandle<H>, StartError> {
    let socket = UdpSocket::bind(config.bind).await?;
    if let Some(bytes) = config.receive_buffer_bytes {
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBuf, &bytes)
            .map_err(std::io::Error::from)?;
    }
    let socket_inode = kernel_drops::socket_inode(&socket);
    let receiver = UdpReceiver::new(&socket);
    let local_addr = socket.local_addr()?;
    let tcp_listener = match &config.ice_tcp {
        Some(tcp) => Some(TcpListener::bind(SocketAddr::new(config.bind.ip(), tcp.port)).await?),
        None => None,
    };
    let ice_tcp_addr = match &tcp_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let advertised_tcp = ice_tcp_addr.map(|a| SocketAddr::new(config.advertised_ip, a.port()));
    let factory = PeerFactory::new(&config, local_addr.port(), advertised_tcp)
        .map_err(StartError::Certificate)?;
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let advertised = SocketAddr::new(config.advertised_ip, local_addr.port());
    info!(%local_addr, %advertised, ?advertised_tcp, "transport shard listening");
    let tcp_inputs = match (tcp_listener, &config.ice_tcp) {
        (Some(listener), Some(tcp)) => {
            let (tcp_tx, tcp_rx) = mpsc::channel(TCP_INPUT_CAPACITY);
            ice_tcp::spawn_listener(
                listener,
                tcp.clone(),
                config.allowed_sources.clone(),
                tcp_tx,
            );
            Some(tcp_rx)
        }
        _ => None,
    };
    let state = ShardState {
        socket: Arc::new(socket),
        receiver,
        advertised,
        advertised_tcp,
        tcp_links: HashMap::new(),
        config,
        factory,
        peers: HashMap::new(),
        by_ufrag: HashMap::new(),
        by_addr: HashMap::new(),
        timers: BTreeSet::new(),
        dirty: Vec::new(),
        next_id: 1,
        stats: ShardStats::default(),
        handler,
        pending_out: VecDeque::new(),
        batch: SendBatch::default(),
        scratch: Vec::with_capacity(RECV_BUFFER),
        inbox: Vec::new(),
    };
    tokio::spawn(drive::run(state, rx, tcp_inputs));
    Ok(ShardHandle {
        commands: tx,
        local_addr,
        ice_tcp_addr,
        socket_inode,
    })
}

struct ShardState<H> {
    socket: Arc<UdpSocket>,
    /// Reads `socket`, each datagram with the time the kernel received it.
    receiver: UdpReceiver,
    advertised: SocketAddr,
    /// The ICE-TCP candidate's address, when the listener is on.
    advertised_tcp: Option<SocketAddr>,
    /// The open ICE-TCP connections by remote address; a peer's packets to one of these
    /// addresses go on that connection, not the UDP socket.
    tcp_links: HashMap<SocketAddr, TcpLink>,
    config: TransportConfig,
    factory: PeerFactory,
    peers: HashMap<PeerId, Peer>,
    by_ufrag: HashMap<String, PeerId>,
    by_addr: HashMap<SocketAddr, PeerId>,
    timers: BTreeSet<(Instant, PeerId)>,
    dirty: Vec<PeerId>,
    next_id: u64,
    stats: ShardStats,
    handler: H,
    pending_out: VecDeque<(SocketAddr, BytesMut)>,
    /// Every datagram of this pass (forwarded RTP, `rtc`'s own output), written together when it
    /// ends.
    batch: SendBatch,
    /// Reused buffer the decrypted packets are marshalled into before the handler sees them.
    scratch: Vec<u8>,
    /// Reused list of messages taken from one peer before they are dispatched, each with the
    /// arrival time of its datagram (the kernel's receive time, or the read time of an ICE-TCP
    /// frame).
    inbox: Vec<(Instant, RTCMessage)>,
}

impl<H: MediaHandler> ShardState<H> {
    fn peer_mut(&mut self, peer: PeerId) -> Result<&mut Peer, TransportError> {
        self.peers
            .get_mut(&peer)
            .ok_or(TransportError::UnknownPeer(peer))
    }

    fn outbox(&mut self, now: Instant) -> Outbox<'_> {
        Outbox {
            peers: &mut self.peers,
            dirty: &mut self.dirty,
            batch: &mut self.batch,
            now,
        }
    }

    fn emit(&mut self, event: PeerEvent, now: Instant) {
        let mut outbox = Outbox {
            peers: &mut self.peers,
            dirty: &mut self.dirty,
            batch: &mut self.batch,
            now,
        };
        self.handler.on_peer_event(event, &mut outbox);
    }

    fn mark_dirty(&mut self, id: PeerId) {
        if let Some(peer) = self.peers.get_mut(&id)
            && !peer.dirty
        {
            peer.dirty = true;
            self.dirty.push(id);
        }
    }

    /// Closes `id`, frees every trace of it (ufrag, addresses, timers) and tells the handler.
    fn close_peer(&mut self, id: PeerId, reason: CloseReason, now: Instant) {
        let Some(mut peer) = self.peers.remove(&id) else {
            return;
        };
        self.by_ufrag.remove(&peer.ufrag);
        for addr in &peer.addresses {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
        let tcp_addresses: Vec<SocketAddr> = if self.tcp_links.is_empty() {
            Vec::new()
        } else {
            peer.addresses
                .iter()
                .filter(|a| self.tcp_links.contains_key(a))
                .copied()
                .collect()
        };
        if let Some(deadline) = peer.scheduled.take() {
            self.timers.remove(&(deadline, id));
        }
        if reason == CloseReason::ConsentExpired {
            self.stats.consent_expired += 1;
        }
        if matches!(reason, CloseReason::Removed | CloseReason::Shutdown) && peer.connected {
            // Say goodbye (DTLS close_notify) to an address the peer proved.
            let _ = peer.pc.close();
            while let Some(transmit) = peer.pc.poll_write() {
                let dest = transmit.transport.peer_addr;
                if peer.addresses.contains(&dest) {
                    match self.tcp_links.get(&dest) {
                        // Best effort, like the datagram: a full queue loses the goodbye.
                        Some(link) => {
                            let _ = link.send(transmit.message);
                        }
                        None => self.batch.datagrams.push((dest, transmit.message)),
                    }
                }
            }
        }
        for remote in tcp_addresses {
            self.close_link(remote, IceTcpClose::PeerClosed);
        }
        info!(%id, ?reason, "peer closed");
        drop(peer);
        self.emit(PeerEvent::Closed { peer: id, reason }, now);
    }
}
