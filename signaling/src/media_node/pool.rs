//! Several SFU nodes behind one [`MediaNode`]: each room lives on one node, chosen when the
//! room is created by [`placement::choose`](super::placement::choose) (the attached, not
//! draining node with the fewest rooms placed here, ties to the first listed; with the node
//! registry on Redis ([`SfuPool::with_registry`]) the one with the fewest participants by its
//! own record, skipping nodes at their capacity or without a live record), and every later
//! call for the room goes to that node. Events of all nodes are merged; an event a node sends
//! about a room not placed on it (a stale copy on a node the room was moved off) is dropped.
//!
//! Cascade (docs/architecture.md §7.57, `cascade.rs`): a broadcast's viewers the room's node
//! (its origin) has no room for are seated on edge nodes the room is spread to over the
//! SFU-to-SFU relay; the pool keeps each device's node and sends every call about the device
//! there, sets the relays up, keeps their tracks in step, routes the edges' events, and resets
//! only a lost edge's viewers (`MediaEvent::ParticipantsReset`).
//!
//! Discovery ([`SfuPool::with_discovery`]): with the registry, a node that publishes a record
//! whose control URL starts with one of the allowed prefixes joins the pool as it appears, so
//! SFU nodes can be added without restarting signaling. A node is never removed (placed rooms
//! name nodes by index): one whose record is gone takes no new rooms, and its rooms move when
//! its event stream is lost, as for a listed node. A record whose URL is not allowed is refused
//! (logged once, counted): signaling sends its control secret only to nodes it was told to trust.
//!
//! Failover: a node unreachable for longer than [`PoolSettings::failover_after`] loses its
//! rooms. Each is created on the node the same rule chooses, with the spec it was first created
//! with; the lost node is told to forget it ([`MediaNode::abandon_room`]: not re-created there
//! when the node comes back, a copy it still holds closed then), and the room gets
//! [`MediaEvent::MediaReset`] with `media_node_lost`, so its clients start fresh media sessions
//! on the new node. With no other node attached the rooms wait (as a single node's do) and move
//! as soon as one is.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::{BoxStream, StreamExt as _};
use tokio::sync::{mpsc, watch};

use super::cascade::{self, Cascade, Edge, RelayCounters, Route, Seat};
use super::placement::{self, NodeState, NodeView, Registered};
use super::registry_view::RegistrySnapshot;
use super::{CascadeRole, NodeRoom, RelayCounts};
use super::{
    MediaError, MediaEvent, MediaNode, MediaNodeInfo, MediaRoomSpec, MediaSessionId,
    ParticipantSpec, PublishSource, RegistryCounts, SessionDescription,
};
use crate::policy::RoomKind;
use crate::protocol::{MediaResetReason, ReceiveSlotCounts, Subscription, TrackAnnouncement};

/// How a pool treats lost nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// A node unreachable for this long loses its rooms to the other nodes.
    pub failover_after: Duration,
    /// An edge of a room whose last viewer left is closed (its copy on the node and the
    /// origin's export to it) when no viewer was seated there again for this long.
    pub edge_linger: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            failover_after: Duration::from_millis(3000),
            edge_linger: Duration::from_secs(30),
        }
    }
}

impl PoolSettings {
    /// How often the nodes' states are looked at: often enough that a room moves within a
    /// tenth of the delay (at most 250 ms) after it.
    fn check_every(&self) -> Duration {
        (self.failover_after / 10).clamp(Duration::from_millis(50), Duration::from_millis(250))
    }
}

/// Rooms spread over several media nodes.
pub struct SfuPool {
    shared: Arc<Shared>,
    settings: PoolSettings,
}

/// What the pool, its failover task, its event forwarders and its discovery task share.
struct Shared {
    /// The nodes, listed then discovered, in that order; only ever appended to, so an index
    /// names one node for the pool's life.
    nodes: RwLock<Vec<Arc<dyn MediaNode>>>,
    /// The node registry as last read, when the pool reads one.
    registry: Option<watch::Receiver<RegistrySnapshot>>,
    /// Which registry records may join the pool, and how a node is made from a URL.
    discovery: Option<Discovery>,
    /// Room name → where it is and what it was created with.
    rooms: Mutex<HashMap<String, Placed>>,
    /// Where the nodes' events go, once [`MediaNode::events`] was called (a node discovered
    /// later gets its forwarder then).
    events: Mutex<Option<mpsc::Sender<MediaEvent>>>,
    /// Registry records refused for a control URL no allowed prefix matches.
    refused: std::sync::atomic::AtomicU64,
    /// Held while a room's edges are set up or brought in step (control calls only), so that
    /// viewers joining at once make one edge, not one each.
    relay_control: tokio::sync::Mutex<()>,
    /// What the relays did.
    relays: RelayCounters,
}

/// Makes a node from a discovered control URL (a [`super::RemoteSfu`] with signaling's secret).
pub type NodeFactory = Arc<dyn Fn(&str) -> Result<Arc<dyn MediaNode>, MediaError> + Send + Sync>;

/// Which registry records join the pool.
struct Discovery {
    /// Control URL prefixes accepted (default deny: none means no record joins).
    allowed: Vec<String>,
    make: NodeFactory,
}

