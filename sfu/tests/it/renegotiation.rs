//! Server-initiated renegotiation: a subscriber joins with nothing to receive; when a track is
//! added for it the SFU sends an offer, the client answers, and the publisher's RTP then reaches
//! it. Removing the track renegotiates again.

use crate::common;

use std::time::Duration;

use crate::common::test_peer::TestPeer;
use crate::common::{Observed, Route, TestSfu, loopback_config};
use sfu::transport::{MediaKind, OutgoingTrack, PeerEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_offers_a_new_track_to_a_connected_subscriber() {
    common::init_tracing();
    let mut sfu = TestSfu::start(loopback_config()).await;

    let mut publisher = TestPeer::publisher().await;
    let published = sfu
        .handle
        .add_peer(publisher.offer().await, vec![])
        .await
        .unwrap();
    publisher.apply_answer(published.answer).await;
    assert!(
        sfu.wait_connected(published.peer, Duration::from_secs(10))
            .await
    );

    let mut subscriber = TestPeer::subscriber().await;
    let joined = sfu
        .handle
        .add_peer(subscriber.offer().await, vec![])
        .await
        .unwrap();
    subscriber.apply_answer(joined.answer).await;
    assert!(
        sfu.wait_connected(joined.peer, Duration::from_secs(10))
            .await
    );

    let ssrc = 0x0BAD_CAFE;
    sfu.handle
        .add_outgoing_track(
            joined.peer,
            OutgoingTrack {
                kind: MediaKind::Video,
                ssrc,
                rtx_ssrc: None,
                stream_id: "publisher".to_owned(),
                track_id: "publisher-camera".to_owned(),
                mime_type: "video/VP8".to_owned(),
            },
        )
        .await
        .unwrap();
    let offer = sfu
        .wait_for(Duration::from_secs(2), |o| match o {
            Observed::Event(PeerEvent::LocalOffer { peer, sdp }) if *peer == joined.peer => {
                Some(sdp.clone())
            }
            _ => None,
        })
        .await
        .expect("the SFU offers the new track");
    assert!(
        offer.contains(&format!("a=ssrc:{ssrc}")),
        "the offer announces the SSRC"
    );
    let answer = subscriber.answer(offer).await;
    sfu.handle.apply_answer(joined.peer, answer).await.unwrap();
    let payload_type = sfu
        .wait_for(Duration::from_secs(2), |o| match o {
            Observed::Event(PeerEvent::Negotiated { peer, outgoing }) if *peer == joined.peer => {
                outgoing
                    .iter()
                    .find(|t| t.ssrc == ssrc)
                    .and_then(|t| t.codecs.first())
                    .map(|c| c.payload_type)
            }
            _ => None,
        })
        .await
        .expect("the negotiation completes");
    sfu.routes
        .send((
            published.peer,
            Route {
                subscriber: joined.peer,
                ssrc,
                payload_type,
            },
        ))
        .unwrap();

    let payload = b"renegotiated media payload".to_vec();
    let mut got = None;
    for _ in 0..100 {
        publisher.send_rtp(&payload).await;
        if let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.rtp.recv()).await
        {
            got = Some(p);
            break;
        }
    }
    let packet = got.expect("media reaches the subscriber after renegotiation");
    assert_eq!(packet.header.ssrc, ssrc);
    assert_eq!(&packet.payload[..], &payload[..]);

    // Removing the track renegotiates again.
    sfu.handle
        .remove_outgoing_track(joined.peer, ssrc)
        .await
        .unwrap();
    let offer = sfu
        .wait_for(Duration::from_secs(2), |o| match o {
            Observed::Event(PeerEvent::LocalOffer { peer, sdp }) if *peer == joined.peer => {
                Some(sdp.clone())
            }
            _ => None,
        })
        .await
        .expect("the SFU offers the removal");
    assert!(!offer.contains(&format!("a=ssrc:{ssrc}")));
    let answer = subscriber.answer(offer).await;
    sfu.handle.apply_answer(joined.peer, answer).await.unwrap();

    publisher.close().await;
    subscriber.close().await;
}
