//! A message flood from a real WebSocket client at about 5,000 messages/s against the default
//! limits (50/s, burst 100, 200 drops tolerated within 10 s): closed with 1008 while it floods,
//! counted, and the other client of the room goes on. One message in 100 gets through the rate
//! limit, which must not reset the flood count.

use crate::common;

use std::time::{Duration, Instant};

use common::{TestServer, config, token};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use signaling::config::LimitsConfig;
use signaling::policy::Role;
use tokio_tungstenite::tungstenite::Message;

/// How long the flood may last at most; the close must come well before.
const FLOOD_FOR: Duration = Duration::from_secs(3);

// Two threads: the service reads the flood on one while the flooder writes on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_at_5k_per_second_closes_1008() {
    let mut c = config();
    let defaults = LimitsConfig::default();
    c.limits.messages_per_second = defaults.messages_per_second;
    c.limits.message_burst = defaults.message_burst;
    c.limits.flood_close_after = defaults.flood_close_after;
    let s = TestServer::start(c).await;
    s.meeting("flood").await;
    // The flooder writes each message at once (TCP_NODELAY, as browsers do): with Nagle's
    // algorithm and delayed acknowledgements the kernel would bunch the flood into 40 ms lumps.
    let (ws, _) = tokio_tungstenite::connect_async_with_config(s.ws_url(), None, true)
        .await
        .expect("ws connect");
    let mut a = common::Client {
        ws,
        transcript: Vec::new(),
    };
    a.join("flood", &token("flood", "attacker", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("flood", &token("flood", "bystander", Role::Caller), "dev-b")
        .await;
    a.recv_type("membership").await;

    let (mut tx, mut rx) = a.ws.split();
    let started = Instant::now();
    // 5 messages every millisecond: 5,000/s, smooth (a late tick is not made up with a burst,
    // which alone would drop 200 in a row), bounded by FLOOD_FOR and by the connection closing.
    let flood = tokio::spawn(async move {
        let msg = json!({"type": "key_request", "to": "dev-nobody"}).to_string();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = 0u32;
        while started.elapsed() < FLOOD_FOR {
            tick.tick().await;
            for _ in 0..5 {
                if tx.feed(Message::text(msg.clone())).await.is_err() {
                    return sent;
                }
                sent += 1;
            }
            if tx.flush().await.is_err() {
                return sent;
            }
        }
        sent
    });
    let close = tokio::time::timeout(FLOOD_FOR + common::WAIT, async {
        loop {
            match rx.next().await {
                Some(Ok(Message::Close(frame))) => {
                    break frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    let closed_after = started.elapsed();
    let sent = flood.await.expect("flood task");

    let (code, reason) = close.unwrap_or_else(|| {
        panic!("not closed with a code while flooding ({sent} messages in {closed_after:?})")
    });
    assert_eq!(code, 1008, "closed for flooding ({reason})");
    assert!(reason.contains("flood"), "the reason says why: {reason}");
    assert!(
        closed_after < FLOOD_FOR,
        "closed while flooding, after {closed_after:?} and {sent} messages"
    );
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"flood\"}").await,
        1.0
    );
    assert!(
        s.metric("signaling_rejected_total{reason=\"rate_limited\"}")
            .await
            > f64::from(defaults.flood_close_after)
    );

    // The bystander sees the attacker leave and is served as before.
    assert_eq!(b.recv_type("roster").await["removed"], json!(["dev-a"]));
    b.send(&json!({"type": "key_request", "to": "dev-nobody"}))
        .await;
    b.expect_error("not_in_roster").await;
}

/// A device that may publish has a budget of its own for `key_envelope` messages (a presenter's
/// rekey of a large broadcast is one envelope per viewer, far past the message burst): 250 at
/// once are all handled (each refused here for its shape, none dropped as `rate_limited`),
/// while 250 other messages at once are cut by the message limit. A viewer, which may not
/// publish and sends no keys, has no such budget: its envelopes are cut like the rest.
#[tokio::test]
async fn key_envelopes_of_a_publisher_have_their_own_budget() {
    const AT_ONCE: usize = 250;
    let mut c = config();
    // The default limits: 50/s with a burst of 100 for messages, 2,000/s with a burst of
    // 20,000 for a publisher's key envelopes, 200 drops tolerated within 10 s.
    c.limits = LimitsConfig::default();
    let s = TestServer::start(c).await;
    s.create_room(json!({"name": "stage", "kind": "broadcast"}))
        .await;
    let mut presenter = s.connect().await;
    presenter
        .join("stage", &token("stage", "host", Role::Presenter), "dev-p")
        .await;
    let mut viewer = s.connect().await;
    viewer
        .join("stage", &token("stage", "guest", Role::Viewer), "dev-v")
        .await;

    let envelope = json!({"type": "key_envelope"});
    for _ in 0..AT_ONCE {
        presenter.send(&envelope).await;
    }
    for i in 0..AT_ONCE {
        let e = presenter.recv_type("error").await;
        assert_ne!(
            e["code"], "rate_limited",
            "envelope {i} of the presenter: {e}"
        );
    }

    let other = json!({"type": "key_request", "to": "dev-nobody"});
    cut_by_the_message_limit(
        &mut presenter,
        &other,
        AT_ONCE,
        "the presenter's key requests",
    )
    .await;
    cut_by_the_message_limit(&mut viewer, &envelope, AT_ONCE, "a viewer's key envelopes").await;
}

/// Sends `msg` `count` times at once from `c`; one of the answers is `rate_limited`.
async fn cut_by_the_message_limit(
    c: &mut common::Client,
    msg: &serde_json::Value,
    count: usize,
    what: &str,
) {
    for _ in 0..count {
        c.send(msg).await;
    }
    for _ in 0..count {
        if c.recv_type("error").await["code"] == "rate_limited" {
            return;
        }
    }
    panic!("{what}: none of {count} sent at once was rate limited");
}
