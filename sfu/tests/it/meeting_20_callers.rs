//! A 20-caller meeting through the whole node with real `webrtc` clients on loopback: every
//! caller publishes a VP8 camera track and subscribes to the 19 others (the node renegotiates:
//! each caller answers the node's offers), and every caller receives every other caller's
//! frames with the frame bytes exactly as sent (the SFU rewrites only RTP headers and the VP8
//! payload descriptor).

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use crate::common::peers::{admit, all_connected, publisher};
use call_client::peer::vp8_frame_bytes;
use sfu::node::{NodeConfig, NodeEvent, SessionDescription, SubscriptionRequest, start_node};
use sfu_forwarding::{Role, RoomPolicy};

const CALLERS: usize = 20;
/// Frames each caller must receive from each other caller.
const WANTED: usize = 10;

/// The VP8 frame (after the payload descriptor) caller `c` sends in round `r`: a keyframe tag,
/// the caller, the round, and bytes derived from both.
fn frame(c: u8, r: u8) -> Vec<u8> {
    let mut f = vec![0x10, 0x02, 0x00, 0x9d, c, r];
    f.extend((0..60u8).map(|i| i.wrapping_mul(7) ^ c ^ r.rotate_left(3)));
    f
}

/// The RTP payload: VP8 descriptor (S = 1, PID 0, 15-bit picture id) and the frame.
fn payload(c: u8, r: u8) -> Vec<u8> {
    let mut p = vec![0x90, 0x80, 0x80, r];
    p.extend(frame(c, r));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_callers_each_receive_every_other_callers_frames_unchanged() {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let mut events = node.events();
    node.create_room("meeting", RoomPolicy::meeting())
        .await
        .expect("room created");

    // Everyone joins as a publisher.
    let mut callers = Vec::with_capacity(CALLERS);
    for c in 0..CALLERS {
        let (peer, video) = publisher().await;
        admit(
            &node,
            "meeting",
            &format!("caller-{c}"),
            Role::Caller,
            &peer,
            vec![],
        )
        .await;
        callers.push((peer, video));
    }
    all_connected(callers.iter().map(|(peer, _)| peer)).await;

    // Send until every caller's track is published.
    let mut tracks: HashMap<String, String> = HashMap::new();
    let mut round: u8 = 0;
    for _ in 0..100 {
        round = round.wrapping_add(1);
        for (c, (_, video)) in callers.iter_mut().enumerate() {
            video
                .write_next(&payload(c as u8, round))
                .await
                .expect("rtp written");
        }
        while let Ok(e) = events.try_recv() {
            if let NodeEvent::TrackPublished {
                publisher, track, ..
            } = e
            {
                tracks.insert(publisher, track);
            }
        }
        if tracks.len() == CALLERS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tracks.len(), CALLERS, "every caller's track published");

    // Everyone subscribes to everyone else; the node offers the new tracks.
    for c in 0..CALLERS {
        let device = format!("caller-{c}");
        let others = tracks
            .iter()
            .filter(|(publisher, _)| **publisher != device)
            .map(|(_, track)| SubscriptionRequest {
                track: track.clone(),
                prefs: Default::default(),
            })
            .collect();
        node.set_subscriptions("meeting", &device, others, None)
            .await
            .expect("subscriptions set");
    }

    // Send, answer the node's offers, and count what arrives until every pair has enough.
    let mut got = vec![[0usize; CALLERS]; CALLERS];
    let mut offers_answered = 0;
    let complete = |got: &[[usize; CALLERS]]| {
        got.iter()
            .enumerate()
            .all(|(s, row)| row.iter().enumerate().all(|(p, n)| p == s || *n >= WANTED))
    };
    for _ in 0..600 {
        while let Ok(e) = events.try_recv() {
            if let NodeEvent::Offer { device, sdp, .. } = e {
                let c: usize = device
                    .strip_prefix("caller-")
                    .and_then(|n| n.parse().ok())
                    .expect("offer for a caller");
                let answer = callers[c].0.answer(&sdp).await.expect("answer");
                node.renegotiate(
                    "meeting",
                    &device,
                    SessionDescription::Answer(answer),
                    &[],
                    None,
                )
                .await
                .expect("answer applied");
                offers_answered += 1;
            }
        }
        round = round.wrapping_add(1);
        for (c, (_, video)) in callers.iter_mut().enumerate() {
            video
                .write_next(&payload(c as u8, round))
                .await
                .expect("rtp written");
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        for (s, (peer, _)) in callers.iter_mut().enumerate() {
            while let Ok(received) = peer.incoming().try_recv() {
                let f = vp8_frame_bytes(&received.packet.payload);
                let (c, r) = (f[4], f[5]);
                assert_eq!(f, &frame(c, r)[..], "frame bytes unchanged");
                assert_ne!(usize::from(c), s, "no caller receives itself");
                got[s][usize::from(c)] += 1;
            }
        }
        if complete(&got) {
            break;
        }
    }
    let missing: Vec<(usize, usize)> = (0..CALLERS)
        .flat_map(|s| (0..CALLERS).map(move |p| (s, p)))
        .filter(|(s, p)| s != p && got[*s][*p] < WANTED)
        .collect();
    assert!(
        missing.is_empty(),
        "every caller receives every other caller ({} offers answered); missing (subscriber, \
         publisher): {missing:?}",
        offers_answered
    );
    let snapshot = node.snapshot().await;
    assert_eq!(snapshot.gauges.participants, CALLERS as u64);
    assert!(snapshot.metrics.packets_sent.video >= (CALLERS * (CALLERS - 1) * WANTED) as u64);
    for (peer, _) in &callers {
        peer.close().await;
    }
}
