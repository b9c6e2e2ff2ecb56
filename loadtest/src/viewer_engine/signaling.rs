//! One sans-IO viewer's signaling session, on the scenario's Tokio runtime: the WebSocket
//! (`/v1/rtc`), the join with a fresh device bundle, the roster, the key envelopes (verified
//! and opened by the client library's key policy, [`KeyManager`], as the `async` engine's
//! participants' are), offer and answers, subscriptions. The media session lives in a worker
//! thread; this side sends it [`Command`]s and hears [`MediaEvent`]s (control rate only).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use e2ee_frames::{DeviceId, DeviceKeys};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use super::adapters::{
    ClientMessage, ClientOffer, ErrorBody, Join, KeyConfig, KeyInput, KeyManager, KeyOutput, Leave,
    LeftNotice, PROTOCOL_VERSION, RosterDevice, SdpBody, ServerMessage, TrackInfo, TrackPublished,
    TrackUnpublished, key_inputs, key_message,
};
use super::engine::ViewerEngine;
use super::worker::{Command, MediaEvent, ViewerId, ViewerMedia, WorkerHandle};
use crate::participant::{LiveCounters, ParticipantOutcome, ParticipantSpec, subscriptions_for};

/// How often subscriptions are flushed.
const TICK: Duration = Duration::from_millis(100);

/// Least time between two `subscribe` messages (they replace the whole set).
const SUBSCRIBE_EVERY: Duration = Duration::from_millis(300);

/// How long the worker may take to answer a command.
const WORKER_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Server errors kept per viewer for the run's diagnostics.
const MAX_ERRORS_KEPT: usize = 4;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs one viewer on `engine` until `stop` turns true (or its session fails); the outcome has
/// the same fields as an `async` participant's.
pub fn run_viewer(
    engine: &ViewerEngine,
    spec: ParticipantSpec,
    counters: Arc<LiveCounters>,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ParticipantOutcome> + Send + 'static {
    let worker = engine.worker_for(u64::from(spec.index));
    async move {
        let mut outcome = ParticipantOutcome::default();
        let started = Instant::now();
        let id = ViewerId::from(spec.index);
        let mut session = ViewerSession {
            spec: &spec,
            worker: &worker,
            id,
            outcome: &mut outcome,
            counters: &counters,
            started,
        };
        if let Err(e) = session.run(&mut stop).await {
            outcome.failure = Some(e);
        }
        let (reply, media) = oneshot::channel();
        let media = if worker.send(Command::Close { viewer: id, reply }) {
            tokio::time::timeout(WORKER_REPLY_TIMEOUT, media)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        } else {
            None
        };
        if let Some(ViewerMedia {
            opener,
            broken_frames,
        }) = media
        {
            outcome.totals = opener.stats().totals();
            outcome.media = opener.stats().clone();
            outcome.decrypt_failures = opener.decrypt_failures();
            outcome.frames_without_key = opener.frames_without_key();
            outcome.broken_frames = broken_frames;
            outcome.first_frame_ms = opener.first_frame_us().map(|us| {
                let started_us = started.duration_since(spec.epoch).as_micros() as f64;
                ((us as f64 - started_us) / 1000.0).max(0.0)
            });
        }
        outcome
    }
}

struct ViewerSession<'a> {
    spec: &'a ParticipantSpec,
    worker: &'a WorkerHandle,
    id: ViewerId,
    outcome: &'a mut ParticipantOutcome,
    counters: &'a Arc<LiveCounters>,
    started: Instant,
}

/// What the session knows besides the socket.
struct State {
    keys: KeyManager,
    tracks: BTreeMap<String, TrackInfo>,
    subscriptions_dirty: bool,
    last_subscribe: Option<Instant>,
    connected: bool,
}

