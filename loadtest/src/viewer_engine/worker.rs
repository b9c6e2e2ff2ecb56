//! One worker: a thread that owns a set of viewers' sockets and peer connections and drives
//! them, the way an SFU shard drives its peers (`sfu/src/transport/shard/drive.rs`).
//!
//! The loop waits on one `epoll` for every viewer's socket, the worker's command `eventfd` and
//! the earliest timer. Then, in one pass: every ready socket is read with `recvmmsg` and its
//! datagrams go to its viewer's `handle_read`; due timers get `handle_timeout`; queued
//! commands (control rate: offers, answers, keys) are applied; every viewer touched is driven
//! (`poll_write` → `sendmmsg`, `poll_event`, `poll_read` → [`MediaReceiver`]) and its next
//! deadline filed. Live counters are updated once per pass, not per packet.

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use e2ee_frames::{BaseKey, CipherSuite};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::message::TaggedRTCMessage;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use sfu_forwarding::rtp::{Extensions, RtpPacket};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

use super::datagrams::{RECV_BATCH, RecvBatch, send_all};
use super::feedback::{Arrival, ViewerFeedback};
use super::receiver::{MediaReceiver, RtpView};
use super::viewer_peer::ViewerPeer;
use crate::participant::LiveCounters;
use crate::secure_media::{FrameOpener, MissingKey};

/// The epoll token of the command `eventfd` (viewer ids are smaller).
const WAKE_TOKEN: u64 = u64::MAX;

/// Epoll events taken per wait.
const EVENTS_PER_WAIT: usize = 256;

/// Longest wait without a timer (commands wake the loop themselves).
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// Receive buffer asked for each viewer's socket: a keyframe burst of a 2.5 Mb/s screen share
/// while the worker is busy with other viewers.
const SOCKET_RECV_BUFFER: usize = 1 << 20;

/// A viewer's number in the run (unique over every worker).
pub(super) type ViewerId = u64;

