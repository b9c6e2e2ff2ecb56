//! One recorded room: the control loop that joins it as the recorder, checks that its signed
//! policy names this device, keeps the roster, the keys and the subscriptions, and hands the
//! archive what happens (participants, security codes, tracks); the media receiver
//! (`receiver.rs`) decrypts the frames, `chat.rs` opens the chat, and the writer (`writer.rs`)
//! does the archive's I/O.
//!
//! The recorder publishes nothing and sends no media key: its key policy is a receiving-only
//! [`KeyManager`] (it opens and acknowledges envelopes, asks for a key it lacks). It subscribes to
//! every audio track and every video track at the chosen simulcast layer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use call_client::keys::{
    KeyConfig, KeyInput, KeyManager, KeyOutput, RosterDevice, key_inputs, key_message,
};
use call_client::peer::{Peer, PeerError, RTCPeerConnectionState, RtpCodecKind, mid_of_track};
use call_client::protocol::{
    ClientMessage, ClientOffer, ErrorBody, ErrorCode, Joined, Layer, LeftNotice, RosterDelta,
    RosterEntry, SdpBody, ServerMessage, Subscription, SubscriptionUpdate, TrackInfo, TrackKind,
    TrackPublished, TrackUnpublished,
};
use call_client::session::{Session, SessionConfig, SessionError};
use e2ee_frames::DeviceKeys;
use e2ee_frames::verification::{RosterEntry as CodeEntry, security_code};
use tokio::sync::{mpsc, watch};

use super::admission::{
    ApiCredentials, PolicyError, TrustedAdminKeys, check_policy, policy_retention,
};
use super::chat::ChatReader;
use super::metrics::{ChatResult, RecorderMetrics, RoomRefusal, SessionOutcome};
use super::receiver::{
    MediaReceiver, MissingKey, ReceiverCommand, ReceiverReport, TrackRoute, stream_of,
};
use super::writer::{DEFAULT_QUEUE_FRAMES, Writer, WriterQueue};
use crate::sink::{
    ChatBody, ChatEntry, Codec, MediaKind, Participant, SessionArchive, SessionStart,
    SessionSummary, SinkError, TrackMeta,
};

/// How often key timers and subscriptions are looked at.
const TICK: Duration = Duration::from_millis(100);

/// Least time between two `subscribe` messages (each replaces the whole set) while one is in
/// flight (sent, and the SFU's offer for it not come yet). With none in flight a new track is
/// subscribed at once: in a strictly recorded room its publisher holds its media until this
/// subscription is live.
const SUBSCRIBE_EVERY: Duration = Duration::from_millis(300);

/// How the recorder records one room.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// The signaling WebSocket URL (`ws://host:port/v1/rtc`).
    pub signaling: String,
    /// The room.
    pub room: String,
    /// The API key its join token is minted with.
    pub credentials: ApiCredentials,
    /// The admin keys whose recording policies it obeys.
    pub trusted_admin_keys: TrustedAdminKeys,
    /// The simulcast layer recorded of every camera.
    pub video_layer: Layer,
    /// The session ends once only recorders have been in the room this long.
    pub alone_for: Duration,
    /// Frames the writer may fall behind by before frames are dropped.
    pub queue_frames: usize,
}

impl RoomConfig {
    /// Defaults for `room` on `signaling`, obeying policies signed by `trusted_admin_keys`: the
    /// high layer, ends after 5 s alone.
    pub fn new(
        signaling: &str,
        room: &str,
        credentials: ApiCredentials,
        trusted_admin_keys: TrustedAdminKeys,
    ) -> Self {
        RoomConfig {
            signaling: signaling.to_owned(),
            room: room.to_owned(),
            credentials,
            trusted_admin_keys,
            video_layer: Layer::High,
            alone_for: Duration::from_secs(5),
            queue_frames: DEFAULT_QUEUE_FRAMES,
        }
    }
}

