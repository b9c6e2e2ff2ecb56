//! Attack: a correctly keyed STUN request from a source outside the allow-list. It gets no
//! answer and is counted; the same request from an allowed source is answered.

use crate::common;

use std::time::Duration;

use crate::common::peers::publisher;
use crate::common::stun::{binding_request, ice_credentials};
use crate::common::{TestSfu, loopback_config};
use sfu::transport::SourceAllowList;
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_outside_allow_list_gets_no_answer() {
    common::init_tracing();
    let mut config = loopback_config();
    // Only 127.0.0.1 is answered; 127.0.0.2 (still loopback) is outside the list.
    config.allowed_sources = SourceAllowList::new(vec!["127.0.0.1/32".parse().unwrap()]);
    let sfu = TestSfu::start(config).await;
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");
    let (client_ufrag, _) = ice_credentials(&offer);
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    let (sfu_ufrag, sfu_pwd) = ice_credentials(&added.answer);
    let request = binding_request(&format!("{sfu_ufrag}:{client_ufrag}"), &sfu_pwd);
    let sfu_addr = sfu.handle.local_addr();

    let outsider = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    for _ in 0..3 {
        outsider.send_to(&request, sfu_addr).await.unwrap();
    }
    outsider
        .send_to(b"\x80\x60not-even-stun", sfu_addr)
        .await
        .unwrap();
    let mut buf = [0u8; 1500];
    let answer =
        tokio::time::timeout(Duration::from_millis(500), outsider.recv_from(&mut buf)).await;
    assert!(
        answer.is_err(),
        "a source outside the allow-list gets no answer"
    );
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.source_not_allowed, 4);
    assert_eq!(stats.bound_addresses, 0);
    assert_eq!(
        stats.stun_bad_integrity + stats.stun_unknown_username,
        0,
        "refused before parsing"
    );

    let insider = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    insider.send_to(&request, sfu_addr).await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), insider.recv_from(&mut buf))
        .await
        .expect("the same request from an allowed source is answered")
        .unwrap();
}
