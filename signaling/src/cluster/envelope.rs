//! What replicas send each other on the bus: one WebSocket connection's frames, carried between
//! the replica the client is connected to (the *edge* of the connection) and the replica that owns
//! the connection's room (its *owner*). Defined once here for both ends (JSON on Redis pub/sub).

use axum::extract::ws::{CloseFrame, Message};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Which way an envelope travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the client's replica to the room's owner.
    Up,
    /// From the room's owner to the client's replica.
    Down,
}

/// One message on a replica's inbox channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The replica that sent it.
    pub from: String,
    /// The connection's number on the replica the client is connected to.
    pub conn: u64,
    /// Which way it travels.
    pub dir: Direction,
    /// What it carries.
    #[serde(flatten)]
    pub body: Body,
}

/// What an envelope carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Body {
    /// (Up) A client connected for a room this replica owns: run its session here. The
    /// connection's first frame (its `join`) follows as a `text`.
    Open {
        /// The room its `join` names.
        room: String,
        /// The client's address as its replica saw it (for logs).
        peer: Option<String>,
    },
    /// A text frame.
    Text {
        /// The frame.
        data: String,
    },
    /// A ping, pong or binary frame (base64 payload).
    Bytes {
        /// `ping`, `pong` or `binary`.
        kind: BytesKind,
        /// The payload, base64.
        data: String,
    },
    /// A close frame.
    Close {
        /// Close code (`None`: no code).
        code: Option<u16>,
        /// Reason.
        reason: String,
    },
    /// The other side is gone without a close frame (the client's socket was lost, or the
    /// session ended): the connection is over.
    End,
    /// (Down) The owner refused the connection: this replica does not own the room (any more);
    /// the client's replica routes it again.
    NotOwner,
}

/// The kind of a binary-payload frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BytesKind {
    /// A ping.
    Ping,
    /// A pong.
    Pong,
    /// A binary message.
    Binary,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Body {
    /// The envelope body carrying a WebSocket message.
    pub fn from_message(message: &Message) -> Body {
        let bytes = |kind, data: &[u8]| Body::Bytes {
            kind,
            data: b64().encode(data),
        };
        match message {
            Message::Text(t) => Body::Text {
                data: t.as_str().to_owned(),
            },
            Message::Binary(b) => bytes(BytesKind::Binary, b),
            Message::Ping(b) => bytes(BytesKind::Ping, b),
            Message::Pong(b) => bytes(BytesKind::Pong, b),
            Message::Close(frame) => Body::Close {
                code: frame.as_ref().map(|f| f.code),
                reason: frame
                    .as_ref()
                    .map(|f| f.reason.as_str().to_owned())
                    .unwrap_or_default(),
            },
        }
    }

    /// The WebSocket message an envelope body carries (`None`: a control body, or a payload that
    /// is not base64).
    pub fn to_message(&self) -> Option<Message> {
        match self {
            Body::Text { data } => Some(Message::Text(data.clone().into())),
            Body::Bytes { kind, data } => {
                let bytes = b64().decode(data).ok()?;
                Some(match kind {
                    BytesKind::Ping => Message::Ping(bytes.into()),
                    BytesKind::Pong => Message::Pong(bytes.into()),
                    BytesKind::Binary => Message::Binary(bytes.into()),
                })
            }
            Body::Close { code, reason } => Some(Message::Close(code.map(|code| CloseFrame {
                code,
                reason: reason.clone().into(),
            }))),
            Body::Open { .. } | Body::End | Body::NotOwner => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message) {
        let envelope = Envelope {
            from: "r1".into(),
            conn: 7,
            dir: Direction::Up,
            body: Body::from_message(&message),
        };
        let json = serde_json::to_string(&envelope).expect("serializes");
        let back: Envelope = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, envelope);
        assert_eq!(back.body.to_message(), Some(message));
    }

    #[test]
    fn every_websocket_frame_survives_the_bus() {
        round_trip(Message::Text(r#"{"type":"join","room":"a\"b"}"#.into()));
        round_trip(Message::Binary(vec![0, 1, 255].into()));
        round_trip(Message::Ping(b"p".to_vec().into()));
        round_trip(Message::Pong(Vec::new().into()));
        round_trip(Message::Close(Some(CloseFrame {
            code: 1001,
            reason: "server shutting down".into(),
        })));
        round_trip(Message::Close(None));
    }

    #[test]
    fn control_bodies_carry_no_frame() {
        for body in [
            Body::Open {
                room: "r".into(),
                peer: None,
            },
            Body::End,
            Body::NotOwner,
        ] {
            assert_eq!(body.to_message(), None);
        }
        let bad = Body::Bytes {
            kind: BytesKind::Ping,
            data: "***".into(),
        };
        assert_eq!(bad.to_message(), None);
    }

    #[test]
    fn wire_shape_is_flat_and_tagged() {
        let envelope = Envelope {
            from: "r2".into(),
            conn: 3,
            dir: Direction::Down,
            body: Body::NotOwner,
        };
        let value = serde_json::to_value(&envelope).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({"from": "r2", "conn": 3, "dir": "down", "op": "not_owner"})
        );
    }
}
