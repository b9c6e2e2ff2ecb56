//! A publisher whose client goes away (closes its peer connection) is cleaned up by the node by
//! itself, at once (the client's DTLS close_notify ends the peer, reason `peer_closed`): the node reports its track as `TrackUnpublished` and then the publisher as
//! `ParticipantGone`, and renegotiates with each subscriber an offer that no longer sends the
//! track (its SSRCs are gone from the SDP). Real `webrtc` clients; the whole node.

use crate::common;
use crate::common::peers::node_with_meeting;

use std::time::{Duration, Instant};

use crate::common::peers::{
    accept_answer, join, published_track, publisher, receives, subscriber, subscriptions,
};
use sfu::node::{NodeConfig, NodeEvent, SessionDescription};
use sfu::transport::TransportConfig;
use sfu_forwarding::Role;

/// The `a=ssrc:` values of an SDP.
fn ssrcs(sdp: &str) -> Vec<u32> {
    let mut out: Vec<u32> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=ssrc:"))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_gone_unpublishes_its_track_and_removes_it_from_subscribers() {
    common::init_tracing();
    let config = NodeConfig {
        transport: TransportConfig {
            // Longer than the test waits, so only the close itself can end the peer in time.
            consent_timeout: Duration::from_secs(5),
            ..TransportConfig::loopback()
        },
        ..Default::default()
    };
    let (node, mut events) = node_with_meeting(config, "room").await;

    let (publisher, mut video) = publisher().await;
    join(&node, "room", "alice", Role::Caller, &publisher, vec![]).await;
    let track = published_track(&mut events, &mut video).await;

    let mut subscriber = subscriber().await;
    let answer = node
        .add_participant(
            "room",
            "bob",
            Role::Caller,
            subscriber.offer().await.expect("offer"),
            subscriptions([&track]),
            &[],
            None,
        )
        .await
        .expect("subscriber added");
    let sent_ssrcs = ssrcs(&answer);
    assert!(!sent_ssrcs.is_empty(), "the answer sends the track");
    accept_answer(&subscriber, &answer, "bob").await;
    assert!(
        receives(&mut video, &mut subscriber).await,
        "media flows before the publisher goes"
    );

    // The publisher's client goes away.
    let gone_at = Instant::now();
    publisher.close().await;
    let mut order = Vec::new();
    let mut offer = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while order.len() < 2 || offer.is_none() {
        let Ok(Ok(e)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            break;
        };
        match e {
            NodeEvent::TrackUnpublished {
                room,
                publisher,
                track: t,
            } => {
                assert_eq!((room.as_str(), publisher.as_str()), ("room", "alice"));
                assert_eq!(t, track);
                order.push("track_unpublished");
            }
            NodeEvent::ParticipantGone {
                room,
                device,
                reason,
                ..
            } => {
                assert_eq!((room.as_str(), device.as_str()), ("room", "alice"));
                // The client's close sends a DTLS close_notify: noticed at once, not by
                // consent expiry.
                assert_eq!(reason, "peer_closed");
                order.push("participant_gone");
            }
            NodeEvent::Offer { device, sdp, .. } if device == "bob" => offer = Some(sdp),
            _ => {}
        }
    }
    assert_eq!(
        order,
        ["track_unpublished", "participant_gone"],
        "both events, the track first"
    );
    assert!(
        gone_at.elapsed() < Duration::from_secs(2),
        "noticed well before the consent timeout: {:?}",
        gone_at.elapsed()
    );
    assert_eq!(node.participant_count(), 1);

    // The subscriber is offered a session without the track, and accepts it.
    let offer = offer.expect("the subscriber is offered the removal");
    for ssrc in &sent_ssrcs {
        assert!(!ssrcs(&offer).contains(ssrc), "SSRC {ssrc} no longer sent");
    }
    let answer = subscriber.answer(&offer).await.expect("answer");
    node.renegotiate("room", "bob", SessionDescription::Answer(answer), &[], None)
        .await
        .expect("answer applied");
    // The track id is no longer subscribable.
    let refused = node
        .set_subscriptions("room", "bob", subscriptions([&track]), None)
        .await;
    assert!(refused.is_err(), "the unpublished track is unknown");
    subscriber.close().await;
}
