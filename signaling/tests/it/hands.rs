//! Raised hands through the real service: the service stamps the sender's authenticated device
//! (a `device` the client writes is ignored) and the hand's place in the queue, tells the sender
//! and everyone who sees it, lists the raised hands in a joiner's `joined.hands` (earliest
//! first), drops a hand with its device, refuses bad and too frequent `hand`s, counted, and lets
//! only a moderator lower someone else's hand (`moderate` `lower_hand`).

use crate::common;

use std::time::Duration;

use common::{TestServer, config, moderator_token, token};
use serde_json::{Value, json};
use signaling::policy::Role;

fn hand(raised: bool) -> Value {
    json!({"type": "hand", "raised": raised})
}

#[tokio::test]
async fn raised_hand_is_stamped_kept_for_joiners_and_goes_with_its_device() {
    let s = TestServer::start(config()).await;
    s.meeting("hands").await;
    let mut a = s.connect().await;
    a.join("hands", &token("hands", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("hands", &token("hands", "bob", Role::Caller), "dev-b")
        .await;

    // Alice claims to be Bob: the service stamps her device, and she hears her own hand back.
    let mut spoof = hand(true);
    spoof["device"] = json!("dev-b");
    a.send(&spoof).await;
    let want = json!({"type": "hand", "device": "dev-a", "raised": true, "order": 1});
    assert_eq!(b.recv_type("hand").await, want);
    assert_eq!(a.recv_type("hand").await, want);

    // Bob raises his too; a late joiner gets both, Alice's first.
    b.send(&hand(true)).await;
    assert_eq!(a.recv_type("hand").await["device"], "dev-b");
    assert_eq!(b.recv_type("hand").await["order"], 2, "Bob hears his own");
    let mut c = s.connect().await;
    let joined = c
        .join("hands", &token("hands", "carol", Role::Caller), "dev-c")
        .await;
    assert_eq!(
        joined["hands"],
        json!([{"device": "dev-a", "order": 1}, {"device": "dev-b", "order": 2}])
    );

    // Alice leaves: her hand goes with her.
    a.send(&json!({"type": "leave"})).await;
    let removal = c.recv_type("roster").await;
    assert_eq!(removal["removed"], json!(["dev-a"]));
    let mut d = s.connect().await;
    let joined = d
        .join("hands", &token("hands", "dave", Role::Caller), "dev-d")
        .await;
    assert_eq!(joined["hands"], json!([{"device": "dev-b", "order": 2}]));

    // Bad input: a clear error, counted, and the room goes on.
    let before = s
        .metric("signaling_rejected_total{reason=\"malformed\"}")
        .await;
    b.send(&json!({"type": "hand", "raised": "very"})).await;
    // (Bob's queue holds the roster changes since; the refusal comes after them.)
    let err = b.recv_type("error").await;
    assert_eq!(err["code"], "malformed", "{err}");
    assert!(err["message"].as_str().unwrap().contains("hand"), "{err}");
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"malformed\"}")
            .await,
        before + 1.0
    );
}

#[tokio::test]
async fn hand_rate_limit_is_counted() {
    let s = TestServer::start(config()).await;
    s.meeting("hand-flood").await;
    let mut a = s.connect().await;
    a.join(
        "hand-flood",
        &token("hand-flood", "alice", Role::Caller),
        "dev-a",
    )
    .await;
    for i in 0..call_client::protocol::HAND_BURST + 3 {
        a.send(&hand(i % 2 == 0)).await;
    }
    let refused = async {
        loop {
            let v = a.recv().await;
            if v["type"] == "error" {
                return v;
            }
        }
    };
    let err = tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("a refusal");
    assert_eq!(err["code"], "rate_limited", "{err}");
    assert!(
        s.metric("signaling_rejected_total{reason=\"hand_too_frequent\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn lower_hand_is_refused_for_a_non_moderator_and_done_for_a_moderator() {
    let s = TestServer::start(config()).await;
    s.meeting("lower").await;
    let mut m = s.connect().await;
    m.join("lower", &moderator_token("lower", "mod"), "dev-m")
        .await;
    let mut a = s.connect().await;
    a.join("lower", &token("lower", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("lower", &token("lower", "bob", Role::Caller), "dev-b")
        .await;
    a.send(&hand(true)).await;
    assert_eq!(b.recv_type("hand").await["raised"], true);
    assert_eq!(a.recv_type("hand").await["raised"], true);

    let forbidden =
        "signaling_moderation_actions_total{action=\"lower_hand\",outcome=\"forbidden\"}";
    let before = s.metric(forbidden).await;
    b.send(&json!({"type": "moderate", "action": "lower_hand", "device": "dev-a"}))
        .await;
    b.recv_type("error").await;
    assert_eq!(s.metric(forbidden).await, before + 1.0);
    let mut c = s.connect().await;
    let joined = c
        .join("lower", &token("lower", "carol", Role::Caller), "dev-c")
        .await;
    assert_eq!(
        joined["hands"],
        json!([{"device": "dev-a", "order": 1}]),
        "still up after the refusal"
    );

    m.send(&json!({"type": "moderate", "action": "lower_hand", "device": "dev-a"}))
        .await;
    let want = json!({"type": "hand", "device": "dev-a", "raised": false, "lowered_by": "dev-m"});
    assert_eq!(a.recv_type("hand").await, want);
    assert_eq!(b.recv_type("hand").await, want);
}
