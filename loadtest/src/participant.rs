//! One simulated participant: joins over the real signaling protocol, runs a real WebRTC
//! session with the SFU, exchanges SFrame keys through signaling, publishes encrypted media
//! and decrypts and measures every frame it receives.
//!
//! Three tasks per participant:
//! - the **control loop** ([`run_participant`]): the WebSocket, the peer connection's
//!   negotiation, subscriptions and key exchange (protocol §2, §4);
//! - the **publisher** (callers and presenters, once connected): Opus test tone every 20 ms,
//!   VP8-shaped frames per layer at the layer's frame rate, each frame with a probe, sealed
//!   with SFrame and packetized into RTP;
//! - the **receiver**: every RTP packet of every remote track, VP8 frames reassembled, every
//!   frame decrypted and measured ([`FrameOpener`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2ee_frames::{BaseKey, Codec, DeviceId, DeviceKeys, KeyEnvelope, Sender, Stream};
use futures_util::{SinkExt as _, StreamExt as _};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::client_protocol::{
    ClientMessage, Joined, ServerMessage, Subscription, TrackAnnouncement, TrackInfo,
};
use crate::key_exchange::{
    KeyChange, KeyRing, SUITE, next_generation, ratchet_or_rotate, wire_bundle,
};
use crate::media::opus_tone::OpusToneSource;
use crate::media::vp8_frames::{CAMERA_FPS, CAMERA_LAYERS, SimulcastLayer, SimulcastSource};
use crate::probe::PROBE_LEN;
use crate::receiver_stats::StatsTotals;
use crate::rtc_peer::{Incoming, LocalTrack, PeerError, RtcPeer, VideoLayer, bind_local_track};
use crate::rtp_media::{Vp8Packetizer, Vp8Reassembler};
use crate::secure_media::{FrameOpener, FrameSealer};

/// The screen share a presenter sends: one 2.5 Mbit/s layer.
pub const SCREEN_LAYER: SimulcastLayer = SimulcastLayer {
    rid: "",
    width: 1920,
    height: 1080,
    bitrate_bps: 2_500_000,
};

/// Screen-share frame rate.
pub const SCREEN_FPS: u32 = 15;

/// Seconds between periodic keyframes. Short because the publisher does not answer PLI yet
/// (the `webrtc` crate delivers RTCP to the application only through a custom interceptor):
/// a new subscriber's video starts at the next periodic keyframe.
const KEYFRAME_INTERVAL_S: u32 = 1;

/// How often batched work (subscriptions, ratchets, rekey switches) is flushed.
const TICK: Duration = Duration::from_millis(100);

/// Least time between two `subscribe` messages (they replace the whole set).
const SUBSCRIBE_EVERY: Duration = Duration::from_millis(300);

/// How long a new generation waits for acknowledgements before it is used anyway.
const REKEY_SWITCH_TIMEOUT: Duration = Duration::from_millis(1500);

/// Server errors kept per participant for the run's diagnostics.
const MAX_ERRORS_KEPT: usize = 4;

/// What a participant does in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Meeting caller: publishes Opus and three-layer camera simulcast, subscribes to all.
    Caller,
    /// Broadcast presenter: publishes Opus and a single-layer screen share.
    Presenter,
    /// Broadcast viewer: subscribes only.
    Viewer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Caller => "caller",
            Role::Presenter => "presenter",
            Role::Viewer => "viewer",
        }
    }

    fn publishes(self) -> bool {
        self != Role::Viewer
    }
}

/// How one participant is run.
#[derive(Debug, Clone)]
pub struct ParticipantSpec {
    /// Index in the run (the probe's sender field).
    pub index: u16,
    /// Role.
    pub role: Role,
    /// Room name.
    pub room: String,
    /// WebSocket URL of `/v1/rtc`.
    pub ws_url: String,
    /// Access token.
    pub token: String,
    /// The run's clock origin (probe times are µs since it).
    pub epoch: Instant,
    /// Seed of frame sizes.
    pub seed: u64,
    /// The SFU's media address and the impairment relay in front of it, when media is impaired.
    pub media_via: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
}