/// A room placed on a node.
struct Placed {
    /// Index into `nodes`.
    node: usize,
    /// What the room was created with (to create it again on another node).
    spec: MediaRoomSpec,
    /// Where its devices' media sessions are and its edges (a broadcast spread over nodes).
    cascade: Cascade,
}

impl std::fmt::Debug for SfuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuPool")
            .field("nodes", &self.shared.nodes().len())
            .field("settings", &self.settings)
            .finish()
    }
}

const NO_NODE_ATTACHED: &str = "no SFU node of the pool is attached";

impl SfuPool {
    /// A pool over `nodes` (at least one).
    pub fn new(nodes: Vec<Arc<dyn MediaNode>>, settings: PoolSettings) -> Result<Self, MediaError> {
        if nodes.is_empty() {
            return Err(MediaError::Failed("no SFU node configured".into()));
        }
        Ok(SfuPool::with_nodes(nodes, settings))
    }

    /// A pool that starts with no node and takes the nodes the registry announces
    /// ([`SfuPool::with_discovery`]).
    pub fn discovering(
        settings: PoolSettings,
        snapshot: watch::Receiver<RegistrySnapshot>,
        allowed: Vec<String>,
        make: NodeFactory,
    ) -> Result<Self, MediaError> {
        SfuPool::with_nodes(Vec::new(), settings)
            .with_registry(snapshot)?
            .with_discovery(allowed, make)
    }

    fn with_nodes(nodes: Vec<Arc<dyn MediaNode>>, settings: PoolSettings) -> Self {
        SfuPool {
            shared: Arc::new(Shared {
                nodes: RwLock::new(nodes),
                registry: None,
                discovery: None,
                rooms: Mutex::default(),
                events: Mutex::default(),
                refused: Default::default(),
                relay_control: tokio::sync::Mutex::new(()),
                relays: RelayCounters::default(),
            }),
            settings,
        }
    }

    fn shared_mut(&mut self) -> Result<&mut Shared, MediaError> {
        Arc::get_mut(&mut self.shared)
            .ok_or_else(|| MediaError::Failed("the pool is configured before it is shared".into()))
    }

    /// Places rooms by the node registry too: `snapshot` is the registry as a
    /// [`watch_registry`](super::registry_view::watch_registry) task reads it; each node's
    /// record is the one published under its control URL. Call before the pool is shared.
    pub fn with_registry(
        mut self,
        snapshot: watch::Receiver<RegistrySnapshot>,
    ) -> Result<Self, MediaError> {
        self.shared_mut()?.registry = Some(snapshot);
        Ok(self)
    }

    /// Adds every node the registry announces whose control URL starts with one of `allowed`
    /// (made by `make`), as it appears. Needs [`SfuPool::with_registry`] first.
    pub fn with_discovery(
        mut self,
        allowed: Vec<String>,
        make: NodeFactory,
    ) -> Result<Self, MediaError> {
        let shared = self.shared_mut()?;
        if shared.registry.is_none() {
            return Err(MediaError::Failed(
                "discovering SFU nodes needs the node registry".into(),
            ));
        }
        shared.discovery = Some(Discovery { allowed, make });
        Ok(self)
    }

    /// Records that `room` is on node `i`.
    fn placed(&self, room: &MediaRoomSpec, i: usize) {
        self.shared.rooms().insert(
            room.room.clone(),
            Placed {
                node: i,
                spec: room.clone(),
                cascade: Cascade::default(),
            },
        );
    }

    fn node_of(&self, room: &str) -> Result<Arc<dyn MediaNode>, MediaError> {
        self.shared
            .rooms()
            .get(room)
            .map(|p| self.shared.node(p.node))
            .ok_or(MediaError::UnknownRoom)
    }

    /// The node holding `device`'s media session in `room` (the origin when it has none).
    fn node_of_device(&self, room: &str, device: &str) -> Result<Arc<dyn MediaNode>, MediaError> {
        let i = self
            .shared
            .rooms()
            .get(room)
            .map(|p| p.cascade.seats.get(device).map_or(p.node, |s| s.node))
            .ok_or(MediaError::UnknownRoom)?;
        Ok(self.shared.node(i))
    }
}

