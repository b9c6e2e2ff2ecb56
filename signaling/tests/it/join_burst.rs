//! Twenty callers join one meeting at once, through the real service, each with
//! `call_client::session` and `call_client::keys` (real HPKE envelopes, real SFrame): signaling
//! coalesces the burst into few `membership ratchet` notices (docs/architecture.md §7.24), so the
//! publisher's key moves a few steps, not twenty, and every joiner opens its current frames.

use crate::common;

use std::time::{Duration, Instant};

use crate::key_peer::KeyPeer;
use common::{TestServer, config};
use e2ee_frames::{Codec, Stream};

const ROOM: &str = "burst";
const JOINERS: usize = 20;

#[tokio::test]
async fn twenty_simultaneous_joiners_all_get_usable_keys() {
    let s = TestServer::start_without_media(config()).await;
    s.meeting(ROOM).await;
    let publisher = KeyPeer::join(&s.ws_url(), ROOM, "publisher", true).await;
    let publisher = tokio::spawn(publisher.serve(Duration::from_secs(4)));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Twenty joins at once; the joiners listen only (they send no media).
    let joins = (0..JOINERS).map(|i| {
        let s = &s;
        async move { KeyPeer::join(&s.ws_url(), ROOM, &format!("joiner-{i}"), false).await }
    });
    let joiners = futures_util::future::join_all(joins).await;
    let joiners: Vec<_> = joiners
        .into_iter()
        .map(|p| tokio::spawn(p.serve(Duration::from_secs(3))))
        .collect();

    let publisher = publisher.await.expect("publisher task");
    let key = publisher.sending.clone().expect("publisher sends");
    eprintln!(
        "publisher ratchets for {JOINERS} joins: {}",
        publisher.ratchets
    );
    assert_eq!(key.generation, 0);
    assert!(
        publisher.ratchets <= 4,
        "a burst of {JOINERS} joins ratchets a few times, not once per join: {} ratchets",
        publisher.ratchets
    );
    let mut sender = key.sender(publisher.slot()).expect("sender");
    let frame = [0xfcu8, 1, 2, 3, 4, 5];
    for joiner in joiners {
        let mut joiner = joiner.await.expect("joiner task");
        let mut wire = Vec::new();
        sender
            .encrypt_media(Stream::Audio, Codec::Opus, &frame, &mut wire)
            .expect("encrypts");
        let mut out = Vec::new();
        joiner
            .store
            .decrypt_media(Instant::now(), Codec::Opus, &wire, &mut out)
            .unwrap_or_else(|e| panic!("{} opens the publisher's frame: {e}", joiner.name()));
        assert_eq!(out, frame);
    }
}