/// Why a room was not recorded (or its recording ended in error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The WebSocket could not be opened or the join timed out.
    #[error("join: {0}")]
    Join(SessionError),
    /// The service refused the join because no policy of the room names this recorder.
    #[error("the service refused the recorder: {code}: {message}")]
    NotAdmitted {
        /// The error code (`role_not_allowed`, …).
        code: String,
        /// The service's message.
        message: String,
    },
    /// The room's policy is not signed by a trusted admin key or does not name this recorder:
    /// nothing is recorded.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A room with receive slots maps tracks onto fixed sections and refuses per-track
    /// subscriptions: recording every track is not supported there.
    #[error(
        "room {0} uses receive slots, which refuse per-track subscriptions: recording it is not supported"
    )]
    ReceiveSlots(String),
    /// The service has no media node.
    #[error("the service has no media node (joined.media is false)")]
    NoMedia,
    /// The peer connection failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The archive refused to begin the session.
    #[error(transparent)]
    Archive(#[from] SinkError),
}

impl RecordError {
    /// The `recorder_sessions_total` outcome of this error.
    pub fn outcome(&self) -> SessionOutcome {
        match self {
            RecordError::NotAdmitted { .. } | RecordError::Policy(_) => {
                SessionOutcome::RefusedPolicy
            }
            RecordError::ReceiveSlots(_) | RecordError::NoMedia => SessionOutcome::Unsupported,
            _ => SessionOutcome::Failed,
        }
    }

    /// The `recorder_rooms_refused_total` reason, if this error refused the room.
    pub fn refusal(&self) -> Option<RoomRefusal> {
        match self {
            RecordError::NotAdmitted { .. } => Some(RoomRefusal::NotAdmitted),
            RecordError::Policy(e) => Some(e.refusal()),
            _ => None,
        }
    }
}

/// Why a recorded session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// Only recorders were left in the room.
    Alone,
    /// Asked to stop (signal, `room_idle`).
    Stopped,
    /// The service removed the recorder (`left`: kicked, room closed, replaced).
    Removed(String),
    /// The WebSocket or the peer connection failed.
    Lost(String),
}

/// What one recorded session did.
#[derive(Debug)]
pub struct RoomReport {
    /// The room.
    pub room: String,
    /// Why it ended.
    pub end: EndReason,
    /// The archive's summary, or why finishing failed.
    pub summary: Result<SessionSummary, SinkError>,
    /// What the receiver counted (decryption, drops, per room).
    pub media: ReceiverReport,
    /// Frames the archive accepted.
    pub frames_written: u64,
    /// Archive calls that failed.
    pub archive_errors: u64,
    /// Key envelopes the recorder refused (bad signature, other room…).
    pub refused_envelopes: u64,
}

impl RoomReport {
    /// The `recorder_sessions_total` outcome.
    pub fn outcome(&self) -> SessionOutcome {
        match (&self.summary, &self.end) {
            (Ok(_), EndReason::Alone | EndReason::Stopped | EndReason::Removed(_)) => {
                SessionOutcome::Finished
            }
            _ => SessionOutcome::Failed,
        }
    }
}

/// Records `config.room` until it is empty of everyone but recorders, the service removes the
/// recorder, or `stop` turns true. The session is finished (manifest written) in every case
/// once it began; the outcome is counted in `recorder_sessions_total`.
pub async fn record_room(
    config: &RoomConfig,
    me: DeviceKeys,
    archive: Arc<dyn SessionArchive>,
    metrics: Arc<RecorderMetrics>,
    stop: watch::Receiver<bool>,
) -> Result<RoomReport, RecordError> {
    let result = record(config, me, archive, &metrics, stop).await;
    let outcome = match &result {
        Ok(report) => report.outcome(),
        Err(e) => e.outcome(),
    };
    metrics.session_ended(outcome);
    if let Some(refusal) = result.as_ref().err().and_then(RecordError::refusal) {
        metrics.room_refused(refusal);
    }
    match &result {
        Ok(r) => tracing::info!(
            room = %r.room, end = ?r.end, frames = r.frames_written,
            decrypted = r.media.frames_decrypted, without_key = r.media.frames_without_key,
            refused = r.media.frames_refused, backlogged = r.media.frames_backlogged,
            "recording ended"
        ),
        Err(e) => tracing::warn!(room = %config.room, error = %e, "room not recorded"),
    }
    result
}

