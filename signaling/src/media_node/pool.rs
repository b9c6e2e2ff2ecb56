//! Several SFU nodes behind one [`MediaNode`]: each room lives on one node, chosen when the
//! room is created by [`placement::choose`](super::placement::choose) (the attached, not
//! draining node with the fewest rooms placed here, ties to the first listed), and every later
//! call for the room goes to that node. Events of all nodes are merged; an event a node sends
//! about a room not placed on it (a stale copy on a node the room was moved off) is dropped.
//!
//! Failover: a node unreachable for longer than [`PoolSettings::failover_after`] loses its
//! rooms. Each is created on the node the same rule chooses, with the spec it was first created
//! with; the lost node is told to forget it ([`MediaNode::abandon_room`]: not re-created there
//! when the node comes back, a copy it still holds closed then), and the room gets
//! [`MediaEvent::MediaReset`] with `media_node_lost`, so its clients start fresh media sessions
//! on the new node. With no other node attached the rooms wait (as a single node's do) and move
//! as soon as one is.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use tokio::sync::mpsc;

use super::placement::{self, NodeState, NodeView};
use super::{
    MediaError, MediaEvent, MediaNode, MediaRoomSpec, ParticipantSpec, SessionDescription,
};
use crate::protocol::{MediaResetReason, ReceiveSlotCounts, Subscription, TrackAnnouncement};

/// How a pool treats lost nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// A node unreachable for this long loses its rooms to the other nodes.
    pub failover_after: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            failover_after: Duration::from_millis(3000),
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

/// What the pool and its failover task share.
struct Shared {
    nodes: Vec<Arc<dyn MediaNode>>,
    /// Room name → where it is and what it was created with.
    rooms: Mutex<HashMap<String, Placed>>,
}

/// A room placed on a node.
struct Placed {
    /// Index into `nodes`.
    node: usize,
    /// What the room was created with (to create it again on another node).
    spec: MediaRoomSpec,
}

impl std::fmt::Debug for SfuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SfuPool")
            .field("nodes", &self.shared.nodes.len())
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
        Ok(SfuPool {
            shared: Arc::new(Shared {
                nodes,
                rooms: Mutex::default(),
            }),
            settings,
        })
    }

    fn node_of(&self, room: &str) -> Result<Arc<dyn MediaNode>, MediaError> {
        self.shared
            .rooms()
            .get(room)
            .map(|p| self.shared.nodes[p.node].clone())
            .ok_or(MediaError::UnknownRoom)
    }
}

impl Shared {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Placed>> {
        // A panic while holding the lock leaves a usable map.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What the placement rule sees of each node; the nodes in `failed` (a create just failed
    /// there) count as detached.
    fn views(&self, failed: &[usize]) -> Vec<NodeView> {
        let mut load = vec![0usize; self.nodes.len()];
        for p in self.rooms().values() {
            load[p.node] += 1;
        }
        let now = Instant::now();
        self.nodes
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
            match self.nodes[i].create_room(spec).await {
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
            if let Err(e) = self.nodes[to].close_room(room).await {
                tracing::debug!(room, error = %e, "closing a room closed while it moved");
            }
            return Ok(false);
        }
        self.nodes[from].abandon_room(room);
        tracing::warn!(room, from, to, "room moved off a lost SFU node");
        Ok(true)
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
            .nodes
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

#[async_trait]
impl MediaNode for SfuPool {
    async fn create_room(
        &self,
        room: &MediaRoomSpec,
    ) -> Result<Option<ReceiveSlotCounts>, MediaError> {
        let (i, counts) = self.shared.create(room).await?;
        self.shared.rooms().insert(
            room.room.clone(),
            Placed {
                node: i,
                spec: room.clone(),
            },
        );
        Ok(counts)
    }

    async fn close_room(&self, room: &str) -> Result<(), MediaError> {
        let node = self.node_of(room)?;
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
        self.node_of(room)?
            .add_participant(room, participant, offer, tracks)
            .await
    }

    async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        description: SessionDescription,
        tracks: Vec<TrackAnnouncement>,
    ) -> Result<Option<String>, MediaError> {
        self.node_of(room)?
            .renegotiate(room, device, description, tracks)
            .await
    }

    async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        subscriptions: Vec<Subscription>,
    ) -> Result<(), MediaError> {
        self.node_of(room)?
            .set_subscriptions(room, device, subscriptions)
            .await
    }

    async fn remove_participant(&self, room: &str, device: &str) -> Result<(), MediaError> {
        match self.node_of(room) {
            Ok(node) => node.remove_participant(room, device).await,
            // Idempotent: a room no node holds has no participant to remove.
            Err(_) => Ok(()),
        }
    }

    /// The nodes' events (those about rooms placed on the node that sends them) and the
    /// `media_reset`s of rooms moved off lost nodes. Starts the failover task.
    fn events(&self) -> BoxStream<'static, MediaEvent> {
        let (moves_tx, moves_rx) = mpsc::channel(1024);
        if self.shared.nodes.len() > 1 {
            tokio::spawn(fail_over(self.shared.clone(), self.settings, moves_tx));
        }
        let node_events = self.shared.nodes.iter().enumerate().map(|(i, node)| {
            let shared = self.shared.clone();
            node.events()
                .filter(move |event| {
                    let placed_here = shared
                        .rooms()
                        .get(event.room())
                        .is_some_and(|p| p.node == i);
                    if !placed_here {
                        tracing::debug!(
                            node = i,
                            room = event.room(),
                            "dropped an event of a room not placed on its node"
                        );
                    }
                    std::future::ready(placed_here)
                })
                .boxed()
        });
        let moves = stream::unfold(moves_rx, |mut rx| async move {
            rx.recv().await.map(|e| (e, rx))
        })
        .boxed();
        stream::select_all(node_events.chain(std::iter::once(moves))).boxed()
    }

    /// Attached while any node is: new rooms go to attached nodes, and the rooms of a lost one
    /// move to them.
    fn is_attached(&self) -> bool {
        self.shared.nodes.iter().any(|n| n.is_attached())
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
        self.shared.nodes.iter().map(|n| n.state()).collect()
    }

    fn node_of_room(&self, room: &str) -> Option<String> {
        self.node_of(room).ok()?.node_of_room(room)
    }
}
