//! Server-initiated renegotiation: a subscriber joins with nothing to receive; when a track is
//! added for it the SFU sends an offer, the client answers, and the publisher's RTP then reaches
//! it. Removing the track renegotiates again.

use crate::common;

use std::time::Duration;

use crate::common::peers::{publisher, subscriber};
use crate::common::{Observed, Route, TestSfu, loopback_config};
use sfu::transport::{MediaKind, OutgoingTrack, PeerEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_offers_a_new_track_to_a_connected_subscriber() {
    common::init_tracing();
    let mut sfu = TestSfu::start(loopback_config()).await;

    let (publisher, mut video) = publisher().await;
    let published = sfu.connect(&publisher, vec![]).await;

    let mut subscriber = subscriber().await;
    let joined = sfu.connect(&subscriber, vec![]).await;

    let ssrc = 0x0BAD_CAFE;
    sfu.handle
        .add_outgoing_track(
            joined,
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
            Observed::Event(PeerEvent::LocalOffer { peer, sdp }) if *peer == joined => {
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
    let answer = subscriber.answer(&offer).await.expect("answer");
    sfu.handle.apply_answer(joined, answer).await.unwrap();
    let payload_type = sfu
        .wait_for(Duration::from_secs(2), |o| match o {
            Observed::Event(PeerEvent::Negotiated { peer, outgoing }) if *peer == joined => {
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
            published,
            Route {
                subscriber: joined,
                ssrc,
                payload_type,
            },
        ))
        .unwrap();

    let payload = b"renegotiated media payload".to_vec();
    let mut got = None;
    for _ in 0..100 {
        video.write_next(&payload).await.expect("rtp written");
        if let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.incoming().recv()).await
        {
            got = Some(p.packet);
            break;
        }
    }
    let packet = got.expect("media reaches the subscriber after renegotiation");
    assert_eq!(packet.header.ssrc, ssrc);
    assert_eq!(&packet.payload[..], &payload[..]);

    // Removing the track renegotiates again.
    sfu.handle
        .remove_outgoing_track(joined, ssrc)
        .await
        .unwrap();
    let offer = sfu
        .wait_for(Duration::from_secs(2), |o| match o {
            Observed::Event(PeerEvent::LocalOffer { peer, sdp }) if *peer == joined => {
                Some(sdp.clone())
            }
            _ => None,
        })
        .await
        .expect("the SFU offers the removal");
    assert!(!offer.contains(&format!("a=ssrc:{ssrc}")));
    let answer = subscriber.answer(&offer).await.expect("answer");
    sfu.handle.apply_answer(joined, answer).await.unwrap();

    publisher.close().await;
    subscriber.close().await;
}
