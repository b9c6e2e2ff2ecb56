//! Attack (or just a vanished client): a connected peer goes silent. RFC 7675 consent expires and
//! the SFU drops the peer and frees all its state, within the consent timeout.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::peers::publisher;
use crate::common::relay::Relay;
use crate::common::{Observed, TestSfu, loopback_config};
use sfu::transport::{CloseReason, DEFAULT_CONSENT_TIMEOUT, PeerEvent};

async fn silent_peer_is_freed_within(consent: Duration) {
    common::init_tracing();
    let mut config = loopback_config();
    config.consent_timeout = consent;
    let mut sfu = TestSfu::start(config).await;
    let relay = Relay::start(sfu.handle.local_addr()).await;
    let (mut publisher, _video) = publisher().await;
    publisher.route_media_via(sfu.handle.local_addr(), relay.client_facing);
    let added = sfu.connect(&publisher, vec![]).await;
    let connected = sfu.handle.stats().await.unwrap();
    assert_eq!((connected.peers, connected.bound_addresses), (1, 1));

    // The client keeps running and sending consent checks; the network drops them.
    relay.control.blackhole.store(true, Ordering::SeqCst);
    let silent_since = Instant::now();
    let reason = sfu
        .wait_for(consent + Duration::from_secs(3), |o| match o {
            Observed::Event(PeerEvent::Closed { peer, reason }) if *peer == added => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await
        .expect("the silent peer is dropped");
    let elapsed = silent_since.elapsed();
    assert_eq!(reason, CloseReason::ConsentExpired);
    // Consent was last refreshed at most one keepalive interval before the silence began.
    assert!(
        elapsed <= consent + Duration::from_millis(500),
        "dropped after {elapsed:?}"
    );
    assert!(
        elapsed >= consent.saturating_sub(Duration::from_secs(3)),
        "dropped too early: {elapsed:?}"
    );

    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.peers, 0, "peer freed");
    assert_eq!(stats.bound_addresses, 0, "its addresses freed");
    assert_eq!(stats.registered_usernames, 0, "its username freed");
    assert_eq!(stats.consent_expired, 1);
    publisher.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_freed_with_a_short_consent_timeout() {
    silent_peer_is_freed_within(Duration::from_secs(3)).await;
}

/// The production value (15 s). Slow-ish but runs in parallel with the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_freed_within_the_default_15_seconds() {
    assert_eq!(DEFAULT_CONSENT_TIMEOUT, Duration::from_secs(15));
    silent_peer_is_freed_within(DEFAULT_CONSENT_TIMEOUT).await;
}