async fn record(
    config: &RoomConfig,
    me: DeviceKeys,
    archive: Arc<dyn SessionArchive>,
    metrics: &Arc<RecorderMetrics>,
    mut stop: watch::Receiver<bool>,
) -> Result<RoomReport, RecordError> {
    let mut session_config = SessionConfig::new(
        config.signaling.as_str(),
        config.room.as_str(),
        config.credentials.join_token(&config.room),
        me.bundle(),
    );
    session_config.name = Some(super::admission::RECORDER_IDENTITY.to_owned());
    session_config.outgoing_capacity = 1024;
    let mut ws = Session::connect(session_config)
        .await
        .map_err(|e| match e {
            SessionError::Refused(ErrorBody { code, message, .. })
                if code == ErrorCode::RoleNotAllowed =>
            {
                RecordError::NotAdmitted {
                    code: code.as_str().to_owned(),
                    message,
                }
            }
            other => RecordError::Join(other),
        })?;
    let joined = ws.joined().clone();
    let checked = admit(&joined, &me, &config.trusted_admin_keys);
    let doc = match checked {
        Ok(doc) => doc,
        Err(e) => {
            ws.leave().await;
            return Err(e);
        }
    };
    let started_at = SystemTime::now();
    let started = Instant::now();
    let start = SessionStart {
        room: joined.room.clone(),
        started_at,
        retention: policy_retention(&doc),
        // `admit` checked the policy is there; it serializes (plain strings and numbers).
        policy_json: serde_json::to_string(&joined.recording).unwrap_or_default(),
    };
    let writer = match Writer::start(archive, start, config.queue_frames, metrics.clone()).await {
        Ok(w) => w,
        Err(e) => {
            ws.leave().await;
            return Err(e.into());
        }
    };
    metrics.session_started();
    let keys = KeyManager::new(
        me,
        &joined.room,
        &joined.call,
        joined.slot,
        false,
        KeyConfig::default(),
    );
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (missing_tx, missing_keys) = mpsc::channel(64);
    let receiver = tokio::spawn(
        MediaReceiver::new(
            &joined.room,
            started,
            writer.queue.clone(),
            metrics.clone(),
            missing_tx,
        )
        .run(command_rx),
    );
    let mut room = RoomLoop {
        config,
        ws,
        keys,
        queue: writer.queue.clone(),
        commands,
        roster: BTreeMap::new(),
        tracks: BTreeMap::new(),
        remote_sdp: String::new(),
        peer: None,
        connected: false,
        answered: false,
        subscriptions_dirty: true,
        last_subscribe: None,
        subscribe_in_flight: false,
        alone_since: None,
        chat: ChatReader::new(&joined.room, &joined.call, started),
        metrics: metrics.clone(),
        joined,
    };
    let end = room.run(&mut stop, missing_keys).await;
    let unread = room.chat.drain();
    room.archive_chat(unread);
    if let Some(peer) = room.peer.take() {
        peer.close().await;
    }
    room.ws.leave().await;
    let refused_envelopes = room.keys.refused_envelopes();
    let RoomLoop {
        commands, queue, ..
    } = room;
    drop((commands, queue));
    let media = receiver.await.unwrap_or_default();
    let written = writer.finish().await;
    metrics.session_stopped();
    Ok(RoomReport {
        room: config.room.clone(),
        end,
        summary: written.summary,
        media,
        frames_written: written.frames_written,
        archive_errors: written.archive_errors,
        refused_envelopes,
    })
}

/// What must hold of `joined` before anything is recorded.
fn admit(
    joined: &Joined,
    me: &DeviceKeys,
    trusted: &TrustedAdminKeys,
) -> Result<call_client::protocol::RecordingDocument, RecordError> {
    let doc = check_policy(joined.recording.as_ref(), &joined.room, me, trusted)?;
    if joined.receive_slots.is_some() {
        return Err(RecordError::ReceiveSlots(joined.room.clone()));
    }
    if !joined.media {
        return Err(RecordError::NoMedia);
    }
    Ok(doc)
}

