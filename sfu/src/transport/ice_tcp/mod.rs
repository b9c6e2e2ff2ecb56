//! ICE-TCP, passive (RFC 6544): a TCP listener beside the shard's UDP socket, for clients on
//! networks that block UDP.
//!
//! The shard advertises a `tcptype passive` host candidate on the listener's port; a client
//! connects and sends RFC 4571 frames ([`framing`]). Each accepted connection gets a task of its
//! own ([`connection`]) that cuts the byte stream into frames and hands each one to the shard as
//! if it were a UDP datagram from the connection's remote address; the shard owns the
//! connection's write side as a channel ([`TcpLink`]) and sends that peer's packets there when
//! the peer's selected pair is the connection. The accept loop ([`listener`]) enforces the
//! connection caps and reports every end of a connection, with its reason, to the shard, which
//! counts it.

mod connection;
mod framing;
mod listener;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};

pub(crate) use listener::spawn_listener;

/// How long a new connection may take to send a binding request that proves a peer's ICE
/// password before it is closed (`stun_timeout`).
pub const DEFAULT_ICE_TCP_STUN_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames queued for one connection before its peer counts as not reading (`write_backlog`).
const WRITE_QUEUE_FRAMES: usize = 512;

/// What one shard's ICE-TCP listener is told at start.
#[derive(Debug, Clone)]
pub struct IceTcpConfig {
    /// TCP port the listener binds on the UDP socket's address (`0` picks a free one, which tests
    /// use); the advertised candidate carries the bound port.
    pub port: u16,
    /// Upper bound on connections open at once; a connection beyond it is closed at accept
    /// (`global_limit`).
    pub max_connections: usize,
    /// Upper bound on connections open at once from one IP address (`per_ip_limit`).
    pub max_connections_per_ip: usize,
    /// See [`DEFAULT_ICE_TCP_STUN_TIMEOUT`].
    pub stun_timeout: Duration,
}

impl IceTcpConfig {
    /// The listener on `port` with the default caps (1024 connections, 64 per IP address) and
    /// the 5 s STUN timeout.
    pub fn on_port(port: u16) -> Self {
        Self {
            port,
            max_connections: 1024,
            max_connections_per_ip: 64,
            stun_timeout: DEFAULT_ICE_TCP_STUN_TIMEOUT,
        }
    }
}

/// Why an ICE-TCP connection ended (the `reason` label of
/// `sfu_ice_tcp_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IceTcpClose {
    /// A frame whose first byte is no protocol the SFU speaks (RFC 7983), or a first frame that
    /// is not STUN.
    Garbage,
    /// A length field over the frame limit.
    OversizedFrame,
    /// No binding request proving a peer's ICE password within the STUN timeout.
    StunTimeout,
    /// A binding request for a second peer on a connection that carries one already.
    SecondPeer,
    /// The client did not read: its queue of frames to write filled up.
    WriteBacklog,
    /// The SFU closed the peer the connection carried, or the peer moved on to newer addresses.
    PeerClosed,
    /// The client closed the connection or it failed (reset, write error).
    RemoteClosed,
    /// Refused at accept: the source is outside the allow-list.
    SourceNotAllowed,
    /// Refused at accept: the listener holds its maximum of connections.
    GlobalLimit,
    /// Refused at accept: the source IP holds its maximum of connections.
    PerIpLimit,
    /// The shard stopped.
    Shutdown,
}

impl IceTcpClose {
    /// Every reason, in the order metrics list them.
    pub const ALL: [IceTcpClose; 11] = [
        IceTcpClose::Garbage,
        IceTcpClose::OversizedFrame,
        IceTcpClose::StunTimeout,
        IceTcpClose::SecondPeer,
        IceTcpClose::WriteBacklog,
        IceTcpClose::PeerClosed,
        IceTcpClose::RemoteClosed,
        IceTcpClose::SourceNotAllowed,
        IceTcpClose::GlobalLimit,
        IceTcpClose::PerIpLimit,
        IceTcpClose::Shutdown,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            IceTcpClose::Garbage => "garbage",
            IceTcpClose::OversizedFrame => "oversized_frame",
            IceTcpClose::StunTimeout => "stun_timeout",
            IceTcpClose::SecondPeer => "second_peer",
            IceTcpClose::WriteBacklog => "write_backlog",
            IceTcpClose::PeerClosed => "peer_closed",
            IceTcpClose::RemoteClosed => "remote_closed",
            IceTcpClose::SourceNotAllowed => "source_not_allowed",
            IceTcpClose::GlobalLimit => "global_limit",
            IceTcpClose::PerIpLimit => "per_ip_limit",
            IceTcpClose::Shutdown => "shutdown",
        }
    }

    fn index(self) -> usize {
        // ALL lists every variant once, so the position exists.
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .expect("ALL lists every reason")
    }
}

