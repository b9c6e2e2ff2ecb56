//! `call_client::session` against the real service: refusals name the request that caused them
//! (on the wire and matched by the library), a reconnect is the same device, and a full outgoing
//! queue is an error.

use crate::common;

use call_client::protocol::{
    ClientMessage, ErrorCode, KeyAck, KeyRequest, LeaveReason, ServerMessage,
};
use call_client::session::{Session, SessionError};
use common::{TestServer, WAIT, config, session_config, token};
use serde_json::json;
use signaling::policy::Role;

fn key_ack_to(device: &str) -> ClientMessage {
    ClientMessage::KeyAck(KeyAck {
        to: device.into(),
        generation: 0,
        step: 0,
    })
}

fn key_request_to(device: &str) -> ClientMessage {
    ClientMessage::KeyRequest(KeyRequest {
        to: device.into(),
        generation: None,
    })
}

/// The next `error` on the session's receive stream (other messages skipped).
async fn next_error(session: &mut Session) -> call_client::protocol::ErrorBody {
    let wait = async {
        loop {
            match session.recv().await {
                Some(ServerMessage::Error(e)) => return e,
                Some(_) => {}
                None => panic!("connection ended before an error came"),
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .expect("an error in time")
}

fn roster_devices(joined: &call_client::protocol::Joined) -> Vec<String> {
    let mut devices: Vec<String> = joined
        .roster
        .devices
        .iter()
        .map(|e| e.device.clone())
        .collect();
    devices.sort();
    devices
}

#[tokio::test]
async fn error_answers_the_request_that_caused_it() {
    let s = TestServer::start(config()).await;
    s.meeting("ids").await;
    let mut a = Session::connect(session_config(&s, "ids", "alice", "dev-a"))
        .await
        .expect("alice joins");
    let mut b = Session::connect(session_config(&s, "ids", "bob", "dev-b"))
        .await
        .expect("bob joins");

    // Two requests in flight, the second bad (refused by the room, after the first was relayed).
    let good = a.send(key_request_to("dev-b")).expect("queued");
    let bad = a.send(key_ack_to("dev-gone")).expect("queued");
    assert_ne!(good, bad);
    let error = next_error(&mut a).await;
    assert_eq!(error.code, ErrorCode::NotInRoster);
    assert_eq!(
        error.request_id,
        Some(bad),
        "the error names the bad request"
    );
    let relayed = async {
        loop {
            if let Some(ServerMessage::KeyRequest(r)) = b.recv().await {
                return r;
            }
        }
    };
    let relayed = tokio::time::timeout(WAIT, relayed).await.expect("relayed");
    assert_eq!(relayed.from, "dev-a", "the good request went through");

    // The library matches the refusal to the request that caused it.
    match a.request(key_ack_to("dev-gone")).await {
        Err(SessionError::Refused(e)) => assert_eq!(e.code, ErrorCode::NotInRoster),
        other => panic!("expected the refusal, got {other:?}"),
    }
    a.request(key_request_to("dev-b"))
        .await
        .expect("a valid request is not refused");
    assert_eq!(a.counters().refused_requests, 1);

    // On the wire: a refusal of the message's shape names its id too; an old client's
    // message without `id` gets an error without `request_id`; an `id` that is no u32 is malformed.
    let mut raw = s.connect().await;
    raw.join("ids", &token("ids", "carol", Role::Caller), "dev-c")
        .await;
    raw.send(&json!({"type": "key_ack", "id": 7})).await;
    let e = raw.expect_error("malformed").await;
    assert_eq!(e["request_id"], 7);
    raw.send(&json!({"type": "key_ack", "to": "dev-gone", "generation": 0, "step": 0}))
        .await;
    let e = raw.expect_error("not_in_roster").await;
    assert!(e.get("request_id").is_none(), "no id, no request_id: {e}");
    raw.send(&json!({"type": "key_ack", "id": "x", "to": "dev-a", "generation": 0}))
        .await;
    let e = raw.expect_error("malformed").await;
    assert!(e.get("request_id").is_none(), "{e}");
    // A join refused names the join's id.
    let mut late = s.connect().await;
    late.send(
        &json!({"type": "join", "id": 4000000000u32, "v": 2, "room": "ids",
        "token": token("ids", "dave", Role::Caller), "device": common::bundle("dev-d")}),
    )
    .await;
    let e = late.expect_error("unsupported_version").await;
    assert_eq!(e["request_id"], 4_000_000_000u32);
}

#[tokio::test]
async fn session_reconnects_with_the_same_device() {
    let s = TestServer::start(config()).await;
    s.meeting("re").await;
    let mut a = Session::connect(session_config(&s, "re", "alice", "dev-a"))
        .await
        .expect("alice joins");

    // The server drops the socket (an admin kick): `left`, then the stream ends.
    let kicked = s
        .http
        .delete(s.url("/v1/rooms/re/participants/dev-a"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("kick request");
    assert!(kicked.status().is_success(), "kick: {}", kicked.status());
    let mut saw_left = false;
    while let Some(message) = tokio::time::timeout(WAIT, a.recv()).await.expect("in time") {
        if let ServerMessage::Left(l) = message {
            assert_eq!(l.reason, LeaveReason::Kicked);
            saw_left = true;
        }
    }
    assert!(saw_left, "the kick said left");
    let joined = a.reconnect().await.expect("rejoins after the drop");
    assert_eq!(joined.device, "dev-a");
    assert_eq!(roster_devices(joined), vec!["dev-a"]);

    // The client loses its connection while the server still holds it: the rejoin replaces it.
    let rejoined = a.reconnect().await.expect("rejoins over a live connection");
    assert_eq!(rejoined.device, "dev-a");
    assert_eq!(
        roster_devices(rejoined),
        vec!["dev-a"],
        "one device, not two"
    );
    let b = Session::connect(session_config(&s, "re", "bob", "dev-b"))
        .await
        .expect("bob joins");
    assert_eq!(
        roster_devices(b.joined()),
        vec!["dev-a", "dev-b"],
        "others see dev-a once"
    );
    assert_eq!(a.counters().connections, 3);
    // The reconnected session works: its requests are answered on the new connection.
    a.request(key_request_to("dev-b"))
        .await
        .expect("the new connection carries requests");
}

#[tokio::test]
async fn full_outgoing_queue_is_an_error_not_memory() {
    let s = TestServer::start(config()).await;
    s.meeting("q").await;
    let mut cfg = session_config(&s, "q", "alice", "dev-a");
    cfg.outgoing_capacity = 4;
    let mut a = Session::connect(cfg).await.expect("alice joins");
    let mut b = Session::connect(session_config(&s, "q", "bob", "dev-b"))
        .await
        .expect("bob joins");

    // No await between sends: the connection task cannot drain the queue meanwhile (this test
    // runs on one thread), so exactly the queue's capacity is accepted.
    let results: Vec<_> = (0..1000).map(|_| a.send(key_request_to("dev-b"))).collect();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(SessionError::OutgoingFull { capacity: 4 })))
        .count();
    assert_eq!(accepted, 4);
    assert_eq!(refused, 996, "every other send is the full-queue error");
    assert_eq!(a.counters().outgoing_full, 996, "and is counted");

    // The accepted four went out (bob gets them); once drained, sending works again.
    for _ in 0..accepted {
        let relayed = async {
            loop {
                match b.recv().await {
                    Some(ServerMessage::KeyRequest(r)) => return r,
                    Some(_) => {}
                    None => panic!("bob's connection ended"),
                }
            }
        };
        let r = tokio::time::timeout(WAIT, relayed).await.expect("relayed");
        assert_eq!(r.from, "dev-a");
    }
    a.request(key_request_to("dev-b"))
        .await
        .expect("the queue drains");
    assert_eq!(a.counters().outgoing_full, 996);
}