/// What the signaling side asks a worker to do for one viewer (control rate).
pub(super) enum Command {
    /// A new media session: bind a socket, build the peer, reply with its offer. On a
    /// `media_reset` the same command replaces the session; keys and measurements stay.
    Open {
        viewer: ViewerId,
        media_via: Option<(SocketAddr, SocketAddr)>,
        events: tokio_mpsc::UnboundedSender<MediaEvent>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// The SFU's answer to the viewer's offer.
    Answer { viewer: ViewerId, sdp: String },
    /// An offer of the SFU (renegotiation); reply with the answer.
    Offer {
        viewer: ViewerId,
        sdp: String,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// A sender key opened from an envelope.
    InstallKey {
        viewer: ViewerId,
        slot: u16,
        generation: u16,
        step: u8,
        suite: CipherSuite,
        key: BaseKey,
    },
    /// A sender left the roster: forget its keys.
    RemoveSender { viewer: ViewerId, slot: u16 },
    /// The viewer leaves: close its session, reply with what it received.
    Close {
        viewer: ViewerId,
        reply: oneshot::Sender<Option<ViewerMedia>>,
    },
    /// The run is over: close every session and end the thread.
    Shutdown,
}

/// What a worker tells a viewer's signaling side.
#[derive(Debug)]
pub(super) enum MediaEvent {
    /// ICE and DTLS completed (at this instant).
    Connected(Instant),
    /// The session failed or was closed by the SFU.
    Failed(String),
    /// A key could not be installed.
    KeyRefused(String),
    /// A frame arrived that no held key opens (unknown sender or generation, or a step
    /// beyond the look-ahead): the key policy may ask its sender again.
    KeyMissing(MissingKey),
}

/// What a viewer received, handed back when it leaves.
#[derive(Debug)]
pub(super) struct ViewerMedia {
    pub(super) opener: FrameOpener,
    pub(super) broken_frames: u64,
}

/// The handle the signaling side sends commands through.
#[derive(Clone)]
pub(super) struct WorkerHandle {
    commands: mpsc::Sender<Command>,
    wake: Arc<EventFd>,
}

impl WorkerHandle {
    /// Queues `command` and wakes the worker. False when the worker is gone.
    pub(super) fn send(&self, command: Command) -> bool {
        if self.commands.send(command).is_err() {
            return false;
        }
        self.wake.write(1).is_ok()
    }
}

/// Counters a worker adds to once per pass, read by the engine.
#[derive(Debug, Default)]
pub(super) struct WorkerCounters {
    /// RTP packets received by the worker's viewers (after SRTP).
    pub(super) packets_received: AtomicU64,
    /// Of those, the packets that took the short path (SRTP decrypted without `rtc`'s
    /// pipeline).
    pub(super) packets_short_path: AtomicU64,
    /// Datagrams the kernel refused to send.
    pub(super) send_dropped: AtomicU64,
}

/// One viewer's media session inside a worker.
struct Viewer {
    socket: UdpSocket,
    /// The socket's address (asked once, not per read: `getsockname` is a system call).
    local: SocketAddr,
    peer: ViewerPeer,
    events: tokio_mpsc::UnboundedSender<MediaEvent>,
    /// Media kind of each remote track, learnt from `OnTrack`.
    kinds: HashMap<String, RtpCodecKind>,
    /// The RTCP this viewer owes the SFU about what it receives (`feedback.rs`).
    feedback: ViewerFeedback,
    /// Datagrams given to `rtc`'s pipeline and not drained yet: the short path waits, so
    /// packets reach the receiver in arrival order.
    pipeline_reads_pending: bool,
    connected: bool,
    failed: bool,
    /// The deadline this viewer is filed under in the timer set.
    scheduled: Option<Instant>,
    dirty: bool,
}

/// A worker's state, owned by its thread.
pub(super) struct Worker {
    epoll: Epoll,
    wake: Arc<EventFd>,
    commands: mpsc::Receiver<Command>,
    certificate: RTCCertificate,
    viewers: HashMap<ViewerId, Viewer>,
    /// Media of every viewer, kept across media sessions (a `media_reset` replaces the
    /// session, not the keys and measurements).
    media: HashMap<ViewerId, MediaReceiver>,
    timers: BTreeSet<(Instant, ViewerId)>,
    dirty: Vec<ViewerId>,
    out: Vec<(SocketAddr, BytesMut)>,
    epoch: Instant,
    live: Arc<LiveCounters>,
    counters: Arc<WorkerCounters>,
    /// Packets and frames counted in this pass, added to the shared counters at its end.
    pass_packets: u64,
    pass_short_path: u64,
    pass_frames: u64,
    /// A reused buffer for the RTCP a viewer writes.
    rtcp: Vec<u8>,
}

impl Worker {
    /// A worker and the handle to command it.
    pub(super) fn new(
        epoch: Instant,
        live: Arc<LiveCounters>,
        counters: Arc<WorkerCounters>,
    ) -> Result<(Self, WorkerHandle), String> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| e.to_string())?;
        let wake = Arc::new(
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| e.to_string())?,
        );
        epoll
            .add(
                wake.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, WAKE_TOKEN),
            )
            .map_err(|e| e.to_string())?;
        let (tx, commands) = mpsc::channel();
        let worker = Self {
            epoll,
            wake: wake.clone(),
            commands,
            certificate: super::viewer_peer::certificate()?,
            viewers: HashMap::new(),
            media: HashMap::new(),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            out: Vec::new(),
            epoch,
            live,
            counters,
            pass_packets: 0,
            pass_short_path: 0,
            pass_frames: 0,
            rtcp: Vec::new(),
        };
        Ok((worker, WorkerHandle { commands: tx, wake }))
    }

    /// Runs until [`Command::Shutdown`] (or every handle is dropped).
    pub(super) fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];
        // Made here, not in `new`: its headers hold raw pointers (not `Send`).
        let mut recv = RecvBatch::new();
        loop {
            let now = Instant::now();
            let wait = self
                .timers
                .first()
                .map_or(IDLE_WAIT, |(t, _)| t.saturating_duration_since(now))
                .min(IDLE_WAIT);
            // Round up: waking before the deadline would spin until it passes.
            let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(ms)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    eprintln!("viewer engine: epoll_wait failed: {e}");
                    return;
                }
            };
            let now = Instant::now();
            let mut commands_ready = false;
            for event in &events[..n] {
                match event.data() {
                    WAKE_TOKEN => commands_ready = true,
                    viewer => self.read_socket(&mut recv, viewer, now),
                }
            }
            self.fire_timers(now);
            if commands_ready {
                let _ = self.wake.read();
                loop {
                    match self.commands.try_recv() {
                        Ok(Command::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => {
                            self.shutdown();
                            return;
                        }
                        Ok(command) => self.on_command(command, now),
                        Err(mpsc::TryRecvError::Empty) => break,
                    }
                }
            }
            self.drive_dirty(now);
        }
    }

    fn read_socket(&mut self, recv: &mut RecvBatch, id: ViewerId, now: Instant) {
        let Some(viewer) = self.viewers.get_mut(&id) else {
            return;
        };
        let media = self.media.entry(id).or_default();
        let (packets, frames) = (media.packets, media.frames_decrypted);
        let arrival_us = now.duration_since(self.epoch).as_micros() as u64;
        let local = viewer.local;
        loop {
            // A read error (an ICMP error queued on the socket) ends this read, like none queued.
            let n = recv.read(&viewer.socket).unwrap_or_default();
            for i in 0..n {
                if viewer.receive_short(recv.datagram_mut(i), media, now, arrival_us) {
                    self.pass_short_path += 1;
                    continue;
                }
                // Not taken: `unprotect_rtp_in_place` left the datagram as it was read.
                let (_, source) = recv.received[i];
                let datagram = recv.datagram(i);
                let _ = viewer.peer.pc.handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: local,
                        peer_addr: source,
                        ecn: None,
                        transport_protocol: TransportProtocol::UDP,
                    },
                    message: BytesMut::from(datagram),
                });
                viewer.pipeline_reads_pending = true;
            }
            // Fewer than a full batch: the socket is drained (epoll is level-triggered, a
            // datagram that arrives now wakes the next wait).
            if n < RECV_BATCH {
                break;
            }
        }
        self.pass_packets += media.packets - packets;
        self.pass_frames += media.frames_decrypted - frames;
        mark_dirty(&mut self.dirty, id, viewer);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            if let Some(viewer) = self.viewers.get_mut(&id) {
                viewer.scheduled = None;
                let _ = viewer.peer.pc.handle_timeout(now);
                viewer.send_feedback(now, &mut self.rtcp);
                mark_dirty(&mut self.dirty, id, viewer);
            }
        }
    }

    fn on_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::Open {
                viewer,
                media_via,
                events,
                reply,
            } => {
                self.close_session(viewer);
                let _ = reply.send(self.open(viewer, media_via, events, now));
            }
            Command::Answer { viewer: id, sdp } => {
                if let Some(viewer) = self.viewers.get_mut(&id) {
                    if let Err(e) = viewer.peer.apply_answer(&sdp, now) {
                        let _ = viewer
                            .events
                            .send(MediaEvent::Failed(format!("answer: {e}")));
                    }
                    mark_dirty(&mut self.dirty, id, viewer);
                }
            }
            Command::Offer {
                viewer: id,
                sdp,
                reply,
            } => {
                let answer = match self.viewers.get_mut(&id) {
                    Some(viewer) => {
                        let answer = viewer.peer.answer(&sdp, now);
                        mark_dirty(&mut self.dirty, id, viewer);
                        answer
                    }
                    None => Err("no media session".to_owned()),
                };
                let _ = reply.send(answer);
            }
            Command::InstallKey {
                viewer,
                slot,
                generation,
                step,
                suite,
                key,
            } => {
                let media = self.media.entry(viewer).or_default();
                let installed = media
                    .opener
                    .keys_mut()
                    .install(now, slot, generation, step, suite, key);
                if let (Err(e), Some(v)) = (installed, self.viewers.get(&viewer)) {
                    let _ = v.events.send(MediaEvent::KeyRefused(e.to_string()));
                }
            }
            Command::RemoveSender { viewer, slot } => {
                if let Some(media) = self.media.get_mut(&viewer) {
                    media.opener.keys_mut().remove_sender(slot);
                }
            }
            Command::Close { viewer, reply } => {
                self.close_session(viewer);
                let media = self.media.remove(&viewer).map(|m| ViewerMedia {
                    opener: m.opener,
                    broken_frames: m.broken_frames,
                });
                let _ = reply.send(media);
            }
            Command::Shutdown => {}
        }
    }

    fn open(
        &mut self,
        id: ViewerId,
        media_via: Option<(SocketAddr, SocketAddr)>,
        events: tokio_mpsc::UnboundedSender<MediaEvent>,
        now: Instant,
    ) -> Result<String, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        // Best effort: the kernel caps it at net.core.rmem_max.
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::RcvBuf,
            &SOCKET_RECV_BUFFER,
        );
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let (peer, offer) = ViewerPeer::offer(&self.certificate, local, media_via, now)?;
        self.epoll
            .add(socket.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, id))
            .map_err(|e| e.to_string())?;
        self.media.entry(id).or_default().restart();
        let mut viewer = Viewer {
            socket,
            local,
            peer,
            events,
            kinds: HashMap::new(),
            feedback: ViewerFeedback::new(rand::random(), now),
            pipeline_reads_pending: false,
            connected: false,
            failed: false,
            scheduled: None,
            dirty: false,
        };
        mark_dirty(&mut self.dirty, id, &mut viewer);
        self.viewers.insert(id, viewer);
        Ok(offer)
    }

    /// Ends a viewer's media session (its DTLS close goes out), keeping its media state.
    fn close_session(&mut self, id: ViewerId) {
        let Some(mut viewer) = self.viewers.remove(&id) else {
            return;
        };
        if let Some(t) = viewer.scheduled.take() {
            self.timers.remove(&(t, id));
        }
        let _ = viewer.peer.pc.close();
        self.out.clear();
        while let Some(transmit) = viewer.peer.pc.poll_write() {
            self.out
                .push((transmit.transport.peer_addr, transmit.message));
        }
        send_all(&viewer.socket, &self.out);
        self.out.clear();
        let _ = self.epoll.delete(viewer.socket.as_fd());
    }

    fn shutdown(&mut self) {
        let ids: Vec<ViewerId> = self.viewers.keys().copied().collect();
        for id in ids {
            self.close_session(id);
        }
    }

    fn drive_dirty(&mut self, now: Instant) {
        let arrival_us = now.duration_since(self.epoch).as_micros() as u64;
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            self.drive(id, now, arrival_us);
        }
        self.dirty = dirty;
        self.dirty.clear();
        if self.pass_packets > 0 {
            self.counters
                .packets_received
                .fetch_add(std::mem::take(&mut self.pass_packets), Ordering::Relaxed);
        }
        if self.pass_short_path > 0 {
            self.counters
                .packets_short_path
                .fetch_add(std::mem::take(&mut self.pass_short_path), Ordering::Relaxed);
        }
        if self.pass_frames > 0 {
            self.live
                .frames_decrypted
                .fetch_add(std::mem::take(&mut self.pass_frames), Ordering::Relaxed);
        }
    }

    fn drive(&mut self, id: ViewerId, now: Instant, arrival_us: u64) {
        let Some(viewer) = self.viewers.get_mut(&id) else {
            return;
        };
        viewer.dirty = false;
        let media = self.media.entry(id).or_default();
        let (packets, frames) = (media.packets, media.frames_decrypted);
        while let Some(event) = viewer.peer.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                    RTCPeerConnectionState::Connected if !viewer.connected => {
                        viewer.connected = true;
                        let _ = viewer.events.send(MediaEvent::Connected(now));
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                        if !viewer.failed =>
                    {
                        viewer.failed = true;
                        let _ = viewer
                            .events
                            .send(MediaEvent::Failed(format!("peer connection {state}")));
                    }
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    if let Some(receiver) = viewer.peer.pc.rtp_receiver(init.receiver_id) {
                        let kind = receiver.track().kind();
                        viewer.kinds.insert(init.track_id, kind);
                    }
                }
                _ => {}
            }
        }
        while let Some(message) = viewer.peer.pc.poll_read() {
            match message.message {
                RTCMessage::RtpPacket(track, packet) => {
                    let kind = viewer
                        .kinds
                        .get(&track)
                        .copied()
                        .unwrap_or_else(|| kind_of(packet.header.payload_type));
                    let transport_cc = viewer
                        .peer
                        .extension_ids
                        .transport_cc
                        .and_then(|id| packet.header.get_extension(id))
                        .and_then(|v| <[u8; 2]>::try_from(&v[..]).ok())
                        .map(u16::from_be_bytes);
                    let rtp = RtpView::from(&packet);
                    viewer
                        .feedback
                        .on_rtp(arrival(&rtp, kind, transport_cc, now));
                    media.on_rtp(kind, rtp, now, arrival_us);
                }
                RTCMessage::RtcpPacket(_, packets) => {
                    for packet in &packets {
                        if let Some(sr) = packet.as_any().downcast_ref::<SenderReport>() {
                            viewer.feedback.on_sender_report(sr.ssrc, sr.ntp_time, now);
                        }
                    }
                }
                _ => {}
            }
        }
        viewer.pipeline_reads_pending = false;
        // Frames without a key: the signaling side feeds them to the key policy (at most one
        // report per sender every 250 ms, so this stays at control rate).
        if media.opener.has_missing_keys() {
            for missing in media.opener.take_missing_keys() {
                let _ = viewer.events.send(MediaEvent::KeyMissing(missing));
            }
        }
        self.pass_packets += media.packets - packets;
        self.pass_frames += media.frames_decrypted - frames;
        self.out.clear();
        while let Some(transmit) = viewer.peer.pc.poll_write() {
            self.out
                .push((transmit.transport.peer_addr, transmit.message));
        }
        if !self.out.is_empty() {
            let dropped = send_all(&viewer.socket, &self.out);
            if dropped > 0 {
                self.counters
                    .send_dropped
                    .fetch_add(dropped, Ordering::Relaxed);
            }
            self.out.clear();
        }
        // File the next deadline: `rtc`'s, or the feedback's once the session is up.
        let mut deadline = viewer.peer.pc.poll_timeout();
        if viewer.connected {
            let due = viewer.feedback.deadline(now);
            deadline = Some(deadline.map_or(due, |t| t.min(due)));
        }
        if viewer.scheduled != deadline {
            if let Some(old) = viewer.scheduled.take() {
                self.timers.remove(&(old, id));
            }
            if let Some(t) = deadline {
                self.timers.insert((t, id));
            }
            viewer.scheduled = deadline;
        }
    }
}

