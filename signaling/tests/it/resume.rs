//! Resuming after a socket blip: a device whose WebSocket is cut (no close frame) is suspended
//! for the grace window, comes back with `join.resume` and is re-attached with nobody else told
//! anything (docs/protocol.md §1 "Resume").

use std::time::Duration;

use crate::common;

use call_client::protocol::{ClientMessage, KeyRequest, ServerMessage};
use call_client::session::Session;
use common::{TestServer, WAIT, config, poll_until, session_config, token};
use signaling::policy::Role;
use signaling::test_hooks::{TestHook, TestHooks};
use tokio::time::Instant;

const GRACE: Duration = Duration::from_secs(2);

fn key_request_to(device: &str) -> ClientMessage {
    ClientMessage::KeyRequest(KeyRequest {
        to: device.into(),
        generation: None,
    })
}

/// Whether `message` tells of a membership change (what a resume must not cause).
fn tells_membership(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::Roster(_)
            | ServerMessage::Membership(_)
            | ServerMessage::TrackPublished(_)
            | ServerMessage::TrackUnpublished(_)
    )
}

#[tokio::test]
async fn socket_blip_resumes_without_telling_the_others() {
    let mut cfg = config();
    cfg.test_hooks = TestHooks::enabled(&[TestHook::SeverConnections]);
    cfg.rekey.resume_grace_ms = GRACE.as_millis() as u64;
    let s = TestServer::start(cfg).await;
    s.meeting("blip").await;
    let mut a = Session::connect(session_config(&s, "blip", "alice", "dev-a"))
        .await
        .expect("alice joins");
    let mut b = Session::connect(session_config(&s, "blip", "bob", "dev-b"))
        .await
        .expect("bob joins");
    let before = b.joined().clone();
    // a hears b join: the roster delta, then the ratchet.
    loop {
        let message = tokio::time::timeout(WAIT, a.recv())
            .await
            .expect("in time")
            .expect("a stays connected");
        if matches!(message, ServerMessage::Membership(_)) {
            break;
        }
    }

    // The network cuts b's socket: no `left`, no close frame.
    let severed = Instant::now();
    let resp = s
        .http
        .post(s.url("/v1/rooms/blip/participants/dev-b/sever"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("sever request");
    assert_eq!(resp.status(), 204);
    while let Some(message) = tokio::time::timeout(WAIT, b.recv()).await.expect("in time") {
        assert!(
            !matches!(message, ServerMessage::Left(_)),
            "no left: {message:?}"
        );
    }

    // While b is away, what is sent to it is dropped and counted.
    poll_until(
        WAIT,
        "a message for the suspended device counted",
        async || {
            a.send(key_request_to("dev-b")).expect("queued");
            s.metric("signaling_suspended_messages_dropped_total").await >= 1.0
        },
    )
    .await;

    let resumed = b.reconnect().await.expect("b comes back").clone();
    assert!(resumed.resumed, "joined.resumed");
    assert_eq!(
        (resumed.call.as_str(), resumed.slot),
        (before.call.as_str(), before.slot)
    );
    assert_eq!(resumed.roster.version, before.roster.version);
    assert_eq!(
        s.metric(r#"signaling_resumes_total{outcome="resumed"}"#)
            .await,
        1.0
    );

    // The resumed connection carries the call: a's request reaches b there.
    a.send(key_request_to("dev-b")).expect("queued");
    let relayed = async {
        loop {
            match b.recv().await.expect("b stays connected") {
                ServerMessage::KeyRequest(r) => return r,
                other => assert!(!tells_membership(&other), "b told {other:?}"),
            }
        }
    };
    let request = tokio::time::timeout(WAIT, relayed).await.expect("in time");
    assert_eq!(request.from, "dev-a");

    // a hears nothing of it, past when the grace window and a rekey's debounce would have ended.
    let quiet_until = severed + GRACE + Duration::from_millis(1500);
    while let Ok(message) = tokio::time::timeout_at(quiet_until, a.recv()).await {
        let message = message.expect("a stays connected");
        assert!(!tells_membership(&message), "a was told {message:?}");
    }
    assert_eq!(
        s.metric(r#"signaling_resumes_total{outcome="expired"}"#)
            .await,
        0.0
    );
    assert_eq!(s.metric("signaling_rejoins_total").await, 0.0);
}

/// A device resumed after its socket was cut, whose peer connection was lost too
/// (`resume.media_lost`): its next offer gets a fresh media session on the SFU (the old one is
/// replaced, not renegotiated), and it connects.
#[tokio::test]
async fn resumed_device_with_a_lost_peer_connection_gets_a_fresh_media_session() {
    use crate::media_call::{Device, publish};
    use common::Seen;
    use serde_json::json;

    let mut cfg = config();
    cfg.test_hooks = TestHooks::enabled(&[TestHook::SeverConnections]);
    cfg.rekey.resume_grace_ms = 5_000;
    let s = TestServer::start(cfg).await;
    s.meeting("lost").await;
    let mut a = Device::join(&s, "lost", "dev-a").await;
    let media = publish(&mut a, 0x0a0a_0a0a, 30).await;

    let resp = s
        .http
        .post(s.url("/v1/rooms/lost/participants/dev-a/sever"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("sever request");
    assert_eq!(resp.status(), 204);
    while let Seen::Json(_) = a.ws.next().await {}
    // The page's peer connection is gone with it.
    drop(media);

    let bundle: serde_json::Value =
        serde_json::from_str(&a.keys.bundle().to_json()).expect("bundle JSON");
    let mut ws = s.connect().await;
    ws.send(
        &json!({"type": "join", "v": 1, "room": "lost", "device": bundle,
        "token": token("lost", "dev-a", Role::Caller), "name": "dev-a",
        "resume": {"call": a.joined["call"], "slot": a.joined["slot"], "media_lost": true}}),
    )
    .await;
    let joined = ws.recv_type("joined").await;
    assert_eq!(joined["resumed"], true, "{joined}");
    let mut again = Device {
        keys: a.keys,
        ws,
        joined,
    };
    // A new peer connection's offer: answered by a fresh session that connects.
    let _media = publish(&mut again, 0x0b0b_0b0b, 30).await;
    assert_eq!(
        s.metric(r#"signaling_resumes_total{outcome="resumed"}"#)
            .await,
        1.0
    );
}
