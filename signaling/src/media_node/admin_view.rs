//! The media nodes as the admin API's `GET /v1/media-nodes` shows them: each node's state,
//! the rooms signaling placed on it with their participants, and its own record from the node
//! registry (load, capacity, drain state) when signaling reads one.

use serde::Serialize;

use super::{CascadeRole, MediaNodeInfo, NodeState};
use crate::room::RoomSummary;

/// The body of `GET /v1/media-nodes`.
#[derive(Clone, Debug, Serialize)]
pub struct MediaNodeList {
    /// Every node signaling drives, in the order configured (none without a media node).
    pub nodes: Vec<MediaNodeView>,
}

/// One node.
#[derive(Clone, Debug, Serialize)]
pub struct MediaNodeView {
    /// A remote node's control URL (what a room's `media_node` names); absent for the node in
    /// this process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `attached`, `draining` (takes no new room) or `detached` (unreachable).
    pub state: &'static str,
    /// For a detached node: how long it has been unreachable, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detached_for_ms: Option<u64>,
    /// The rooms placed on it, by name.
    pub rooms: Vec<PlacedRoom>,
    /// Devices joined to those rooms, as signaling counts them.
    pub participants: u32,
    /// Its live record in the node registry; absent without a registry or without a record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryRecordView>,
}

/// A room on a node.
#[derive(Clone, Debug, Serialize)]
pub struct PlacedRoom {
    /// Room name.
    pub name: String,
    /// Devices joined (the whole room's on its origin; on an edge, the devices seated there).
    pub participants: u32,
    /// With a pool: `origin` (the room's own node) or `edge` (a copy fed by a relay link,
    /// docs/architecture.md §7.57).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<CascadeRole>,
    /// With a pool: the devices whose media session this node holds, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_sessions: Option<Vec<String>>,
}

/// What a node published about itself, as of its last heartbeat.
#[derive(Clone, Debug, Serialize)]
pub struct RegistryRecordView {
    /// `--node-id`.
    pub node_id: String,
    /// Participants it holds (every signaling replica's).
    pub participants: u64,
    /// Rooms it holds.
    pub rooms: u64,
    /// Participants it takes at most; absent when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Packets forwarded per second over the last second.
    pub forwarded_packets_per_second: f64,
    /// CPU cores used over the last second.
    pub cpu_cores: f64,
    /// Whether it drains.
    pub draining: bool,
}

/// The view of `nodes`, with each room of `rooms` under the node that holds it (a room whose
/// node has no URL is on the node in this process).
pub fn media_node_list(nodes: Vec<MediaNodeInfo>, rooms: &[RoomSummary]) -> MediaNodeList {
    let now = std::time::Instant::now();
    let nodes = nodes
        .into_iter()
        .map(|node| {
            let on_node = |name: &str| node.rooms.iter().find(|r| r.room == name);
            let mut placed: Vec<PlacedRoom> = rooms
                .iter()
                .filter(|r| r.media_node == node.url)
                .map(|r| PlacedRoom {
                    name: r.name.clone(),
                    participants: r.participants,
                    role: on_node(&r.name).map(|n| n.role),
                    media_sessions: on_node(&r.name).map(|n| n.devices.clone()),
                })
                .collect();
            placed.extend(
                node.rooms
                    .iter()
                    .filter(|r| r.role == CascadeRole::Edge)
                    .map(|r| PlacedRoom {
                        name: r.room.clone(),
                        participants: r.devices.len() as u32,
                        role: Some(CascadeRole::Edge),
                        media_sessions: Some(r.devices.clone()),
                    }),
            );
            let (state, detached_for_ms) = match node.state {
                NodeState::Attached => ("attached", None),
                NodeState::Draining => ("draining", None),
                NodeState::Detached { since } => (
                    "detached",
                    Some(now.saturating_duration_since(since).as_millis() as u64),
                ),
            };
            MediaNodeView {
                participants: placed.iter().map(|r| r.participants).sum(),
                url: node.url,
                state,
                detached_for_ms,
                rooms: placed,
                registry: node.registered.map(|r| RegistryRecordView {
                    node_id: r.node_id,
                    participants: r.participants,
                    rooms: r.rooms,
                    capacity: r.capacity,
                    forwarded_packets_per_second: r.forwarded_packets_per_second,
                    cpu_cores: r.cpu_cores,
                    draining: r.draining,
                }),
            }
        })
        .collect();
    MediaNodeList { nodes }
}