/// What the loop does after a message.
enum Flow {
    Continue,
    /// The SFU lost the media session: a fresh peer connection (the keys stay).
    RestartMedia,
}

struct RoomLoop<'a> {
    config: &'a RoomConfig,
    ws: Session,
    keys: KeyManager,
    queue: WriterQueue,
    commands: mpsc::UnboundedSender<ReceiverCommand>,
    joined: Joined,
    /// The roster as the service showed it, by device.
    roster: BTreeMap<String, RosterEntry>,
    /// The room's tracks the recorder receives (not its own: it publishes none), by id.
    tracks: BTreeMap<String, TrackInfo>,
    /// The last SDP the SFU sent (its sections name the tracks they carry).
    remote_sdp: String,
    peer: Option<Peer>,
    connected: bool,
    answered: bool,
    subscriptions_dirty: bool,
    last_subscribe: Option<Instant>,
    /// A `subscribe` went out and the SFU's offer that follows it has not come yet.
    subscribe_in_flight: bool,
    /// Since when only recorders are in the roster.
    alone_since: Option<Instant>,
    /// The room's chat, opened for the archive.
    chat: ChatReader,
    metrics: Arc<RecorderMetrics>,
}

impl RoomLoop<'_> {
    async fn run(
        &mut self,
        stop: &mut watch::Receiver<bool>,
        mut missing_keys: mpsc::Receiver<MissingKey>,
    ) -> EndReason {
        let now = SystemTime::now();
        let entries = self.joined.roster.devices.clone();
        for entry in entries {
            self.roster_added(entry, now);
        }
        self.security_code(now);
        for track in self.joined.tracks.clone() {
            self.track_published(track);
        }
        self.apply_key_outputs();
        self.check_alone();
        let mut state = match self.start_media().await {
            Ok(state) => state,
            Err(e) => return EndReason::Lost(e.to_string()),
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = self.ws.recv() => {
                    let Some(msg) = msg else {
                        return EndReason::Lost("signaling connection lost".into());
                    };
                    match self.on_message(msg).await {
                        Ok(Flow::Continue) => {}
                        Ok(Flow::RestartMedia) => match self.start_media().await {
                            Ok(new_state) => state = new_state,
                            Err(e) => return EndReason::Lost(e.to_string()),
                        },
                        Err(end) => return end,
                    }
                }
                changed = state.changed() => {
                    if changed.is_err() {
                        return EndReason::Lost("peer connection gone".into());
                    }
                    let s = *state.borrow_and_update();
                    match s {
                        RTCPeerConnectionState::Connected => self.connected = true,
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            return EndReason::Lost(format!("peer connection {s}"));
                        }
                        _ => {}
                    }
                }
                Some(missing) = missing_keys.recv() => {
                    self.key_input(KeyInput::Undecryptable { slot: missing.slot, generation: missing.generation });
                }
                _ = tick.tick() => {
                    if let Err(end) = self.on_tick() {
                        return end;
                    }
                }
                _ = super::stopped(stop) => return EndReason::Stopped,
            }
        }
    }

    /// A new peer connection (receive-only audio and video sections), its offer sent, its
    /// packets handed to the receiver. Returns its connection state to watch.
    async fn start_media(&mut self) -> Result<watch::Receiver<RTCPeerConnectionState>, PeerError> {
        let mut peer = Peer::builder()
            .simulcast_extensions()
            .default_interceptors()
            .build()
            .await?;
        let incoming = peer.take_incoming();
        peer.add_recvonly(RtpCodecKind::Audio).await?;
        peer.add_recvonly(RtpCodecKind::Video).await?;
        let offer = peer.offer().await?;
        let state = peer.state();
        self.peer = Some(peer);
        self.connected = false;
        self.answered = false;
        self.subscriptions_dirty = true;
        let _ = self.commands.send(ReceiverCommand::Media(incoming));
        self.send(ClientMessage::Offer(ClientOffer {
            sdp: offer,
            tracks: Vec::new(),
        }))
        .map_err(|e| PeerError::Webrtc(format!("offer not sent: {e}")))?;
        Ok(state)
    }

    async fn on_message(&mut self, msg: ServerMessage) -> Result<Flow, EndReason> {
        match msg {
            ServerMessage::Answer(SdpBody { sdp }) => {
                if let Some(peer) = &self.peer {
                    peer.apply_answer(&sdp)
                        .await
                        .map_err(|e| EndReason::Lost(e.to_string()))?;
                    self.answered = true;
                    self.remote_sdp = sdp;
                    self.routes_changed();
                    self.flush_subscriptions()?;
                }
            }
            ServerMessage::Offer(SdpBody { sdp }) => {
                if let Some(peer) = &self.peer {
                    let answer = peer
                        .answer(&sdp)
                        .await
                        .map_err(|e| EndReason::Lost(e.to_string()))?;
                    self.remote_sdp = sdp;
                    self.routes_changed();
                    self.send(ClientMessage::Answer(SdpBody { sdp: answer }))
                        .map_err(|e| EndReason::Lost(e.to_string()))?;
                    self.subscribe_in_flight = false;
                    self.flush_subscriptions()?;
                }
            }
            ServerMessage::Roster(RosterDelta {
                ref added,
                ref removed,
                ..
            }) => {
                let now = SystemTime::now();
                for entry in added.clone() {
                    self.roster_added(entry, now);
                }
                if !removed.is_empty() {
                    for device in removed {
                        if self.roster.remove(device).is_some() {
                            self.queue.participant_left(device.clone(), now);
                        }
                    }
                    self.key_input(KeyInput::RosterRemoved(removed.clone()));
                }
                self.security_code(now);
                self.routes_changed();
                self.check_alone();
            }
            ServerMessage::Membership(_)
            | ServerMessage::KeyEnvelope(_)
            | ServerMessage::KeyAck(_)
            | ServerMessage::KeyRequest(_) => {
                for input in key_inputs(&msg) {
                    self.key_input(input);
                }
            }
            ServerMessage::TrackPublished(TrackPublished { track }) => {
                self.track_published(track);
                self.routes_changed();
                self.flush_subscriptions()?;
            }
            ServerMessage::TrackUnpublished(TrackUnpublished { track }) => {
                self.tracks.remove(&track);
                self.subscriptions_dirty = true;
                self.routes_changed();
            }
            ServerMessage::Error(ErrorBody { code, message, .. }) => {
                tracing::warn!(room = %self.joined.room, code = code.as_str(), %message, "service error");
            }
            ServerMessage::Left(LeftNotice { reason }) => {
                return Err(EndReason::Removed(reason.as_str().to_owned()));
            }
            ServerMessage::MediaReset(_) => {
                // The SFU lost the media session: a fresh peer connection, the same keys.
                if let Some(peer) = self.peer.take() {
                    peer.close().await;
                }
                self.remote_sdp.clear();
                self.routes_changed();
                return Ok(Flow::RestartMedia);
            }
            ServerMessage::Joined(_)
            | ServerMessage::Speakers(_)
            | ServerMessage::Slots(_)
            | ServerMessage::MediaState(_)
            | ServerMessage::Hand(_)
            | ServerMessage::RecordingReady(_) => {}
            ServerMessage::Chat(notice) => {
                let opened = self.chat.received(notice, Instant::now());
                self.archive_chat(opened);
            }
            // A recorder sends no audio and moderates nothing; it passes the lobby (before
            // `joined`), so none of these concerns it.
            ServerMessage::Waiting(_)
            | ServerMessage::Moderation(_)
            | ServerMessage::MuteRequested(_) => {}
        }
        Ok(Flow::Continue)
    }

    fn on_tick(&mut self) -> Result<(), EndReason> {
        if let Some(since) = self.alone_since
            && since.elapsed() >= self.config.alone_for
        {
            return Err(EndReason::Alone);
        }
        let now = Instant::now();
        if self.keys.poll_timeout().is_some_and(|due| due <= now)
            && let Err(e) = self.keys.handle_timeout(now)
        {
            tracing::warn!(room = %self.joined.room, error = %e, "key timer");
        }
        self.apply_key_outputs();
        let expired = self.chat.expire(now);
        self.archive_chat(expired);
        self.flush_subscriptions()
    }

    /// Sends the subscription set when it changed: at once when no `subscribe` is in flight,
    /// else at most every [`SUBSCRIBE_EVERY`].
    fn flush_subscriptions(&mut self) -> Result<(), EndReason> {
        let may = !self.subscribe_in_flight
            || self
                .last_subscribe
                .is_none_or(|t| t.elapsed() >= SUBSCRIBE_EVERY);
        if !(self.answered && self.subscriptions_dirty && may) {
            return Ok(());
        }
        self.subscriptions_dirty = false;
        self.subscribe_in_flight = true;
        self.last_subscribe = Some(Instant::now());
        let update = subscriptions(&self.tracks, self.config.video_layer);
        self.send(ClientMessage::Subscribe(update))
            .map_err(|e| EndReason::Lost(e.to_string()))
    }

    fn roster_added(&mut self, entry: RosterEntry, at: SystemTime) {
        let verified = entry.bundle.verify();
        match &verified {
            Ok(bundle) if bundle.device().as_str() == entry.device => {
                self.queue.participant_joined(Participant {
                    device: entry.device.clone(),
                    identity: entry.identity.clone(),
                    role: entry.role.as_str().to_owned(),
                    identity_key: bundle.identity_key(),
                    at,
                });
            }
            _ => {
                tracing::warn!(room = %self.joined.room, device = %entry.device, "roster bundle does not verify: not a participant of the record")
            }
        }
        self.key_input(KeyInput::RosterAdded(RosterDevice::from(&entry)));
        self.roster.insert(entry.device.clone(), entry);
    }

    /// The call security code of the roster now (as every participant computes it).
    fn security_code(&mut self, at: SystemTime) {
        let keyed: Vec<(&RosterEntry, [u8; 32])> = self
            .roster
            .values()
            .filter_map(|e| {
                let b = e.bundle.verify().ok()?;
                (b.device().as_str() == e.device).then(|| (e, b.identity_key()))
            })
            .collect();
        let entries: Vec<CodeEntry<'_>> = keyed
            .iter()
            .map(|(e, ik)| CodeEntry {
                device: &e.device,
                identity_key: ik,
                role: e.role.as_str(),
                slot: e.slot,
            })
            .collect();
        match security_code(&self.joined.room, &self.joined.call, &entries) {
            Ok(code) => self.queue.security_code(code.digits().to_owned(), at),
            Err(e) => tracing::warn!(room = %self.joined.room, error = %e, "no security code"),
        }
    }

    fn track_published(&mut self, track: TrackInfo) {
        if track.publisher == self.keys.device() {
            return;
        }
        self.tracks.insert(track.id.clone(), track);
        self.subscriptions_dirty = true;
    }

    fn check_alone(&mut self) {
        let alone = self
            .roster
            .values()
            .all(|e| e.role == call_client::protocol::Role::Recorder);
        match (alone, self.alone_since) {
            (true, None) => self.alone_since = Some(Instant::now()),
            (false, Some(_)) => self.alone_since = None,
            _ => {}
        }
    }

    /// Tells the receiver the tracks and which section carries which.
    fn routes_changed(&mut self) {
        let mut tracks = HashMap::new();
        let mut by_mid = HashMap::new();
        for t in self.tracks.values() {
            let Some(publisher) = self.roster.get(&t.publisher) else {
                continue;
            };
            let (kind, codec) = match t.kind {
                TrackKind::Audio => (MediaKind::Audio, Codec::Opus),
                TrackKind::Video => (MediaKind::Video, Codec::Vp8),
            };
            tracks.insert(
                t.id.clone(),
                TrackRoute {
                    meta: TrackMeta {
                        track_id: t.id.clone(),
                        device: t.publisher.clone(),
                        kind,
                        codec,
                        source: source_name(t.source).to_owned(),
                        width: 0,
                        height: 0,
                    },
                    publisher_slot: publisher.slot,
                    stream: stream_of(t.source),
                },
            );
            if let Some(mid) = mid_of_track(&self.remote_sdp, &t.id) {
                by_mid.insert(mid, t.id.clone());
            }
        }
        let _ = self
            .commands
            .send(ReceiverCommand::Tracks { tracks, by_mid });
    }

    fn key_input(&mut self, input: KeyInput) {
        if let Err(e) = self.keys.handle_input(Instant::now(), input) {
            tracing::warn!(room = %self.joined.room, error = %e, "key input refused");
        }
        self.apply_key_outputs();
    }

    fn apply_key_outputs(&mut self) {
        while let Some(output) = self.keys.poll_output() {
            if let Some(message) = key_message(&output) {
                if let Err(e) = self.send(message) {
                    tracing::warn!(room = %self.joined.room, error = %e, "key message not sent");
                }
                continue;
            }
            match output {
                KeyOutput::InstallReceiverKey(key) => {
                    let opened = self.chat.key_installed(&key);
                    self.archive_chat(opened);
                    let _ = self.commands.send(ReceiverCommand::InstallKey(key));
                }
                KeyOutput::ForgetSender { device, slot } => {
                    self.chat.forget(&device);
                    let _ = self.commands.send(ReceiverCommand::ForgetSender { slot });
                }
                // A receive-only policy makes no sending key.
                KeyOutput::UseSenderKey(_)
                | KeyOutput::SendEnvelope { .. }
                | KeyOutput::SendAck { .. }
                | KeyOutput::SendRequest { .. } => {}
            }
        }
    }

    /// Hands chat entries to the archive, counted.
    fn archive_chat(&mut self, entries: impl IntoIterator<Item = ChatEntry>) {
        for entry in entries {
            let result = match entry.body {
                ChatBody::Text(_) | ChatBody::Reaction(_) => ChatResult::Archived,
                ChatBody::Unreadable(_) => ChatResult::Unreadable,
            };
            self.metrics.chat_message(result);
            self.queue.chat(entry);
        }
    }

    fn send(&mut self, message: ClientMessage) -> Result<(), SessionError> {
        self.ws.send(message).map(drop)
    }
}