impl Shared {
    fn nodes(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<dyn MediaNode>>> {
        self.nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Node `i` (indexes come from `nodes`, which only grows).
    fn node(&self, i: usize) -> Arc<dyn MediaNode> {
        self.nodes()[i].clone()
    }

    /// The control URL a node publishes its record under (a remote node's base URL).
    fn url_of(node: &Arc<dyn MediaNode>) -> Option<String> {
        node.nodes().into_iter().next().and_then(|info| info.url)
    }

    /// Adds a node; with the events already followed, its events are forwarded from now on.
    fn add_node(self: &Arc<Self>, node: Arc<dyn MediaNode>) -> usize {
        let i = {
            let mut nodes = self
                .nodes
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            nodes.push(node.clone());
            nodes.len() - 1
        };
        let events = self
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(tx) = events {
            tokio::spawn(forward_events(self.clone(), i, node.events(), tx));
        }
        i
    }

    /// The node registry as last read (none without a registry).
    fn registry_now(&self) -> Option<RegistrySnapshot> {
        self.registry
            .as_ref()
            .map(|snapshot| snapshot.borrow().clone())
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Placed>> {
        // A panic while holding the lock leaves a usable map.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What the placement rule sees of each node; the nodes in `failed` (a create just failed
    /// there) count as detached.
    fn views(&self, failed: &[usize]) -> Vec<NodeView> {
        let nodes = self.nodes().clone();
        let mut load = vec![0usize; nodes.len()];
        for p in self.rooms().values() {
            load[p.node] += 1;
        }
        let now = Instant::now();
        let registry = self.registry_now();
        nodes
            .iter()
            .zip(load)
            .enumerate()
            .map(|(i, (node, rooms))| NodeView {
                state: if failed.contains(&i) {
                    NodeState::Detached { since: now }
                } else {
                    node.state()
                },
                rooms,
                registered: match (&registry, Shared::url_of(node)) {
                    (Some(snapshot), Some(url)) => snapshot.registered(&url),
                    _ => Registered::Unknown,
                },
            })
            .collect()
    }

    /// Creates `spec` on the node the placement rule chooses; a node that fails the request
    /// (unreachable, draining) is skipped for the next choice. Returns the node and the slot
    /// counts.
    async fn create(
        &self,
        spec: &MediaRoomSpec,
    ) -> Result<(usize, Option<ReceiveSlotCounts>), MediaError> {
        let mut failed = Vec::new();
        let mut last_error = None;
        while let Some(i) = placement::choose(&self.views(&failed)) {
            match self.node(i).create_room(spec).await {
                Ok(counts) => return Ok((i, counts)),
                Err(e @ MediaError::Failed(_)) => {
                    tracing::warn!(room = %spec.room, node = i, error = %e, "SFU node failed to create a room; trying another");
                    failed.push(i);
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| MediaError::Failed(NO_NODE_ATTACHED.into())))
    }

    /// Moves `room` off the lost node `from`: creates it on another node, places it there and
    /// has `from` forget it. `Ok(false)` when the room was closed meanwhile (its new copy is
    /// closed again).
    async fn move_room(&self, room: &str, from: usize) -> Result<bool, MediaError> {
        let Some(spec) = self.rooms().get(room).map(|p| p.spec.clone()) else {
            return Ok(false);
        };
        // Its edge copies go with it: every session of the room is reset anyway, and the
        // new origin may be one of those nodes.
        self.close_edges(room).await;
        let (to, _counts) = self.create(&spec).await?;
        // The slot counts come from the node's room policy, the same on every node of a pool:
        // the room keeps those it has.
        let placed = match self.rooms().get_mut(room) {
            Some(p) if p.node == from => {
                p.node = to;
                true
            }
            _ => false,
        };
        if !placed {
            if let Err(e) = self.node(to).close_room(room).await {
                tracing::debug!(room, error = %e, "closing a room closed while it moved");
            }
            return Ok(false);
        }
        self.node(from).abandon_room(room);
        tracing::warn!(room, from, to, "room moved off a lost SFU node");
        Ok(true)
    }

    /// Takes the room's edges and every seat, and closes the edge copies (their imports go
    /// with them).
    async fn close_edges(&self, room: &str) {
        let edges: Vec<Edge> = match self.rooms().get_mut(room) {
            Some(p) => {
                p.cascade.seats.clear();
                p.cascade.edges.drain(..).collect()
            }
            None => return,
        };
        for edge in edges {
            if let Err(e) = self.node(edge.node).close_room(room).await {
                tracing::debug!(room, node = edge.node, error = %e, "closing an edge copy");
            }
        }
    }
}

/// Watches the nodes' states and moves the rooms of every node lost for longer than
/// `settings.failover_after`; each move is announced on `moves`. Ends when `moves` is closed.
async fn fail_over(shared: Arc<Shared>, settings: PoolSettings, moves: mpsc::Sender<MediaEvent>) {
    let mut ticks = tokio::time::interval(settings.check_every());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Rooms whose move failed, logged once rather than every tick until they move.
    let mut failing: HashSet<String> = HashSet::new();
    while !moves.is_closed() {
        ticks.tick().await;
        let now = Instant::now();
        let lost: Vec<usize> = shared
            .nodes()
            .iter()
            .enumerate()
            .filter(|(_, n)| n.state().lost_for(settings.failover_after, now))
            .map(|(i, _)| i)
            .collect();
        let rooms: Vec<(String, usize)> = if lost.is_empty() {
            Vec::new()
        } else {
            shared
                .rooms()
                .iter()
                .filter(|(_, p)| lost.contains(&p.node))
                .map(|(name, p)| (name.clone(), p.node))
                .collect()
        };
        let edges: Vec<(String, usize)> = if lost.is_empty() {
            Vec::new()
        } else {
            shared
                .rooms()
                .iter()
                .flat_map(|(name, p)| {
                    p.cascade
                        .edges
                        .iter()
                        .filter(|e| lost.contains(&e.node))
                        .map(|e| (name.clone(), e.node))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        for (room, node) in edges {
            if let Some(reset) = shared.drop_edge(&room, node, EdgeEnd::Lost).await
                && moves.send(reset).await.is_err()
            {
                return;
            }
        }
        failing.retain(|r| rooms.iter().any(|(room, _)| room == r));
        for (room, from) in rooms {
            match shared.move_room(&room, from).await {
                Ok(true) => {
                    failing.remove(&room);
                    let reset = MediaEvent::MediaReset {
                        room,
                        reason: MediaResetReason::MediaNodeLost,
                    };
                    if moves.send(reset).await.is_err() {
                        return;
                    }
                }
                Ok(false) => {
                    failing.remove(&room);
                }
                Err(e) => {
                    let unplaceable = matches!(e, MediaError::Failed(_));
                    if failing.insert(room.clone()) {
                        tracing::warn!(room = %room, from, error = %e, "a lost SFU node's room cannot move yet; retrying");
                    }
                    if unplaceable {
                        // No node takes rooms now: the other rooms would fail the same way.
                        break;
                    }
                }
            }
        }
    }
}

/// Forwards node `i`'s events about rooms placed on it; ends with the node's stream or when
/// the pool's events are no longer read.
async fn forward_events(
    shared: Arc<Shared>,
    i: usize,
    mut events: BoxStream<'static, MediaEvent>,
    tx: mpsc::Sender<MediaEvent>,
) {
    while let Some(event) = events.next().await {
        let room = event.room().to_owned();
        let route = match shared.rooms().get(&room) {
            Some(p) => cascade::route(p.node, &p.cascade, i, event),
            None => Route::Drop,
        };
        let event = match route {
            Route::Pass(event) => event,
            Route::PassAndSync(event) => {
                tokio::spawn(sync_edges(shared.clone(), room));
                event
            }
            Route::PassAfterClosingEdges(event) => {
                // Before the clients hear of the reset: their fresh offers are seated anew.
                shared.close_edges(&room).await;
                event
            }
            Route::Drop => {
                tracing::debug!(
                    node = i,
                    room,
                    "dropped an event of a room not placed on its node, or a relayed one"
                );
                continue;
            }
            Route::EdgeLost => {
                let (shared, tx) = (shared.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(reset) = shared.drop_edge(&room, i, EdgeEnd::Restarted).await {
                        let _ = tx.send(reset).await;
                    }
                });
                continue;
            }
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

/// Adds each node the registry announces under an allowed control URL, as it appears; refuses
/// (logs once, counts) the others. Ends when the registry reader ends.
async fn discover(shared: Arc<Shared>, mut snapshot: watch::Receiver<RegistrySnapshot>) {
    let Some(discovery) = &shared.discovery else {
        return;
    };
    let mut refused: HashSet<String> = HashSet::new();
    loop {
        let urls: Vec<String> = snapshot
            .borrow_and_update()
            .by_control_url
            .keys()
            .cloned()
            .collect();
        let known: HashSet<String> = shared
            .nodes()
            .iter()
            .filter_map(Shared::url_of)
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        for url in urls {
            if known.contains(&url) || refused.contains(&url) {
                continue;
            }
            if !discovery
                .allowed
                .iter()
                .any(|prefix| url.starts_with(prefix.as_str()))
            {
                tracing::warn!(url = %url, "a node registry record names a control URL no --sfu-discover prefix allows; not added");
                shared
                    .refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                refused.insert(url);
                continue;
            }
            match (discovery.make)(&url) {
                Ok(node) => {
                    let i = shared.add_node(node);
                    tracing::info!(url = %url, node = i, "SFU node discovered in the registry; added to the pool");
                }
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "a discovered SFU node cannot be used; not added");
                    shared
                        .refused
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    refused.insert(url);
                }
            }
        }
        if snapshot.changed().await.is_err() {
            return;
        }
    }
}

/// How many media sessions this pool has seated on each node, over every room.
fn seated_per_node(rooms: &HashMap<String, Placed>) -> HashMap<usize, u64> {
    let mut seated = HashMap::new();
    for p in rooms.values() {
        for s in p.cascade.seats.values() {
            *seated.entry(s.node).or_default() += 1;
        }
    }
    seated
}

/// Places of a room's origin node that viewers leave free, for a publisher (a presenter, a
/// caller) joining later: publishers are seated only on the origin (docs/architecture.md §7.57).
const ORIGIN_KEEPS_FOR_PUBLISHERS: u64 = 1;

/// How long a viewer's seating waits for fresh registry records before it is forced onto a
/// full origin: two reads of the registry (`READ_EVERY`) and a margin.
const FRESH_REGISTRY_WAIT: Duration = Duration::from_millis(2_500);

/// Why an edge ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EdgeEnd {
    /// Unreachable past the failover delay (killed, partitioned): its copy is forgotten, and
    /// closed if it comes back.
    Lost,
    /// It restarted and lost the copy (its client re-created an empty one): closed now.
    Restarted,
}

impl Shared {
    /// Whether node `i` takes one more media session and still has `keep` places left after
    /// it: by its registry record (`participants + keep < capacity`, not draining), counting at
    /// least the sessions seated there by this pool (the record lags by a heartbeat); any
    /// attached node without a registry.
    fn has_room(
        &self,
        i: usize,
        keep: u64,
        registry: Option<&RegistrySnapshot>,
        seated: &HashMap<usize, u64>,
    ) -> bool {
        let node = self.node(i);
        if node.state() != NodeState::Attached {
            return false;
        }
        let (Some(snapshot), Some(url)) = (registry, Shared::url_of(&node)) else {
            return true;
        };
        match snapshot.registered(&url) {
            Registered::Unknown => true,
            Registered::Absent => false,
            Registered::Live {
                participants,
                capacity,
                draining,
            } => {
                let used = participants.max(seated.get(&i).copied().unwrap_or(0));
                !draining && capacity.is_none_or(|cap| used.saturating_add(keep) < cap)
            }
        }
    }

    /// Seats `participant` of `room`: on the node the cascade rule names (and remembers it),
    /// or `Ok(None)` when a new edge is needed. `force` seats it on the origin whatever the
    /// rule says. Returns the node and the device's earlier seat when it was elsewhere.
    #[allow(clippy::type_complexity)]
    fn seat(
        &self,
        room: &str,
        participant: &ParticipantSpec,
        force: bool,
    ) -> Result<Option<(usize, Option<(usize, MediaSessionId)>)>, MediaError> {
        let registry = self.registry_now();
        let mut rooms = self.rooms();
        let seated = seated_per_node(&rooms);
        let p = rooms.get_mut(room).ok_or(MediaError::UnknownRoom)?;
        let viewer = p.spec.kind == RoomKind::Broadcast && !participant.can_publish;
        let origin = p.node;
        let node = if force {
            p.node
        } else {
            match p.cascade.seat_for(
                p.node,
                &participant.device,
                viewer,
                // The origin keeps a place for a publisher joining later (publishers are only
                // ever seated there).
                |i| {
                    let keep = if i == origin {
                        ORIGIN_KEEPS_FOR_PUBLISHERS
                    } else {
                        0
                    };
                    self.has_room(i, keep, registry.as_ref(), &seated)
                },
                |i| self.node(i).is_attached(),
            ) {
                Some(node) => node,
                None => return Ok(None),
            }
        };
        let earlier = p.cascade.seats.insert(
            participant.device.clone(),
            Seat {
                node,
                session: participant.session,
                asked: Vec::new(),
            },
        );
        Ok(Some((
            node,
            earlier
                .filter(|s| s.node != node)
                .map(|s| (s.node, s.session)),
        )))
    }

    /// Seats `participant` of `room` when no node it may use has room: on a new edge, else
    /// (no node has room for one) on the origin whatever its capacity. Before the origin is
    /// forced, the registry is read afresh once: records lag their nodes by up to a heartbeat
    /// and a read, so right after an origin was lost its former edges still count the viewers
    /// that left them (docs/architecture.md §7.57).
    async fn seat_on_a_new_edge(
        &self,
        room: &str,
        participant: &ParticipantSpec,
    ) -> Result<(usize, Option<(usize, MediaSessionId)>), MediaError> {
        let _control = self.relay_control.lock().await;
        let mut read_again = true;
        loop {
            if let Some(seated) = self.seat(room, participant, false)? {
                return Ok(seated);
            }
            match self.add_edge(room).await {
                Ok(_) => {
                    if let Some(seated) = self.seat(room, participant, false)? {
                        return Ok(seated);
                    }
                }
                Err(e) if read_again && self.registry_read_afresh(FRESH_REGISTRY_WAIT).await => {
                    tracing::debug!(room, error = %e, "no edge for a viewer yet: the registry is read again");
                    read_again = false;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(room, error = %e, "no edge for a viewer: seated on the origin");
                }
            }
            return self
                .seat(room, participant, true)?
                .ok_or(MediaError::UnknownRoom);
        }
    }

    /// Waits, at most `limit`, for two more reads of the node registry, so that its records
    /// show what the nodes held after this moment. False without a registry or when the time
    /// ran out.
    async fn registry_read_afresh(&self, limit: Duration) -> bool {
        let Some(mut snapshot) = self.registry.clone() else {
            return false;
        };
        let from = snapshot.borrow_and_update().reads_ok;
        tokio::time::timeout(limit, async {
            while snapshot.changed().await.is_ok() {
                if snapshot.borrow_and_update().reads_ok >= from + 2 {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    }

    /// Gives up `device`'s seat when it is still `session`'s.
    fn unseat(&self, room: &str, device: &str, session: MediaSessionId) -> Option<usize> {
        let mut rooms = self.rooms();
        let p = rooms.get_mut(room)?;
        match p.cascade.seats.get(device) {
            Some(s) if s.session == session => p.cascade.seats.remove(device).map(|s| s.node),
            _ => None,
        }
    }

    /// Adds an edge to `room`: the placement rule's choice among the attached nodes with room
    /// that hold no copy of it; the room is created there, exported by the origin to the
    /// edge's media address (from its registry record) and imported there. A node that fails
    /// is skipped for the next choice. Call with `relay_control` held.
    async fn add_edge(&self, room: &str) -> Result<usize, MediaError> {
        let (spec, origin, mut skip) = {
            let rooms = self.rooms();
            let p = rooms.get(room).ok_or(MediaError::UnknownRoom)?;
            (p.spec.clone(), p.node, p.cascade.nodes(p.node))
        };
        let registry = self.registry_now();
        let seated = seated_per_node(&self.rooms());
        let count = self.nodes().len();
        let full: Vec<usize> = (0..count)
            .filter(|&i| !self.has_room(i, 0, registry.as_ref(), &seated))
            .collect();
        skip.extend(full);
        while let Some(i) = placement::choose(&self.views(&skip)) {
            match self
                .link_edge(room, &spec, origin, i, registry.as_ref())
                .await
            {
                Ok(edge) => {
                    RelayCounters::bump(&self.relays.setups_ok);
                    let placed = match self.rooms().get_mut(room) {
                        Some(p) if p.node == origin => {
                            p.cascade.edges.push(edge);
                            true
                        }
                        _ => false,
                    };
                    if !placed {
                        // The room closed or moved meanwhile.
                        let _ = self.node(i).close_room(room).await;
                        return Err(MediaError::UnknownRoom);
                    }
                    tracing::info!(room, origin, edge = i, "room spread to an edge SFU node");
                    return Ok(i);
                }
                Err(e) => {
                    RelayCounters::bump(&self.relays.setups_failed);
                    tracing::warn!(room, node = i, error = %e, "could not make an edge of a room on an SFU node; trying another");
                    skip.push(i);
                }
            }
        }
        Err(MediaError::Failed(
            "no SFU node has room for an edge of the room".into(),
        ))
    }

    /// Creates `room` on node `i`, exports it from `origin` and imports it on `i`; undoes what
    /// was done when a step fails.
    async fn link_edge(
        &self,
        room: &str,
        spec: &MediaRoomSpec,
        origin: usize,
        i: usize,
        registry: Option<&RegistrySnapshot>,
    ) -> Result<Edge, MediaError> {
        let edge = self.node(i);
        let address = Shared::url_of(&edge)
            .and_then(|url| {
                registry.and_then(|r| r.record(&url).map(|rec| rec.media_address.clone()))
            })
            .ok_or_else(|| MediaError::Failed("the edge node has no registry record".into()))?;
        edge.create_room(spec).await?;
        let export = match self.node(origin).relay_export(room, &address).await {
            Ok(export) => export,
            Err(e) => {
                let _ = edge.close_room(room).await;
                return Err(e);
            }
        };
        match edge.relay_import(room, &export).await {
            Ok(imported) => Ok(Edge::new(i, &imported)),
            Err(e) => {
                let _ = self.node(origin).delete_relay_export(&export.link).await;
                let _ = edge.close_room(room).await;
                Err(e)
            }
        }
    }

    /// Ends `room`'s edge on `node`: the seats there are given up, the origin's export is
    /// deleted, the edge's copy forgotten (lost) or closed (restarted). Returns the reset of
    /// the devices that were seated there.
    async fn drop_edge(&self, room: &str, node: usize, end: EdgeEnd) -> Option<MediaEvent> {
        let (origin, link, devices) = {
            let mut rooms = self.rooms();
            let p = rooms.get_mut(room)?;
            let (link, devices) = p.cascade.remove_edge(node)?;
            (p.node, link, devices)
        };
        RelayCounters::bump(&self.relays.edge_failovers);
        tracing::warn!(
            room,
            edge = node,
            ?end,
            viewers = devices.len(),
            "edge SFU node of a room lost; its viewers start fresh media sessions"
        );
        match end {
            EdgeEnd::Lost => self.node(node).abandon_room(room),
            EdgeEnd::Restarted => {
                if let Err(e) = self.node(node).close_room(room).await {
                    tracing::debug!(room, node, error = %e, "closing a restarted edge's copy");
                }
            }
        }
        if let Err(e) = self.node(origin).delete_relay_export(&link).await {
            tracing::debug!(room, origin, error = %e, "deleting the export of a lost edge");
        }
        Some(MediaEvent::ParticipantsReset {
            room: room.to_owned(),
            devices,
            reason: MediaResetReason::MediaNodeLost,
        })
    }

    /// When nobody is seated on `room`'s edge `node` any more: after `linger`, if still
    /// nobody is, the edge is removed from the cascade (no seat can land there from then on),
    /// its copy closed and the origin's export to it deleted.
    fn close_edge_when_left_empty(self: &Arc<Self>, room: &str, node: usize, linger: Duration) {
        let link = match self.rooms().get(room) {
            Some(p) if p.node != node => p.cascade.empty_edge_link(node),
            _ => None,
        };
        let Some(link) = link else {
            return;
        };
        let (shared, room) = (self.clone(), room.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            // Held to the end: no new edge of the room is made on this node while its old
            // copy is being closed.
            let _control = shared.relay_control.lock().await;
            let origin = {
                let mut rooms = shared.rooms();
                let Some(p) = rooms.get_mut(&room) else {
                    return;
                };
                if !p.cascade.remove_empty_edge(node, &link) {
                    return;
                }
                p.node
            };
            RelayCounters::bump(&shared.relays.edges_closed);
            tracing::info!(
                room,
                edge = node,
                "edge SFU node of a room closed: its last viewer left"
            );
            if let Err(e) = shared.node(origin).delete_relay_export(&link).await {
                tracing::debug!(room, origin, error = %e, "deleting the export of an empty edge");
            }
            if let Err(e) = shared.node(node).close_room(&room).await {
                tracing::debug!(room, node, error = %e, "closing an empty edge's copy");
            }
        });
    }

    /// The rooms on node `i` with their role and the devices seated there.
    fn rooms_on(&self, i: usize) -> Vec<NodeRoom> {
        let mut out: Vec<NodeRoom> = self
            .rooms()
            .iter()
            .filter_map(|(name, p)| {
                let role = if p.node == i {
                    CascadeRole::Origin
                } else if p.cascade.edges.iter().any(|e| e.node == i) {
                    CascadeRole::Edge
                } else {
                    return None;
                };
                Some(NodeRoom {
                    room: name.clone(),
                    role,
                    devices: p.cascade.devices_on(i),
                })
            })
            .collect();
        out.sort_by(|a, b| a.room.cmp(&b.room));
        out
    }
}

/// Brings every edge of `room` in step with the origin's export (its tracks read and put to
/// the import), then applies again the subscriptions of the viewers seated on each edge (a
/// track they asked for may only now be presented there).
async fn sync_edges(shared: Arc<Shared>, room: String) {
    let _control = shared.relay_control.lock().await;
    let Some((origin, edges)) = shared.rooms().get(&room).map(|p| {
        (
            p.node,
            p.cascade
                .edges
                .iter()
                .map(|e| (e.node, e.link.clone()))
                .collect::<Vec<_>>(),
        )
    }) else {
        return;
    };
    for (node, link) in edges {
        let edge = shared.node(node);
        let synced = match shared.node(origin).relay_export_tracks(&link).await {
            Ok(tracks) => edge.relay_import_tracks(&link, &tracks).await,
            Err(e) => Err(e),
        };
        let imported = match synced {
            Ok(imported) => imported,
            Err(e) => {
                RelayCounters::bump(&shared.relays.syncs_failed);
                tracing::warn!(room, node, error = %e, "could not bring an edge's tracks in step");
                continue;
            }
        };
        RelayCounters::bump(&shared.relays.syncs_ok);
        let again: Vec<(String, MediaSessionId, Vec<Subscription>)> = {
            let mut rooms = shared.rooms();
            let Some(p) = rooms.get_mut(&room) else {
                return;
            };
            let Some(e) = p.cascade.edges.iter_mut().find(|e| e.link == link) else {
                continue;
            };
            e.set_tracks(&imported);
            p.cascade
                .seats
                .iter()
                .filter(|(_, s)| s.node == node && !s.asked.is_empty())
                .map(|(d, s)| (d.clone(), s.session, e.to_edge(&s.asked)))
                .collect()
        };
        for (device, session, subscriptions) in again {
            if let Err(e) = edge
                .set_subscriptions(&room, &device, session, subscriptions)
                .await
            {
                tracing::debug!(room, device, error = %e, "subscriptions of an edge viewer not applied again");
            }
        }
    }
}

#[async_trait]
impl MediaNode for SfuPool {
    async fn create_room(
        &self,
        room: &MediaRoomSpec,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        let (i, counts) = self.shared.create(room).await?;
        self.placed(room, i);
        Ok(counts)
    }

    async fn adopt_room(
        &self,
        room: &MediaRoomSpec,
        node_url: Option<&str>,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        let known = node_url.and_then(|url| {
            let nodes = self.shared.nodes();
            nodes
                .iter()
                .position(|n| Shared::url_of(n).as_deref() == Some(url))
                .map(|i| (i, nodes[i].clone()))
        });
        let Some((i, node)) = known else {
            // Its node is not one of this pool's: placed as a new room.
            return self.create_room(room).await;
        };
        let counts = node.adopt_room(room, node_url).await?;
        self.placed(room, i);
        Ok(counts)
    }

    async fn close_room(&self, room: &str) -> Result<(), MediaError> {
        let node = self.node_of(room)?;
        self.shared.close_edges(room).await;
        self.shared.rooms().remove(room);
        node.close_room(room).await
    }

    async fn add_participant(
        &self,
        room: &str,
        participant: &ParticipantSpec,
        offer: String,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<String, MediaError> {
        let seated = match self.shared.seat(room, participant, false)? {
            Some(seated) => seated,
            None => self.shared.seat_on_a_new_edge(room, participant).await?,
        };
        let (i, earlier) = seated;
        if let Some((node, session)) = earlier {
            let (node, room, device) = (
                self.shared.node(node),
                room.to_owned(),
                participant.device.clone(),
            );
            tokio::spawn(async move {
                let _ = node.remove_participant(&room, &device, session).await;
            });
        }
        let result = self
            .shared
            .node(i)
            .add_participant(room, participant, offer, tracks)
            .await;
        if result.is_err() {
            self.shared
                .unseat(room, &participant.device, participant.session);
        }
        result
    }

    async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        description: SessionDescription,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<Option<String>, MediaError> {
        self.node_of_device(room, device)?
            .renegotiate(room, device, session, description, tracks)
            .await
    }

    async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        subscriptions: Vec<Subscription>,
    ) -> Result<(), MediaError> {
        let (i, subscriptions) = {
            let mut rooms = self.shared.rooms();
            let p = rooms.get_mut(room).ok_or(MediaError::UnknownRoom)?;
            let origin = p.node;
            match p.cascade.seats.get_mut(device) {
                // An edge viewer names origin tracks: the edge's ids of them.
                Some(seat) if seat.node != origin => {
                    if seat.session == session {
                        seat.asked = subscriptions.clone();
                    }
                    let node = seat.node;
                    let mapped = p
                        .cascade
                        .edges
                        .iter()
                        .find(|e| e.node == node)
                        .map(|e| e.to_edge(&subscriptions))
                        .unwrap_or_default();
                    (node, mapped)
                }
                _ => (origin, subscriptions),
            }
        };
        self.shared
            .node(i)
            .set_subscriptions(room, device, session, subscriptions)
            .await
    }

    async fn publish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError> {
        self.node_of_device(room, device)?
            .publish(room, device, session, source)
            .await
    }

    async fn unpublish(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        source: PublishSource,
    ) -> Result<(), MediaError> {
        self.node_of_device(room, device)?
            .unpublish(room, device, session, source)
            .await
    }

    async fn remove_participant(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
    ) -> Result<(), MediaError> {
        let seat = self.shared.unseat(room, device, session);
        if let Some(i) = seat {
            self.shared
                .close_edge_when_left_empty(room, i, self.settings.edge_linger);
        }
        match seat
            .map(|i| self.shared.node(i))
            .ok_or(())
            .or_else(|()| self.node_of(room))
        {
            Ok(node) => node.remove_participant(room, device, session).await,
            // Idempotent: a room no node holds has no participant to remove.
            Err(_) => Ok(()),
        }
    }

    /// The nodes' events (those about rooms placed on the node that sends them) and the
    /// `media_reset`s of rooms moved off lost nodes. Starts the failover task, one forwarder per
    /// node, and with discovery the task that adds the nodes the registry announces.
    fn events(&self) -> BoxStream<'static, MediaEvent> {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(fail_over(self.shared.clone(), self.settings, tx.clone()));
        let nodes = self.shared.nodes().clone();
        for (i, node) in nodes.iter().enumerate() {
            tokio::spawn(forward_events(
                self.shared.clone(),
                i,
                node.events(),
                tx.clone(),
            ));
        }
        *self
            .shared
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(tx);
        if let (Some(_), Some(snapshot)) = (&self.shared.discovery, &self.shared.registry) {
            tokio::spawn(discover(self.shared.clone(), snapshot.clone()));
        }
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
            .boxed()
    }

    /// Attached while any node is: new rooms go to attached nodes, and the rooms of a lost one
    /// move to them.
    fn is_attached(&self) -> bool {
        self.shared.nodes().iter().any(|n| n.is_attached())
    }

    /// Attached while any node takes rooms; draining while none does but one is reachable;
    /// detached since the last node was lost otherwise.
    fn state(&self) -> NodeState {
        let states = self.node_states();
        if states.contains(&NodeState::Attached) {
            NodeState::Attached
        } else if states.contains(&NodeState::Draining) {
            NodeState::Draining
        } else {
            let since = states
                .iter()
                .filter_map(|s| match s {
                    NodeState::Detached { since } => Some(*since),
                    _ => None,
                })
                .max()
                .unwrap_or_else(Instant::now);
            NodeState::Detached { since }
        }
    }

    fn node_states(&self) -> Vec<NodeState> {
        self.shared.nodes().iter().map(|n| n.state()).collect()
    }

    /// Each node with its state and, with a registry, its record as last read.
    fn nodes(&self) -> Vec<MediaNodeInfo> {
        let snapshot = self.shared.registry_now();
        let nodes = self.shared.nodes().clone();
        nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| {
                let rooms = self.shared.rooms_on(i);
                n.nodes().into_iter().map(move |mut info| {
                    info.rooms = rooms.clone();
                    info
                })
            })
            .map(|mut info| {
                info.registered = match (&snapshot, &info.url) {
                    (Some(snapshot), Some(url)) => snapshot.record(url).cloned(),
                    _ => None,
                };
                info
            })
            .collect()
    }

    fn relay_counts(&self) -> Option<RelayCounts> {
        let links = self
            .shared
            .rooms()
            .values()
            .map(|p| p.cascade.edges.len() as u64)
            .sum();
        Some(self.shared.relays.snapshot(links))
    }

    fn registry_reads(&self) -> Option<RegistryCounts> {
        let snapshot = self.shared.registry.as_ref()?.borrow();
        Some(RegistryCounts {
            reads_ok: snapshot.reads_ok,
            reads_failed: snapshot.reads_failed,
            nodes_refused: self
                .shared
                .refused
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    fn node_of_room(&self, room: &str) -> Option<String> {
        self.node_of(room).ok()?.node_of_room(room)
    }
}
