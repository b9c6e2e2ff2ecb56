//! The registry of rooms: room name → the command channel of the task ("actor") that owns it.
//!
//! Each room's [`Room`] state lives in one task (`hub/room_actor.rs`); connections, the admin API
//! and the media node talk to it through [`RoomCommand`]s on an unbounded channel (commands are
//! bounded by the per-connection rate limit). The actor delivers the room's
//! [`Output`](crate::room::Output)s onto each connection's
//! bounded outbound queue; a connection whose queue is full is dropped from the room rather than
//! slowing everyone else down. No lock is held across an `.await`; the registry's mutex only
//! guards the name → room map.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::cluster::RoomRecords;
use crate::media_node::{MediaNode, MediaRoomSpec};
use crate::metrics::Metrics;
use crate::policy::RoomPolicy;
use crate::protocol::ModerationState;
use crate::recorded_rooms::{RecordedRooms, RecordedRoomsSettings};
use crate::room::{ConnId, RekeyTiming, Room, RoomDetail, RoomRecord, RoomSummary};
use crate::test_hooks::TestHooks;
use crate::turn_credentials::TurnCredentials;

mod room_actor;

use room_actor::RoomActor;
pub use room_actor::{JoinOutcome, Outbound, RoomCommand, SdpSettled};

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
#[derive(Clone, Debug)]
pub struct HubSettings {
    /// Membership notice timing.
    pub rekey: RekeyTiming,
    /// Capacity of each connection's outbound queue (messages).
    pub outbound_queue: usize,
    /// TURN credentials for `joined.ice_servers`; `None`: no TURN.
    pub turn: Option<Arc<TurnCredentials>>,
    /// Test-only misbehaviour (`signaling dev --test-hooks`; none otherwise).
    pub test_hooks: TestHooks,
    /// The recorded-room directory (recorder event streams, compliance gauge).
    pub recorded_rooms: RecordedRoomsSettings,
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
    /// `close_room` calls to the media node not finished yet (see [`Hub::close_all`]).
    media_closes_pending: Arc<AtomicUsize>,
    /// Where recorded rooms report who is in them.
    recorded_rooms: RecordedRooms,
    /// Where rooms keep their records, with several replicas (set once, at start).
    records: OnceLock<RoomRecords>,
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
        let recorded_rooms = RecordedRooms::start(settings.recorded_rooms, metrics.clone());
        let hub = Hub {
            inner: Arc::new(HubInner {
                recorded_rooms,
                records: OnceLock::new(),
                rooms: Mutex::new(HashMap::new()),
                metrics,
                media,
                settings,
                next_id: AtomicU64::new(1),
                media_closes_pending: Arc::new(AtomicUsize::new(0)),
            }),
        };
        if let Some(node) = hub.inner.media.clone() {
            let weak = Arc::downgrade(&hub.inner);
            tokio::spawn(async move {
                let mut events = node.events();
                while let Some(ev) = events.next().await {
                    let Some(inner) = weak.upgrade() else { break };
                    if let Some(tx) = (Hub { inner }).room(ev.room()) {
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

    /// The test hooks in force (none outside `signaling dev --test-hooks`).
    pub fn test_hooks(&self) -> &TestHooks {
        &self.inner.settings.test_hooks
    }

    /// The recorded-room directory (what recorder event streams subscribe to).
    pub fn recorded_rooms(&self) -> &RecordedRooms {
        &self.inner.recorded_rooms
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

    /// Keeps every room's record in `records` from now on (several replicas: the cluster calls
    /// it once, at start, before any room exists).
    pub fn keep_records(&self, records: RoomRecords) {
        let _ = self.inner.records.set(records);
    }

    /// The names of the rooms that exist here.
    pub fn room_names(&self) -> Vec<String> {
        self.rooms().keys().cloned().collect()
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
        self.create_room_with_call(name, policy, ephemeral, None)
            .await
    }

    /// Creates a room whose call id is `call` (that of a resuming join creating the room, the
    /// caller checked its shape: docs/architecture.md §7.42), or a fresh random one.
    pub async fn create_room_with_call(
        &self,
        name: &str,
        policy: RoomPolicy,
        ephemeral: bool,
        call: Option<String>,
    ) -> Result<RoomSummary, HubError> {
        let kind = policy.kind;
        let receive_slots = policy.receive_slots;
        let last_n = policy.last_n;
        let room = Room::new(
            name.to_string(),
            call.unwrap_or_else(new_call_id),
            policy,
            self.inner.settings.rekey,
            unix_now(),
        );
        let summary = self.start_actor(room, ephemeral)?;
        info!(room = name, ?kind, ephemeral, "room created");
        if let Some(node) = &self.inner.media {
            let spec = MediaRoomSpec {
                room: name.to_string(),
                kind,
                receive_slots,
                last_n,
            };
            match node.create_room(&spec).await {
                Ok(Some(counts)) => {
                    if let Some(tx) = self.room(name) {
                        let _ = tx.send(RoomCommand::ReceiveSlots(counts));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(room = name, error = %e, "media node refused the room");
                    let _ = self.close(name).await;
                    return Err(HubError::Media(e.to_string()));
                }
            }
        }
        Ok(summary)
    }

    /// Registers `room` and starts its actor; `Exists` when a room of that name is here.
    fn start_actor(&self, room: Room, ephemeral: bool) -> Result<RoomSummary, HubError> {
        let name = room.name().to_owned();
        let mut rooms = self.rooms();
        if rooms.contains_key(&name) {
            return Err(HubError::Exists);
        }
        let room = room.with_test_hooks(self.inner.settings.test_hooks.clone());
        let summary = room.summary();
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        rooms.insert(name.clone(), RoomEntry { tx, id });
        let recorded = self
            .inner
            .recorded_rooms
            .open(id, &name, room.policy().recording.as_ref());
        let record = self.inner.records.get().map(|r| r.writer(&name));
        let actor = RoomActor::new(
            room,
            id,
            recorded,
            ephemeral,
            Arc::downgrade(&self.inner),
            self.inner.metrics.clone(),
            self.inner.media.clone(),
        )
        .with_record(record);
        self.inner.metrics.rooms.inc();
        tokio::spawn(actor.run(rx));
        Ok(summary)
    }

    /// Restores a room another replica owned from its record (a takeover, docs/architecture.md
    /// §7.56): every member suspended, waiting to resume; the media node keeps its copy of the
    /// room. `Exists` when the room is here already.
    pub async fn restore_room(&self, record: RoomRecord) -> Result<RoomSummary, HubError> {
        let name = record.name.clone();
        let node_url = record.media_node.clone();
        let ephemeral = record.ephemeral;
        let room = Room::restore(record, self.inner.settings.rekey, std::time::Instant::now());
        let spec = MediaRoomSpec {
            room: name.clone(),
            kind: room.policy().kind,
            receive_slots: room.policy().receive_slots,
            last_n: room.policy().last_n,
        };
        let summary = self.start_actor(room, ephemeral)?;
        info!(room = %name, members = summary.participants, "room restored from its record");
        if let Some(node) = &self.inner.media
            && let Err(e) = node.adopt_room(&spec, node_url.as_deref()).await
        {
            warn!(room = %name, error = %e, "media node refused the restored room");
            let _ = self.close(&name).await;
            return Err(HubError::Media(e.to_string()));
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
            if let Ok(mut s) = self.ask(&name, RoomCommand::Summary).await {
                s.media_node = self.media_node_of(&name);
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// One room in detail.
    pub async fn detail(&self, name: &str) -> Result<RoomDetail, HubError> {
        let mut detail: RoomDetail = self.ask(name, RoomCommand::Detail).await?;
        detail.media_node = self.media_node_of(name);
        Ok(detail)
    }

    /// The media node holding room `name` (a remote node's URL), when known.
    fn media_node_of(&self, name: &str) -> Option<String> {
        self.inner.media.as_ref()?.node_of_room(name)
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

    /// Test hook [`crate::test_hooks::TestHook::SeverConnections`]: cuts `device`'s WebSocket
    /// without a close frame.
    pub async fn sever(&self, name: &str, device: &str) -> Result<(), HubError> {
        let device = device.to_string();
        match self
            .ask(name, |reply| RoomCommand::Sever { device, reply })
            .await?
        {
            true => Ok(()),
            false => Err(HubError::NoParticipant),
        }
    }

    /// Sets a room's lock and lobby (`None`: unchanged) and returns its controls after.
    pub async fn set_controls(
        &self,
        name: &str,
        locked: Option<bool>,
        lobby: Option<bool>,
    ) -> Result<ModerationState, HubError> {
        self.ask(name, |reply| RoomCommand::Controls {
            locked,
            lobby,
            reply,
        })
        .await
    }

    /// Gives up room `name` to the replica that holds its owner lease now (see
    /// [`RoomCommand::Yield`]); false when no such room is held here.
    pub fn yield_room(&self, name: &str) -> bool {
        self.room(name)
            .is_some_and(|tx| tx.send(RoomCommand::Yield).is_ok())
    }

    /// Ends the call in a room for everyone (`left` `call_ended`); the room stays.
    pub async fn end_call(&self, name: &str) -> Result<(), HubError> {
        self.ask(name, RoomCommand::EndCall).await
    }

    /// Closes a room, disconnecting everyone in it.
    pub async fn close(&self, name: &str) -> Result<(), HubError> {
        self.ask(name, RoomCommand::Close).await
    }

    /// Closes every room (disconnecting whoever is still in one) and waits until the media node
    /// has closed them too, or `deadline` passes. Returns whether everything closed in time.
    /// Used when the service shuts down, so the SFU keeps no room of it.
    pub async fn close_all(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let names: Vec<String> = self.rooms().keys().cloned().collect();
            if names.is_empty() && self.inner.media_closes_pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            for name in names {
                // A room that closes on its own meanwhile answers NotFound: nothing to do.
                let _ = tokio::time::timeout_at(deadline, self.close(&name)).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