/// The subscription set: every track, cameras capped at `layer`.
fn subscriptions(tracks: &BTreeMap<String, TrackInfo>, layer: Layer) -> SubscriptionUpdate {
    SubscriptionUpdate {
        subscriptions: tracks
            .values()
            .map(|t| {
                let capped = (t.kind == TrackKind::Video && !t.layers.is_empty()).then(|| {
                    if t.layers.contains(&layer) {
                        layer
                    } else {
                        // The best layer below the chosen one, else the lowest there is.
                        *t.layers
                            .iter()
                            .filter(|l| layer_rank(**l) < layer_rank(layer))
                            .max_by_key(|l| layer_rank(**l))
                            .unwrap_or(&t.layers[0])
                    }
                });
                Subscription {
                    track: t.id.clone(),
                    layer: capped,
                    // A large visible size: the layer cap decides.
                    width: capped.map(|_| 3840),
                    height: capped.map(|_| 2160),
                }
            })
            .collect(),
    }
}

fn layer_rank(l: Layer) -> u8 {
    match l {
        Layer::Low => 0,
        Layer::Medium => 1,
        Layer::High => 2,
    }
}

fn source_name(source: call_client::protocol::TrackSource) -> &'static str {
    use call_client::protocol::TrackSource;
    match source {
        TrackSource::Microphone => "microphone",
        TrackSource::Camera => "camera",
        TrackSource::Screen => "screen",
        TrackSource::ScreenAudio => "screen_audio",
    }
}
