//! The registry of rooms and the task ("actor") that owns each room.
//!
//! Each room's [`Room`] state lives in one task; connections, the admin API and the media node
//! talk to it through [`RoomCommand`]s on an unbounded channel (commands are bounded by the
//! per-connection rate limit). The actor delivers the room's [`Output`]s onto each connection's
//! bounded outbound queue; a connection whose queue is full is dropped from the room rather than
//! slowing everyone else down. No lock is held across an `.await`; the registry's mutex only
//! guards the name → room map.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::media::{MediaEvent, MediaNode, MediaRoomSpec};
use crate::metrics::Metrics;
use crate::policy::{Role, RoomPolicy};
use crate::protocol::{
    ClientStats, ErrorCode, KeyAck, KeyEnvelope, KeyRequest, LeaveReason, ServerMessage,
    Subscription,
};
use crate::room::{
    ConnId, Departure, JoinError, JoinRequest, Output, RekeyTiming, Room, RoomDetail, RoomSummary,
};

/// What a room sends to one connection.
#[derive(Clone, Debug)]
pub enum Outbound {
    /// A serialized server message.
    Message {
        /// Its `type`, for metrics.
        ty: &'static str,
        /// The JSON text.
        text: Utf8Bytes,
    },
    /// The device is out of the room: send `left` and close.
    Close(LeaveReason),
}

/// A request to a room's actor.
#[derive(Debug)]
pub enum RoomCommand {
    /// Admit a device; its outbound queue is `tx`. Replies with the slot.
    Join {
        /// The join.
        req: Box<JoinRequest>,
        /// The connection's outbound queue.
        tx: mpsc::Sender<Outbound>,
        /// Slot on success.
        reply: oneshot::Sender<Result<u16, JoinError>>,
    },
    /// A device left or its connection ended.
    Leave {
        /// Connection.
        conn: ConnId,
        /// Device.
        device: String,
        /// How.
        how: Departure,
    },
    /// Relay a key envelope.
    Envelope {
        /// Connection.
        conn: ConnId,
        /// Sending device.
        device: String,
        /// The envelope.
        envelope: Box<KeyEnvelope>,
    },
    /// Relay a key acknowledgement.
    Ack {
        /// Connection.
        conn: ConnId,
        /// Acknowledging device.
        device: String,
        /// The ack.
        ack: KeyAck,
    },
    /// Relay a key request.
    Request {
        /// Connection.
        conn: ConnId,
        /// Requesting device.
        device: String,
        /// The request.
        req: KeyRequest,
    },
    /// Store client stats.
    Stats {
        /// Connection.
        conn: ConnId,
        /// Device.
        device: String,
        /// Stats.
        stats: ClientStats,
    },
    /// Store subscriptions.
    Subscriptions {
        /// Connection.
        conn: ConnId,
        /// Device.
        device: String,
        /// Subscriptions.
        subscriptions: Vec<Subscription>,
    },
    /// An event from the media node.
    Media(MediaEvent),
    /// Admin: summary.
    Summary(oneshot::Sender<RoomSummary>),
    /// Admin: detail.
    Detail(oneshot::Sender<RoomDetail>),
    /// Admin: remove a device; replies whether it was there.
    Kick {
        /// Device.
        device: String,
        /// Whether it was in the room.
        reply: oneshot::Sender<bool>,
    },
    /// Admin: close the room.
    Close(oneshot::Sender<()>),
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubError {
    /// A room of that name exists.
    #[error("room already exists")]
    Exists,
    /// No room of that name.
    #[error("room not found")]
    NotFound,
    /// The device is not in the room.
    #[error("participant not found")]
    NoParticipant,
    /// The media node refused the room.
    #[error("media node: {0}")]
    Media(String),
}

/// Settings the hub applies to every room and connection.
#[derive(Clone, Copy, Debug)]
pub struct HubSettings {
    /// Membership notice timing.
    pub rekey: RekeyTiming,
    /// Capacity of each connection's outbound queue (messages).
    pub outbound_queue: usize,
}

/// The registry of rooms (cheap to clone).
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    rooms: Mutex<HashMap<String, RoomEntry>>,
    metrics: Metrics,
    media: Option<Arc<dyn MediaNode>>,
    settings: HubSettings,
    next_id: AtomicU64,
}

