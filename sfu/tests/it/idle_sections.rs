//! Media sections a client offered to receive on, for which the SFU has nothing to send, are
//! answered `inactive` (not `sendonly` without a track, which leaves a standards-following
//! client with one idle receiver per section); a subscription reuses such a section before a
//! section is added, and so does the next subscription after an unsubscribe. Every offer the
//! SFU makes or answers after a join is counted by reason (`sfu_renegotiations_total`).

use crate::common;

use std::time::Duration;

use crate::common::peers;
use call_client::peer::{LocalTrack, Peer};
use sfu::node::{
    NodeConfig, NodeEvent, NodeHandle, Renegotiations, SessionDescription, SubscriptionRequest,
    start_node,
};
use sfu::ops::SfuMetrics;
use sfu_forwarding::{Role, RoomPolicy};
use tokio::sync::broadcast;

/// The `m=` sections of `sdp`: (kind, direction).
fn sections(sdp: &str) -> Vec<(String, String)> {
    sdp.split("\nm=")
        .skip(1)
        .map(|s| {
            let kind = s.split(' ').next().unwrap_or_default().to_owned();
            let direction = s
                .lines()
                .map(str::trim_end)
                .find_map(|l| match l {
                    "a=sendonly" | "a=recvonly" | "a=sendrecv" | "a=inactive" => {
                        Some(l.trim_start_matches("a="))
                    }
                    _ => None,
                })
                .unwrap_or("sendrecv")
                .to_owned();
            (kind, direction)
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, d)| ((*k).to_owned(), (*d).to_owned()))
        .collect()
}

