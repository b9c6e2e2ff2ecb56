//! The control loop: the signaling WebSocket, the peer connection's offer and renegotiations,
//! the server's messages and the periodic flush of subscriptions and ratchets.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use call_client::peer::{
    Incoming, LocalTrack, Peer, RTCPeerConnectionState, RtpCodecKind, VideoLayer,
};
use e2ee_frames::{BaseKey, DeviceId, DeviceKeys, KeyEnvelope, Sender};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::keys::PendingGeneration;
use super::media_tasks::{publish_media, receive_media};
use super::{
    LiveCounters, ParticipantError, ParticipantOutcome, ParticipantSpec, Role, SharedOpener,
    SharedSealer, keep_error, lock, stopped,
};
use crate::key_exchange::{KeyChange, KeyRing, SUITE, ratchet_or_rotate};
use crate::media::vp8_frames::CAMERA_LAYERS;
use crate::secure_media::FrameSealer;
use call_client::protocol::{
    ClientMessage, ClientOffer, ErrorBody, Join, Joined, KeyAckNotice, KeyRequestNotice, Layer,
    Leave, LeftNotice, MembershipAction, MembershipNotice, PROTOCOL_VERSION, RosterDelta, SdpBody,
    ServerMessage, TrackAnnouncement, TrackInfo, TrackKind, TrackPublished, TrackSource,
    TrackUnpublished,
};

/// How often batched work (subscriptions, ratchets, rekey switches) is flushed.
const TICK: Duration = Duration::from_millis(100);

