//! A UDP relay on loopback that impairs the link between clients and a server.
//!
//! Clients send to [`ImpairmentRelay::local_addr`] instead of the server. For each client
//! address the relay opens its own upstream socket towards the server (like a NAT), so the
//! server sees one distinct address per client and its replies find their way back. Each
//! direction has its own [`Impairment`] and its own random stream, seeded from the
//! configuration: with the same seed and the same packet order the same packets are dropped,
//! delayed and reordered.
//!
//! The relay runs on its own thread with a single-threaded tokio runtime, so it works the same
//! from a synchronous test, an async test or the load-test binary. It is bounded: it stops after
//! its configured lifetime, when [`ImpairmentRelay::stop`] is called or when the handle is
//! dropped; it serves at most `max_flows` clients and queues at most `queue_limit_bytes` per
//! direction.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::spec::Impairment;

/// Largest datagram relayed (anything longer is truncated by the socket and counted).
const MAX_DATAGRAM: usize = 65_535;

/// Receive buffer asked for on the relay's sockets, so a burst waits in the kernel instead of
/// being dropped there before the relay sees it (the kernel caps it at `net.core.rmem_max`).
const SOCKET_RCVBUF: usize = 4 << 20;

/// Asks for a larger receive buffer; a refusal leaves the default, which only matters for
/// bursts larger than it.
fn enlarge_receive_buffer<S: std::os::fd::AsFd>(socket: &S) {
    let _ = nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBuf, &SOCKET_RCVBUF);
}

/// Configuration of an [`ImpairmentRelay`].
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The server packets are relayed to. Must be a loopback address.
    pub server: SocketAddr,
    /// Where the relay listens for clients. Must be a loopback address; port 0 picks one.
    pub bind: SocketAddr,
    /// Impairment of packets from clients to the server.
    pub to_server: Impairment,
    /// Impairment of packets from the server to clients.
    pub to_client: Impairment,
    /// Seed of both directions' random decisions.
    pub seed: u64,
    /// Most clients served at once; packets from further clients are dropped and counted.
    pub max_flows: usize,
    /// The relay stops by itself after this long.
    pub lifetime: Duration,
}

impl RelayConfig {
    /// A relay to `server` with the same impairment both ways, seed 0, up to 1024 clients and
    /// a ten-minute lifetime.
    pub fn symmetric(server: SocketAddr, impairment: Impairment) -> Self {
        RelayConfig {
            server,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            to_server: impairment,
            to_client: impairment,
            seed: 0,
            max_flows: 1024,
            lifetime: Duration::from_secs(600),
        }
    }
}

/// Why a relay could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The server or bind address is not on loopback (the relay never sends anywhere else).
    #[error("{0} is not a loopback address")]
    NotLoopback(SocketAddr),
    /// Binding the client-facing socket or starting the relay thread failed.
    #[error("relay setup: {0}")]
    Io(#[from] std::io::Error),
}

/// Counters of one direction.
#[derive(Debug, Default)]
struct DirectionCounters {
    received: AtomicU64,
    forwarded: AtomicU64,
    forwarded_bytes: AtomicU64,
    dropped_loss: AtomicU64,
    dropped_queue: AtomicU64,
    reordered: AtomicU64,
    send_errors: AtomicU64,
}

impl DirectionCounters {
    fn snapshot(&self) -> DirectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            received: get(&self.received),
            forwarded: get(&self.forwarded),
            forwarded_bytes: get(&self.forwarded_bytes),
            dropped_loss: get(&self.dropped_loss),
            dropped_queue: get(&self.dropped_queue),
            reordered: get(&self.reordered),
            send_errors: get(&self.send_errors),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    to_server: DirectionCounters,
    to_client: DirectionCounters,
    flows: AtomicU64,
    flows_refused: AtomicU64,
}

/// A snapshot of one direction's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionStats {
    /// Packets that entered the relay in this direction.
    pub received: u64,
    /// Packets handed to the socket towards their destination.
    pub forwarded: u64,
    /// Bytes of the forwarded packets.
    pub forwarded_bytes: u64,
    /// Packets dropped by the configured loss.
    pub dropped_loss: u64,
    /// Packets dropped because the queue was full (rate cap exceeded).
    pub dropped_queue: u64,
    /// Packets chosen to bypass the delay line.
    pub reordered: u64,
    /// Packets the socket refused to send.
    pub send_errors: u64,
}

/// A snapshot of a relay's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStats {
    /// Client to server.
    pub to_server: DirectionStats,
    /// Server to client.
    pub to_client: DirectionStats,
    /// Clients served.
    pub flows: u64,
    /// Packets from clients beyond `max_flows`, dropped.
    pub flows_refused: u64,
}

