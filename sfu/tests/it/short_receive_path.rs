//! The short receive path (SRTP of an established stream decrypted without the `rtc` pipeline)
//! carries a publisher's media once its stream is established, and refuses what the pipeline
//! refuses: a replayed packet and a forged one are dropped and counted, the genuine ones
//! delivered once.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::peers::publisher;
use crate::common::relay::Relay;
use crate::common::{TestSfu, assert_markers_once_and_flowing, loopback_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_forged_srtp_on_the_short_path_are_refused_and_counted() {
    common::init_tracing();
    let mut sfu = TestSfu::start(loopback_config()).await;
    let relay = Relay::start(sfu.handle.local_addr()).await;
    let (mut publisher, mut video) = publisher().await;
    publisher.route_media_via(sfu.handle.local_addr(), relay.client_facing);
    let added = sfu.connect(&publisher, vec![]).await;

    // Packets 0..60, each with a unique first payload byte. The first ones establish the
    // stream through the pipeline; packet 30 is replayed, packet 40 preceded by a forged copy.
    const COUNT: u8 = 60;
    const REPLAYED: u8 = 30;
    const FORGED: u8 = 40;
    for i in 0..COUNT {
        if i == REPLAYED {
            relay.control.replay_next_srtp.store(true, Ordering::SeqCst);
        }
        if i == FORGED {
            relay.control.forge_next_srtp.store(true, Ordering::SeqCst);
        }
        video
            .write_next(&[i, 0xAB, 0xCD, i])
            .await
            .expect("rtp written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let seen = sfu.rtp_markers(added, Duration::from_millis(700)).await;
    assert_eq!(relay.control.replayed.load(Ordering::SeqCst), 1);
    assert_eq!(relay.control.forged.load(Ordering::SeqCst), 1);
    assert_eq!(seen.get(&REPLAYED), Some(&1), "the replayed packet once");
    assert_eq!(
        seen.get(&FORGED),
        Some(&1),
        "the forged packet's original once"
    );
    assert_markers_once_and_flowing(&seen, COUNT);

    let stats = sfu.handle.stats().await.expect("shard running");
    assert_eq!(stats.srtp_replayed, 1, "the replay is counted: {stats:?}");
    assert_eq!(
        stats.srtp_unauthenticated, 1,
        "the forgery is counted: {stats:?}"
    );
    // Most of the stream took the short path; the pipeline saw its first packets.
    assert!(
        stats.rtp_short_path >= u64::from(COUNT) - 10,
        "packets took the short path: {stats:?}"
    );
    assert!(
        stats.rtp_short_path < stats.rtp_in,
        "the first packets took the pipeline: {stats:?}"
    );
    publisher.close().await;
}
