//! Simulcast through the whole node with real `webrtc` clients: a publisher sends one VP8 track
//! as three rid layers (announced highest first, `f;h;q`, so the node's ordering by name is
//! what puts `q` lowest), a subscriber capped at layer 0 receives only the `q` layer, and
//! raising the cap to 2 and lowering it to 1 moves it to `f` and then `h`: each switch starts at
//! a keyframe of the new layer, and the subscriber's SSRC and sequence numbers run on without a
//! gap or a repeat across the switches.

use crate::common;
use crate::common::peers::node_with_meeting;

use crate::common::peers::{join, subscriber};
use crate::common::simulcast::{Seen, Source, run};
use sfu::node::{LayerPrefs, NodeConfig, SubscriptionRequest};
use sfu_forwarding::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_gets_the_capped_simulcast_layer_and_switches_at_keyframes_continuously() {
    common::init_tracing();
    let (node, mut events) = node_with_meeting(NodeConfig::default(), "room").await;

    let (mut source, track) = Source::join(&node, &mut events, "room", "alice").await;

    let mut subscriber = subscriber().await;
    let capped = |max_layer| {
        vec![SubscriptionRequest {
            track: track.clone(),
            prefs: LayerPrefs {
                max_layer: Some(max_layer),
                ..Default::default()
            },
        }]
    };
    join(&node, "room", "bob", Role::Caller, &subscriber, capped(0)).await;

    let mut seen: Vec<Seen> = Vec::new();
    // Capped at 0: only the lowest layer, `q`.
    let ok = run(&mut source, &mut subscriber, &mut seen, 160, |s| {
        s.len() >= 20
    })
    .await;
    assert!(
        ok,
        "subscriber receives the capped layer: {} packets",
        seen.len()
    );
    assert!(
        seen.iter().all(|s| s.rank == 0),
        "only layer 0 while capped at 0"
    );
    assert!(seen[0].keyframe, "the stream starts at a keyframe");

    // Raise the cap to 2: it moves to `f`.
    node.set_subscriptions("room", "bob", capped(2), None)
        .await
        .expect("cap raised");
    let raised = seen.len();
    let ok = run(&mut source, &mut subscriber, &mut seen, 160, |s| {
        s[raised..].iter().filter(|s| s.rank == 2).count() >= 15
    })
    .await;
    assert!(ok, "switched up to layer 2");

    // Lower it to 1: it moves to `h`.
    node.set_subscriptions("room", "bob", capped(1), None)
        .await
        .expect("cap lowered");
    let lowered = seen.len();
    let ok = run(&mut source, &mut subscriber, &mut seen, 160, |s| {
        s[lowered..].iter().filter(|s| s.rank == 1).count() >= 15
    })
    .await;
    assert!(ok, "switched down to layer 1");

    // Every change of layer happens at a keyframe of the new layer; after the raise the layers
    // only climb (the core may step through layer 1 while layer 2's rate is being measured)
    // and stay at most 2; after the cap is lowered they only fall and end at 1.
    for pair in seen.windows(2) {
        if pair[1].rank != pair[0].rank {
            assert!(
                pair[1].keyframe,
                "switch to layer {} at a keyframe",
                pair[1].rank
            );
        }
    }
    let climb = &seen[raised..lowered];
    assert!(
        climb.windows(2).all(|w| w[1].rank >= w[0].rank),
        "only up after the raise"
    );
    let fall = &seen[lowered..];
    assert!(
        fall.windows(2).all(|w| w[1].rank <= w[0].rank),
        "only down after lowering"
    );
    assert_eq!(fall.last().map(|s| s.rank), Some(1), "ends on layer 1");
    assert!(fall.iter().any(|s| s.rank == 1) && !fall.iter().any(|s| s.rank == 0));

    // One SSRC, sequence numbers consecutive across both switches.
    assert!(seen.iter().all(|s| s.ssrc == seen[0].ssrc), "one SSRC");
    for pair in seen.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "sequence continuous at {pair:?}"
        );
    }

    let snapshot = node.snapshot().await;
    assert!(snapshot.metrics.layer_switches_up >= 1);
    assert!(snapshot.metrics.layer_switches_down >= 1);
    assert_eq!(
        snapshot.metrics.dropped.unknown_ssrc, 0,
        "every rid's packets belong to the track"
    );
    // Once its rid bound a layer's SSRC, the layer's packets took the short receive path.
    let shard = snapshot.shard.expect("the node's shard answers");
    assert!(
        shard.rtp_short_path * 2 > shard.rtp_in,
        "most simulcast packets took the short receive path: {} of {}",
        shard.rtp_short_path,
        shard.rtp_in
    );
    source.peer.close().await;
    subscriber.close().await;
}