/// Closed ICE-TCP connections by reason (a shard counter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceTcpCloses([u64; IceTcpClose::ALL.len()]);

impl IceTcpCloses {
    pub(crate) fn count(&mut self, reason: IceTcpClose) {
        self.0[reason.index()] += 1;
    }

    /// How many connections ended for `reason`.
    pub fn get(&self, reason: IceTcpClose) -> u64 {
        self.0[reason.index()]
    }

    /// Every reason with its count.
    pub fn iter(&self) -> impl Iterator<Item = (IceTcpClose, u64)> + '_ {
        IceTcpClose::ALL.iter().map(|r| (*r, self.get(*r)))
    }
}

/// Which accepted connection an input is about: the listener numbers them, so a late report
/// about a connection that ended is never taken for a newer one from the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionId(pub(crate) u64);

/// What the listener and the connection tasks tell the shard, in the order it happened on each
/// connection.
pub(crate) enum TcpInput {
    /// A connection was accepted; `link` is its write side.
    Opened { remote: SocketAddr, link: TcpLink },
    /// One frame read from connection `connection` from `remote`, at `read_at`.
    Frame {
        remote: SocketAddr,
        connection: ConnectionId,
        packet: BytesMut,
        read_at: Instant,
    },
    /// Connection `connection` from `remote` ended (or was refused at accept) for `reason`.
    Closed {
        remote: SocketAddr,
        connection: ConnectionId,
        reason: IceTcpClose,
    },
}

/// What the shard writes to a connection's task.
enum ToConnection {
    /// One packet to send as a frame.
    Packet(BytesMut),
    /// Write what is queued, then close for this reason.
    Close(IceTcpClose),
}

/// The shard's end of one connection: the queue of its write side and the signals to its task.
/// Held in the shard's map by remote address; dropping it lets the task finish what is queued.
pub(crate) struct TcpLink {
    /// The connection this is the write side of.
    pub(crate) connection: ConnectionId,
    outgoing: mpsc::Sender<ToConnection>,
    /// Ends the connection at once, queued frames or not.
    force_close: Option<oneshot::Sender<IceTcpClose>>,
    /// Stops the STUN timeout: the connection proved a peer's password.
    authenticated: Option<oneshot::Sender<()>>,
    /// The one peer this connection carries, once a binding request proved it.
    pub(crate) peer: Option<crate::transport::PeerId>,
}

/// The task's end of one connection.
struct ConnectionEnds {
    outgoing: mpsc::Receiver<ToConnection>,
    force_close: oneshot::Receiver<IceTcpClose>,
    authenticated: oneshot::Receiver<()>,
}

fn link_pair(connection: ConnectionId) -> (TcpLink, ConnectionEnds) {
    let (outgoing_tx, outgoing_rx) = mpsc::channel(WRITE_QUEUE_FRAMES);
    let (close_tx, close_rx) = oneshot::channel();
    let (auth_tx, auth_rx) = oneshot::channel();
    (
        TcpLink {
            connection,
            outgoing: outgoing_tx,
            force_close: Some(close_tx),
            authenticated: Some(auth_tx),
            peer: None,
        },
        ConnectionEnds {
            outgoing: outgoing_rx,
            force_close: close_rx,
            authenticated: auth_rx,
        },
    )
}

/// The write queue of a connection is full: its client does not read.
#[derive(Debug)]
pub(crate) struct Backlogged;

impl TcpLink {
    /// Queues `packet` for the connection; never waits.
    pub(crate) fn send(&self, packet: BytesMut) -> Result<(), Backlogged> {
        match self.outgoing.try_send(ToConnection::Packet(packet)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Backlogged),
            // The task ended; its `Closed` is on the way to the shard.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// The connection proved `peer`'s password: the STUN timeout stops.
    pub(crate) fn authenticate(&mut self, peer: crate::transport::PeerId) {
        self.peer = Some(peer);
        if let Some(signal) = self.authenticated.take() {
            let _ = signal.send(());
        }
    }

    /// Ends the connection for `reason`: after what is queued where the queue has room for the
    /// close, at once otherwise (and always for `WriteBacklog`).
    pub(crate) fn close(mut self, reason: IceTcpClose) {
        let graceful = reason != IceTcpClose::WriteBacklog
            && self.outgoing.try_send(ToConnection::Close(reason)).is_ok();
        if !graceful && let Some(force) = self.force_close.take() {
            let _ = force.send(reason);
        }
    }
}
