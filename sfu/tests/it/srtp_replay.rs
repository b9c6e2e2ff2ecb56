//! Attack: an on-path attacker replays a captured SRTP packet. The SFU delivers it once.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::peers::publisher;
use crate::common::relay::Relay;
use crate::common::{TestSfu, assert_markers_once_and_flowing, loopback_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_srtp_packet_is_delivered_once() {
    common::init_tracing();
    let mut sfu = TestSfu::start(loopback_config()).await;
    let relay = Relay::start(sfu.handle.local_addr()).await;
    let (mut publisher, mut video) = publisher().await;
    publisher.route_media_via(sfu.handle.local_addr(), relay.client_facing);
    let added = sfu.connect(&publisher, vec![]).await;

    // Packets 0..40, each with a unique first payload byte; packet 20 is replayed by the relay.
    const COUNT: u8 = 40;
    const REPLAYED: u8 = 20;
    for i in 0..COUNT {
        if i == REPLAYED {
            relay.control.replay_next_srtp.store(true, Ordering::SeqCst);
        }
        video
            .write_next(&[i, 0xAB, 0xCD, i])
            .await
            .expect("rtp written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let seen = sfu.rtp_markers(added, Duration::from_millis(700)).await;
    assert_eq!(
        relay.control.replayed.load(Ordering::SeqCst),
        1,
        "the relay replayed one packet"
    );
    assert_eq!(
        seen.get(&REPLAYED),
        Some(&1),
        "the replayed packet is delivered once"
    );
    assert_markers_once_and_flowing(&seen, COUNT);
    let stats = sfu.handle.stats().await.expect("shard running");
    assert_eq!(stats.srtp_replayed, 1, "the replay is counted: {stats:?}");
    publisher.close().await;
}
