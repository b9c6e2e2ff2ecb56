//! Response bodies of the node's control API.

use serde::{Deserialize, Serialize};

/// Answer of `POST …/participants` and `POST …/sdp`: the SDP answer, or `null` after the node
/// applied the client's answer to its own offer.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct AnswerBody {
    /// The SDP answer.
    pub answer: Option<String>,
}

/// Body of every refusal (4xx and 5xx): `{"error": "<reason>"}`.
///
/// The reason is the node's human-readable explanation; a client may look for the words `room`
/// or `participant` in a 404 to tell an unknown room from an unknown participant.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Why the request was refused.
    pub error: String,
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
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"unknown room"}"#
        );
        assert_eq!(
            serde_json::from_str::<ErrorBody>(r#"{"error":"unknown room"}"#).unwrap(),
            body
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
