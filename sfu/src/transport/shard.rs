//! The shard: one tokio task owning one UDP socket and many peer connections.
//!
//! Demultiplexing: a STUN binding request is routed by the ufrag in its USERNAME (the SFU made
//! every ufrag, so it names the peer) and admitted only if its MESSAGE-INTEGRITY verifies with
//! that peer's password; the source address is then bound to the peer. Every other datagram is
//! routed by its source address, so only addresses that proved the ICE password reach a peer's
//! DTLS and SRTP. Sources outside the allow-list are dropped first, unread.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::config::TransportConfig;
use super::dtls_alert;
use super::error::{StartError, TransportError};
use super::events::{CloseReason, OutgoingTrack, PeerEvent, PeerId};
use super::media::{MediaHandler, Outbox};
use super::peer::{Peer, PeerFactory};
use super::send_batch::{self, SendBatch};
use super::stats::{ShardStats, StunRefusal};
use super::stun_gate::{self, StunMessage};

/// Largest datagram read from the socket.
const RECV_BUFFER: usize = 2048;
/// Datagrams read per wake-up before peers are driven (bounds the work per wake-up).
const RECV_BATCH: usize = 64;
/// Capacity of the command channel.
const COMMAND_CAPACITY: usize = 1024;

/// The result of adding a peer.
#[derive(Debug, Clone)]
pub struct PeerAdded {
    /// The new peer's id.
    pub peer: PeerId,
    /// The SDP answer to send back to the client.
    pub answer: String,
}

enum Command {
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
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddr,
}

impl ShardHandle {
    /// The socket's bound address (its port is the advertised port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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
    /// the shard uses [`Outbox`] instead, without this channel hop).
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

/// Binds the shard's socket, spawns its task on the current tokio runtime and returns a handle.
pub async fn start_shard<H: MediaHandler>(
    config: TransportConfig,
    handler: H,
) -> Result<ShardHandle, StartError> {
    let socket = UdpSocket::bind(config.bind).await?;
    let local_addr = socket.local_addr()?;
    let factory = PeerFactory::new(&config, local_addr.port()).map_err(StartError::Certificate)?;
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let advertised = SocketAddr::new(config.advertised_ip, local_addr.port());
    info!(%local_addr, %advertised, "transport shard listening");
    let state = ShardState {
        socket: Arc::new(socket),
        advertised,
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
    tokio::spawn(run(state, rx));
    Ok(ShardHandle {
        commands: tx,
        local_addr,
    })
}

struct ShardState<H> {
    socket: Arc<UdpSocket>,
    advertised: SocketAddr,
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
    /// Reused list of messages taken from one peer before they are dispatched.
    inbox: Vec<RTCMessage>,
}

enum Wake {
    Command(Option<Command>),
    Datagram(std::io::Result<(usize, SocketAddr)>),
    Timer,
    Writable,
}

async fn run<H: MediaHandler>(mut state: ShardState<H>, mut commands: mpsc::Receiver<Command>) {
    let socket = state.socket.clone();
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        state.drive_dirty(Instant::now());
        let deadline = state.timers.first().map(|(t, _)| *t);
        let wake = tokio::select! {
            biased;
            command = commands.recv() => Wake::Command(command),
            received = socket.recv_from(&mut buf) => Wake::Datagram(received),
            () = sleep_until(deadline), if deadline.is_some() => Wake::Timer,
            ready = socket.writable(), if !state.pending_out.is_empty() => {
                if ready.is_err() { state.pending_out.clear(); }
                Wake::Writable
            }
        };
        match wake {
            Wake::Command(None) => break,
            Wake::Command(Some(command)) => {
                state.on_command(command);
                // Take what else is queued, so sends issued together are flushed together.
                for _ in 1..RECV_BATCH {
                    match commands.try_recv() {
                        Ok(command) => state.on_command(command),
                        Err(_) => break,
                    }
                }
            }
            Wake::Datagram(Ok((n, src))) => {
                let now = Instant::now();
                state.on_datagram(src, &buf[..n], now);
                // Read what else is already queued before driving peers, so their output is
                // produced and sent in one pass.
                for _ in 1..RECV_BATCH {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, src)) => state.on_datagram(src, &buf[..n], now),
                        Err(_) => break,
                    }
                }
            }
            Wake::Datagram(Err(err)) => {
                // ICMP errors surface here on some platforms; they concern one destination.
                debug!(%err, "recv_from failed");
            }
            Wake::Timer => state.on_timers(Instant::now()),
            Wake::Writable => state.flush_pending(),
        }
    }
    let ids: Vec<PeerId> = state.peers.keys().copied().collect();
    let now = Instant::now();
    for id in ids {
        state.close_peer(id, CloseReason::Shutdown, now);
    }
    state.flush_batch();
    state.flush_pending();
    info!("transport shard stopped");
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

