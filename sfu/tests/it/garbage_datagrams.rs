//! A burst of random datagrams at the media port (from 127.0.0.1, inside the allow-list) while
//! a real publisher is connected: every datagram is dropped with a reason on
//! `sfu_packets_dropped_total` (`garbage` when its first byte is no WebRTC protocol,
//! `unknown_source` when it looks like one but comes from an address no peer proved) or, if the
//! kernel dropped it first, on `sfu_udp_receive_buffer_drops_total`; the publisher's media keeps
//! arriving.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::peers::{join, publisher};
use crate::common::poll_until;
use crate::common::sfu_process::metric;
use sfu::node::{NodeConfig, NodeHandle, Observer, start_node};
use sfu::ops::SfuMetrics;
use sfu_forwarding::{Role, RoomPolicy};

const BURST: u64 = 5_000;

/// The dropped-datagram counters of a fresh scrape: (garbage, unknown_source, stun malformed,
/// kernel drops).
async fn dropped(node: &NodeHandle, metrics: &SfuMetrics) -> (u64, u64, u64, u64) {
    metrics.update(&node.snapshot().await);
    let text = metrics.render();
    let read = |name: &str| metric(&text, name).unwrap_or(0.0) as u64;
    (
        read(r#"sfu_packets_dropped_total{reason="garbage"}"#),
        read(r#"sfu_packets_dropped_total{reason="unknown_source"}"#),
        read(r#"sfu_stun_rejected_total{reason="malformed"}"#),
        read("sfu_udp_receive_buffer_drops_total"),
    )
}

/// xorshift64*: reproducible random bytes without a dependency.
fn random_bytes(state: &mut u64, out: &mut [u8]) {
    for byte in out {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        *byte = (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_counted() {
    common::init_tracing();
    let metrics = Arc::new(SfuMetrics::new().expect("registry builds"));
    let node = start_node(
        NodeConfig::default(),
        Some(metrics.clone() as Arc<dyn Observer>),
    )
    .await
    .expect("node starts");
    node.create_room("r", RoomPolicy::meeting())
        .await
        .expect("room created");
    let (publisher, mut video) = publisher().await;
    join(&node, "r", "alice", Role::Caller, &publisher, vec![]).await;
    let received = async |node: &NodeHandle| node.snapshot().await.metrics.packets_received.video;
    let before = dropped(&node, &metrics).await;

    // The burst: 5,000 datagrams of 20 to 1,200 random bytes from one loopback socket.
    let target = node.udp_addr();
    let sender = tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut buf = [0u8; 1200];
        for i in 0..BURST as usize {
            let len = 20 + i % 1180;
            random_bytes(&mut state, &mut buf[..len]);
            socket.send_to(&buf[..len], target).expect("datagram sent");
        }
    });
    // The publisher keeps sending meanwhile.
    let mut publisher_sent = 0u64;
    while !sender.is_finished() {
        video
            .write_next(&[0x90, 0x80, 0x80, 0x01, 0x10, 0x02, 0x00])
            .await
            .expect("rtp written");
        publisher_sent += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sender.await.expect("burst sent");

    // Every datagram of the burst is counted under one reason or another.
    let mut after = before;
    poll_until(
        Duration::from_secs(10),
        "every burst datagram counted",
        async || {
            after = dropped(&node, &metrics).await;
            let moved = (after.0 - before.0)
                + (after.1 - before.1)
                + (after.2 - before.2)
                + (after.3 - before.3);
            moved >= BURST
        },
    )
    .await;
    let (garbage, unknown, malformed, kernel) = (
        after.0 - before.0,
        after.1 - before.1,
        after.2 - before.2,
        after.3 - before.3,
    );
    // The kernel's count is the socket's: when its buffer overflows it may also drop a few of
    // the publisher's packets (sent during the burst), never more than those.
    let counted = garbage + unknown + malformed + kernel;
    assert!(
        (BURST..=BURST + publisher_sent).contains(&counted),
        "{counted} counted for a burst of {BURST} (+ at most {publisher_sent} publisher packets the kernel dropped): \
         garbage {garbage}, unknown_source {unknown}, stun malformed {malformed}, kernel {kernel}"
    );
    // About 9/16 of random first bytes are no WebRTC protocol, the rest look like one (the
    // kernel may take its share of either first).
    assert!(garbage > BURST / 10, "garbage counted: {garbage}");
    assert!(unknown > BURST / 10, "unknown_source counted: {unknown}");

    // The connected publisher is unaffected: still connected, its media still arrives.
    let base = received(&node).await;
    poll_until(
        Duration::from_secs(5),
        "the publisher's media after the burst",
        async || {
            video
                .write_next(&[0x90, 0x80, 0x80, 0x02, 0x10, 0x02, 0x00])
                .await
                .expect("rtp written");
            received(&node).await > base + 10
        },
    )
    .await;
    assert_eq!(node.participant_count(), 1);
    publisher.close().await;
}