impl Viewer {
    /// The short path: an SRTP packet of a stream `rtc` has established is decrypted in the
    /// receive buffer by the peer's SRTP context (`unprotect_rtp_in_place`, a patch of the
    /// vendored `rtc`: replay check and
    /// authentication included) and goes straight to the receiver and the feedback, without
    /// `rtc`'s read pipeline, as the SFU's shards receive (`sfu/src/transport/shard/
    /// short_receive.rs`). True when the datagram was taken: received, or refused by SRTP
    /// (lost, as the pipeline would lose it). Everything else (STUN, DTLS, SRTCP, a stream's
    /// first packets, retransmissions, anything while pipeline reads are undrained, so packets
    /// stay in arrival order) is left to the pipeline.
    fn receive_short(
        &mut self,
        datagram: &mut [u8],
        media: &mut MediaReceiver,
        now: Instant,
        arrival_us: u64,
    ) -> bool {
        if !self.connected
            || self.pipeline_reads_pending
            || !matches!(datagram.first(), Some(128..=191))
            || rtc::shared::util::is_rtcp(datagram)
        {
            return false;
        }
        // Decrypted in the receive buffer (no copy, no allocation): `None` touches nothing.
        let plaintext = match self.peer.pc.unprotect_rtp_in_place(datagram) {
            Ok(Some(len)) => &datagram[..len],
            Ok(None) => return false,
            Err(_) => {
                let _ = self.peer.pc.take_read_errors();
                return true;
            }
        };
        let Ok(packet) = RtpPacket::parse(plaintext) else {
            return true;
        };
        let kind = kind_of(packet.payload_type);
        let transport_cc = Extensions::parse(packet.extension, &self.peer.extension_ids)
            .ok()
            .and_then(|e| e.transport_cc);
        let rtp = RtpView::from(&packet);
        self.feedback.on_rtp(arrival(&rtp, kind, transport_cc, now));
        media.on_rtp(kind, rtp, now, arrival_us);
        true
    }

