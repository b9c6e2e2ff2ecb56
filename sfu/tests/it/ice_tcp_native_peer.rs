//! Two native clients (`call_client::peer` with `ice_tcp_only`: no UDP socket at all) reach the
//! SFU over ICE-TCP only: the publisher's RTP arrives at the subscriber byte for byte, through
//! the shard's forwarding path in both directions over TCP (frames in from the publisher,
//! SRTP from `protect_rtp` out on the subscriber's connection).

use crate::common;

use std::time::Duration;

use call_client::peer::{Peer, RtpCodecKind};
use sfu::transport::{IceTcpClose, MediaKind, OutgoingTrack, PeerEvent};

use crate::common::ice_tcp::ice_tcp_config;
use crate::common::peers::{publisher_with, receiver_with};
use crate::common::{Observed, Route, TestSfu};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_peers_publish_and_receive_over_ice_tcp() {
    common::init_tracing();
    let mut sfu = TestSfu::start(ice_tcp_config()).await;
    let tcp_port = sfu.handle.ice_tcp_addr().expect("ICE-TCP is on").port();

    let (publisher, mut video) = publisher_with(Peer::builder().ice_tcp_only(), 0x7C9_0001).await;
    let offer = publisher.offer().await.expect("offer");
    assert!(
        !offer
            .lines()
            .any(|l| l.starts_with("a=candidate:") && l.contains(" udp ")),
        "the client offers no UDP candidate"
    );
    let publisher_id = sfu.connect(&publisher, vec![]).await;

    let subscriber_ssrc = 0x5EED_0002;
    let mut subscriber =
        receiver_with(Peer::builder().ice_tcp_only(), &[RtpCodecKind::Video]).await;
    let added = sfu
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
        added
            .answer
            .contains(&format!(" {tcp_port} typ host tcptype passive")),
        "the answer names the ICE-TCP candidate"
    );
    let subscriber_id = added.peer;
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
        .apply_answer(&added.answer)
        .await
        .expect("answer applies");
    assert!(
        sfu.wait_connected(subscriber_id, Duration::from_secs(10))
            .await,
        "the subscriber connects over TCP"
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

    let mut received = None;
    for i in 0u32..100 {
        let payload: Vec<u8> = (0..600u32).map(|b| (b * 13 + i) as u8).collect();
        video.write_next(&payload).await.expect("rtp written");
        if let Ok(Some(packet)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.incoming().recv()).await
        {
            received = Some(packet.packet);
            break;
        }
    }
    let packet = received.expect("the subscriber receives the publisher's RTP over TCP");
    assert_eq!(packet.header.ssrc, subscriber_ssrc);
    let i = u32::from(packet.payload[0]);
    let expected: Vec<u8> = (0..600u32).map(|b| (b * 13 + i) as u8).collect();
    assert_eq!(
        &packet.payload[..],
        &expected[..],
        "payload bytes are identical"
    );

    let stats = sfu.handle.stats().await.unwrap();
    assert_eq!(stats.peers, 2);
    // The `webrtc` crate may open a second connection to the same candidate: one per client
    // carries the call; a spare that proves nothing is closed at the STUN timeout.
    let timed_out = stats.ice_tcp_closed.get(IceTcpClose::StunTimeout);
    let opened = stats.ice_tcp_connections as u64 + timed_out;
    assert!((2..=4).contains(&opened), "{stats:?}");
    assert!(
        stats.ice_tcp_frames_in > 0 && stats.ice_tcp_frames_out > 0,
        "{stats:?}"
    );
    let other_closes: u64 = stats.ice_tcp_closed.iter().map(|(_, n)| n).sum::<u64>() - timed_out;
    assert_eq!(other_closes, 0, "{stats:?}");
    assert_eq!(stats.send_unvalidated_destination, 0);
}
