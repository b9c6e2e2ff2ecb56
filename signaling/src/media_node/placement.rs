//! Which media node a room goes to: one pure function over what is known of each node, so the
//! same rule serves a room's first placement and its move off a lost node. With the node
//! registry on Redis (`[media] redis_url`) each view also carries the node's own record (its
//! participants, capacity and drain state, published every second by the node), so the rule
//! weighs the load every signaling replica sees rather than only the rooms this one placed.

use std::time::{Duration, Instant};

/// A node's state as the placement rule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Reachable and taking rooms.
    Attached,
    /// Reachable but refusing new rooms (it answered `draining`): keeps its rooms, takes none.
    Draining,
    /// Unreachable since the instant held.
    Detached {
        /// When the node was first found unreachable.
        since: Instant,
    },
}

impl NodeState {
    /// Whether the node is unreachable and has been for at least `after` at `now`.
    pub fn lost_for(self, after: Duration, now: Instant) -> bool {
        matches!(self, NodeState::Detached { since } if now.saturating_duration_since(since) >= after)
    }
}

/// What the node registry says of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    /// No registry is used, or it cannot be read now: the node's event stream and the rooms
    /// placed on it decide alone (Redis being away never stops placement).
    Unknown,
    /// The node's live record.
    Live {
        /// Participants it holds, as of its last heartbeat.
        participants: u64,
        /// Participants it takes at most, when limited.
        capacity: Option<u64>,
        /// It drains (SIGTERM): it takes no new room.
        draining: bool,
    },
    /// The registry was read and holds no live record of the node: it never published, or its
    /// lease ran out (it died or lost Redis). It takes no new room until it publishes again.
    Absent,
}

impl Registered {
    /// Whether the registry lets the node take a new room: a live record that does not drain
    /// and has room for one more participant, or no registry to ask.
    fn admits_a_room(self) -> bool {
        match self {
            Registered::Unknown => true,
            Registered::Live {
                participants,
                capacity,
                draining,
            } => !draining && capacity.is_none_or(|cap| participants < cap),
            Registered::Absent => false,
        }
    }

    /// The participants the node holds, 0 when the registry does not say.
    fn participants(self) -> u64 {
        match self {
            Registered::Live { participants, .. } => participants,
            Registered::Unknown | Registered::Absent => 0,
        }
    }
}

/// What the placement rule knows of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// Reachable, draining or not.
    pub state: NodeState,
    /// Rooms placed on it by this signaling process.
    pub rooms: usize,
    /// Its record in the node registry.
    pub registered: Registered,
}

/// The index of the node a room goes to: of the attached nodes the registry (when there is
/// one) admits — not draining, below its capacity — the one with the fewest participants by
/// its record, then the fewest rooms placed here, ties to the first listed; `None` when no node
/// can take a room.
pub fn choose(nodes: &[NodeView]) -> Option<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.state == NodeState::Attached && n.registered.admits_a_room())
        .min_by_key(|(i, n)| (n.registered.participants(), n.rooms, *i))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: NodeState, rooms: usize) -> NodeView {
        NodeView {
            state,
            rooms,
            registered: Registered::Unknown,
        }
    }

    fn live(participants: u64, capacity: Option<u64>, draining: bool) -> Registered {
        Registered::Live {
            participants,
            capacity,
            draining,
        }
    }

    fn registered(rooms: usize, registered: Registered) -> NodeView {
        NodeView {
            state: NodeState::Attached,
            rooms,
            registered,
        }
    }

    #[test]
    fn placement_by_registry_takes_the_node_with_fewest_participants() {
        // Node 0 holds fewer rooms placed here, but more participants by its record.
        let nodes = [
            registered(1, live(12, None, false)),
            registered(2, live(3, None, false)),
            registered(0, live(3, None, false)),
        ];
        assert_eq!(choose(&nodes), Some(2), "equal participants: fewer rooms");
    }

    #[test]
    fn placement_by_registry_skips_full_draining_and_unregistered_nodes() {
        let nodes = [
            registered(0, live(20, Some(20), false)),
            registered(0, live(0, Some(20), true)),
            registered(0, Registered::Absent),
            registered(5, live(19, Some(20), false)),
        ];
        assert_eq!(choose(&nodes), Some(3), "the only one with a place left");
        assert_eq!(choose(&nodes[..3]), None, "full, draining, not registered");
        // Attached by its event stream is still required.
        let since = Instant::now();
        let detached = NodeView {
            state: NodeState::Detached { since },
            rooms: 0,
            registered: live(0, None, false),
        };
        assert_eq!(choose(&[detached]), None);
    }

    #[test]
    fn placement_skips_detached_and_draining_nodes_and_takes_the_least_loaded() {
        let since = Instant::now();
        let nodes = [
            view(NodeState::Detached { since }, 0),
            view(NodeState::Attached, 3),
            view(NodeState::Draining, 0),
            view(NodeState::Attached, 2),
            view(NodeState::Attached, 2),
        ];
        // Node 0 and 2 hold fewer rooms but take none; of the two with 2 rooms, the first.
        assert_eq!(choose(&nodes), Some(3));
    }

    #[test]
    fn placement_ties_go_to_the_first_listed() {
        let nodes = [view(NodeState::Attached, 1), view(NodeState::Attached, 1)];
        assert_eq!(choose(&nodes), Some(0));
    }

    #[test]
    fn placement_finds_no_node_when_none_is_attached() {
        let since = Instant::now();
        assert_eq!(choose(&[]), None);
        assert_eq!(
            choose(&[
                view(NodeState::Detached { since }, 0),
                view(NodeState::Draining, 0)
            ]),
            None
        );
    }

    #[test]
    fn a_node_is_lost_only_after_the_failover_delay() {
        let since = Instant::now();
        let after = Duration::from_millis(3000);
        let detached = NodeState::Detached { since };
        assert!(!detached.lost_for(after, since + Duration::from_millis(2999)));
        assert!(detached.lost_for(after, since + after));
        assert!(!NodeState::Attached.lost_for(after, since + after * 10));
        assert!(!NodeState::Draining.lost_for(after, since + after * 10));
    }
}