/// Counters shared with the runner while the run goes on.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Participants whose transport connected.
    pub joined: AtomicU64,
    /// Frames decrypted so far, over all participants.
    pub frames_decrypted: AtomicU64,
    /// Frames sent so far, over all publishers.
    pub frames_sent: AtomicU64,
}

/// What one participant measured.
#[derive(Debug, Clone, Default)]
pub struct ParticipantOutcome {
    /// Whether its transport connected.
    pub joined: bool,
    /// From opening the WebSocket to a connected transport.
    pub join_ms: Option<f64>,
    /// From opening the WebSocket to the first decrypted frame.
    pub first_frame_ms: Option<f64>,
    /// Received streams' statistics.
    pub totals: StatsTotals,
    /// Frames that failed SFrame authentication.
    pub decrypt_failures: u64,
    /// Frames that arrived before their key.
    pub frames_without_key: u64,
    /// VP8 frames lost to a missing RTP packet before decryption.
    pub broken_frames: u64,
    /// Frames this participant published.
    pub frames_sent: u64,
    /// Envelopes refused (bad signature, unknown sender...).
    pub envelope_failures: u64,
    /// The first server errors (code: message).
    pub errors: Vec<String>,
    /// Why the participant stopped early, if it did.
    pub failure: Option<String>,
}

/// Why a participant stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ParticipantError {
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The server closed the connection or removed the participant.
    #[error("server ended the session: {0}")]
    Closed(String),
    /// The server refused the join.
    #[error("join refused: {0}")]
    Refused(String),
    /// The peer connection failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// No media node is attached to the signaling service.
    #[error("signaling has no media node (joined.media is false)")]
    NoMedia,
    /// A sender key could not be made.
    #[error("sender key: {0}")]
    Key(String),
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Receiving state shared by the control loop (installs keys) and the receiver task.
type SharedOpener = Arc<Mutex<FrameOpener>>;

/// Sending state shared by the control loop (ratchets) and the publisher task.
type SharedSealer = Arc<Mutex<FrameSealer>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a task panicked; its state is still the best there is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs one participant until `stop` turns true (or the session fails).
pub async fn run_participant(
    spec: ParticipantSpec,
    counters: Arc<LiveCounters>,
    mut stop: watch::Receiver<bool>,
) -> ParticipantOutcome {
    let mut outcome = ParticipantOutcome::default();
    let opener: SharedOpener = Arc::new(Mutex::new(FrameOpener::new()));
    let started = Instant::now();
    let result = Session::run(&spec, &counters, &opener, &mut stop, &mut outcome, started).await;
    if let Err(e) = result {
        outcome.failure = Some(e.to_string());
    }
    let opener = lock(&opener);
    outcome.totals = opener.stats().totals();
    outcome.decrypt_failures = opener.decrypt_failures();
    outcome.frames_without_key = opener.frames_without_key();
    outcome.first_frame_ms = opener.first_frame_us().map(|us| {
        let started_us = started.duration_since(spec.epoch).as_micros() as f64;
        ((us as f64 - started_us) / 1000.0).max(0.0)
    });
    outcome
}

/// A pending new generation: used once every recipient acknowledged it, or after a timeout.
struct PendingGeneration {
    sender: Sender,
    awaiting: HashSet<String>,
    deadline: Instant,
}

struct Session<'a> {
    spec: &'a ParticipantSpec,
    ws: Ws,
    peer: Option<RtcPeer>,
    ring: KeyRing,
    joined: Joined,
    sealer: Option<SharedSealer>,
    opener: &'a SharedOpener,
    pending_envelopes: Vec<KeyEnvelope>,
    ratchet_for: HashSet<String>,
    pending_generation: Option<PendingGeneration>,
    tracks: BTreeMap<String, TrackInfo>,
    subscriptions_dirty: bool,
    last_subscribe: Option<Instant>,
    connected: bool,
}

