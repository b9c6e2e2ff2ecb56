//! The control loop: the signaling session (`call_client::session`), the peer connection's
//! offer and renegotiations, the server's messages, the key policy
//! (`call_client::keys::KeyManager`, in `keys.rs`) and the periodic flush of subscriptions and
//! key timers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use call_client::keys::{KeyConfig, KeyInput, KeyManager, RosterDevice};
use call_client::peer::{
    Incoming, LocalTrack, Peer, RTCPeerConnectionState, RtpCodecKind, VideoLayer,
};
use call_client::session::{Session as Signaling, SessionConfig, SessionError};
use e2ee_frames::{DeviceId, DeviceKeys};
use tokio::sync::watch;

use super::keys::count_key_error;
use super::media_tasks::{publish_media, receive_media};
use super::send_gate::{OwnTracks, SendGate};
use super::{
    LiveCounters, ParticipantError, ParticipantOutcome, ParticipantSpec, Role, SharedOpener,
    SharedSealer, keep_error, stopped,
};
use crate::media::vp8_frames::CAMERA_LAYERS;
use call_client::keys::key_inputs;
use call_client::protocol::{
    ClientMessage, ClientOffer, ErrorBody, Joined, Layer, LeftNotice, RecordingReady, SdpBody,
    ServerMessage, TrackAnnouncement, TrackInfo, TrackKind, TrackPublished, TrackSource,
    TrackUnpublished,
};

/// How often batched work (subscriptions, key timers) is flushed.
const TICK: Duration = Duration::from_millis(100);

/// Least time between two `subscribe` messages (they replace the whole set).
const SUBSCRIBE_EVERY: Duration = Duration::from_millis(300);

/// Joins within this long share one ratchet. Without it a burst of joins (twenty viewers at
/// once) ratchets the key once per joiner, and the first joiners, who hold an early step, fall
/// more than the receivers' look-ahead (`e2ee_frames::RATCHET_LOOKAHEAD`, 16 steps) behind and
/// cannot decrypt.
const RATCHET_BATCH: Duration = TICK;

/// Messages the signaling session queues before a send fails: a publisher's new generation
/// to a full meeting (99 envelopes) fits several times over.
const OUTGOING_QUEUE: usize = 1024;

pub(super) struct Session<'a> {
    pub(super) spec: &'a ParticipantSpec,
    pub(super) ws: Signaling,
    pub(super) peer: Option<Peer>,
    pub(super) keys: KeyManager,
    pub(super) joined: Joined,
    pub(super) sealer: Option<SharedSealer>,
    pub(super) opener: &'a SharedOpener,
    pub(super) tracks: BTreeMap<String, TrackInfo>,
    pub(super) subscriptions_dirty: bool,
    pub(super) last_subscribe: Option<Instant>,
    pub(super) connected: bool,
    /// The first answer was applied: SFU offers from now on are renegotiations.
    pub(super) answered: bool,
    /// This device's published tracks and whether each may carry media (strict recording).
    pub(super) own: OwnTracks,
    /// The gates the publisher task reads.
    pub(super) gate: watch::Sender<SendGate>,
}

