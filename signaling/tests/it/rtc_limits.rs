//! Limits with real sockets: oversized messages (close 1009), message floods, connection floods,
//! garbage — each refused, counted in /metrics, and other clients unaffected.

use crate::common;

use std::time::Duration;

use common::{Seen, TestServer, config, join_msg, token};
use futures_util::SinkExt as _;
use serde_json::json;
use signaling::policy::Role;

/// Two joined callers; the second is the bystander that must not notice anything.
async fn pair(s: &TestServer, room: &str) -> (common::Client, common::Client) {
    s.meeting(room).await;
    let mut a = s.connect().await;
    a.join(room, &token(room, "attacker", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join(room, &token(room, "bystander", Role::Caller), "dev-b")
        .await;
    a.recv_type("membership").await;
    (a, b)
}

/// The bystander still works: it can ask the room something and get an answer.
async fn still_served(b: &mut common::Client) {
    b.send(&json!({"type": "key_request", "to": "dev-nobody"}))
        .await;
    assert_eq!(b.recv_type("error").await["code"], "not_in_roster");
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let s = TestServer::start(config()).await;
    let (mut a, mut b) = pair(&s, "big").await;
    let huge = format!(r#"{{"type":"stats","pad":"{}"}}"#, "x".repeat(70 * 1024));
    a.send_text(huge).await;
    match a.next().await {
        Seen::Closed(code) => assert_eq!(code, Some(1009)),
        Seen::Json(v) => panic!("expected close 1009, got {v}"),
    }
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"oversized\"}")
            .await,
        1.0
    );
    // Bob sees Alice leave the room and goes on.
    assert_eq!(b.recv_type("roster").await["removed"], json!(["dev-a"]));
    still_served(&mut b).await;
}

#[tokio::test]
async fn just_under_the_cap_is_accepted() {
    let s = TestServer::start(config()).await;
    let (mut a, _b) = pair(&s, "edge").await;
    // 64 KiB exactly: a valid message padded with an ignored field.
    let head = r#"{"type":"stats","pad":""#;
    let tail = r#""}"#;
    let pad = 64 * 1024 - head.len() - tail.len();
    a.send_text(format!("{head}{}{tail}", "x".repeat(pad)))
        .await;
    a.send(&json!({"type": "key_request", "to": "dev-nobody"}))
        .await;
    a.expect_error("not_in_roster").await;
}

#[tokio::test]
async fn message_flood_is_dropped_then_closed() {
    let mut c = config();
    c.limits.messages_per_second = 20;
    c.limits.message_burst = 20;
    c.limits.flood_close_after = 100;
    let s = TestServer::start(c).await;
    let (mut a, mut b) = pair(&s, "flood").await;
    let msg = json!({"type": "stats", "decrypt_failures": 0}).to_string();
    for _ in 0..400 {
        a.send_text(msg.clone()).await;
    }
    let mut rate_errors = 0;
    let close = loop {
        match a.next().await {
            Seen::Json(v) if v["code"] == "rate_limited" => rate_errors += 1,
            Seen::Json(v) => panic!("unexpected {v}"),
            Seen::Closed(code) => break code,
        }
    };
    assert_eq!(close, Some(1008));
    assert!(rate_errors >= 1, "told it was rate limited");
    assert!(
        s.metric("signaling_rejected_total{reason=\"rate_limited\"}")
            .await
            >= 100.0
    );
    still_served(&mut b).await;
}

#[tokio::test]
async fn connection_flood_from_one_address_is_refused() {
    let mut c = config();
    c.limits.connections_per_second_per_ip = 1;
    c.limits.connection_burst_per_ip = 5;
    let s = TestServer::start(c).await;
    let mut first = s.connect().await;
    let mut refused = 0;
    for _ in 0..20 {
        match tokio_tungstenite::connect_async(s.ws_url()).await {
            Ok(_) => {}
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 429);
                refused += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(refused >= 14, "most of the flood refused ({refused})");
    assert!(
        s.metric("signaling_rejected_total{reason=\"rate_limited\"}")
            .await
            >= 14.0
    );
    // The connection made before the flood is unaffected.
    s.meeting("ok").await;
    first
        .join("ok", &token("ok", "a", Role::Caller), "dev-a")
        .await;
}

#[tokio::test]
async fn garbage_gets_errors_and_the_room_goes_on() {
    let s = TestServer::start(config()).await;
    let (mut a, mut b) = pair(&s, "junk").await;
    a.send_text("{not json".into()).await;
    a.expect_error("malformed").await;
    a.send_text("[1,2,3]".into()).await;
    a.expect_error("malformed").await;
    a.send(&json!({"type": "launch_missiles"})).await;
    a.expect_error("unknown_type").await;
    a.send(&json!({"type": "key_ack", "to": 5})).await;
    a.expect_error("malformed").await;
    a.send(&json!({"type": "join", "v": 1})).await;
    a.expect_error("malformed").await;
    a.send(&join_msg(
        "junk",
        &token("junk", "attacker", Role::Caller),
        "dev-a",
    ))
    .await;
    a.expect_error("wrong_state").await;
    a.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        0u8;
        10
    ]))
    .await
    .expect("send");
    a.expect_error("malformed").await;
    // Still joined and working, and the other client saw nothing of it.
    a.send(&json!({"type": "key_ack", "to": "dev-b", "generation": 1}))
        .await;
    assert_eq!(b.recv().await["type"], "key_ack");
    assert!(
        s.metric("signaling_rejected_total{reason=\"malformed\"}")
            .await
            >= 5.0
    );
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"unknown_type\"}")
            .await,
        1.0
    );
    assert!(
        s.metric("signaling_messages_received_total{type=\"unknown\"}")
            .await
            >= 4.0
    );
}