impl<'a> Session<'a> {
    async fn run(
        spec: &'a ParticipantSpec,
        counters: &Arc<LiveCounters>,
        opener: &'a SharedOpener,
        stop: &mut watch::Receiver<bool>,
        outcome: &mut ParticipantOutcome,
        started: Instant,
    ) -> Result<(), ParticipantError> {
        let (mut ws, _) = tokio_tungstenite::connect_async(spec.ws_url.as_str())
            .await
            .map_err(|e| ParticipantError::WebSocket(e.to_string()))?;
        let device = DeviceId::new(format!("lt-{}-{}", spec.role.name(), spec.index))
            .map_err(|e| ParticipantError::Key(e.to_string()))?;
        let keys = DeviceKeys::generate(device, &mut rand_crypto::rng());
        let join = ClientMessage::Join {
            v: crate::client_protocol::PROTOCOL_VERSION,
            room: spec.room.clone(),
            token: spec.token.clone(),
            name: format!("loadtest {} {}", spec.role.name(), spec.index),
            device: wire_bundle(&keys),
        };
        send(&mut ws, &join).await?;
        let joined = loop {
            match next_message(&mut ws).await? {
                ServerMessage::Joined(j) => break *j,
                ServerMessage::Error { code, message } => {
                    return Err(ParticipantError::Refused(format!("{code}: {message}")));
                }
                _ => {}
            }
        };
        if !joined.media {
            return Err(ParticipantError::NoMedia);
        }
        let ring = KeyRing::new(keys, &joined.room, &joined.call);
        let mut session = Session {
            spec,
            ws,
            peer: None,
            ring,
            tracks: joined
                .tracks
                .iter()
                .map(|t| (t.id.clone(), t.clone()))
                .collect(),
            joined,
            sealer: None,
            opener,
            pending_envelopes: Vec::new(),
            ratchet_for: HashSet::new(),
            pending_generation: None,
            subscriptions_dirty: true,
            last_subscribe: None,
            connected: false,
        };
        let result = session.drive(counters, stop, outcome, started).await;
        if let Some(peer) = &session.peer {
            peer.close().await;
        }
        let _ = send(&mut session.ws, &ClientMessage::Leave {}).await;
        let _ = session.ws.close(None).await;
        result
    }