/// Least time between two `subscribe` messages (they replace the whole set).
const SUBSCRIBE_EVERY: Duration = Duration::from_millis(300);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) struct Session<'a> {
    pub(super) spec: &'a ParticipantSpec,
    pub(super) ws: Ws,
    pub(super) peer: Option<Peer>,
    pub(super) ring: KeyRing,
    pub(super) joined: Joined,
    pub(super) sealer: Option<SharedSealer>,
    pub(super) opener: &'a SharedOpener,
    pub(super) pending_envelopes: Vec<KeyEnvelope>,
    pub(super) ratchet_for: HashSet<String>,
    pub(super) pending_generation: Option<PendingGeneration>,
    pub(super) tracks: BTreeMap<String, TrackInfo>,
    pub(super) subscriptions_dirty: bool,
    pub(super) last_subscribe: Option<Instant>,
    pub(super) connected: bool,
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
        let (mut ws, _) = tokio_tungstenite::connect_async(spec.ws_url.as_str())
            .await
            .map_err(|e| ParticipantError::WebSocket(e.to_string()))?;
        let device = DeviceId::new(format!("lt-{}-{}", spec.role.name(), spec.index))
            .map_err(|e| ParticipantError::Key(e.to_string()))?;
        let keys = DeviceKeys::generate(device, &mut rand::rng());
        let join = ClientMessage::Join(Join {
            v: PROTOCOL_VERSION,
            room: spec.room.clone(),
            token: spec.token.clone(),
            name: Some(format!("loadtest {} {}", spec.role.name(), spec.index)),
            device: keys.bundle(),
        });
        send(&mut ws, &join).await?;
        let joined = loop {
            match next_message(&mut ws).await? {
                ServerMessage::Joined(j) => break *j,
                ServerMessage::Error(ErrorBody { code, message }) => {
                    let code = code.as_str();
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
        let _ = send(&mut session.ws, &ClientMessage::Leave(Leave {})).await;
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
        let (mut state, incoming, published) = self.start_media().await?;

        // Keys: a publisher's first generation goes to everyone in the roster.
        if self.spec.role.publishes() && self.joined.can_publish {
            let sender = Sender::new(
                SUITE,
                self.joined.slot,
                0,
                BaseKey::random(&mut rand::rng()),
            )
            .map_err(|e| ParticipantError::Key(e.to_string()))?;
            let everyone: Vec<String> = self.ring.peer_ids().map(str::to_owned).collect();
            self.send_keys(&sender, &everyone, outcome).await?;
            self.sealer = Some(Arc::new(Mutex::new(FrameSealer::new(
                sender,
                self.spec.index,
            ))));
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
                msg = next_message(&mut self.ws) => {
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
                    if let Err(e) = self.on_tick().await {
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
            Role::Viewer => {
                peer.add_recvonly(RtpCodecKind::Audio).await?;
                peer.add_recvonly(RtpCodecKind::Video).await?;
            }
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
        send(
            &mut self.ws,
            &ClientMessage::Offer(ClientOffer {
                sdp: offer,
                tracks: announcements,
            }),
        )
        .await?;
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
                }
            }
            ServerMessage::Offer(SdpBody { sdp }) => {
                if let Some(peer) = &self.peer {
                    let answer = peer.answer(&sdp).await?;
                    send(
                        &mut self.ws,
                        &ClientMessage::Answer(SdpBody { sdp: answer }),
                    )
                    .await?;
                }
            }
            ServerMessage::Roster(RosterDelta { added, removed, .. }) => {
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
            ServerMessage::Membership(MembershipNotice {
                action,
                joined,
                left,
                ..
            }) => {
                if self.sealer.is_some() {
                    if action == MembershipAction::Ratchet {
                        let me = self.ring.device().to_owned();
                        self.ratchet_for
                            .extend(joined.into_iter().filter(|d| *d != me));
                    } else if action == MembershipAction::Rekey && !left.is_empty() {
                        self.start_rekey(outcome).await?;
                    }
                }
            }
            ServerMessage::TrackPublished(TrackPublished { track }) => {
                self.tracks.insert(track.id.clone(), track);
                self.subscriptions_dirty = true;
            }
            ServerMessage::TrackUnpublished(TrackUnpublished { track }) => {
                self.tracks.remove(&track);
                self.subscriptions_dirty = true;
            }
            ServerMessage::KeyEnvelope(body) => {
                self.install_envelope(body.envelope, outcome).await?;
            }
            ServerMessage::KeyAck(KeyAckNotice {
                from, generation, ..
            }) => {
                if let Some(p) = &mut self.pending_generation
                    && p.sender.generation() == generation
                {
                    p.awaiting.remove(&from);
                }
            }
            ServerMessage::KeyRequest(KeyRequestNotice { from, .. }) => {
                if let Some(sealer) = &self.sealer {
                    let env = {
                        let mut s = lock(sealer);
                        self.ring.wrap(s.sender_mut(), &from, &mut rand::rng())
                    };
                    if let Ok(env) = env {
                        self.send_envelope(&env).await?;
                    }
                }
            }
            ServerMessage::Error(ErrorBody { code, message }) => {
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
            | ServerMessage::Chat(_) => {}
        }
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), ParticipantError> {
        // One ratchet for every joiner since the last tick.
        if !self.ratchet_for.is_empty()
            && let Some(sealer) = self.sealer.clone()
        {
            let joiners: Vec<String> = self.ratchet_for.drain().collect();
            let envelopes: Vec<_> = {
                let mut s = lock(&sealer);
                let mut rng = rand::rng();
                let change = ratchet_or_rotate(s.sender_mut(), &mut rng)
                    .map_err(|e| ParticipantError::Key(e.to_string()))?;
                let to: Vec<String> = match change {
                    KeyChange::Ratcheted => joiners,
                    KeyChange::NewGeneration => self.ring.peer_ids().map(str::to_owned).collect(),
                };
                to.iter()
                    .filter_map(|d| self.ring.wrap(s.sender_mut(), d, &mut rng).ok())
                    .collect()
            };
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
            let update = super::subscriptions_for(&self.tracks, self.ring.device());
            send(&mut self.ws, &ClientMessage::Subscribe(update)).await?;
        }
        Ok(())
    }
}

pub(super) async fn send(ws: &mut Ws, msg: &ClientMessage) -> Result<(), ParticipantError> {
    ws.send(Message::text(msg.to_json()))
        .await
        .map_err(|e| ParticipantError::WebSocket(e.to_string()))
}

/// The next protocol message; pings are answered by tungstenite, malformed text is skipped.
async fn next_message(ws: &mut Ws) -> Result<ServerMessage, ParticipantError> {
    loop {
        match ws.next().await {
            // Unknown message types are ignored (protocol §1); malformed ones are skipped too.
            Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) | Err(_) => continue,
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
