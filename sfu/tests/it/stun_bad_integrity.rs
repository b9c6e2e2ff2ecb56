//! Attack: STUN binding requests naming a real peer's ufrag but with a MESSAGE-INTEGRITY that
//! does not verify. The shard must answer nothing, bind no address, create nothing, and count
//! the refusal. A correctly keyed request from the same socket is the positive control.

use crate::common;

use std::time::Duration;

use crate::common::peers::publisher;
use crate::common::stun::{binding_request, ice_credentials};
use crate::common::{TestSfu, loopback_config};
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_integrity_allocates_nothing_and_gets_no_answer() {
    common::init_tracing();
    let sfu = TestSfu::start(loopback_config()).await;
    let (client, _video) = publisher().await;
    let offer = client.offer().await.expect("offer");
    let (client_ufrag, _) = ice_credentials(&offer);
    let added = sfu.handle.add_peer(offer, vec![]).await.unwrap();
    let (sfu_ufrag, sfu_pwd) = ice_credentials(&added.answer);
    // The real client never gets the answer, so it never talks to the SFU.

    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sfu_addr = sfu.handle.local_addr();
    let before = sfu.handle.stats().await.unwrap();
    assert_eq!(before.peers, 1);
    assert_eq!(before.bound_addresses, 0);

    let username = format!("{sfu_ufrag}:{client_ufrag}");
    for wrong in ["", "x", "wrong-password-0123456789", &sfu_pwd[1..]] {
        let request = binding_request(&username, wrong);
        attacker.send_to(&request, sfu_addr).await.unwrap();
    }
    // A valid request with one flipped bit inside MESSAGE-INTEGRITY.
    let mut tampered = binding_request(&username, &sfu_pwd);
    let mi = tampered.len() - 8 - 20;
    tampered[mi] ^= 0x80;
    attacker.send_to(&tampered, sfu_addr).await.unwrap();

    let mut buf = [0u8; 1500];
    let answer =
        tokio::time::timeout(Duration::from_millis(500), attacker.recv_from(&mut buf)).await;
    assert!(answer.is_err(), "no answer to a request with bad integrity");

    let after = sfu.handle.stats().await.unwrap();
    assert_eq!(after.stun_bad_integrity, before.stun_bad_integrity + 5);
    assert_eq!(after.peers, 1, "no peer created or removed");
    assert_eq!(after.bound_addresses, 0, "no address bound");
    assert_eq!(after.registered_usernames, 1);

    // Positive control: the same socket with the right password is answered and bound.
    attacker
        .send_to(&binding_request(&username, &sfu_pwd), sfu_addr)
        .await
        .unwrap();
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), attacker.recv_from(&mut buf))
        .await
        .expect("a correctly keyed request is answered")
        .unwrap();
    assert_eq!(from, sfu_addr);
    assert!(n >= 20 && buf[0] <= 3, "the answer is STUN");
    let control = sfu.handle.stats().await.unwrap();
    assert_eq!(control.bound_addresses, 1);
    assert_eq!(control.stun_bad_integrity, after.stun_bad_integrity);
}
