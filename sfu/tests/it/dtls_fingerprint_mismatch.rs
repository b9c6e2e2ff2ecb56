//! Attack: the DTLS certificate presented does not match the `a=fingerprint` in the SDP. The SFU
//! must refuse in either DTLS role: no media flows, and the peer is torn down (all state freed)
//! within 1 s.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::peers::publisher;
use crate::common::{Observed, TestSfu, loopback_config};
use sfu::transport::{CloseReason, DtlsRole, PeerEvent, PeerId};

/// Changes the first byte of every SHA-256 fingerprint in `sdp`.
fn tamper_fingerprint(sdp: &str) -> String {
    let mut tampered = 0;
    let out = sdp
        .lines()
        .map(|line| {
            if let Some(value) = line.strip_prefix("a=fingerprint:sha-256 ") {
                tampered += 1;
                let first = &value[..2];
                let replacement = if first == "00" { "11" } else { "00" };
                format!("a=fingerprint:sha-256 {replacement}{}", &value[2..])
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n";
    assert!(tampered > 0, "the SDP carries a fingerprint");
    out
}

/// Waits for `peer` to close, failing on any sign of media or connection.
async fn expect_dtls_teardown(sfu: &mut TestSfu, peer: PeerId, start: Instant) {
    let reason = sfu
        .wait_for(Duration::from_secs(3), |o| match o {
            Observed::Event(PeerEvent::Closed { peer: p, reason }) if *p == peer => {
                Some(reason.clone())
            }
            Observed::Event(PeerEvent::Connected { .. }) => panic!("peer must not connect"),
            Observed::Rtp(..) => panic!("no media may flow"),
            _ => None,
        })
        .await
        .expect("the peer is torn down");
    let elapsed = start.elapsed();
    assert_eq!(reason, CloseReason::DtlsFailed);
    assert!(
        elapsed < Duration::from_secs(1),
        "torn down after {elapsed:?}"
    );
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.peers, 0);
    assert_eq!(stats.registered_usernames, 0);
    assert_eq!(stats.bound_addresses, 0);
    assert_eq!(stats.rtp_in, 0);
}

async fn sfu_rejects_client_certificate(role: DtlsRole) {
    common::init_tracing();
    let mut config = loopback_config();
    config.dtls_role = role;
    let mut sfu = TestSfu::start(config).await;
    let (client, _video) = publisher().await;
    let offer = tamper_fingerprint(&client.offer().await.expect("offer"));
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    let expected_setup = match role {
        DtlsRole::Server => "a=setup:passive",
        DtlsRole::Client => "a=setup:active",
    };
    assert!(
        added.answer.contains(expected_setup),
        "SFU takes the {role:?} role"
    );
    let start = Instant::now();
    client
        .apply_answer(&added.answer)
        .await
        .expect("answer applies");
    expect_dtls_teardown(&mut sfu, added.peer, start).await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_as_dtls_server_rejects_mismatched_client_certificate() {
    sfu_rejects_client_certificate(DtlsRole::Server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_as_dtls_client_rejects_mismatched_client_certificate() {
    sfu_rejects_client_certificate(DtlsRole::Client).await;
}

/// The other direction: the client is handed a wrong fingerprint for the SFU, refuses the SFU's
/// certificate and says so with an alert; the SFU tears down on that alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rejecting_sfu_certificate_tears_down_the_peer() {
    common::init_tracing();
    let mut sfu = TestSfu::start(loopback_config()).await;
    let (client, _video) = publisher().await;
    let added = sfu
        .handle
        .add_peer(client.offer().await.expect("offer"), vec![])
        .await
        .unwrap();
    let start = Instant::now();
    client
        .apply_answer(&tamper_fingerprint(&added.answer))
        .await
        .expect("answer applies");
    expect_dtls_teardown(&mut sfu, added.peer, start).await;
    client.close().await;
}