impl<'a> Session<'a> {
    pub(super) async fn run(
        spec: &'a ParticipantSpec,
        counters: &Arc<LiveCounters>,
        opener: &'a SharedOpener,
        stop: &mut watch::Receiver<bool>,
        outcome: &mut ParticipantOutcome,
        started: Instant,
    ) -> Result<(), ParticipantError> {
        let device = DeviceId::new(format!("lt-{}-{}", spec.role.name(), spec.index))
            .map_err(|e| ParticipantError::Key(e.to_string()))?;
        let device_keys = DeviceKeys::generate(device, &mut rand::rng());
        let mut config = SessionConfig::new(
            spec.ws_url.as_str(),
            spec.room.as_str(),
            spec.token.as_str(),
            device_keys.bundle(),
        );
        config.name = Some(format!("loadtest {} {}", spec.role.name(), spec.index));
        config.outgoing_capacity = OUTGOING_QUEUE;
        let ws = Signaling::connect(config).await.map_err(|e| match e {
            SessionError::Refused(ErrorBody { code, message, .. }) => {
                ParticipantError::Refused(format!("{}: {message}", code.as_str()))
            }
            other => ParticipantError::WebSocket(other.to_string()),
        })?;
        let joined = ws.joined().clone();
        if !joined.media {
            return Err(ParticipantError::NoMedia);
        }
        let can_send = spec.role.publishes() && joined.can_publish;
        // Strict recording: a room with a recording policy holds media until a recorder
        // receives it and holds this device's key.
        let recorders: std::collections::BTreeSet<String> = joined
            .recording
            .as_ref()
            .and_then(|p| p.document().ok())
            .map(|d| d.recorders.into_iter().map(|r| r.device).collect())
            .unwrap_or_default();
        let recorded = !recorders.is_empty();
        let keys = KeyManager::new(
            device_keys,
            &joined.room,
            &joined.call,
            joined.slot,
            can_send,
            KeyConfig {
                ratchet_batch: RATCHET_BATCH,
                ..KeyConfig::default()
            },
        );
        let mut session = Session {
            spec,
            ws,
            peer: None,
            keys,
            tracks: joined
                .tracks
                .iter()
                .map(|t| (t.id.clone(), t.clone()))
                .collect(),
            joined,
            sealer: None,
            opener,
            subscriptions_dirty: true,
            last_subscribe: None,
            connected: false,
            answered: false,
            own: OwnTracks::new(recorders),
            gate: watch::channel(SendGate::start(recorded)).0,
        };
        let result = session.drive(counters, stop, outcome, started).await;
        if let Some(peer) = &session.peer {
            peer.close().await;
        }
        session.ws.leave().await;
        result
    }