/// A running impairment relay; dropping it stops the relay.
#[derive(Debug)]
pub struct ImpairmentRelay {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ImpairmentRelay {
    /// Binds the client-facing socket and starts relaying on a new thread.
    pub fn start(config: RelayConfig) -> Result<Self, RelayError> {
        for addr in [config.server, config.bind] {
            if !is_loopback(addr.ip()) {
                return Err(RelayError::NotLoopback(addr));
            }
        }
        let socket = StdUdpSocket::bind(config.bind)?;
        socket.set_nonblocking(true)?;
        enlarge_receive_buffer(&socket);
        let local_addr = socket.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("impairment-relay".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match UdpSocket::from_std(socket) {
                        Ok(socket) => run(config, socket, thread_counters, stop_rx).await,
                        // The relay thread has no caller to return to; say why it is idle.
                        Err(e) => eprintln!("impairment relay: socket: {e}"),
                    }
                });
            })?;
        Ok(ImpairmentRelay {
            local_addr,
            counters,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address clients send to instead of the server.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The counters so far.
    pub fn stats(&self) -> RelayStats {
        snapshot(&self.counters)
    }

    /// Stops the relay, waits for its thread and returns the final counters. Packets still in
    /// the delay line are discarded.
    pub fn stop(mut self) -> RelayStats {
        self.shutdown();
        snapshot(&self.counters)
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The relay may already have ended by its lifetime; then nobody listens.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic in the relay thread is a bug; surface it in the caller's test.
            if thread.join().is_err() && !std::thread::panicking() {
                panic!("impairment relay thread panicked");
            }
        }
    }
}