impl<H: MediaHandler> ShardState<H> {
    fn on_command(&mut self, command: Command) {
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
                    debug!(%peer, %err, "send_rtp refused");
                }
            }
            Command::SendRtcp { peer, rtcp } => {
                if let Err(err) = self.outbox(now).send_rtcp_bytes(peer, &rtcp) {
                    debug!(%peer, %err, "send_rtcp refused");
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
                let _ = reply.send(stats);
            }
        }
    }

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

    fn add_peer(
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

    /// Reports the negotiated outgoing tracks and sends a queued offer, if any.
    fn after_negotiation(&mut self, id: PeerId, now: Instant) {
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
    fn update_outgoing(
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
    fn offer_deferred(&mut self, id: PeerId, now: Instant) {
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

    fn offer_if_stable(&mut self, id: PeerId, now: Instant) {
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

    fn on_datagram(&mut self, src: SocketAddr, data: &[u8], now: Instant) {
        if !self.config.allowed_sources.allows(src.ip()) {
            self.stats.count_refusal(StunRefusal::SourceNotAllowed);
            return;
        }
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
                    peer.last_consent = Some(now);
                    let forgotten = peer.bind_address(src);
                    if let Some(old) = forgotten
                        && self.by_addr.get(&old) == Some(&id)
                    {
                        self.by_addr.remove(&old);
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
        let result = peer.pc.handle_read(TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.advertised,
                peer_addr: src,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        });
        if let Err(err) = result {
            debug!(%id, %err, "rtc refused a datagram");
        }
        // What the session's handlers refused inside (SRTP replay and authentication, RTP/RTCP
        // malformed after decryption) is counted there, not returned.
        let refused = peer.pc.take_read_errors();
        if refused != Default::default() {
            self.stats.add_rtc_refusals(&refused);
        }
        self.mark_dirty(id);
    }

    fn on_timers(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            peer.scheduled = None;
            if let Some(reason) = self.expiry(id, now) {
                self.close_peer(id, reason, now);
                continue;
            }
            if let Some(peer) = self.peers.get_mut(&id)
                && let Err(err) = peer.pc.handle_timeout(now)
            {
                debug!(%id, %err, "handle_timeout failed");
            }
            self.mark_dirty(id);
        }
    }

    /// The shard's own deadline for `id`: consent once connected, connect timeout before.
    fn liveness_deadline(&self, peer: &Peer) -> Instant {
        if peer.connected {
            peer.last_consent.unwrap_or(peer.created) + self.config.consent_timeout
        } else {
            peer.created + self.config.connect_timeout
        }
    }

    fn expiry(&self, id: PeerId, now: Instant) -> Option<CloseReason> {
        let peer = self.peers.get(&id)?;
        (now >= self.liveness_deadline(peer)).then_some(if peer.connected {
            CloseReason::ConsentExpired
        } else {
            CloseReason::ConnectTimeout
        })
    }

    fn reschedule(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        let liveness = self.liveness_deadline(peer);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let deadline = peer.pc.poll_timeout().map_or(liveness, |t| t.min(liveness));
        if peer.scheduled != Some(deadline) {
            if let Some(old) = peer.scheduled.take() {
                self.timers.remove(&(old, id));
            }
            peer.scheduled = Some(deadline);
            self.timers.insert((deadline, id));
        }
    }

    /// Drains every peer touched since the last pass: transmits, events, media for the handler.
    fn drive_dirty(&mut self, now: Instant) {
        // Handler callbacks can dirty other peers; bound the passes so a pathological handler
        // cannot spin the shard.
        for _ in 0..8 {
            if self.dirty.is_empty() {
                break;
            }
            let batch = std::mem::take(&mut self.dirty);
            for &id in &batch {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.dirty = false;
                }
                self.drive_peer(id, now);
            }
            let mut batch = batch;
            batch.clear();
            if self.dirty.is_empty() {
                self.dirty = batch;
            }
        }
        self.flush_pending();
        self.flush_batch();
    }

    /// Writes the datagrams of this pass (after what was queued before them); what the socket
    /// does not take now is queued behind them.
    fn flush_batch(&mut self) {
        self.stats.send_unvalidated_destination +=
            std::mem::take(&mut self.batch.unvalidated_destination);
        if self.batch.datagrams.is_empty() {
            return;
        }
        let written = if self.pending_out.is_empty() {
            send_batch::send_all(&self.socket, &self.batch.datagrams)
        } else {
            0
        };
        self.stats.datagrams_out += written as u64;
        for (dest, data) in self.batch.datagrams.drain(written..) {
            if self.pending_out.len() >= self.config.max_pending_datagrams {
                self.stats.send_queue_full += 1;
                continue;
            }
            self.pending_out.push_back((dest, data));
        }
        self.batch.datagrams.clear();
    }

    fn drive_peer(&mut self, id: PeerId, now: Instant) {
        let mut close: Option<CloseReason> = None;
        let mut events = Vec::new();
        {
            let Some(peer) = self.peers.get_mut(&id) else {
                return;
            };
            while let Some(transmit) = peer.pc.poll_write() {
                let dest = transmit.transport.peer_addr;
                if !peer.addresses.contains(&dest) {
                    self.stats.send_unvalidated_destination += 1;
                    continue;
                }
                if dtls_alert::contains_alert(&transmit.message) {
                    if peer.connected {
                        // After the handshake `rtc-dtls` sends an alert only as the reply to
                        // the peer's authenticated close_notify or on a fatal error: either way
                        // the session is over, though `rtc` keeps reporting `Connected` (a
                        // closed DTLS transport over connected ICE counts as connected).
                        close.get_or_insert(CloseReason::PeerClosed);
                    } else {
                        close = Some(CloseReason::DtlsFailed);
                    }
                }
                self.batch.datagrams.push((dest, transmit.message));
            }
            while let Some(event) = peer.pc.poll_event() {
                match event {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                        RTCPeerConnectionState::Connected if !peer.connected => {
                            peer.connected = true;
                            events.push(PeerEvent::Connected {
                                peer: id,
                                join_latency: now.saturating_duration_since(peer.created),
                            });
                        }
                        RTCPeerConnectionState::Failed => {
                            close.get_or_insert(CloseReason::Failed);
                        }
                        RTCPeerConnectionState::Closed => {
                            close.get_or_insert(CloseReason::PeerClosed);
                        }
                        _ => {}
                    },
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        if let Some(track) = peer.incoming_track(&init) {
                            events.push(PeerEvent::IncomingTrack { peer: id, track });
                        }
                    }
                    _ => {}
                }
            }
            while let Some(message) = peer.pc.poll_read() {
                self.inbox.push(message.message);
            }
        }

        let connected_now = events
            .iter()
            .any(|e| matches!(e, PeerEvent::Connected { .. }));
        for event in events {
            self.emit(event, now);
        }
        if connected_now {
            self.offer_deferred(id, now);
        }
        let mut inbox = std::mem::take(&mut self.inbox);
        for message in inbox.drain(..) {
            self.dispatch_media(id, message, now);
        }
        self.inbox = inbox;

        if let Some(reason) = close {
            self.close_peer(id, reason, now);
        } else {
            self.reschedule(id);
        }
    }

    fn dispatch_media(&mut self, id: PeerId, message: RTCMessage, now: Instant) {
        self.scratch.clear();
        let is_rtp = match message {
            RTCMessage::RtpPacket(_, packet) => {
                self.scratch.resize(packet.marshal_size(), 0);
                if packet.marshal_to(&mut self.scratch).is_err() {
                    return;
                }
                self.stats.rtp_in += 1;
                true
            }
            RTCMessage::RtcpPacket(_, packets) => {
                let total = packets.iter().map(|p| p.marshal_size()).sum();
                self.scratch.resize(total, 0);
                let mut offset = 0;
                for packet in &packets {
                    match packet.marshal_to(&mut self.scratch[offset..]) {
                        Ok(n) => offset += n,
                        Err(_) => return,
                    }
                }
                self.stats.rtcp_in += 1;
                false
            }
            _ => return,
        };
        let mut outbox = Outbox {
            peers: &mut self.peers,
            dirty: &mut self.dirty,
            batch: &mut self.batch,
            now,
        };
        if is_rtp {
            self.handler.on_rtp(id, &self.scratch, now, &mut outbox);
        } else {
            self.handler.on_rtcp(id, &self.scratch, now, &mut outbox);
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
                    self.batch.datagrams.push((dest, transmit.message));
                }
            }
        }
        info!(%id, ?reason, "peer closed");
        drop(peer);
        self.emit(PeerEvent::Closed { peer: id, reason }, now);
    }

    /// Writes what waited for the socket to become writable, oldest first.
    fn flush_pending(&mut self) {
        let written = send_batch::send_all(&self.socket, self.pending_out.make_contiguous());
        self.stats.datagrams_out += written as u64;
        self.pending_out.drain(..written);
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
