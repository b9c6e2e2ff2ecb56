//! One sans-IO viewer's signaling, on the scenario's Tokio runtime: the client library's
//! session (`call_client::session`: WebSocket, join, request ids, bounded queues) and key
//! policy ([`KeyManager`], which verifies and opens the envelopes, as for the `async` engine's
//! participants); what is specific to this engine is handing SDP and keys to the viewer's
//! worker as [`Command`]s and hearing its [`MediaEvent`]s (control rate only).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use call_client::keys::{KeyConfig, KeyInput, KeyManager, KeyOutput, RosterDevice};
use call_client::keys::{key_inputs, key_message};
use call_client::protocol::{
    ClientMessage, ClientOffer, ErrorBody, LeftNotice, SdpBody, ServerMessage, TrackInfo,
    TrackPublished, TrackUnpublished,
};
use call_client::session::{Session, SessionConfig, SessionError};
use e2ee_frames::{DeviceId, DeviceKeys};
use tokio::sync::{mpsc, oneshot, watch};

use super::engine::ViewerEngine;
use super::worker::{Command, MediaEvent, ViewerId, ViewerMedia, WorkerHandle};
use crate::participant::{LiveCounters, ParticipantOutcome, ParticipantSpec, subscriptions_for};
use crate::secure_media::MissingKey;

/// How often subscriptions are flushed.
const TICK: Duration = Duration::from_millis(100);

/// Least time between two `subscribe` messages (they replace the whole set).
const SUBSCRIBE_EVERY: Duration = Duration::from_millis(300);

/// How long the worker may take to answer a command.
const WORKER_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting and joining may take: hundreds of viewers join at once.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Server errors kept per viewer for the run's diagnostics.
const MAX_ERRORS_KEPT: usize = 4;

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
        if let Err(e) = run_session(&spec, &worker, id, &mut outcome, &counters, &mut stop).await {
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

/// Joins, runs the viewer until `stop` and leaves.
async fn run_session(
    spec: &ParticipantSpec,
    worker: &WorkerHandle,
    id: ViewerId,
    outcome: &mut ParticipantOutcome,
    counters: &Arc<LiveCounters>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let started = Instant::now();
    let device = DeviceId::new(format!("lt-viewer-{}", spec.index))
        .map_err(|e| format!("sender key: {e}"))?;
    let device_keys = DeviceKeys::generate(device, &mut rand::rng());
    let mut config = SessionConfig::new(
        spec.ws_url.as_str(),
        spec.room.as_str(),
        spec.token.as_str(),
        device_keys.bundle(),
    );
    config.name = Some(format!("loadtest viewer {}", spec.index));
    config.join_timeout = JOIN_TIMEOUT;
    let ws = Session::connect(config).await.map_err(|e| match e {
        SessionError::Refused(ErrorBody { code, message, .. }) => {
            format!("join refused: {}: {message}", code.as_str())
        }
        other => format!("websocket: {other}"),
    })?;
    let joined = ws.joined();
    if !joined.media {
        return Err("signaling has no media node (joined.media is false)".into());
    }
    // A viewer sends no media: it only receives keys (acks them, and asks again for one it
    // misses).
    let keys = KeyManager::new(
        device_keys,
        &joined.room,
        &joined.call,
        joined.slot,
        false,
        KeyConfig::default(),
    );
    let tracks = joined
        .tracks
        .iter()
        .map(|t| (t.id.clone(), t.clone()))
        .collect();
    let roster: Vec<RosterDevice> = joined
        .roster
        .devices
        .iter()
        .map(RosterDevice::from)
        .collect();
    let mut viewer = ViewerSession {
        spec,
        worker,
        id,
        outcome,
        counters,
        started,
        ws,
        keys,
        tracks,
        subscriptions_dirty: true,
        last_subscribe: None,
        connected: false,
    };
    for device in roster {
        viewer.key_input(KeyInput::RosterAdded(device));
    }
    let result = viewer.drive(stop).await;
    viewer.ws.leave().await;
    result
}

/// One viewer's signaling state: its session, key policy and the tracks it subscribes to.
struct ViewerSession<'a> {
    spec: &'a ParticipantSpec,
    worker: &'a WorkerHandle,
    id: ViewerId,
    outcome: &'a mut ParticipantOutcome,
    counters: &'a Arc<LiveCounters>,
    started: Instant,
    ws: Session,
    keys: KeyManager,
    tracks: BTreeMap<String, TrackInfo>,
    subscriptions_dirty: bool,
    last_subscribe: Option<Instant>,
    connected: bool,
}

