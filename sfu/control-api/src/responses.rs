//! Response bodies of the node's control API.

use serde::{Deserialize, Serialize};

/// Answer of `POST …/participants` and `POST …/sdp`: the SDP answer, or `null` after the node
/// applied the client's answer to its own offer.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct AnswerBody {
    /// The SDP answer.
    pub answer: Option<String>,
}

/// Answer of `POST /control/rooms` (201).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct RoomCreated {
    /// The receive slots the node gives each participant of the room, when it was created
    /// with `receive_slots` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_slots: Option<ReceiveSlotCounts>,
}

/// How many receive slots of each kind each participant of a room gets (from the room policy).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub struct ReceiveSlotCounts {
    /// Audio slots (loudest-N plus one spare).
    pub audio: usize,
    /// Video (camera) slots (last-N).
    pub video: usize,
    /// Screen-share slots.
    pub screen: usize,
}

/// Body of every refusal (4xx and 5xx): `{"error": "<reason>", "code": "<code>"}`.
///
/// The reason is the node's human-readable explanation (short: it never repeats more than a
/// few dozen characters of the request); the code is stable and machine-readable, e.g.
/// `malformed_json`, `invalid_body`, `invalid_name`, `unknown_room`, `unknown_participant`
/// (the list is in `sfu/src/control/errors.rs`). A node older than the code sends none; it
/// reads as empty.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Why the request was refused.
    pub error: String,
    /// Stable machine-readable code of the refusal.
    #[serde(default)]
    pub code: String,
}

/// Answer of `GET /control/status`.
///
/// Fields are in alphabetical order, the order the node has always written them in.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// Whether the node has stopped admitting rooms and participants (`sfu drain`).
    pub draining: bool,
    /// This node's name.
    pub node_id: String,
    /// Participants on the node now.
    pub participants: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn room_created_carries_slot_counts_only_for_slot_rooms() {
        let slots = RoomCreated {
            receive_slots: Some(ReceiveSlotCounts {
                audio: 4,
                video: 25,
                screen: 2,
            }),
        };
        let v = json!({"receive_slots": {"audio": 4, "video": 25, "screen": 2}});
        assert_eq!(serde_json::to_value(&slots).unwrap(), v);
        assert_eq!(serde_json::from_value::<RoomCreated>(v).unwrap(), slots);
        assert_eq!(
            serde_json::to_value(RoomCreated::default()).unwrap(),
            json!({})
        );
        assert_eq!(
            serde_json::from_value::<RoomCreated>(json!({})).unwrap(),
            RoomCreated::default()
        );
    }

    #[test]
    fn answer_round_trips_with_and_without_sdp() {
        for (body, value) in [
            (
                AnswerBody {
                    answer: Some("v=0".into()),
                },
                json!({"answer": "v=0"}),
            ),
            (AnswerBody { answer: None }, json!({"answer": null})),
        ] {
            assert_eq!(serde_json::to_value(&body).unwrap(), value);
            assert_eq!(serde_json::from_value::<AnswerBody>(value).unwrap(), body);
        }
    }

    #[test]
    fn error_body_round_trips() {
        let body = ErrorBody {
            error: "unknown room".into(),
            code: "unknown_room".into(),
        };
        let text = r#"{"error":"unknown room","code":"unknown_room"}"#;
        assert_eq!(serde_json::to_string(&body).unwrap(), text);
        assert_eq!(serde_json::from_str::<ErrorBody>(text).unwrap(), body);
        // A node without codes still parses.
        assert_eq!(
            serde_json::from_str::<ErrorBody>(r#"{"error":"unknown room"}"#)
                .unwrap()
                .code,
            ""
        );
    }

    #[test]
    fn status_round_trips_in_the_order_it_was_written() {
        let body = NodeStatus {
            draining: false,
            node_id: "sfu-1".into(),
            participants: 3,
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(
            text,
            r#"{"draining":false,"node_id":"sfu-1","participants":3}"#
        );
        assert_eq!(serde_json::from_str::<NodeStatus>(&text).unwrap(), body);
    }
}