    async fn drive(
        &mut self,
        counters: &Arc<LiveCounters>,
        stop: &mut watch::Receiver<bool>,
        outcome: &mut ParticipantOutcome,
        started: Instant,
    ) -> Result<(), ParticipantError> {
        let now = Instant::now();
        for entry in &self.joined.roster.devices {
            if let Err(e) = self
                .keys
                .handle_input(now, KeyInput::RosterAdded(RosterDevice::from(entry)))
            {
                count_key_error(outcome, &e);
            }
        }
        let (mut state, incoming, published) = self.start_media().await?;

        // Keys: a publisher's first generation goes to everyone in the roster (and makes the
        // sealer).
        if self.spec.role.publishes() && self.joined.can_publish {
            self.key_input(KeyInput::Start, outcome)?;
        }

        let mut receiver = tokio::spawn(receive_media(
            incoming,
            self.opener.clone(),
            self.spec.epoch,
            counters.clone(),
        ));
        let mut publisher: Option<tokio::task::JoinHandle<u64>> = None;
        let (mut pub_stop_tx, mut pub_stop) = watch::channel(false);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut local_tracks = Some(published);

        let result = loop {
            tokio::select! {
                msg = self.ws.recv() => {
                    let msg = msg.ok_or_else(|| ParticipantError::Closed("websocket ended".into()));
                    match msg {
                        Ok(ServerMessage::MediaReset(_)) => {
                            // The SFU lost the media session: stop the media tasks, close the
                            // peer connection and start a fresh one (keys stay as they are).
                            outcome.media_resets += 1;
                            let _ = pub_stop_tx.send(true);
                            if let Some(p) = publisher.take() {
                                outcome.frames_sent += p.await.unwrap_or(0);
                            }
                            receiver.abort();
                            if let Ok(broken) = (&mut receiver).await {
                                outcome.broken_frames += broken;
                            }
                            if let Some(peer) = self.peer.take() {
                                peer.close().await;
                            }
                            self.tracks.clear();
                            self.own.reset();
                            self.gate.send_replace(self.own.gate());
                            self.subscriptions_dirty = true;
                            self.connected = false;
                            (pub_stop_tx, pub_stop) = watch::channel(false);
                            let (new_state, incoming, published) = match self.start_media().await {
                                Ok(media) => media,
                                Err(e) => break Err(e),
                            };
                            state = new_state;
                            local_tracks = Some(published);
                            receiver = tokio::spawn(receive_media(
                                incoming,
                                self.opener.clone(),
                                self.spec.epoch,
                                counters.clone(),
                            ));
                        }
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
                            if !outcome.joined {
                                outcome.joined = true;
                                outcome.join_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                                counters.joined.fetch_add(1, Ordering::Relaxed);
                            }
                            if let (Some(sealer), Some(tracks)) = (&self.sealer, local_tracks.take()) {
                                publisher = Some(tokio::spawn(publish_media(
                                    self.spec.clone(),
                                    sealer.clone(),
                                    tracks.into_iter().map(|(_, t)| t).collect(),
                                    counters.clone(),
                                    self.gate.subscribe(),
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
            outcome.frames_sent += p.await.unwrap_or(0);
        }
        receiver.abort();
        if let Ok(broken) = receiver.await {
            outcome.broken_frames += broken;
        }
        result
    }

    /// A media session: a new peer connection with this participant's tracks, its offer sent
    /// (the answer comes back through the message loop). Returns the connection state to
    /// watch, the incoming media and the local tracks to publish once connected.
    async fn start_media(
        &mut self,
    ) -> Result<
        (
            watch::Receiver<RTCPeerConnectionState>,
            tokio::sync::mpsc::UnboundedReceiver<Incoming>,
            Vec<(&'static str, LocalTrack)>,
        ),
        ParticipantError,
    > {
        // Media session: tracks, offer, answer.
        let mut peer = Peer::builder()
            .simulcast_extensions()
            .default_interceptors()
            .build()
            .await?;
        let incoming = peer.take_incoming();
        if let Some((server, relay)) = self.spec.media_via {
            peer.route_media_via(server, relay);
        }
        let mut published = Vec::new();
        let mut announcements = Vec::new();
        let slots = self.joined.receive_slots;
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
                            .map(|(l, i)| VideoLayer::simulcast(l.rid, base + i))
                            .collect::<Vec<_>>(),
                    )
                } else {
                    ("screen", vec![VideoLayer::single(base + 1)])
                };
                published.push((name, peer.add_video(name, &layers).await?));
            }
            Role::Viewer if slots.is_some() => {}
            Role::Viewer => {
                peer.add_recvonly(RtpCodecKind::Audio).await?;
                peer.add_recvonly(RtpCodecKind::Video).await?;
            }
        }
        // A room with receive slots: every receive section in the first offer, after the
        // sending ones (protocol §2); no subscriptions, the SFU maps the room's tracks onto them.
        if let Some(c) = slots {
            peer.add_receive_slots(c.audio as usize, (c.video + c.screen) as usize)
                .await?;
        }
        let offer = peer.offer().await?;
        for (name, track) in &published {
            if let Some(mid) = track.mid() {
                announcements.push(TrackAnnouncement {
                    mid: mid.to_owned(),
                    kind: if *name == "mic" {
                        TrackKind::Audio
                    } else {
                        TrackKind::Video
                    },
                    source: match *name {
                        "mic" => TrackSource::Microphone,
                        "camera" => TrackSource::Camera,
                        _ => TrackSource::Screen,
                    },
                    layers: if *name == "camera" {
                        vec![Layer::Low, Layer::Medium, Layer::High]
                    } else {
                        vec![]
                    },
                });
            }
        }
        self.send_now(ClientMessage::Offer(ClientOffer {
            sdp: offer,
            tracks: announcements,
        }))?;
        let state = peer.state();
        self.peer = Some(peer);
        Ok((state, incoming, published))
    }

    async fn on_message(
        &mut self,
        msg: ServerMessage,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        match msg {
            ServerMessage::Answer(SdpBody { sdp }) => {
                if let Some(peer) = &self.peer {
                    peer.apply_answer(&sdp).await?;
                    self.answered = true;
                }
            }
            ServerMessage::Offer(SdpBody { sdp }) => {
                if self.answered {
                    outcome.offers_after_join += 1;
                }
                if let Some(peer) = &self.peer {
                    let answer = peer.answer(&sdp).await?;
                    self.send_now(ClientMessage::Answer(SdpBody { sdp: answer }))?;
                }
            }
            ServerMessage::Roster(_)
            | ServerMessage::Membership(_)
            | ServerMessage::KeyEnvelope(_)
            | ServerMessage::KeyAck(_)
            | ServerMessage::KeyRequest(_) => {
                if let ServerMessage::KeyAck(ack) = &msg {
                    self.own.key_acked(&ack.from);
                    self.gate.send_replace(self.own.gate());
                }
                if matches!(msg, ServerMessage::KeyEnvelope(_))
                    && self.spec.miss_keys_until_request
                    && outcome.key_requests_sent == 0
                {
                    // Fault injection: this key is lost; recovery must ask for it again.
                    return Ok(());
                }
                for input in key_inputs(&msg) {
                    self.key_input(input, outcome)?;
                }
            }
            ServerMessage::TrackPublished(TrackPublished { track }) => {
                if track.publisher == self.keys.device() {
                    self.own.published(&track);
                    self.gate.send_replace(self.own.gate());
                }
                self.tracks.insert(track.id.clone(), track);
                self.subscriptions_dirty = true;
            }
            ServerMessage::RecordingReady(RecordingReady { tracks }) => {
                let unknown = self.own.recording_ready(&tracks);
                if unknown > 0 {
                    keep_error(
                        outcome,
                        format!(
                            "recording_ready named {unknown} tracks this device does not publish"
                        ),
                    );
                }
                self.gate.send_replace(self.own.gate());
            }
            ServerMessage::TrackUnpublished(TrackUnpublished { track }) => {
                self.tracks.remove(&track);
                self.subscriptions_dirty = true;
            }
            ServerMessage::Error(ErrorBody { code, message, .. }) => {
                keep_error(outcome, format!("{}: {message}", code.as_str()));
            }
            ServerMessage::Left(LeftNotice { reason }) => {
                return Err(ParticipantError::Closed(reason.as_str().to_owned()));
            }
            // A media reset restarts the media session in the loop of `drive`.
            ServerMessage::Joined(_)
            | ServerMessage::MediaReset(_)
            | ServerMessage::Speakers(_)
            | ServerMessage::Slots(_)
            | ServerMessage::MediaState(_)
            | ServerMessage::Hand(_)
            | ServerMessage::Chat(_) => {}
            // Moderation: load participants moderate nothing, and their synthetic microphone
            // is not muted on request (a `waiting` comes before `joined`, in the join).
            ServerMessage::Waiting(_)
            | ServerMessage::Moderation(_)
            | ServerMessage::MuteRequested(_) => {}
        }
        Ok(())
    }

    async fn on_tick(&mut self, outcome: &mut ParticipantOutcome) -> Result<(), ParticipantError> {
        self.key_timers(outcome)?;
        self.report_missing_keys(outcome)?;
        if self.connected
            && self.joined.receive_slots.is_none()
            && self.subscriptions_dirty
            && self
                .last_subscribe
                .is_none_or(|t| t.elapsed() >= SUBSCRIBE_EVERY)
        {
            self.subscriptions_dirty = false;
            self.last_subscribe = Some(Instant::now());
            let update = super::subscriptions_for(&self.tracks, self.keys.device());
            self.send_now(ClientMessage::Subscribe(update))?;
        }
        Ok(())
    }

    /// Queues a message that must go out (SDP, subscriptions): a full queue ends the session.
    fn send_now(&mut self, message: ClientMessage) -> Result<(), ParticipantError> {
        self.ws
            .send(message)
            .map(drop)
            .map_err(|e| ParticipantError::WebSocket(e.to_string()))
    }

    /// Queues a key message: a full queue is kept as an error (the key policy's request path
    /// recovers), a lost connection ends the session.
    pub(super) fn send(
        &mut self,
        message: ClientMessage,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        match self.ws.send(message) {
            Ok(_) => Ok(()),
            Err(e @ SessionError::OutgoingFull { .. }) => {
                keep_error(outcome, e.to_string());
                Ok(())
            }
            Err(e) => Err(ParticipantError::WebSocket(e.to_string())),
        }
    }
}