    /// Sends the RTCP the viewer owes the SFU now, if any, through `rtc` (SRTCP); `buf` is a
    /// reused buffer.
    fn send_feedback(&mut self, now: Instant, buf: &mut Vec<u8>) {
        if !self.connected || self.feedback.deadline(now) > now {
            return;
        }
        buf.clear();
        self.feedback.write(now, buf);
        if buf.is_empty() {
            return;
        }
        let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &buf[..]) else {
            return;
        };
        let _ = self.peer.pc.handle_write(TaggedRTCMessage {
            now,
            message: RTCMessage::RtcpPacket(String::new(), packets),
        });
    }
}

/// A packet's media kind by its payload type (the default codecs: Opus 111, VP8 96), as the
/// SFU maps them; RTX and other types reach the receiver through the pipeline by track.
fn kind_of(payload_type: u8) -> RtpCodecKind {
    if payload_type == call_client::peer::OPUS_PT {
        RtpCodecKind::Audio
    } else {
        RtpCodecKind::Video
    }
}

/// What the feedback records of a received packet.
fn arrival(
    rtp: &RtpView<'_>,
    kind: RtpCodecKind,
    transport_cc: Option<u16>,
    at: Instant,
) -> Arrival {
    Arrival {
        ssrc: rtp.ssrc,
        sequence_number: rtp.sequence_number,
        timestamp: rtp.timestamp,
        clock_rate: if kind == RtpCodecKind::Audio {
            48_000
        } else {
            90_000
        },
        transport_cc,
        at,
    }
}

fn mark_dirty(dirty: &mut Vec<ViewerId>, id: ViewerId, viewer: &mut Viewer) {
    if !viewer.dirty {
        viewer.dirty = true;
        dirty.push(id);
    }
}
