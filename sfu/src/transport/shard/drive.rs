//! The shard task's loop: wait for a command, a datagram, an ICE-TCP input, a timer (a peer's
//! or the media handler's) or a writable socket; handle it; then drive every peer touched (its
//! `rtc` output, events and decrypted media), run the work the handler deferred, and write the
//! pass's datagrams together.

use std::time::Instant;

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::sansio::Protocol;
use rtc::shared::marshal::{Marshal, MarshalSize};
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::TcpInput;
use super::access::ShardAccess;
use super::commands::Command;
use super::{RECV_BATCH, RECV_BUFFER, ShardState};
use crate::transport::dtls_alert;
use crate::transport::events::{CloseReason, PeerEvent, PeerId};
use crate::transport::media::{MediaHandler, Outbox};
use crate::transport::peer::Peer;
use crate::transport::send_batch;

enum Wake<H> {
    Command(Option<Command<H>>),
    /// The socket has datagrams to read (or an error to report).
    Readable(std::io::Result<()>),
    Tcp(Option<TcpInput>),
    Timer,
    Writable,
}

pub(super) async fn run<H: MediaHandler>(
    mut state: ShardState<H>,
    mut commands: mpsc::Receiver<Command<H>>,
    mut tcp_inputs: Option<mpsc::Receiver<TcpInput>>,
) {
    let socket = state.socket.clone();
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        state.settle(Instant::now());
        let deadline = state.next_deadline();
        let wake = tokio::select! {
            biased;
            command = commands.recv() => Wake::Command(command),
            ready = socket.readable() => Wake::Readable(ready),
            input = recv_tcp(&mut tcp_inputs), if tcp_inputs.is_some() => Wake::Tcp(input),
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
            Wake::Readable(Ok(())) => {
                // Read what is queued (up to a batch) before driving peers, so their output is
                // produced and sent in one pass. Each datagram's arrival time is when the
                // kernel received it, not when it is read here: it is what the transport-cc
                // feedback reports, and a probe burst read late, in one batch, would show the
                // sender a receive rate its link never had (see `udp_receive`).
                state.receiver.start_batch();
                for _ in 0..RECV_BATCH {
                    match state.receiver.try_recv(&socket, &mut buf) {
                        Ok(d) => state.on_datagram(d.src, &mut buf[..d.len], d.arrival),
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(err) => {
                            // ICMP errors surface here on some platforms; they concern one
                            // destination, and the next read goes on.
                            debug!(%err, "recvmsg failed");
                        }
                    }
                }
            }
            Wake::Readable(Err(err)) => {
                debug!(%err, "socket readiness failed");
            }
            Wake::Tcp(None) => tcp_inputs = None,
            Wake::Tcp(Some(input)) => {
                state.on_tcp_input(input);
                if let Some(inputs) = tcp_inputs.as_mut() {
                    for _ in 1..RECV_BATCH {
                        match inputs.try_recv() {
                            Ok(input) => state.on_tcp_input(input),
                            Err(_) => break,
                        }
                    }
                }
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

/// The next ICE-TCP input; never, without a listener.
async fn recv_tcp(inputs: &mut Option<mpsc::Receiver<TcpInput>>) -> Option<TcpInput> {
    match inputs {
        Some(inputs) => inputs.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

impl<H: MediaHandler> ShardState<H> {
    /// When the loop must wake at the latest: the earliest peer timer or the handler's own.
    fn next_deadline(&self) -> Option<Instant> {
        let peers = self.timers.first().map(|(t, _)| *t);
        match (peers, self.handler.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends a pass: drives the peers touched, runs the work the handler deferred (which may
    /// touch peers again: they are driven too), writes the pass's datagrams.
    fn settle(&mut self, now: Instant) {
        self.drive_dirty(now);
        H::run_deferred(&mut ShardAccess { shard: self, now });
        if !self.dirty.is_empty() || !self.batch.datagrams.is_empty() {
            self.drive_dirty(now);
        }
    }

    fn on_timers(&mut self, now: Instant) {
        if self.handler.poll_timeout().is_some_and(|t| t <= now) {
            let mut outbox = Outbox {
                peers: &mut self.peers,
                dirty: &mut self.dirty,
                batch: &mut self.batch,
                now,
            };
            self.handler.on_timeout(now, &mut outbox);
        }
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
        self.send_on_tcp_links();
        if self.batch.datagrams.is_empty() {
            return;
        }
        let written = if self.pending_out.is_empty() {
            send_batch::send_all(&self.socket, &self.batch.datagrams)
        } else {
            0
        };
        self.stats.datagrams_out += written as u64;
        let pool = &mut self.batch.pool;
        for (index, (dest, data)) in self.batch.datagrams.drain(..).enumerate() {
            if index < written {
                pool.give_back(data);
                continue;
            }
            if self.pending_out.len() >= self.config.max_pending_datagrams {
                self.stats.send_queue_full += 1;
                pool.give_back(data);
                continue;
            }
            self.pending_out.push_back((dest, data));
        }
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
                // `now` of a read message is its datagram's arrival time (`handle_read`'s `now`).
                self.inbox.push((message.now, message.message));
            }
            peer.pipeline_reads_pending = false;
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
        for (arrival, message) in inbox.drain(..) {
            self.dispatch_media(id, message, arrival, now);
        }
        self.inbox = inbox;

        if let Some(reason) = close {
            self.close_peer(id, reason, now);
        } else {
            self.reschedule(id);
        }
    }

    /// Hands one decrypted packet to the media handler: `arrival` is its datagram's (the
    /// kernel's receive time), `now` this pass's (the handler's sends leave at its end).
    fn dispatch_media(&mut self, id: PeerId, message: RTCMessage, arrival: Instant, now: Instant) {
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
            self.handler.on_rtp(id, &self.scratch, arrival, &mut outbox);
        } else {
            self.handler
                .on_rtcp(id, &self.scratch, arrival, &mut outbox);
        }
    }

    /// Writes what waited for the socket to become writable, oldest first.
    fn flush_pending(&mut self) {
        let written = send_batch::send_all(&self.socket, self.pending_out.make_contiguous());
        self.stats.datagrams_out += written as u64;
        for (_, data) in self.pending_out.drain(..written) {
            self.batch.pool.give_back(data);
        }
    }
}
