//! A publisher and a subscriber connect through one SFU UDP port; the publisher's RTP reaches the
//! subscriber with identical payload bytes (through the test-only pass-through forwarding shim).

use crate::common;

use std::time::Duration;

use crate::common::peers::{publisher, subscriber};
use crate::common::{Observed, Route, TestSfu, loopback_config};
use sfu::transport::{MediaKind, OutgoingTrack, PeerEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_rtp_reaches_subscriber_with_identical_payload() {
    common::init_tracing();
    let mut sfu = TestSfu::start(loopback_config()).await;
    let sfu_port = sfu.handle.local_addr().port();

    let (publisher, mut video) = publisher().await;
    let added = sfu
        .handle
        .add_peer(publisher.offer().await.expect("offer"), vec![])
        .await
        .expect("publisher added");
    assert!(
        added.answer.contains("a=ice-lite"),
        "the SFU answers as ICE-lite"
    );
    assert!(
        added
            .answer
            .contains(&format!("127.0.0.1 {sfu_port} typ host")),
        "the SFU advertises only its configured address and port"
    );
    publisher
        .apply_answer(&added.answer)
        .await
        .expect("answer applies");
    let publisher_id = added.peer;
    assert!(
        sfu.wait_connected(publisher_id, Duration::from_secs(10))
            .await
    );

    let subscriber_ssrc = 0x5EED_0001;
    let mut subscriber = subscriber().await;
    let sub_added = sfu
        .handle
        .add_peer(
            subscriber.offer().await.expect("offer"),
            vec![OutgoingTrack {
                kind: MediaKind::Video,
                ssrc: subscriber_ssrc,
                rtx_ssrc: None,
                stream_id: "publisher-1".to_owned(),
                track_id: "publisher-1-camera".to_owned(),
                mime_type: "video/VP8".to_owned(),
            }],
        )
        .await
        .expect("subscriber added");
    assert!(
        sub_added
            .answer
            .contains(&format!("127.0.0.1 {sfu_port} typ host"))
    );
    let subscriber_id = sub_added.peer;
    let payload_type = sfu
        .wait_for(Duration::from_secs(5), |o| match o {
            Observed::Event(PeerEvent::Negotiated { peer, outgoing }) if *peer == subscriber_id => {
                outgoing
                    .iter()
                    .find(|t| t.ssrc == subscriber_ssrc)
                    .and_then(|t| t.codecs.iter().find(|c| c.mime_type == "video/VP8"))
                    .map(|c| c.payload_type)
            }
            _ => None,
        })
        .await
        .expect("the subscriber's track is negotiated with VP8");
    subscriber
        .apply_answer(&sub_added.answer)
        .await
        .expect("answer applies");
    assert!(
        sfu.wait_connected(subscriber_id, Duration::from_secs(10))
            .await
    );

    sfu.routes
        .send((
            publisher_id,
            Route {
                subscriber: subscriber_id,
                ssrc: subscriber_ssrc,
                payload_type,
            },
        ))
        .unwrap();

    // Both peers share the one socket.
    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.peers, 2);

    // Send distinct payloads until one arrives (the first may race the subscriber's DTLS).
    let mut received = None;
    for i in 0u32..100 {
        let payload: Vec<u8> = (0..200u32).map(|b| (b * 7 + i) as u8).collect();
        video.write_next(&payload).await.expect("rtp written");
        if let Ok(Some(packet)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.incoming().recv()).await
        {
            received = Some((packet.packet, i));
            break;
        }
    }
    let (packet, _) = received.expect("subscriber receives the publisher's RTP");
    assert_eq!(packet.header.ssrc, subscriber_ssrc);
    // Identify which payload it was and check every byte.
    let i = u32::from(packet.payload[0]);
    let expected: Vec<u8> = (0..200u32).map(|b| (b * 7 + i) as u8).collect();
    assert_eq!(
        &packet.payload[..],
        &expected[..],
        "payload bytes are identical"
    );

    // And the next one arrives too, byte for byte.
    let payload: Vec<u8> = (0..900u32).map(|b| (b ^ 0x5a) as u8).collect();
    video.write_next(&payload).await.expect("rtp written");
    let next = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let p = subscriber.incoming().recv().await.expect("channel open");
            if p.packet.payload.len() == payload.len() {
                return p.packet;
            }
        }
    })
    .await
    .expect("second packet arrives");
    assert_eq!(&next.payload[..], &payload[..]);

    publisher.close().await;
    subscriber.close().await;
}