impl Drop for ImpairmentRelay {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn snapshot(c: &Counters) -> RelayStats {
    RelayStats {
        to_server: c.to_server.snapshot(),
        to_client: c.to_client.snapshot(),
        flows: c.flows.load(Ordering::Relaxed),
        flows_refused: c.flows_refused.load(Ordering::Relaxed),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// Where a scheduled packet goes.
#[derive(Debug, Clone)]
enum Destination {
    /// To the server through this client's upstream socket.
    Server(Arc<UdpSocket>),
    /// To this client through the client-facing socket.
    Client(SocketAddr),
}

#[derive(Debug)]
struct Scheduled {
    data: Vec<u8>,
    dest: Destination,
    to_server: bool,
}

/// The state of one direction: its impairment, random stream and link occupancy.
#[derive(Debug)]
struct Link {
    impairment: Impairment,
    rng: ChaCha8Rng,
    /// When the rate-capped link finishes sending what is queued.
    busy_until: Instant,
    /// Latest release time given to an in-order packet (keeps jitter from reordering).
    last_release: Instant,
    queued_bytes: usize,
}

impl Link {
    fn new(impairment: Impairment, seed: u64, now: Instant) -> Self {
        Link {
            impairment,
            rng: ChaCha8Rng::seed_from_u64(seed),
            busy_until: now,
            last_release: now,
            queued_bytes: 0,
        }
    }

    /// Decides a packet's fate: refused (and why), or its release time and whether it was
    /// reordered.
    fn admit(&mut self, len: usize, now: Instant) -> Result<(Instant, bool), Refusal> {
        // Draw all three numbers for every packet, so one knob never shifts another's stream.
        let loss_draw: f64 = self.rng.random();
        let jitter_draw: f64 = self.rng.random_range(-1.0..=1.0);
        let reorder_draw: f64 = self.rng.random();
        if loss_draw < self.impairment.loss {
            return Err(Refusal::Loss);
        }
        if self.queued_bytes + len > self.impairment.queue_limit_bytes {
            return Err(Refusal::Queue);
        }
        let sent = match self.impairment.rate_bps {
            Some(bps) => {
                let start = self.busy_until.max(now);
                let serialization = Duration::from_secs_f64(len as f64 * 8.0 / bps as f64);
                self.busy_until = start + serialization;
                self.busy_until
            }
            None => now,
        };
        if reorder_draw < self.impairment.reorder {
            return Ok((sent, true));
        }
        let delay = self.impairment.delay.as_secs_f64()
            + self.impairment.jitter.as_secs_f64() * jitter_draw;
        let release = sent + Duration::from_secs_f64(delay.max(0.0));
        let release = release.max(self.last_release);
        self.last_release = release;
        Ok((release, false))
    }
}

/// Why [`Link::admit`] dropped a packet.
#[derive(Debug)]
enum Refusal {
    Loss,
    Queue,
}

async fn run(
    config: RelayConfig,
    client_socket: UdpSocket,
    counters: Arc<Counters>,
    mut stop: oneshot::Receiver<()>,
) {
    let client_socket = Arc::new(client_socket);
    let start = Instant::now();
    let deadline = start + config.lifetime;
    let mut up = Link::new(config.to_server, config.seed, start);
    let mut down = Link::new(config.to_client, config.seed ^ 0x9e37_79b9_7f4a_7c15, start);
    let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut readers = Vec::new();
    let (from_server_tx, mut from_server) = mpsc::channel::<(SocketAddr, Vec<u8>)>(1024);
    let mut queue: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut parked: HashMap<u64, Scheduled> = HashMap::new();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];

    loop {
        let next_release = queue.peek().map(|Reverse((t, _))| *t);
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep_until(deadline) => break,
            _ = sleep_until_opt(next_release) => {
                let now = Instant::now();
                while let Some(Reverse((t, id))) = queue.peek().copied() {
                    if t > now {
                        break;
                    }
                    queue.pop();
                    // Every id in `queue` was inserted into `parked` together with it.
                    let packet = parked.remove(&id).expect("queued packet is parked");
                    let (link, dir) = if packet.to_server {
                        (&mut up, &counters.to_server)
                    } else {
                        (&mut down, &counters.to_client)
                    };
                    link.queued_bytes -= packet.data.len();
                    let sent = match &packet.dest {
                        Destination::Server(sock) => sock.send(&packet.data).await,
                        Destination::Client(addr) => client_socket.send_to(&packet.data, *addr).await,
                    };
                    match sent {
                        Ok(_) => {
                            dir.forwarded.fetch_add(1, Ordering::Relaxed);
                            dir.forwarded_bytes.fetch_add(packet.data.len() as u64, Ordering::Relaxed);
                        }
                        Err(_) => {
                            dir.send_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            received = client_socket.recv_from(&mut buf) => {
                let Ok((len, client)) = received else { continue };
                counters.to_server.received.fetch_add(1, Ordering::Relaxed);
                let upstream = match flows.get(&client) {
                    Some(sock) => Arc::clone(sock),
                    None => {
                        if flows.len() >= config.max_flows {
                            counters.flows_refused.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let Ok(sock) = open_upstream(config.server).await else {
                            counters.to_server.send_errors.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let sock = Arc::new(sock);
                        readers.push(tokio::spawn(read_upstream(
                            Arc::clone(&sock),
                            client,
                            from_server_tx.clone(),
                        )));
                        flows.insert(client, Arc::clone(&sock));
                        counters.flows.fetch_add(1, Ordering::Relaxed);
                        sock
                    }
                };
                let data = buf[..len].to_vec();
                schedule(&mut up, &counters.to_server, &mut queue, &mut parked, &mut next_id,
                    Scheduled { data, dest: Destination::Server(upstream), to_server: true });
            }
            Some((client, data)) = from_server.recv() => {
                counters.to_client.received.fetch_add(1, Ordering::Relaxed);
                schedule(&mut down, &counters.to_client, &mut queue, &mut parked, &mut next_id,
                    Scheduled { data, dest: Destination::Client(client), to_server: false });
            }
        }
    }
    for reader in readers {
        reader.abort();
    }
}

fn schedule(
    link: &mut Link,
    dir: &DirectionCounters,
    queue: &mut BinaryHeap<Reverse<(Instant, u64)>>,
    parked: &mut HashMap<u64, Scheduled>,
    next_id: &mut u64,
    packet: Scheduled,
) {
    match link.admit(packet.data.len(), Instant::now()) {
        Err(Refusal::Loss) => {
            dir.dropped_loss.fetch_add(1, Ordering::Relaxed);
        }
        Err(Refusal::Queue) => {
            dir.dropped_queue.fetch_add(1, Ordering::Relaxed);
        }
        Ok((release, reordered)) => {
            if reordered {
                dir.reordered.fetch_add(1, Ordering::Relaxed);
            }
            link.queued_bytes += packet.data.len();
            queue.push(Reverse((release, *next_id)));
            parked.insert(*next_id, packet);
            *next_id += 1;
        }
    }
}

async fn sleep_until_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn open_upstream(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let sock = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    enlarge_receive_buffer(&sock);
    sock.connect(server).await?;
    Ok(sock)
}

async fn read_upstream(
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    to_relay: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match sock.recv(&mut buf).await {
            Ok(len) => {
                if to_relay.send((client, buf[..len].to_vec())).await.is_err() {
                    return;
                }
            }
            // ICMP port unreachable surfaces as ECONNREFUSED on a connected UDP socket when
            // the server is not (yet) listening: keep reading.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(_) => return,
        }
    }
}
