//! The control loop: the signaling WebSocket, the peer connection's offer and renegotiations,
//! the server's messages and the periodic flush of subscriptions and ratchets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use call_client::keys::{KeyInput, KeyManager};
use e2ee_frames::{DeviceId, DeviceKeys, KeyEnvelope};
use futures_util::{SinkExt as _, StreamExt as _};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::media_tasks::{publish_media, receive_media};
use super::{
    LiveCounters, ParticipantError, ParticipantOutcome, ParticipantSpec, Role, SharedOpener,
    SharedSealer, keep_error, stopped,
};
use crate::client_protocol::{
    ClientMessage, Joined, ServerMessage, Subscription, TrackAnnouncement, TrackInfo,
};
use crate::key_exchange::{key_config, membership, wire_bundle};
use crate::media::vp8_frames::CAMERA_LAYERS;
use crate::rtc_peer::{RtcPeer, VideoLayer, bind_local_track};

/// How often batched work (subscriptions, ratchets, rekey switches) is flushed.
const TICK: Duration = Duration::from_millis(100);

/// Least time between two `subscribe` messages (they replace the whole set).
const SUBSCRIBE_EVERY: Duration = Duration::from_millis(300);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(super) struct Session<'a> {
    pub(super) spec: &'a ParticipantSpec,
    pub(super) ws: Ws,
    pub(super) peer: Option<RtcPeer>,
    pub(super) keys: KeyManager,
    pub(super) joined: Joined,
    pub(super) sealer: Option<SharedSealer>,
    pub(super) opener: &'a SharedOpener,
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
        let policy = KeyManager::new(
            keys,
            &joined.room,
            &joined.call,
            joined.slot,
            spec.role.publishes() && joined.can_publish,
            key_config(),
        );
        let mut session = Session {
            spec,
            ws,
            peer: None,
            keys: policy,
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
            self.add_to_roster(&device, outcome).await?;
        }
        let (mut state, incoming, published) = self.start_media().await?;

        // Keys: a publisher's first generation goes to everyone in the roster (and makes the
        // sealer).
        self.key_input(KeyInput::Start, outcome).await?;

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
                        Ok(ServerMessage::MediaReset { .. }) => {
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
            tokio::sync::mpsc::UnboundedReceiver<crate::rtc_peer::Incoming>,
            Vec<(&'static str, crate::rtc_peer::LocalTrack)>,
        ),
        ParticipantError,
    > {
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
                    self.add_to_roster(device, outcome).await?;
                }
                if !removed.is_empty() {
                    self.key_input(KeyInput::RosterRemoved(removed), outcome)
                        .await?;
                }
            }
            ServerMessage::Membership {
                action,
                joined,
                left,
            } => {
                if let Some(m) = membership(&action, joined, left) {
                    self.key_input(KeyInput::Membership(m), outcome).await?;
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
                    Ok(env) => self.key_input(KeyInput::Envelope(env), outcome).await?,
                    Err(e) => {
                        outcome.envelope_failures += 1;
                        keep_error(outcome, e.to_string());
                    }
                }
            }
            ServerMessage::KeyAck {
                from,
                generation,
                step,
            } => {
                let ack = KeyInput::Ack {
                    from,
                    generation,
                    step,
                };
                self.key_input(ack, outcome).await?;
            }
            ServerMessage::KeyRequest { from } => {
                self.key_input(KeyInput::Request { from }, outcome).await?;
            }
            ServerMessage::Error { code, message } => {
                keep_error(outcome, format!("{code}: {message}"));
            }
            ServerMessage::Left { reason } => return Err(ParticipantError::Closed(reason)),
            // A media reset restarts the media session in the loop of `drive`.
            ServerMessage::Joined(_)
            | ServerMessage::MediaReset { .. }
            | ServerMessage::Unknown => {}
        }
        Ok(())
    }

    async fn on_tick(&mut self, outcome: &mut ParticipantOutcome) -> Result<(), ParticipantError> {
        // The key policy's batched ratchet, ack timeout and rotation.
        self.key_timeout(outcome).await?;
        if self.connected
            && self.subscriptions_dirty
            && self
                .last_subscribe
                .is_none_or(|t| t.elapsed() >= SUBSCRIBE_EVERY)
        {
            self.subscriptions_dirty = false;
            self.last_subscribe = Some(Instant::now());
            let me = self.keys.device().to_owned();
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
