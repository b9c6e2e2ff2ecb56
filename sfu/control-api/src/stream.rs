//! The framing of `GET /control/events`: every line the node writes is one [`StreamLine`], and a
//! client resumes a broken stream with an [`EventsQuery`].
//!
//! The node numbers its events (`seq`, from 1, one counter per node process) and keeps the most
//! recent ones in a bounded replay buffer. Every line carries the node's `instance`, a random id
//! drawn when the node process starts, so a client can tell a restarted node from a reconnect to
//! the same one. A client that reconnects with `?instance=<id>&since=<last seq it saw>` gets
//! every event after `since`, in order, exactly once. When that is impossible (the buffer no
//! longer reaches back, or `instance` is not this process) the first line is a
//! [`StreamLine::Reset`]: the events in between are lost, and the client must treat the node as
//! restarted (re-create its rooms, renegotiate its participants). The node also writes a
//! [`StreamLine::Heartbeat`] right after connecting and whenever it has been quiet for a few
//! seconds, so a client can treat a silent stream as dead.

use serde::{Deserialize, Serialize};

use crate::events::NodeEvent;

/// Query of `GET /control/events`: where to resume. Both absent: start with the next event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// The node instance the client last read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The last sequence number the client read from that instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

/// Why the node could not resume a stream where the client asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetReason {
    /// The client named another instance: the node process restarted since.
    InstanceChanged,
    /// The replay buffer no longer holds the events after `since` (or the node dropped events
    /// itself because its own event queue overflowed).
    EventsLost,
}

/// One line of `GET /control/events`, tagged by `"line"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "snake_case")]
pub enum StreamLine {
    /// A node event.
    Event {
        /// The node process's instance id.
        instance: String,
        /// This event's sequence number (consecutive, from 1).
        seq: u64,
        /// The event.
        event: NodeEvent,
    },
    /// Nothing new: the stream is alive. Sent first on every connection and after a few quiet
    /// seconds.
    Heartbeat {
        /// The node process's instance id.
        instance: String,
        /// The last sequence number the node assigned (0 before its first event).
        seq: u64,
    },
    /// The stream cannot resume where the client asked: events were lost. Resume after `seq`.
    Reset {
        /// The node process's instance id.
        instance: String,
        /// The events that follow on this stream come after this sequence number.
        seq: u64,
        /// Why.
        reason: ResetReason,
    },
}

impl StreamLine {
    /// The instance id the line carries.
    pub fn instance(&self) -> &str {
        match self {
            StreamLine::Event { instance, .. }
            | StreamLine::Heartbeat { instance, .. }
            | StreamLine::Reset { instance, .. } => instance,
        }
    }

    /// The sequence number the line carries.
    pub fn seq(&self) -> u64 {
        match self {
            StreamLine::Event { seq, .. }
            | StreamLine::Heartbeat { seq, .. }
            | StreamLine::Reset { seq, .. } => *seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(line: StreamLine, expected: serde_json::Value) {
        assert_eq!(serde_json::to_value(&line).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<StreamLine>(expected).unwrap(),
            line
        );
    }

    #[test]
    fn event_line_round_trips() {
        round_trip(
            StreamLine::Event {
                instance: "i1".into(),
                seq: 7,
                event: NodeEvent::ParticipantGone {
                    room: "r".into(),
                    device: "d1".into(),
                    reason: "consent_expired".into(),
                    session: None,
                },
            },
            json!({"line": "event", "instance": "i1", "seq": 7, "event":
                {"type": "participant_gone", "room": "r", "device": "d1", "reason": "consent_expired"}}),
        );
    }

    #[test]
    fn heartbeat_and_reset_round_trip() {
        round_trip(
            StreamLine::Heartbeat {
                instance: "i1".into(),
                seq: 0,
            },
            json!({"line": "heartbeat", "instance": "i1", "seq": 0}),
        );
        for (reason, name) in [
            (ResetReason::InstanceChanged, "instance_changed"),
            (ResetReason::EventsLost, "events_lost"),
        ] {
            let line = StreamLine::Reset {
                instance: "i2".into(),
                seq: 41,
                reason,
            };
            assert_eq!((line.instance(), line.seq()), ("i2", 41));
            round_trip(
                line,
                json!({"line": "reset", "instance": "i2", "seq": 41, "reason": name}),
            );
        }
    }

    #[test]
    fn query_round_trips_and_may_be_empty() {
        let q = EventsQuery {
            instance: Some("i1".into()),
            since: Some(12),
        };
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(v, json!({"instance": "i1", "since": 12}));
        assert_eq!(serde_json::from_value::<EventsQuery>(v).unwrap(), q);
        assert_eq!(
            serde_json::from_value::<EventsQuery>(json!({})).unwrap(),
            EventsQuery::default()
        );
    }
}
