//! `docs/protocol.md` and `call_client::protocol` cannot drift apart: every `json` example of the
//! document parses into the type of its section and serialises back to the same JSON (§5 client
//! messages, §6 server messages, §7 token claims, §9 recorder event stream lines), and every
//! message type has an example.

use std::collections::BTreeSet;
use std::path::PathBuf;

use call_client::access_token::Claims;
use call_client::protocol::{
    CLIENT_MESSAGE_TYPES, ClientMessage, ClientRequest, RecorderEvent, SERVER_MESSAGE_TYPES,
    ServerMessage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Which type a `json` example of the document is, by the section (`## N.`) it is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// §5: a [`ClientMessage`], with its optional request id ([`ClientRequest`]).
    ClientToServer,
    /// §6: a [`ServerMessage`].
    ServerToClient,
    /// §7: the [`Claims`] of an access token.
    TokenClaims,
    /// §9: a line of the recorder event stream, a [`RecorderEvent`].
    RecorderEvent,
}

/// One `json` block of the document.
struct Example {
    /// Where it is, for failure messages: the `###` heading and the line of the block.
    name: String,
    direction: Direction,
    text: String,
}

fn protocol_doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every ```json block of the document with the section it is in. A block in a section that
/// holds no messages fails the test: the document must say which type an example is.
fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let (mut section, mut heading) = (String::new(), String::new());
    let mut block: Option<(usize, String)> = None;
    for (index, line) in doc.lines().enumerate() {
        let line_no = index + 1;
        if let Some((start, text)) = &mut block {
            if line.trim_start().starts_with("```") {
                let direction = if section.starts_with("## 5.") {
                    Direction::ClientToServer
                } else if section.starts_with("## 6.") {
                    Direction::ServerToClient
                } else if section.starts_with("## 7.") {
                    Direction::TokenClaims
                } else if section.starts_with("## 9.") {
                    Direction::RecorderEvent
                } else {
                    panic!(
                        "docs/protocol.md line {start}: a json example in {section:?}, which \
                         holds no messages; move it or teach this test its type"
                    );
                };
                out.push(Example {
                    name: format!("{heading} (docs/protocol.md line {start})"),
                    direction,
                    text: std::mem::take(text),
                });
                block = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if line.starts_with("## ") {
            section = line.to_owned();
            heading = line.trim_start_matches('#').trim().to_owned();
        } else if let Some(title) = line.strip_prefix("### ") {
            heading = format!("{} / {}", section.trim_start_matches("## "), title.trim());
        } else if line.trim() == "```json" {
            block = Some((line_no, String::new()));
        }
    }
    assert!(block.is_none(), "docs/protocol.md ends inside a json block");
    out
}

/// Parses `text` as `T` and writes it back; `Err` says what differs.
fn round_trip<T: Serialize + DeserializeOwned>(text: &str) -> Result<(), String> {
    let original: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let typed: T = serde_json::from_str(text).map_err(|e| format!("does not parse: {e}"))?;
    // Through text, as on the wire (an `f32` level reads back as the decimal it was written as).
    let written = serde_json::to_string(&typed).map_err(|e| format!("does not serialise: {e}"))?;
    let back: Value = serde_json::from_str(&written).map_err(|e| e.to_string())?;
    if back == original {
        Ok(())
    } else {
        Err(format!(
            "differs after the round trip:\n  doc:  {original}\n  code: {back}"
        ))
    }
}

#[test]
fn every_protocol_doc_example_round_trips() {
    let doc = protocol_doc();
    let examples = examples(&doc);
    assert!(
        examples.len() >= 20,
        "found only {} json examples",
        examples.len()
    );
    let failures: Vec<String> = examples
        .iter()
        .filter_map(|ex| {
            let result = match ex.direction {
                Direction::ClientToServer => round_trip::<ClientRequest>(&ex.text),
                Direction::ServerToClient => round_trip::<ServerMessage>(&ex.text),
                Direction::TokenClaims => round_trip::<Claims>(&ex.text),
                Direction::RecorderEvent => round_trip::<RecorderEvent>(&ex.text),
            };
            result.err().map(|why| format!("{}: {why}", ex.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} examples broke:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}

#[test]
fn every_message_type_has_a_doc_example() {
    let doc = protocol_doc();
    let (mut client, mut server) = (BTreeSet::new(), BTreeSet::new());
    for ex in examples(&doc) {
        match ex.direction {
            Direction::ClientToServer => {
                if let Ok(m) = serde_json::from_str::<ClientMessage>(&ex.text) {
                    client.insert(m.type_name());
                }
            }
            Direction::ServerToClient => {
                if let Ok(m) = serde_json::from_str::<ServerMessage>(&ex.text) {
                    server.insert(m.type_name());
                }
            }
            Direction::TokenClaims | Direction::RecorderEvent => {}
        }
    }
    let missing_client: Vec<_> = CLIENT_MESSAGE_TYPES
        .iter()
        .filter(|t| !client.contains(**t))
        .collect();
    let missing_server: Vec<_> = SERVER_MESSAGE_TYPES
        .iter()
        .filter(|t| !server.contains(**t))
        .collect();
    assert!(
        missing_client.is_empty() && missing_server.is_empty(),
        "docs/protocol.md has no example of client messages {missing_client:?} (§5) or server \
         messages {missing_server:?} (§6)"
    );
}

#[test]
fn a_client_ignores_unknown_server_message_types_and_fields() {
    let unknown = ServerMessage::parse(r#"{"type":"brand_new","x":1}"#).expect("not an error");
    assert!(
        unknown.is_none(),
        "an unknown type is ignored (protocol §1)"
    );
    let with_field = ServerMessage::parse(r#"{"type":"left","reason":"kicked","later":true}"#)
        .expect("an unknown field is ignored")
        .expect("a known type");
    assert_eq!(with_field.type_name(), "left");
    for bad in [
        "",
        "[]",
        "{}",
        r#"{"type":"answer"}"#,
        r#"{"type":"left","reason":"x"}"#,
    ] {
        assert!(ServerMessage::parse(bad).is_err(), "{bad} is refused");
    }
}

#[test]
fn every_recorder_event_has_a_doc_example() {
    let seen: BTreeSet<String> = examples(&protocol_doc())
        .into_iter()
        .filter(|ex| ex.direction == Direction::RecorderEvent)
        .filter_map(|ex| serde_json::from_str::<RecorderEvent>(&ex.text).ok())
        .map(|event| {
            serde_json::to_value(&event).expect("serialises")["type"]
                .as_str()
                .expect("tagged")
                .to_owned()
        })
        .collect();
    let want: BTreeSet<String> = ["room_active", "room_idle", "ping"]
        .map(String::from)
        .into();
    assert_eq!(seen, want, "docs/protocol.md §9 shows every recorder event");
}