    async fn drive(
        &mut self,
        counters: &Arc<LiveCounters>,
        stop: &mut watch::Receiver<bool>,
        outcome: &mut ParticipantOutcome,
        started: Instant,
    ) -> Result<(), ParticipantError> {
        for device in self.joined.roster.devices.clone() {
            if let Err(e) = self.ring.add_peer(&device) {
                outcome.envelope_failures += 1;
                keep_error(outcome, e.to_string());
            }
        }
        // Media session: tracks, offer, answer.
        let (mut peer, incoming) = RtcPeer::new().await?;
        if let Some((server, relay)) = self.spec.media_via {
            peer.route_media_via(server, relay);
        }
        let mut published = Vec::new();
        let mut announcements = Vec::new();
        match self.spec.role {
            Role::Caller | Role::Presenter => {
                let base = u32::from(self.spec.index) << 8 | 0x4000_0000;
                let audio = peer.add_audio("mic", base).await?;
                published.push(("mic", audio));
                let (name, layers) = if self.spec.role == Role::Caller {
                    (
                        "camera",
                        CAMERA_LAYERS
                            .iter()
                            .zip(1u32..)
                            .map(|(l, i)| VideoLayer {
                                rid: Some(l.rid),
                                ssrc: base + i,
                            })
                            .collect::<Vec<_>>(),
                    )
                } else {
                    (
                        "screen",
                        vec![VideoLayer {
                            rid: None,
                            ssrc: base + 1,
                        }],
                    )
                };
                published.push((name, peer.add_video(name, &layers).await?));
            }
            Role::Viewer => {
                peer.add_recvonly(RtpCodecKind::Audio).await?;
                peer.add_recvonly(RtpCodecKind::Video).await?;
            }
        }
        let offer = peer.offer().await?;
        for (name, track) in &mut published {
            bind_local_track(track, name, &offer);
            if let Some(mid) = track.mid() {
                announcements.push(TrackAnnouncement {
                    mid: mid.to_owned(),
                    kind: if *name == "mic" { "audio" } else { "video" }.into(),
                    source: match *name {
                        "mic" => "microphone",
                        "camera" => "camera",
                        _ => "screen",
                    }
                    .into(),
                    layers: if *name == "camera" {
                        vec!["low".into(), "medium".into(), "high".into()]
                    } else {
                        vec![]
                    },
                });
            }
        }
        send(
            &mut self.ws,
            &ClientMessage::Offer {
                sdp: offer,
                tracks: announcements,
            },
        )
        .await?;
        let mut state = peer.state();
        self.peer = Some(peer);

        // Keys: a publisher's first generation goes to everyone in the roster.
        if self.spec.role.publishes() && self.joined.can_publish {
            let sender = Sender::new(
                SUITE,
                self.joined.slot,
                0,
                BaseKey::random(&mut rand_crypto::rng()),
            )
            .map_err(|e| ParticipantError::Key(e.to_string()))?;
            let everyone: Vec<String> = self.ring.peer_ids().map(str::to_owned).collect();
            self.send_keys(&sender, &everyone, outcome).await?;
            self.sealer = Some(Arc::new(Mutex::new(FrameSealer::new(
                sender,
                self.spec.index,
            ))));
        }

        let receiver = tokio::spawn(receive_media(
            incoming,
            self.opener.clone(),
            self.spec.epoch,
            counters.clone(),
        ));
        let mut publisher: Option<tokio::task::JoinHandle<u64>> = None;
        let (pub_stop_tx, pub_stop) = watch::channel(false);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut local_tracks = Some(published);

        let result = loop {
            tokio::select! {
                msg = next_message(&mut self.ws) => {
                    match msg {
                        Ok(m) => {
                            if let Err(e) = self.on_message(m, outcome).await {
                                break Err(e);
                            }
                        }
                        Err(e) => break Err(e),
                    }
                }
                changed = state.changed() => {
                    if changed.is_err() {
                        break Err(ParticipantError::Closed("peer connection gone".into()));
                    }
                    let s = *state.borrow_and_update();
                    match s {
                        RTCPeerConnectionState::Connected if !self.connected => {
                            self.connected = true;
                            outcome.joined = true;
                            outcome.join_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                            counters.joined.fetch_add(1, Ordering::Relaxed);
                            if let (Some(sealer), Some(tracks)) = (&self.sealer, local_tracks.take()) {
                                publisher = Some(tokio::spawn(publish_media(
                                    self.spec.clone(),
                                    sealer.clone(),
                                    tracks.into_iter().map(|(_, t)| t).collect(),
                                    counters.clone(),
                                    pub_stop.clone(),
                                )));
                            }
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            break Err(ParticipantError::Closed(format!("peer connection {s}")));
                        }
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.on_tick(outcome).await {
                        break Err(e);
                    }
                }
                _ = stopped(stop) => break Ok(()),
            }
        };
        let _ = pub_stop_tx.send(true);
        if let Some(p) = publisher {
            outcome.frames_sent = p.await.unwrap_or(0);
        }
        receiver.abort();
        if let Ok(broken) = receiver.await {
            outcome.broken_frames = broken;
        }
        result
    }

    async fn on_message(
        &mut self,
        msg: ServerMessage,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        match msg {
            ServerMessage::Answer { sdp } => {
                if let Some(peer) = &self.peer {
                    peer.apply_answer(&sdp).await?;
                }
            }
            ServerMessage::Offer { sdp } => {
                if let Some(peer) = &self.peer {
                    let answer = peer.answer(&sdp).await?;
                    send(&mut self.ws, &ClientMessage::Answer { sdp: answer }).await?;
                }
            }
            ServerMessage::Roster { added, removed, .. } => {
                for device in &added {
                    if let Err(e) = self.ring.add_peer(device) {
                        outcome.envelope_failures += 1;
                        keep_error(outcome, e.to_string());
                    }
                }
                for device in &removed {
                    if let Some(peer) = self.ring.remove_peer(device) {
                        lock(self.opener).keys_mut().remove_sender(peer.slot);
                    }
                }
                if !added.is_empty() {
                    self.retry_pending_envelopes(outcome).await?;
                }
            }
            ServerMessage::Membership {
                action,
                joined,
                left,
            } => {
                if self.sealer.is_some() {
                    if action == "ratchet" {
                        let me = self.ring.device().to_owned();
                        self.ratchet_for
                            .extend(joined.into_iter().filter(|d| *d != me));
                    } else if action == "rekey" && !left.is_empty() {
                        self.start_rekey(outcome).await?;
                    }
                }
            }
            ServerMessage::TrackPublished { track } => {
                self.tracks.insert(track.id.clone(), track);
                self.subscriptions_dirty = true;
            }
            ServerMessage::TrackUnpublished { track } => {
                self.tracks.remove(&track);
                self.subscriptions_dirty = true;
            }
            ServerMessage::KeyEnvelope { envelope } => {
                match KeyEnvelope::from_json(&envelope.to_string()) {
                    Ok(env) => self.install_envelope(env, outcome).await?,
                    Err(e) => {
                        outcome.envelope_failures += 1;
                        keep_error(outcome, e.to_string());
                    }
                }
            }
            ServerMessage::KeyAck {
                from, generation, ..
            } => {
                if let Some(p) = &mut self.pending_generation
                    && p.sender.generation() == generation
                {
                    p.awaiting.remove(&from);
                }
            }
            ServerMessage::KeyRequest { from } => {
                if let Some(sealer) = &self.sealer {
                    let env = {
                        let mut s = lock(sealer);
                        self.ring
                            .wrap(s.sender_mut(), &from, &mut rand_crypto::rng())
                    };
                    if let Ok(env) = env {
                        self.send_envelope(&env).await?;
                    }
                }
            }
            ServerMessage::Error { code, message } => {
                keep_error(outcome, format!("{code}: {message}"));
            }
            ServerMessage::Left { reason } => return Err(ParticipantError::Closed(reason)),
            ServerMessage::Joined(_) | ServerMessage::Unknown => {}
        }
        Ok(())
    }

    async fn on_tick(&mut self, outcome: &mut ParticipantOutcome) -> Result<(), ParticipantError> {
        // One ratchet for every joiner since the last tick.
        if !self.ratchet_for.is_empty()
            && let Some(sealer) = self.sealer.clone()
        {
            let joiners: Vec<String> = self.ratchet_for.drain().collect();
            let (change, envelopes) = {
                let mut s = lock(&sealer);
                let mut rng = rand_crypto::rng();
                let change = ratchet_or_rotate(s.sender_mut(), &mut rng)
                    .map_err(|e| ParticipantError::Key(e.to_string()))?;
                let to: Vec<String> = match change {
                    KeyChange::Ratcheted => joiners,
                    KeyChange::NewGeneration => self.ring.peer_ids().map(str::to_owned).collect(),
                };
                let envelopes: Vec<_> = to
                    .iter()
                    .filter_map(|d| self.ring.wrap(s.sender_mut(), d, &mut rng).ok())
                    .collect();
                (change, envelopes)
            };
            let _ = change;
            for env in &envelopes {
                self.send_envelope(env).await?;
            }
        }
        if let Some(p) = &self.pending_generation
            && (p.awaiting.is_empty() || Instant::now() >= p.deadline)
            && let (Some(p), Some(sealer)) = (self.pending_generation.take(), &self.sealer)
        {
            *lock(sealer).sender_mut() = p.sender;
        }
        if self.connected
            && self.subscriptions_dirty
            && self
                .last_subscribe
                .is_none_or(|t| t.elapsed() >= SUBSCRIBE_EVERY)
        {
            self.subscriptions_dirty = false;
            self.last_subscribe = Some(Instant::now());
            let me = self.ring.device().to_owned();
            let subscriptions = self
                .tracks
                .values()
                .filter(|t| t.publisher != me)
                .map(|t| {
                    let small = t.kind == "video" && t.source == "camera";
                    Subscription {
                        track: t.id.clone(),
                        layer: None,
                        width: small.then_some(320),
                        height: small.then_some(180),
                    }
                })
                .collect();
            send(&mut self.ws, &ClientMessage::Subscribe { subscriptions }).await?;
        }
        let _ = outcome;
        Ok(())
    }

    async fn start_rekey(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let Some(sealer) = self.sealer.clone() else {
            return Ok(());
        };
        let base = match &self.pending_generation {
            Some(p) => next_generation(&p.sender, &mut rand_crypto::rng()),
            None => next_generation(lock(&sealer).sender_mut(), &mut rand_crypto::rng()),
        }
        .map_err(|e| ParticipantError::Key(e.to_string()))?;
        let everyone: Vec<String> = self.ring.peer_ids().map(str::to_owned).collect();
        self.send_keys(&base, &everyone, outcome).await?;
        self.pending_generation = Some(PendingGeneration {
            sender: base,
            awaiting: everyone.into_iter().collect(),
            deadline: Instant::now() + REKEY_SWITCH_TIMEOUT,
        });
        Ok(())
    }

    async fn send_keys(
        &mut self,
        sender: &Sender,
        to: &[String],
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let envelopes: Vec<_> = {
            let mut rng = rand_crypto::rng();
            to.iter()
                .map(|device| self.ring.wrap(sender, device, &mut rng))
                .collect()
        };
        for env in envelopes {
            match env {
                Ok(env) => self.send_envelope(&env).await?,
                Err(e) => keep_error(outcome, e.to_string()),
            }
        }
        Ok(())
    }

    async fn send_envelope(&mut self, env: &KeyEnvelope) -> Result<(), ParticipantError> {
        // The e2ee-frames JSON form is the documented wire form.
        let envelope = serde_json::from_str(&env.to_json()).expect("envelope JSON is an object");
        send(&mut self.ws, &ClientMessage::KeyEnvelope { envelope }).await
    }

    async fn install_envelope(
        &mut self,
        env: KeyEnvelope,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        if self.ring.peer(&env.sender).is_none() {
            // The roster delta naming the sender has not arrived yet.
            self.pending_envelopes.push(env);
            return Ok(());
        }
        match self.ring.open(&env) {
            Ok((grant, key)) => {
                let installed = lock(self.opener).keys_mut().install(
                    Instant::now(),
                    grant.slot,
                    grant.generation,
                    grant.step,
                    grant.suite,
                    key,
                );
                if let Err(e) = installed {
                    keep_error(outcome, e.to_string());
                } else if grant.step == 0 {
                    let ack = ClientMessage::KeyAck {
                        to: env.sender.clone(),
                        generation: grant.generation,
                        step: grant.step,
                    };
                    send(&mut self.ws, &ack).await?;
                }
            }
            Err(e) => {
                outcome.envelope_failures += 1;
                keep_error(outcome, e.to_string());
            }
        }
        Ok(())
    }

    async fn retry_pending_envelopes(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let pending = std::mem::take(&mut self.pending_envelopes);
        for env in pending {
            self.install_envelope(env, outcome).await?;
        }
        Ok(())
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held in a `select!` across awaits.
    let _ = stop.wait_for(|s| *s).await;
}

fn keep_error(outcome: &mut ParticipantOutcome, e: String) {
    if outcome.errors.len() < MAX_ERRORS_KEPT {
        outcome.errors.push(e);
    }
}

async fn send(ws: &mut Ws, msg: &ClientMessage) -> Result<(), ParticipantError> {
    ws.send(Message::text(msg.to_json()))
        .await
        .map_err(|e| ParticipantError::WebSocket(e.to_string()))
}

/// The next protocol message; pings are answered by tungstenite, malformed text is skipped.
async fn next_message(ws: &mut Ws) -> Result<ServerMessage, ParticipantError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
                Ok(m) => return Ok(m),
                Err(_) => continue,
            },
            Some(Ok(Message::Close(frame))) => {
                return Err(ParticipantError::Closed(format!(
                    "websocket closed: {}",
                    frame.map(|f| f.code.to_string()).unwrap_or_default()
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(ParticipantError::WebSocket(e.to_string())),
            None => return Err(ParticipantError::Closed("websocket ended".into())),
        }
    }
}

/// Decrypts and measures every frame that arrives; returns the VP8 frames lost to missing
/// packets when the channel closes (or counts them until aborted).
async fn receive_media(
    mut incoming: mpsc::UnboundedReceiver<Incoming>,
    opener: SharedOpener,
    epoch: Instant,
    counters: Arc<LiveCounters>,
) -> u64 {
    let mut video: HashMap<u32, Vp8Reassembler> = HashMap::new();
    let mut broken = 0;
    while let Some(Incoming { kind, packet }) = incoming.recv().await {
        let arrival_us = epoch.elapsed().as_micros() as u64;
        let now = Instant::now();
        let opened = if kind == RtpCodecKind::Audio {
            lock(&opener)
                .open(now, Codec::Opus, &packet.payload, arrival_us)
                .is_ok()
        } else {
            let r = video.entry(packet.header.ssrc).or_default();
            let before = r.broken_frames();
            let frame = r.push(
                packet.header.sequence_number,
                packet.header.timestamp,
                packet.header.marker,
                &packet.payload,
            );
            let ok = match frame {
                Ok(Some(frame)) => lock(&opener)
                    .open(now, Codec::Vp8, frame, arrival_us)
                    .is_ok(),
                _ => false,
            };
            broken += r.broken_frames() - before;
            ok
        };
        if opened {
            counters.frames_decrypted.fetch_add(1, Ordering::Relaxed);
        }
    }
    broken
}

/// Publishes until `stop`: Opus every 20 ms, each video layer at its frame rate. Returns the
/// frames sent.
async fn publish_media(
    spec: ParticipantSpec,
    sealer: SharedSealer,
    mut tracks: Vec<LocalTrack>,
    counters: Arc<LiveCounters>,
    mut stop: watch::Receiver<bool>,
) -> u64 {
    let mut sent = 0u64;
    let Ok(mut tone) = OpusToneSource::new(440.0, 32_000) else {
        return 0;
    };
    let (layers, fps): (Vec<SimulcastLayer>, u32) = match spec.role {
        Role::Caller => (CAMERA_LAYERS.to_vec(), CAMERA_FPS),
        _ => (vec![SCREEN_LAYER], SCREEN_FPS),
    };
    let Ok(mut video) = SimulcastSource::new(
        &layers,
        fps,
        fps * KEYFRAME_INTERVAL_S,
        PROBE_LEN,
        spec.seed ^ u64::from(spec.index),
    ) else {
        return 0;
    };
    let mut packetizers: Vec<Vp8Packetizer> = (0..layers.len())
        .map(|i| Vp8Packetizer::new(spec.index.wrapping_mul(97).wrapping_add(i as u16)))
        .collect();
    let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
    let mut video_tick = tokio::time::interval(Duration::from_micros(1_000_000 / u64::from(fps)));
    audio_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    video_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut audio_n, mut video_n) = (0u32, 0u32);
    let mut wire = Vec::new();
    let mut payloads = Vec::new();
    let [audio_track, video_track] = &mut tracks[..] else {
        return 0;
    };
    loop {
        tokio::select! {
            _ = audio_tick.tick() => {
                let Ok(frame) = tone.next_frame() else { break };
                let t = spec.epoch.elapsed().as_micros() as u64;
                if lock(&sealer).seal(Stream::Audio, Codec::Opus, 0, &frame, t, &mut wire).is_err() {
                    continue;
                }
                audio_n = audio_n.wrapping_add(1);
                if audio_track
                    .write(0, audio_n.wrapping_mul(960), true, bytes::Bytes::copy_from_slice(&wire))
                    .await
                    .is_ok()
                {
                    sent += 1;
                    counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ = video_tick.tick() => {
                video_n = video_n.wrapping_add(1);
                let ts = video_n.wrapping_mul(90_000 / fps);
                let stream = if spec.role == Role::Caller { Stream::Camera } else { Stream::ScreenVideo };
                for (i, (_, frame)) in video.next_frames().into_iter().enumerate() {
                    let t = spec.epoch.elapsed().as_micros() as u64;
                    if lock(&sealer)
                        .seal(stream, Codec::Vp8, 1 + i as u8, &frame.data, t, &mut wire)
                        .is_err()
                    {
                        continue;
                    }
                    packetizers[i].packetize(&wire, &mut payloads);
                    let last = payloads.len().saturating_sub(1);
                    let mut ok = true;
                    for (n, p) in payloads.drain(..).enumerate() {
                        ok &= video_track.write(i, ts, n == last, p).await.is_ok();
                    }
                    if ok {
                        sent += 1;
                        counters.frames_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = stopped(&mut stop) => break,
        }
    }
    sent
}
