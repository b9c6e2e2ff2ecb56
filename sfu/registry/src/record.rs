//! What a node publishes about itself, and where.

use serde::{Deserialize, Serialize};

/// One SFU node as the registry knows it. Serialised as JSON; unknown fields are ignored so a
/// newer node's record is still read by an older reader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's name (`--node-id`), unique in a deployment.
    pub node_id: String,
    /// Drawn when the process starts (the control API's event-stream instance id): a new
    /// value means the node restarted and holds none of the rooms it held before.
    pub instance: String,
    /// Base URL of the node's control API as signaling reaches it (`http://10.0.0.5:7880`).
    pub control_url: String,
    /// The media address the node advertises to clients (`ip:udp port`).
    pub media_address: String,
    /// Participants admitted on the node now.
    pub participants: u64,
    /// Rooms open on the node now.
    pub rooms: u64,
    /// Participants the node takes at most (`--capacity`); `None`: no limit set.
    pub capacity: Option<u64>,
    /// RTP packets the node sent to subscribers per second, over the last heartbeat interval.
    pub forwarded_packets_per_second: f64,
    /// CPU the process used over the last heartbeat interval, in cores (1.0 = one core busy).
    pub cpu_cores: f64,
    /// The node drains (SIGTERM or `POST /control/drain`): it keeps its rooms but takes no new
    /// room or participant.
    pub draining: bool,
    /// When the node wrote this record, in milliseconds since the Unix epoch (for operators;
    /// liveness is the key's lease, not this clock).
    pub heartbeat_unix_ms: u64,
}

impl NodeRecord {
    /// Whether the node takes `more` new participants: not draining and, with a capacity,
    /// still below it afterwards.
    pub fn takes(&self, more: u64) -> bool {
        !self.draining
            && self
                .capacity
                .is_none_or(|cap| self.participants.saturating_add(more) <= cap)
    }
}

/// The names of the registry's keys under one prefix (several deployments can share a Redis
/// with different prefixes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
}

impl KeySpace {
    /// Keys under `prefix` (`e2ee` by default).
    pub fn new(prefix: impl Into<String>) -> Self {
        KeySpace {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:node:<node id>`: the node's record.
    pub fn node(&self, node_id: &str) -> String {
        format!("{}:node:{node_id}", self.prefix)
    }

    /// `<prefix>:nodes`: the set of node ids that published.
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
}

impl Default for KeySpace {
    fn default() -> Self {
        KeySpace::new("e2ee")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> NodeRecord {
        NodeRecord {
            node_id: "sfu-a".into(),
            instance: "i1".into(),
            control_url: "http://127.0.0.1:7880".into(),
            media_address: "127.0.0.1:7882".into(),
            participants: 18,
            rooms: 2,
            capacity: Some(20),
            forwarded_packets_per_second: 1200.0,
            cpu_cores: 0.4,
            draining: false,
            heartbeat_unix_ms: 1,
        }
    }

    #[test]
    fn a_node_takes_participants_up_to_its_capacity() {
        let r = record();
        assert!(r.takes(2));
        assert!(!r.takes(3));
        let unlimited = NodeRecord {
            capacity: None,
            ..record()
        };
        assert!(unlimited.takes(10_000));
    }

    #[test]
    fn a_draining_node_takes_no_one() {
        let r = NodeRecord {
            draining: true,
            ..record()
        };
        assert!(!r.takes(0));
    }

    #[test]
    fn records_of_a_newer_node_with_more_fields_are_read() {
        let mut json = serde_json::to_value(record()).unwrap();
        json["future_field"] = serde_json::json!(7);
        let back: NodeRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record());
    }

    #[test]
    fn keys_are_named_under_the_prefix() {
        let keys = KeySpace::new("prod");
        assert_eq!(keys.node("sfu-a"), "prod:node:sfu-a");
        assert_eq!(keys.nodes(), "prod:nodes");
        assert_eq!(KeySpace::default().nodes(), "e2ee:nodes");
    }
}