impl ViewerSession<'_> {
    async fn drive(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), String> {
        let mut events = self.open_media().await?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = self.ws.recv() => match msg {
                    Some(ServerMessage::MediaReset(_)) => {
                        // The SFU lost the media session: a fresh one (keys stay).
                        self.outcome.media_resets += 1;
                        self.tracks.clear();
                        self.subscriptions_dirty = true;
                        self.connected = false;
                        events = self.open_media().await?;
                    }
                    Some(m) => self.on_message(m).await?,
                    None => return Err("server ended the session: websocket ended".into()),
                },
                event = events.recv() => match event {
                    Some(MediaEvent::Connected(at)) => {
                        self.connected = true;
                        if !self.outcome.joined {
                            self.outcome.joined = true;
                            self.outcome.join_ms =
                                Some(at.saturating_duration_since(self.started).as_secs_f64() * 1000.0);
                            self.counters.joined.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(MediaEvent::Failed(e)) => return Err(e),
                    Some(MediaEvent::KeyRefused(e)) => self.keep_error(e),
                    Some(MediaEvent::KeyMissing(MissingKey { slot, generation })) => {
                        self.key_input(KeyInput::Undecryptable { slot, generation });
                    }
                    None => return Err("viewer engine stopped".into()),
                },
                _ = tick.tick() => self.flush_subscriptions()?,
                () = stopped(stop) => return Ok(()),
            }
        }
    }

    /// A new media session in the worker; its offer is sent.
    async fn open_media(&mut self) -> Result<mpsc::UnboundedReceiver<MediaEvent>, String> {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (reply, offer) = oneshot::channel();
        let command = Command::Open {
            viewer: self.id,
            media_via: self.spec.media_via,
            events: events_tx,
            reply,
        };
        let sdp = self.ask(command, offer).await?;
        self.send_now(ClientMessage::Offer(ClientOffer {
            sdp,
            tracks: Vec::new(),
        }))?;
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

    async fn on_message(&mut self, msg: ServerMessage) -> Result<(), String> {
        match msg {
            ServerMessage::Answer(SdpBody { sdp }) => {
                self.worker.send(Command::Answer {
                    viewer: self.id,
                    sdp,
                });
            }
            ServerMessage::Offer(SdpBody { sdp }) => {
                let (reply, answer) = oneshot::channel();
                let command = Command::Offer {
                    viewer: self.id,
                    sdp,
                    reply,
                };
                let sdp = self.ask(command, answer).await?;
                self.send_now(ClientMessage::Answer(SdpBody { sdp }))?;
            }
            ServerMessage::KeyEnvelope(_)
                if self.spec.miss_keys_until_request && self.outcome.key_requests_sent == 0 =>
            {
                // Fault injection: this key is lost; recovery must ask for it again.
            }
            ServerMessage::Roster(_) | ServerMessage::KeyEnvelope(_) => {
                for input in key_inputs(&msg) {
                    self.key_input(input);
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

    /// Feeds `input` to the key policy and carries out what it asks: received keys go to the
    /// worker, keys of devices that left are forgotten, acks and key requests are sent.
    fn key_input(&mut self, input: KeyInput) {
        if let Err(e) = self.keys.handle_input(Instant::now(), input) {
            self.outcome.envelope_failures += 1;
            self.keep_error(e.to_string());
        }
        while let Some(output) = self.keys.poll_output() {
            if let Some(message) = key_message(&output) {
                if matches!(output, KeyOutput::SendRequest { .. }) {
                    self.outcome.key_requests_sent += 1;
                }
                // A full queue or a lost connection: the key policy's request path recovers
                // (and a lost connection ends the session at the next receive).
                if let Err(e) = self.ws.send(message) {
                    self.keep_error(e.to_string());
                }
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
    }

    fn flush_subscriptions(&mut self) -> Result<(), String> {
        if !(self.connected
            && self.subscriptions_dirty
            && self
                .last_subscribe
                .is_none_or(|t| t.elapsed() >= SUBSCRIBE_EVERY))
        {
            return Ok(());
        }
        self.subscriptions_dirty = false;
        self.last_subscribe = Some(Instant::now());
        let update = subscriptions_for(&self.tracks, self.keys.device());
        self.send_now(ClientMessage::Subscribe(update))
    }

    /// Queues a message that must go out (SDP, subscriptions): failing to ends the session.
    fn send_now(&mut self, message: ClientMessage) -> Result<(), String> {
        self.ws
            .send(message)
            .map(drop)
            .map_err(|e| format!("websocket: {e}"))
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
