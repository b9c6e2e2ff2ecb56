//! An SFU offer the device leaves unanswered is sent again (architecture §7.47): two real
//! WebRTC clients through the embedded SFU; Bob subscribes to Alice's tracks and ignores the
//! SFU's offer that follows; the same offer comes again after 5 s, Bob answers that one and
//! decrypts Alice's audio and video. The re-send is counted.

use std::time::Duration;

use e2ee_frames::key::BaseKey;
use e2ee_frames::sender::Sender;
use serde_json::{Value, json};
use signaling::room::OFFER_ANSWER_TIMEOUT;
use tokio::time::Instant;

use crate::common::{TestServer, config};
use crate::media_call::{Device, Media, Receiver, SUITE, publish, receive, send_frames, send_key};

/// The next `offer` to `dev` within `within`, skipping other messages.
async fn next_offer(dev: &mut Device, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let m: Value = tokio::time::timeout_at(deadline, dev.ws.recv())
            .await
            .unwrap_or_else(|_| panic!("an offer within {within:?}"));
        if m["type"] == "offer" {
            return m["sdp"].as_str().expect("offer sdp").to_owned();
        }
    }
}

/// Alice and Bob in a meeting, both publishing, Alice sending frames with a key Bob holds; Bob
/// has asked for Alice's tracks and the SFU's offer for them is on its way to Bob (unanswered).
struct PendingOffer {
    alice: Device,
    bob: Device,
    a: Media,
    b: Media,
    a_sender: Sender,
    alice_key: BaseKey,
}

async fn bob_subscribes_to_alice(s: &TestServer) -> PendingOffer {
    s.meeting("call").await;
    let mut alice = Device::join(s, "call", "alice-dev").await;
    let mut bob = Device::join(s, "call", "bob-dev").await;
    let mut a = publish(&mut alice, 0x3333_0001, 10).await;
    let mut b = publish(&mut bob, 0x3333_0002, 50).await;
    let alice_key = BaseKey::random(&mut rand::rng());
    send_key(&mut alice, &mut bob, &alice_key, &mut b.store).await;
    let mut a_sender = Sender::new(SUITE, alice.slot(), 1, alice_key.clone()).expect("sender");
    for i in 0..25 {
        send_frames(&mut a, &mut a_sender, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Bob subscribes to Alice's tracks once both are announced.
    let mut tracks: Vec<Value> = Vec::new();
    while tracks.len() < 2 {
        let m = bob.ws.recv().await;
        if m["type"] == "track_published" && m["track"]["publisher"] == "alice-dev" {
            tracks.push(m["track"].clone());
        }
    }
    let subs: Vec<Value> = tracks.iter().map(|t| json!({"track": t["id"]})).collect();
    bob.ws
        .send(&json!({"type": "subscribe", "subscriptions": subs}))
        .await;
    PendingOffer {
        alice,
        bob,
        a,
        b,
        a_sender,
        alice_key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_sfu_offer_is_sent_again_and_the_call_goes_on() {
    let s = TestServer::start(config()).await;
    let PendingOffer {
        alice,
        mut bob,
        mut a,
        mut b,
        mut a_sender,
        ..
    } = bob_subscribes_to_alice(&s).await;
    // The SFU's offer: lost, as far as the SFU can tell (Bob never answers it).
    let first = next_offer(&mut bob, Duration::from_secs(10)).await;
    let ignored_at = Instant::now();
    let again = next_offer(&mut bob, OFFER_ANSWER_TIMEOUT + Duration::from_secs(3)).await;
    let waited = ignored_at.elapsed();
    assert_eq!(again, first, "the same offer again");
    assert!(
        waited >= OFFER_ANSWER_TIMEOUT - Duration::from_millis(500),
        "not before the answer timeout: {waited:?}"
    );
    let answer = b.peer.answer(&again).await.expect("answer");
    bob.ws.send(&json!({"type": "answer", "sdp": answer})).await;

    let mut b_rx = Receiver {
        rtp: b.peer.take_incoming(),
        store: std::mem::take(&mut b.store),
    };
    let sending = tokio::spawn(async move {
        for i in 25..400 {
            send_frames(&mut a, &mut a_sender, i).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    receive(&mut b_rx, alice.slot(), 30).await;
    sending.abort();
    assert_eq!(
        s.metric("signaling_node_offers_total{outcome=\"resent_after_timeout\"}")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("signaling_node_offers_total{outcome=\"session_reset\"}")
            .await,
        0.0
    );
}

/// A device that reconnects (a fresh join of the same device, not a resume) while an SFU offer
/// to it is unanswered ends in one working media session (architecture §7.50): the offer made
/// for its old session is not sent to the new connection, the old session's removal does not
/// touch the new one, and its new peer connection subscribes, answers and decrypts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_during_a_pending_sfu_offer_ends_in_one_working_session() {
    let s = TestServer::start(config()).await;
    let PendingOffer {
        mut alice,
        mut bob,
        mut a,
        b,
        mut a_sender,
        alice_key,
    } = bob_subscribes_to_alice(&s).await;
    // The SFU's offer for bob's first session: left unanswered.
    let pending = next_offer(&mut bob, Duration::from_secs(10)).await;

    // Bob's page reloads: its old peer connection is gone, it joins again as the same device.
    drop(b);
    let bundle: Value = serde_json::from_str(&bob.keys.bundle().to_json()).expect("bundle");
    let mut ws = s.connect().await;
    ws.send(
        &json!({"type": "join", "v": 1, "room": "call", "device": bundle,
        "token": crate::common::token("call", "bob-dev", signaling::policy::Role::Caller),
        "name": "bob-dev"}),
    )
    .await;
    let joined = ws.recv_type("joined").await;
    assert_ne!(joined["resumed"], true, "a fresh join: {joined}");
    // Alice's tracks come with the join.
    let tracks: Vec<Value> = joined["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .filter(|t| t["publisher"] == "alice-dev")
        .cloned()
        .collect();
    assert_eq!(tracks.len(), 2, "{joined}");
    let mut bob = Device {
        keys: bob.keys,
        ws,
        joined,
    };
    let mut b = publish(&mut bob, 0x3333_0003, 50).await;
    send_key(&mut alice, &mut bob, &alice_key, &mut b.store).await;
    let sending = tokio::spawn(async move {
        for i in 25..600 {
            send_frames(&mut a, &mut a_sender, i).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // The subscription of the new session: its own offer (not the old one), answered.
    let subs: Vec<Value> = tracks.iter().map(|t| json!({"track": t["id"]})).collect();
    bob.ws
        .send(&json!({"type": "subscribe", "subscriptions": subs}))
        .await;
    let offer = next_offer(&mut bob, Duration::from_secs(10)).await;
    assert_ne!(offer, pending, "an offer of the new session");
    let answer = b.peer.answer(&offer).await.expect("answer");
    bob.ws.send(&json!({"type": "answer", "sdp": answer})).await;
    let mut b_rx = Receiver {
        rtp: b.peer.take_incoming(),
        store: std::mem::take(&mut b.store),
    };
    receive(&mut b_rx, alice.slot(), 30).await;
    sending.abort();
    assert_eq!(
        s.metric("signaling_node_offers_total{outcome=\"session_reset\"}")
            .await,
        0.0,
        "nothing was left hanging"
    );
}