#[tokio::test]
async fn bad_bundles_and_versions_are_refused() {
    let s = TestServer::start(config()).await;
    s.meeting("bb").await;
    let mut a = s.connect().await;
    let mut m = join_msg("bb", &token("bb", "a", Role::Caller), "dev-a");
    m["device"]["hpke_key"] = json!("AAAA");
    a.send(&m).await;
    a.expect_error("bad_bundle").await;
    let mut m = join_msg("bb", &token("bb", "a", Role::Caller), "dev a");
    m["device"]["device"] = json!("dev a");
    a.send(&m).await;
    a.expect_error("bad_bundle").await;
    let mut m = join_msg("bb", &token("bb", "a", Role::Caller), "dev-a");
    m["v"] = json!(2);
    a.send(&m).await;
    a.expect_error("unsupported_version").await;
}

#[tokio::test]
async fn silent_clients_are_pinged_then_dropped() {
    use axum::extract::ws::Message;
    use futures_util::StreamExt as _;
    let mut c = config();
    c.limits.ping_interval_ms = 100;
    c.limits.idle_timeout_ms = 350;
    let s = TestServer::start(c).await;
    // Over the generic path the test sees exactly the frames the server writes, pings included,
    // and never answers them.
    let mut silent = common::ChannelClient::start(&s.server);
    let mut pings = 0;
    let code = loop {
        let frame = tokio::time::timeout(common::WAIT, silent.from_server.next())
            .await
            .expect("frame within 5 s")
            .expect("session open");
        match frame {
            Message::Ping(_) => pings += 1,
            Message::Close(f) => break f.map(|f| f.code),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pings >= 2, "pinged before giving up ({pings})");
    assert_eq!(code, Some(1001));
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"idle_timeout\"}")
            .await,
        1.0
    );
    // A client that answers (any frame, pongs included) stays connected.
    let mut lively = s.connect().await;
    lively.expect_silence(Duration::from_millis(600)).await;
    s.meeting("alive").await;
    lively
        .join("alive", &token("alive", "a", Role::Caller), "dev-a")
        .await;
}
