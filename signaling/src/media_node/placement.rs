//! Which media node a room goes to: one pure function over what is known of each node, so the
//! same rule serves a room's first placement and its move off a lost node, and a shared
//! registry of nodes (several signaling processes) can later feed it the same views.

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

/// What the placement rule knows of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// Reachable, draining or not.
    pub state: NodeState,
    /// Rooms placed on it.
    pub rooms: usize,
}

/// The index of the node a room goes to: the attached, not draining node with the fewest rooms
/// (ties to the first listed); `None` when no node can take a room.
pub fn choose(nodes: &[NodeView]) -> Option<usize> {
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.state == NodeState::Attached)
        .min_by_key(|(i, n)| (n.rooms, *i))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: NodeState, rooms: usize) -> NodeView {
        NodeView { state, rooms }
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
