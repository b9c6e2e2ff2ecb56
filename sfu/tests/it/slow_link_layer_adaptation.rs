//! A subscriber behind a slow, lossy link gets a lower simulcast layer and climbs back when the
//! link recovers. The whole node runs with real `webrtc` clients: a publisher sends three rid
//! layers (about 35, 110 and 250 kbit/s); the subscriber reaches the SFU through the loopback
//! relay of `common/relay.rs` and sends transport-wide CC feedback (the `webrtc` crate's TWCC
//! receiver). Policing the relay's SFU→subscriber direction to 160 kbit/s makes the top layer
//! lose packets; the SFU's bandwidth estimate (from that feedback, no test hook) falls and the
//! subscriber is moved down; lifting the limit lets the estimate grow again (8 %/s) and the
//! subscriber is moved back to the top layer. The estimate's floor is set to 200 kbit/s so the
//! climb back takes seconds, not the half minute a climb from the default 50 kbit/s would.

use crate::common;
use crate::common::peers::node_with_meeting;

use crate::common::peers::{join, receiver_with, subscriptions};
use crate::common::relay::Relay;
use crate::common::simulcast::{Seen, Source, run};
use call_client::peer::{Peer, RtpCodecKind};
use sfu::node::NodeConfig;
use sfu_forwarding::Role;
use std::sync::atomic::Ordering;

/// The policed downlink rate: between the middle layer and the top layer.
const SLOW_LINK_BPS: u64 = 160_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_on_a_slow_lossy_link_drops_a_layer_and_climbs_back_when_it_recovers() {
    common::init_tracing();
    let config = NodeConfig {
        forwarding: sfu_forwarding::Config {
            min_estimate_bps: 200_000,
            ..Default::default()
        },
        ..Default::default()
    };
    let (node, mut events) = node_with_meeting(config, "room").await;
    let (mut source, track) = Source::join(&node, &mut events, "room", "alice").await;

    // The subscriber talks to the SFU through the relay.
    let relay = Relay::start(node.udp_addr()).await;
    let mut subscriber =
        receiver_with(Peer::builder().twcc_feedback(), &[RtpCodecKind::Video]).await;
    subscriber.route_media_via(node.udp_addr(), relay.client_facing);
    join(
        &node,
        "room",
        "bob",
        Role::Caller,
        &subscriber,
        subscriptions([&track]),
    )
    .await;

    // Open link: the subscriber reaches the top layer.
    let mut seen: Vec<Seen> = Vec::new();
    let top = |s: &[Seen], from: usize| s[from..].iter().filter(|s| s.rank == 2).count() >= 10;
    let ok = run(&mut source, &mut subscriber, &mut seen, 300, |s| top(s, 0)).await;
    assert!(ok, "top layer on the open link: {} packets", seen.len());

    // Slow link: packets of the top layer are lost, the estimate falls, the layer drops.
    relay
        .control
        .downlink_bps
        .store(SLOW_LINK_BPS, Ordering::SeqCst);
    let slowed = seen.len();
    let ok = run(&mut source, &mut subscriber, &mut seen, 300, |s| {
        s[slowed..].iter().filter(|s| s.rank < 2).count() >= 10
    })
    .await;
    assert!(ok, "a lower layer on the slow link");
    let policed = relay.control.policed.load(Ordering::SeqCst);
    assert!(policed > 0, "the relay dropped packets while slow");
    let snapshot = node.snapshot().await;
    assert!(
        snapshot.metrics.layer_switches_down >= 1,
        "the core switched down"
    );

    // The link recovers: the estimate grows and the subscriber climbs back to the top layer.
    relay.control.downlink_bps.store(0, Ordering::SeqCst);
    let recovered = seen.len();
    let ok = run(&mut source, &mut subscriber, &mut seen, 600, |s| {
        top(s, recovered)
    })
    .await;
    assert!(ok, "back on the top layer after the link recovered");
    let up = node.snapshot().await.metrics.layer_switches_up;
    assert!(up >= 2, "switched up at the start and after recovery: {up}");

    // Through all of it: one SSRC, and every layer change at a keyframe of the new layer
    // (checked where no packet was lost in between: the policer may drop the keyframe itself,
    // and this client does not NACK).
    assert!(seen.iter().all(|s| s.ssrc == seen[0].ssrc), "one SSRC");
    for pair in seen.windows(2) {
        if pair[1].rank != pair[0].rank && pair[1].seq == pair[0].seq.wrapping_add(1) {
            assert!(
                pair[1].keyframe,
                "switch to layer {} at a keyframe",
                pair[1].rank
            );
        }
    }
    source.peer.close().await;
    subscriber.close().await;
}
