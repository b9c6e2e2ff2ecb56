//! Attack: STUN binding requests naming no peer of the shard (a flood of made-up usernames).
//! The shard must answer nothing, allocate nothing and count each refusal.

use crate::common;

use std::time::Duration;

use crate::common::peers::publisher;
use crate::common::stun::{binding_request, ice_credentials};
use crate::common::{TestSfu, loopback_config};
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_username_allocates_nothing_and_gets_no_answer() {
    common::init_tracing();
    let sfu = TestSfu::start(loopback_config()).await;
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");
    let (client_ufrag, _) = ice_credentials(&offer);
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    let (sfu_ufrag, sfu_pwd) = ice_credentials(&added.answer);

    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sfu_addr = sfu.handle.local_addr();
    let before = sfu.handle.stats().await.unwrap();

    const FLOOD: u64 = 300;
    for i in 0..FLOOD {
        // Made-up ufrags, keyed with the real password (which does not help).
        let request = binding_request(&format!("nosuch{i}:{client_ufrag}"), &sfu_pwd);
        attacker.send_to(&request, sfu_addr).await.unwrap();
        if i % 20 == 19 {
            // Paced so the kernel's socket buffer never overflows: every request must arrive
            // for the exact count below to hold.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The real ufrag with a suffix is another username.
    attacker
        .send_to(
            &binding_request(&format!("{sfu_ufrag}x:{client_ufrag}"), &sfu_pwd),
            sfu_addr,
        )
        .await
        .unwrap();

    let mut buf = [0u8; 1500];
    let answer =
        tokio::time::timeout(Duration::from_millis(500), attacker.recv_from(&mut buf)).await;
    assert!(answer.is_err(), "no answer to an unknown username");

    let after = sfu.handle.stats().await.unwrap();
    assert_eq!(
        after.stun_unknown_username,
        before.stun_unknown_username + FLOOD + 1
    );
    assert_eq!(after.peers, before.peers, "no peer created");
    assert_eq!(after.bound_addresses, 0, "no address bound");
    assert_eq!(after.registered_usernames, 1, "no username registered");
    assert_eq!(after.stun_bad_integrity, 0);
}
