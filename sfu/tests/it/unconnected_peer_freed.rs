//! Attack (resource exhaustion through signaling): offers whose clients never connect. Each peer
//! is dropped and freed once the connect timeout passes.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::peers::publisher;
use crate::common::{Observed, TestSfu, loopback_config};
use sfu::transport::{CloseReason, PeerEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_connects_is_freed_after_the_connect_timeout() {
    common::init_tracing();
    let mut config = loopback_config();
    config.connect_timeout = Duration::from_millis(600);
    let mut sfu = TestSfu::start(config).await;
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");
    let started = Instant::now();
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    // The answer is never given to the client.
    assert_eq!(sfu.handle.stats().await.unwrap().peers, 1);
    let reason = sfu
        .wait_for(Duration::from_secs(3), |o| match o {
            Observed::Event(PeerEvent::Closed { peer, reason }) if *peer == added.peer => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await
        .expect("the peer is dropped");
    assert_eq!(reason, CloseReason::ConnectTimeout);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(
        (
            stats.peers,
            stats.registered_usernames,
            stats.bound_addresses
        ),
        (0, 0, 0)
    );
    client.close().await;
}