struct RoomEntry {
    tx: mpsc::UnboundedSender<RoomCommand>,
    id: u64,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("media", &self.inner.media.is_some())
            .finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn new_call_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    format!(
        "c-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Hub {
    /// A hub; when `media` is given, its events are dispatched to rooms from now on.
    pub fn new(metrics: Metrics, media: Option<Arc<dyn MediaNode>>, settings: HubSettings) -> Self {
        let hub = Hub {
            inner: Arc::new(HubInner {
                rooms: Mutex::new(HashMap::new()),
                metrics,
                media,
                settings,
                next_id: AtomicU64::new(1),
            }),
        };
        if let Some(node) = hub.inner.media.clone() {
            let weak = Arc::downgrade(&hub.inner);
            tokio::spawn(async move {
                let mut events = node.events();
                while let Some(ev) = events.next().await {
                    let Some(inner) = weak.upgrade() else { break };
                    let room = match &ev {
                        MediaEvent::TrackPublished { room, .. }
                        | MediaEvent::TrackUnpublished { room, .. }
                        | MediaEvent::ActiveSpeakers { room, .. }
                        | MediaEvent::ParticipantGone { room, .. }
                        | MediaEvent::Quality { room, .. }
                        | MediaEvent::Offer { room, .. } => room.clone(),
                    };
                    if let Some(tx) = (Hub { inner }).room(&room) {
                        let _ = tx.send(RoomCommand::Media(ev));
                    }
                }
            });
        }
        hub
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The attached media node, if any.
    pub fn media(&self) -> Option<&Arc<dyn MediaNode>> {
        self.inner.media.as_ref()
    }

    /// Capacity of each connection's outbound queue.
    pub fn outbound_queue(&self) -> usize {
        self.inner.settings.outbound_queue
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoomEntry>> {
        // A panic while holding this lock would be a bug in a few lines of map code; keep
        // serving with the map as it was rather than cascading the panic.
        self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The command channel of room `name`.
    pub fn room(&self, name: &str) -> Option<mpsc::UnboundedSender<RoomCommand>> {
        self.rooms().get(name).map(|e| e.tx.clone())
    }

    /// Creates a room. `ephemeral` rooms close when their last device leaves.
    pub async fn create_room(
        &self,
        name: &str,
        policy: RoomPolicy,
        ephemeral: bool,
    ) -> Result<RoomSummary, HubError> {
        let kind = policy.kind;
        let summary = {
            let mut rooms = self.rooms();
            if rooms.contains_key(name) {
                return Err(HubError::Exists);
            }
            let room = Room::new(
                name.to_string(),
                new_call_id(),
                policy,
                self.inner.settings.rekey,
                unix_now(),
            );
            let summary = room.summary();
            let (tx, rx) = mpsc::unbounded_channel();
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            rooms.insert(name.to_string(), RoomEntry { tx, id });
            let actor = RoomActor {
                room,
                id,
                ephemeral,
                hub: Arc::downgrade(&self.inner),
                metrics: self.inner.metrics.clone(),
                media: self.inner.media.clone(),
                conns: HashMap::new(),
                counts: BTreeMap::new(),
            };
            self.inner.metrics.rooms.inc();
            tokio::spawn(actor.run(rx));
            summary
        };
        info!(room = name, ?kind, ephemeral, "room created");
        if let Some(node) = &self.inner.media {
            let spec = MediaRoomSpec {
                room: name.to_string(),
                kind,
            };
            if let Err(e) = node.create_room(&spec).await {
                warn!(room = name, error = %e, "media node refused the room");
                let _ = self.close(name).await;
                return Err(HubError::Media(e.to_string()));
            }
        }
        Ok(summary)
    }

    async fn ask<T>(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<T>) -> RoomCommand,
    ) -> Result<T, HubError> {
        let tx = self.room(name).ok_or(HubError::NotFound)?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(reply)).map_err(|_| HubError::NotFound)?;
        rx.await.map_err(|_| HubError::NotFound)
    }

    /// Every room's summary, sorted by name.
    pub async fn list(&self) -> Vec<RoomSummary> {
        let names: Vec<String> = self.rooms().keys().cloned().collect();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Ok(s) = self.ask(&name, RoomCommand::Summary).await {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// One room in detail.
    pub async fn detail(&self, name: &str) -> Result<RoomDetail, HubError> {
        self.ask(name, RoomCommand::Detail).await
    }

    /// Removes a device from a room.
    pub async fn kick(&self, name: &str, device: &str) -> Result<(), HubError> {
        let device = device.to_string();
        match self
            .ask(name, |reply| RoomCommand::Kick { device, reply })
            .await?
        {
            true => Ok(()),
            false => Err(HubError::NoParticipant),
        }
    }

    /// Closes a room, disconnecting everyone in it.
    pub async fn close(&self, name: &str) -> Result<(), HubError> {
        self.ask(name, RoomCommand::Close).await
    }
}

struct ConnHandle {
    device: String,
    tx: mpsc::Sender<Outbound>,
}

struct RoomActor {
    room: Room,
    id: u64,
    ephemeral: bool,
    hub: Weak<HubInner>,
    metrics: Metrics,
    media: Option<Arc<dyn MediaNode>>,
    conns: HashMap<ConnId, ConnHandle>,
    counts: BTreeMap<Role, u32>,
}

impl RoomActor {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<RoomCommand>) {
        loop {
            let deadline = self.room.poll_timeout();
            let cmd = tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => Some(cmd),
                    None => break,
                },
                () = sleep_until(deadline) => None,
            };
            let now = Instant::now();
            match cmd {
                Some(cmd) => self.handle(cmd, now),
                None => {
                    let out = self.room.handle_timeout(now);
                    self.deliver(out, now);
                }
            }
            self.update_gauges();
            if self.room.is_closed() || (self.ephemeral && self.room.is_empty()) {
                break;
            }
        }
        self.shutdown(&mut rx);
    }

    fn shutdown(mut self, rx: &mut mpsc::UnboundedReceiver<RoomCommand>) {
        if let Some(hub) = self.hub.upgrade() {
            let mut rooms = hub.rooms.lock().unwrap_or_else(|e| e.into_inner());
            if rooms.get(self.room.name()).is_some_and(|e| e.id == self.id) {
                rooms.remove(self.room.name());
            }
        }
        rx.close();
        if !self.room.is_closed() {
            let out = self.room.close();
            self.deliver(out, Instant::now());
        }
        self.update_gauges();
        self.metrics.rooms.dec();
        if let Some(node) = self.media.clone() {
            let name = self.room.name().to_string();
            tokio::spawn(async move {
                if let Err(e) = node.close_room(&name).await {
                    debug!(room = %name, error = %e, "media close_room failed");
                }
            });
        }
        info!(room = self.room.name(), "room closed");
    }

    fn update_gauges(&mut self) {
        let now = self.room.counts();
        for role in Role::ALL {
            let before = i64::from(self.counts.get(&role).copied().unwrap_or(0));
            let after = i64::from(now.get(&role).copied().unwrap_or(0));
            if before != after {
                self.metrics
                    .participants
                    .with_label_values(&[role.as_str()])
                    .add(after - before);
            }
        }
        self.counts = now;
    }

    fn send_error(&self, conn: ConnId, code: ErrorCode, message: String) {
        self.metrics.reject(code.metric_reason());
        if let Some(c) = self.conns.get(&conn) {
            let msg = ServerMessage::error(code, message);
            let _ = c.tx.try_send(Outbound::Message {
                ty: "error",
                text: msg.to_json().into(),
            });
        }
    }

    fn handle(&mut self, cmd: RoomCommand, now: Instant) {
        match cmd {
            RoomCommand::Join { req, tx, reply } => {
                let conn = req.conn;
                let device = req.bundle.device.clone();
                match self.room.join(*req, now, self.media.is_some()) {
                    Ok((joined, out)) => {
                        let slot = joined.slot;
                        let msg = ServerMessage::Joined(Box::new(joined));
                        // The queue is fresh, so the first message always fits.
                        let _ = tx.try_send(Outbound::Message {
                            ty: "joined",
                            text: msg.to_json().into(),
                        });
                        self.conns.insert(conn, ConnHandle { device, tx });
                        self.deliver(out, now);
                        let _ = reply.send(Ok(slot));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            RoomCommand::Leave { conn, device, how } => {
                let out = self.room.leave(conn, &device, how, now);
                self.deliver(out, now);
                self.conns.remove(&conn);
            }
            RoomCommand::Envelope {
                conn,
                device,
                envelope,
            } => match self.room.route_envelope(conn, &device, *envelope) {
                Ok(out) => self.deliver(vec![out], now),
                Err(e) => self.send_error(conn, e.code(), e.to_string()),
            },
            RoomCommand::Ack { conn, device, ack } => match self.room.route_ack(conn, &device, ack)
            {
                Ok(out) => self.deliver(vec![out], now),
                Err(e) => self.send_error(conn, e.code(), e.to_string()),
            },
            RoomCommand::Request { conn, device, req } => {
                match self.room.route_request(conn, &device, req) {
                    Ok(out) => self.deliver(vec![out], now),
                    Err(e) => self.send_error(conn, e.code(), e.to_string()),
                }
            }
            RoomCommand::Stats {
                conn,
                device,
                stats,
            } => self.room.record_stats(conn, &device, stats),
            RoomCommand::Subscriptions {
                conn,
                device,
                subscriptions,
            } => self.room.record_subscriptions(conn, &device, subscriptions),
            RoomCommand::Media(ev) => {
                let out = match ev {
                    MediaEvent::TrackPublished { track, .. } => self.room.publish(track),
                    MediaEvent::TrackUnpublished { track, .. } => self.room.unpublish(&track),
                    MediaEvent::ActiveSpeakers { speakers, .. } => self.room.speakers(speakers),
                    MediaEvent::Quality {
                        device, quality, ..
                    } => {
                        self.room.record_quality(&device, quality);
                        Vec::new()
                    }
                    MediaEvent::Offer { device, sdp, .. } => self.room.to_device(
                        &device,
                        ServerMessage::Offer(crate::protocol::SdpBody { sdp }),
                    ),
                    MediaEvent::ParticipantGone { device, reason, .. } => {
                        info!(room = self.room.name(), device = %device, %reason, "media session gone");
                        self.room.to_device(
                            &device,
                            ServerMessage::error(
                                ErrorCode::MediaError,
                                format!(
                                    "media session ended ({reason}); send a new offer to reconnect"
                                ),
                            ),
                        )
                    }
                };
                self.deliver(out, now);
            }
            RoomCommand::Summary(reply) => {
                let _ = reply.send(self.room.summary());
            }
            RoomCommand::Detail(reply) => {
                let _ = reply.send(self.room.detail());
            }
            RoomCommand::Kick { device, reply } => {
                let found = match self.room.kick(&device, now) {
                    Some(out) => {
                        info!(room = self.room.name(), device = %device, "kicked");
                        self.deliver(out, now);
                        true
                    }
                    None => false,
                };
                let _ = reply.send(found);
            }
            RoomCommand::Close(reply) => {
                let out = self.room.close();
                self.deliver(out, now);
                let _ = reply.send(());
            }
        }
    }

    /// Delivers outputs; connections whose queue overflows are dropped from the room (which may
    /// produce more outputs, delivered in the same loop).
    fn deliver(&mut self, out: Vec<Output>, now: Instant) {
        let mut queue: std::collections::VecDeque<Output> = out.into();
        while let Some(o) = queue.pop_front() {
            match o {
                Output::Send { to, message } => {
                    let ty = message.type_name();
                    let text: Utf8Bytes = message.to_json().into();
                    for conn in to {
                        let Some(c) = self.conns.get(&conn) else {
                            continue;
                        };
                        let item = Outbound::Message {
                            ty,
                            text: text.clone(),
                        };
                        if let Err(mpsc::error::TrySendError::Full(_)) = c.tx.try_send(item) {
                            warn!(room = self.room.name(), device = %c.device, "outbound queue full; dropping the connection");
                            self.metrics.reject("slow_consumer");
                            let device = c.device.clone();
                            // Dropping the sender ends the connection's queue: it closes.
                            self.conns.remove(&conn);
                            queue.extend(self.room.leave(
                                conn,
                                &device,
                                Departure::SlowConsumer,
                                now,
                            ));
                        }
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        let _ = c.tx.try_send(Outbound::Close(reason));
                    }
                }
                Output::MediaRemove { device } => {
                    if let Some(node) = self.media.clone() {
                        let room = self.room.name().to_string();
                        tokio::spawn(async move {
                            if let Err(e) = node.remove_participant(&room, &device).await {
                                debug!(room = %room, device = %device, error = %e, "media remove failed");
                            }
                        });
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