/// A node with a broadcast room whose presenter publishes a VP8 camera; returns the camera's
/// track id and the publisher (kept alive by the caller).
async fn room_with_camera() -> (
    NodeHandle,
    broadcast::Receiver<NodeEvent>,
    String,
    (Peer, LocalTrack),
) {
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts");
    let mut events = node.events();
    node.create_room("show", RoomPolicy::broadcast())
        .await
        .expect("room created");
    let (publisher, mut video) = peers::publisher().await;
    let answer = node
        .add_participant(
            "show",
            "presenter",
            Role::Presenter,
            publisher.offer().await.expect("offer"),
            vec![],
            &[],
            None,
        )
        .await
        .expect("publisher joins");
    publisher
        .apply_answer(&answer)
        .await
        .expect("answer applies");
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("publisher connects");
    for i in 0..200u32 {
        let mut payload = vec![0x90, 0x80, 0x80, i as u8, 0x10, 0x02, 0x00, 0x9d];
        payload.extend([0u8; 100]);
        video.write_next(&payload).await.expect("rtp written");
        while let Ok(event) = events.try_recv() {
            if let NodeEvent::TrackPublished { track, .. } = event {
                return (node, events, track, (publisher, video));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the camera was never published");
}

async fn next_offer(events: &mut broadcast::Receiver<NodeEvent>, device: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the node offers")
            .expect("event stream open");
        if let NodeEvent::Offer { device: d, sdp, .. } = event
            && d == device
        {
            return sdp;
        }
    }
}

/// A connected `webrtc` viewer (one audio, one video `recvonly` section), no subscriptions.
async fn join_viewer(node: &NodeHandle) -> Peer {
    let viewer = peers::audio_video_subscriber().await;
    let answer = node
        .add_participant(
            "show",
            "viewer",
            Role::Viewer,
            viewer.offer().await.expect("offer"),
            vec![],
            &[],
            None,
        )
        .await
        .expect("viewer joins");
    viewer.apply_answer(&answer).await.expect("answer applies");
    viewer
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("viewer connects");
    viewer
}

/// Subscribes the viewer to `tracks`, answers the node's offer and returns it.
async fn subscribe(
    node: &NodeHandle,
    events: &mut broadcast::Receiver<NodeEvent>,
    viewer: &Peer,
    tracks: &[&str],
) -> String {
    node.set_subscriptions(
        "show",
        "viewer",
        tracks
            .iter()
            .map(|t| SubscriptionRequest {
                track: (*t).to_owned(),
                prefs: Default::default(),
            })
            .collect(),
        None,
    )
    .await
    .expect("subscriptions set");
    let offer = next_offer(events, "viewer").await;
    let answer = viewer.answer(&offer).await.expect("answer");
    node.renegotiate(
        "show",
        "viewer",
        SessionDescription::Answer(answer),
        &[],
        None,
    )
    .await
    .expect("the viewer's answer applies");
    offer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recvonly_offer_sections_without_track_are_inactive() {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts");
    node.create_room("show", RoomPolicy::broadcast())
        .await
        .expect("room created");
    let viewer = peers::audio_video_subscriber().await;
    let offer = viewer.offer().await.expect("offer");
    assert_eq!(
        sections(&offer),
        pairs(&[("video", "recvonly"), ("audio", "recvonly")])
    );
    let answer = node
        .add_participant("show", "viewer", Role::Viewer, offer, vec![], &[], None)
        .await
        .expect("viewer joins");
    assert_eq!(
        sections(&answer),
        pairs(&[("video", "inactive"), ("audio", "inactive")]),
        "no sendonly section without a track: {answer}"
    );
    assert!(!answer.contains("a=msid:"), "no track announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_reuses_inactive_section() {
    common::init_tracing();
    let (node, mut events, camera, _publisher) = room_with_camera().await;
    let viewer = join_viewer(&node).await;

    let offer = subscribe(&node, &mut events, &viewer, &[&camera]).await;
    assert_eq!(
        sections(&offer),
        pairs(&[("video", "sendonly"), ("audio", "inactive")]),
        "the subscription took the viewer's video section"
    );
    assert!(offer.contains("a=ssrc-group:FID "), "RTX announced");

    // Unsubscribed: the section goes idle, and the next subscription takes it again.
    let offer = subscribe(&node, &mut events, &viewer, &[]).await;
    assert_eq!(
        sections(&offer),
        pairs(&[("video", "inactive"), ("audio", "inactive")])
    );
    let offer = subscribe(&node, &mut events, &viewer, &[&camera]).await;
    assert_eq!(
        sections(&offer),
        pairs(&[("video", "sendonly"), ("audio", "inactive")]),
        "resubscribing reuses the freed section"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renegotiations_counted_by_reason() {
    common::init_tracing();
    let (node, mut events, camera, _publisher) = room_with_camera().await;
    let viewer = join_viewer(&node).await;
    assert_eq!(
        node.snapshot().await.renegotiations,
        Renegotiations::default(),
        "joins are not renegotiations"
    );

    subscribe(&node, &mut events, &viewer, &[&camera]).await;
    subscribe(&node, &mut events, &viewer, &[]).await;
    // The viewer's own offer: nothing new sent, same ICE credentials.
    let answer = node
        .renegotiate(
            "show",
            "viewer",
            SessionDescription::Offer(viewer.offer().await.expect("offer")),
            &[],
            None,
        )
        .await
        .expect("client offer answered")
        .expect("an answer");
    viewer.apply_answer(&answer).await.expect("answer applies");

    let snapshot = node.snapshot().await;
    assert_eq!(
        snapshot.renegotiations,
        Renegotiations {
            subscribe: 1,
            unsubscribe: 1,
            client_offer: 1,
            ..Default::default()
        }
    );
    let metrics = SfuMetrics::new().expect("registry");
    metrics.update(&snapshot);
    let text = metrics.render();
    for line in [
        "sfu_renegotiations_total{reason=\"subscribe\"} 1",
        "sfu_renegotiations_total{reason=\"unsubscribe\"} 1",
        "sfu_renegotiations_total{reason=\"client_offer\"} 1",
        "sfu_renegotiations_total{reason=\"ice_restart\"} 0",
    ] {
        assert!(text.contains(line), "{line} in /metrics:\n{text}");
    }
}