impl ViewerSession<'_> {
    async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), String> {
        let (mut ws, _) = tokio_tungstenite::connect_async(self.spec.ws_url.as_str())
            .await
            .map_err(|e| format!("websocket: {e}"))?;
        let device = DeviceId::new(format!("lt-viewer-{}", self.spec.index))
            .map_err(|e| format!("sender key: {e}"))?;
        let device_keys = DeviceKeys::generate(device, &mut rand::rng());
        let join = ClientMessage::Join(Join {
            v: PROTOCOL_VERSION,
            room: self.spec.room.clone(),
            token: self.spec.token.clone(),
            name: Some(format!("loadtest viewer {}", self.spec.index)),
            device: device_keys.bundle(),
            resume: None,
        });
        send(&mut ws, &join).await?;
        let joined = loop {
            match next_message(&mut ws).await? {
                ServerMessage::Joined(j) => break *j,
                ServerMessage::Error(ErrorBody { code, message, .. }) => {
                    return Err(format!("join refused: {}: {message}", code.as_str()));
                }
                _ => {}
            }
        };
        if !joined.media {
            return Err("signaling has no media node (joined.media is false)".into());
        }
        let mut state = State {
            // A viewer sends no media: it only receives keys (and acks them).
            keys: KeyManager::new(
                device_keys,
                &joined.room,
                &joined.call,
                joined.slot,
                false,
                KeyConfig::default(),
            ),
            tracks: joined
                .tracks
                .iter()
                .map(|t| (t.id.clone(), t.clone()))
                .collect(),
            subscriptions_dirty: true,
            last_subscribe: None,
            connected: false,
        };
        for entry in &joined.roster.devices {
            let added = KeyInput::RosterAdded(RosterDevice::from(entry));
            if let Err(e) = state.keys.handle_input(Instant::now(), added) {
                self.outcome.envelope_failures += 1;
                self.keep_error(e.to_string());
            }
        }
        let result = self.drive(&mut ws, &mut state, stop).await;
        let _ = send(&mut ws, &ClientMessage::Leave(Leave {})).await;
        let _ = ws.close(None).await;
        result
    }

    async fn drive(
        &mut self,
        ws: &mut Ws,
        state: &mut State,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let mut events = self.open_media(ws).await?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = next_message(ws) => match msg? {
                    ServerMessage::MediaReset(_) => {
                        // The SFU lost the media session: a fresh one (keys stay).
                        self.outcome.media_resets += 1;
                        state.tracks.clear();
                        state.subscriptions_dirty = true;
                        state.connected = false;
                        events = self.open_media(ws).await?;
                    }
                    m => self.on_message(ws, state, m).await?,
                },
                event = events.recv() => match event {
                    Some(MediaEvent::Connected(at)) => {
                        state.connected = true;
                        if !self.outcome.joined {
                            self.outcome.joined = true;
                            self.outcome.join_ms =
                                Some(at.saturating_duration_since(self.started).as_secs_f64() * 1000.0);
                            self.counters.joined.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(MediaEvent::Failed(e)) => return Err(e),
                    Some(MediaEvent::KeyRefused(e)) => self.keep_error(e),
                    None => return Err("viewer engine stopped".into()),
                },
                _ = tick.tick() => self.flush_subscriptions(ws, state).await?,
                () = stopped(stop) => return Ok(()),
            }
        }
    }

    /// A new media session in the worker; its offer is sent.
    async fn open_media(
        &mut self,
        ws: &mut Ws,
    ) -> Result<mpsc::UnboundedReceiver<MediaEvent>, String> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (reply, offer) = oneshot::channel();
        let command = Command::Open {
            viewer: self.id,
            media_via: self.spec.media_via,
            events: events_tx,
            reply,
        };
        let sdp = self.ask(command, offer).await?;
        send(
            ws,
            &ClientMessage::Offer(ClientOffer {
                sdp,
                tracks: Vec::new(),
            }),
        )
        .await?;
        Ok(events)
    }

    async fn ask(
        &self,
        command: Command,
        reply: oneshot::Receiver<Result<String, String>>,
    ) -> Result<String, String> {
        if !self.worker.send(command) {
            return Err("viewer engine stopped".into());
        }
        tokio::time::timeout(WORKER_REPLY_TIMEOUT, reply)
            .await
            .map_err(|_| "viewer engine did not answer".to_owned())?
            .map_err(|_| "viewer engine stopped".to_owned())?
            .map_err(|e| format!("peer connection: {e}"))
    }

    async fn on_message(
        &mut self,
        ws: &mut Ws,
        state: &mut State,
        msg: ServerMessage,
    ) -> Result<(), String> {
        match msg {
            ServerMessage::Answer(SdpBody { sdp }) => {
                self.worker.send(Command::Answer {
                    viewer: self.id,
                    sdp,
                });
            }
            ServerMessage::Offer(SdpBody { sdp }) => {
                let (reply, answer) = oneshot::channel();
                let sdp = self
                    .ask(
                        Command::Offer {
                            viewer: self.id,
                            sdp,
                            reply,
                        },
                        answer,
                    )
                    .await?;
                send(ws, &ClientMessage::Answer(SdpBody { sdp })).await?;
            }
            ServerMessage::Roster(_) | ServerMessage::KeyEnvelope(_) => {
                for input in key_inputs(&msg) {
                    if let Err(e) = state.keys.handle_input(Instant::now(), input) {
                        self.outcome.envelope_failures += 1;
                        self.keep_error(e.to_string());
                    }
                }
                self.apply_key_outputs(ws, state).await?;
            }
            ServerMessage::TrackPublished(TrackPublished { track }) => {
                state.tracks.insert(track.id.clone(), track);
                state.subscriptions_dirty = true;
            }
            ServerMessage::TrackUnpublished(TrackUnpublished { track }) => {
                state.tracks.remove(&track);
                state.subscriptions_dirty = true;
            }
            ServerMessage::Error(ErrorBody { code, message, .. }) => {
                self.keep_error(format!("{}: {message}", code.as_str()));
            }
            ServerMessage::Left(LeftNotice { reason }) => {
                return Err(format!("server ended the session: {}", reason.as_str()));
            }
            // A viewer publishes nothing: membership changes, key acks and key requests are
            // for publishers.
            _ => {}
        }
        Ok(())
    }

    /// Hands received keys to the worker, forgets those of devices that left and sends the
    /// acks the key policy asks for.
    async fn apply_key_outputs(&mut self, ws: &mut Ws, state: &mut State) -> Result<(), String> {
        while let Some(output) = state.keys.poll_output() {
            if let Some(message) = key_message(&output) {
                send(ws, &message).await?;
                continue;
            }
            match output {
                KeyOutput::InstallReceiverKey(key) => {
                    self.worker.send(Command::InstallKey {
                        viewer: self.id,
                        slot: key.slot,
                        generation: key.generation,
                        step: key.step,
                        suite: key.suite,
                        key: key.key,
                    });
                }
                KeyOutput::ForgetSender { slot, .. } => {
                    self.worker.send(Command::RemoveSender {
                        viewer: self.id,
                        slot,
                    });
                }
                // A viewer holds no sending key.
                KeyOutput::UseSenderKey(_)
                | KeyOutput::SendEnvelope { .. }
                | KeyOutput::SendAck { .. }
                | KeyOutput::SendRequest { .. } => {}
            }
        }
        Ok(())
    }

    async fn flush_subscriptions(&mut self, ws: &mut Ws, state: &mut State) -> Result<(), String> {
        if !(state.connected
            && state.subscriptions_dirty
            && state
                .last_subscribe
                .is_none_or(|t| t.elapsed() >= SUBSCRIBE_EVERY))
        {
            return Ok(());
        }
        state.subscriptions_dirty = false;
        state.last_subscribe = Some(Instant::now());
        let update = subscriptions_for(&state.tracks, state.keys.device());
        send(ws, &ClientMessage::Subscribe(update)).await
    }

    fn keep_error(&mut self, e: String) {
        if self.outcome.errors.len() < MAX_ERRORS_KEPT {
            self.outcome.errors.push(e);
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone); the guard `wait_for` returns is
/// dropped here, not held across the `select!`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn send(ws: &mut Ws, msg: &ClientMessage) -> Result<(), String> {
    ws.send(Message::text(msg.to_json()))
        .await
        .map_err(|e| format!("websocket: {e}"))
}

/// The next protocol message; pings are answered by tungstenite, malformed text is skipped.
async fn next_message(ws: &mut Ws) -> Result<ServerMessage, String> {
    loop {
        match ws.next().await {
            // Unknown message types are ignored (protocol §1); malformed ones are skipped too.
            Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) | Err(_) => continue,
            },
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "server ended the session: websocket closed: {}",
                    frame.map(|f| f.code.to_string()).unwrap_or_default()
                ));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("websocket: {e}")),
            None => return Err("server ended the session: websocket ended".into()),
        }
    }
}
