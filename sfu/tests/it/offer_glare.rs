//! Glare: the SFU's renegotiation offer and a client's own offer cross. The SFU is the polite
//! side: it withdraws its offer, answers the client's (so the client's change is not lost),
//! and makes its offer again once the answer is applied (so its change is not lost either).
//! The client is the impolite side and drops the SFU offer that crossed its own. Real `webrtc`
//! clients; the whole node.

use crate::common;
use crate::common::peers::node_with_meeting;

use std::time::Duration;

use crate::common::peers::{join, published_track, publisher, receives, subscriber, subscriptions};
use sfu::node::{NodeConfig, NodeEvent, NodeHandle, SessionDescription};
use sfu_forwarding::Role;
use tokio::sync::broadcast;

const BOB_AUDIO_SSRC: u32 = 0x0b0b_0001;

/// The next node offer to `device`, within `within`.
async fn next_offer(
    events: &mut broadcast::Receiver<NodeEvent>,
    device: &str,
    within: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(NodeEvent::Offer { device: d, sdp, .. })) if d == device => return Some(sdp),
            Ok(Ok(_)) => {}
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            _ => return None,
        }
    }
}

async fn sfu_offer_sent_to_bob(node: &NodeHandle, track: &String) {
    // A subscription makes the node offer bob a section for the track.
    node.set_subscriptions("room", "bob", subscriptions([track]), None)
        .await
        .expect("subscription set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_offer_crossing_an_sfu_offer_is_answered_and_the_sfu_offers_again() {
    common::init_tracing();
    let (node, mut events) = node_with_meeting(NodeConfig::default(), "room").await;
    let (alice, mut video) = publisher().await;
    join(&node, "room", "alice", Role::Caller, &alice, vec![]).await;
    let track = published_track(&mut events, &mut video).await;
    let mut bob = subscriber().await;
    join(&node, "room", "bob", Role::Caller, &bob, vec![]).await;

    // The SFU offers bob alice's track; before bob answers, bob offers a microphone of its own.
    sfu_offer_sent_to_bob(&node, &track).await;
    let crossed = next_offer(&mut events, "bob", Duration::from_secs(5))
        .await
        .expect("the SFU offers bob the subscription");
    assert!(!crossed.is_empty());
    let mut mic = bob
        .add_audio("bob-mic", BOB_AUDIO_SSRC)
        .await
        .expect("bob adds a microphone");
    let own_offer = bob.offer().await.expect("bob's own offer");
    let answer = node
        .renegotiate(
            "room",
            "bob",
            SessionDescription::Offer(own_offer),
            &[],
            None,
        )
        .await
        .expect("the crossing client offer is answered, not refused")
        .expect("an answer");
    bob.apply_answer(&answer)
        .await
        .expect("bob applies the answer");
    assert_eq!(
        node.snapshot().await.shard.expect("shard").offers_withdrawn,
        1
    );

    // Bob's change went through: its microphone is published. The SFU's change is not lost
    // either: it offers it again right after answering.
    let (mut published, mut again) = (false, None);
    for _ in 0..100 {
        mic.write_next(&[0xf8, 0xff, 0xfe])
            .await
            .expect("audio written");
        while let Ok(e) = events.try_recv() {
            match e {
                NodeEvent::TrackPublished { publisher, .. } if publisher == "bob" => {
                    published = true;
                }
                NodeEvent::Offer { device, sdp, .. } if device == "bob" => again = Some(sdp),
                _ => {}
            }
        }
        if published && again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(published, "bob's microphone published");
    let again = again.expect("the SFU offers its change again after answering");
    let reply = bob.answer(&again).await.expect("bob answers");
    node.renegotiate("room", "bob", SessionDescription::Answer(reply), &[], None)
        .await
        .expect("bob's answer applies");
    assert!(
        receives(&mut video, &mut bob).await,
        "alice's video reaches bob after the glare"
    );
    alice.close().await;
    bob.close().await;
}
