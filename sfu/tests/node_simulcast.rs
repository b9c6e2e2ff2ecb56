//! Simulcast through the whole node with real `webrtc` clients: a publisher sends one VP8 track
//! as three rid layers (announced highest first, `f;h;q`, so the node's ordering by name is
//! what puts `q` lowest), a subscriber capped at layer 0 receives only the `q` layer, and
//! raising the cap to 2 and lowering it to 1 moves it to `f` and then `h`: each switch starts at
//! a keyframe of the new layer, and the subscriber's SSRC and sequence numbers run on without a
//! gap or a repeat across the switches.

mod common;

use std::time::Duration;

use common::test_peer::TestPeer;
use rtc::peer_connection::state::RTCPeerConnectionState;
use sfu::node::{LayerPrefs, NodeConfig, NodeEvent, SubscriptionRequest, TrackClass, start_node};
use sfu_forwarding::{Role, RoomPolicy};

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// The rids as the publisher announces them (highest first) and their quality rank.
const RIDS: [&str; 3] = ["f", "h", "q"];
const RANK: [u8; 3] = [2, 1, 0];

/// The `a=extmap` id of `uri` and the first video section's mid in the client's offer.
fn offer_facts(sdp: &str) -> ((u8, u8), String) {
    let id = |uri: &str| {
        sdp.lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=extmap:"))
            .find(|l| l.ends_with(uri))
            .and_then(|l| l.split(['/', ' ']).next())
            .and_then(|id| id.parse::<u8>().ok())
            .unwrap_or_else(|| panic!("offer maps {uri}"))
    };
    let video = sdp.split("m=video").nth(1).expect("offer has video");
    let mid = video
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .expect("video section has a mid")
        .to_owned();
    ((id(MID_URI), id(RID_URI)), mid)
}

/// A VP8 payload for frame `frame` of the layer ranked `rank`: descriptor (S = 1, PID 0,
/// 15-bit picture id), then the frame: tag (P = 0 for keyframes), rank, frame number, filler.
fn payload(rank: u8, frame: u16, keyframe: bool) -> Vec<u8> {
    let picture_id = 0x8000 | (frame & 0x7fff);
    let mut p = vec![0x90, 0x80, (picture_id >> 8) as u8, picture_id as u8];
    p.extend_from_slice(&[if keyframe { 0x10 } else { 0x11 }, 0x02, 0x00, 0x9d, rank]);
    p.extend_from_slice(&frame.to_be_bytes());
    p.extend((0..100u32 * (u32::from(rank) + 1)).map(|b| (b as u8) ^ rank));
    p
}

/// Offset of the VP8 frame after the payload descriptor (RFC 7741 §4.2), read independently of
/// the SFU's parser.
fn frame_of(p: &[u8]) -> &[u8] {
    let mut len = 1;
    if p[0] & 0x80 != 0 {
        let x = p[1];
        len += 1;
        if x & 0x80 != 0 {
            len += if p[len] & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            len += 1;
        }
        if x & 0x30 != 0 {
            len += 1;
        }
    }
    &p[len..]
}

/// What the subscriber saw of one received packet.
#[derive(Debug, Clone, Copy)]
struct Seen {
    ssrc: u32,
    seq: u16,
    rank: u8,
    keyframe: bool,
}

/// The publisher and its frame counter: one frame on every layer per round, a keyframe on
/// every layer each 10th frame.
struct Source {
    peer: TestPeer,
    ext: (u8, u8),
    mid: String,
    frame: u16,
}

impl Source {
    async fn send_frame(&mut self) {
        self.frame += 1;
        for (index, rank) in RANK.iter().enumerate() {
            let p = payload(*rank, self.frame, self.frame % 10 == 1);
            self.peer
                .send_layer(index, self.ext, &self.mid, u32::from(self.frame) * 3000, &p)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Sends frames until `enough` says the packets seen so far suffice (at most 160 frames),
/// recording and checking what the subscriber receives. Returns whether it sufficed.
async fn run(
    source: &mut Source,
    subscriber: &mut TestPeer,
    seen: &mut Vec<Seen>,
    enough: impl Fn(&[Seen]) -> bool,
) -> bool {
    for _ in 0..160 {
        source.send_frame().await;
        while let Ok(packet) = subscriber.rtp.try_recv() {
            let f = frame_of(&packet.payload);
            let rank = f[4];
            let number = u16::from_be_bytes([f[5], f[6]]);
            let keyframe = f[0] & 1 == 0;
            assert_eq!(
                f,
                frame_of(&payload(rank, number, keyframe)),
                "frame bytes unchanged"
            );
            seen.push(Seen {
                ssrc: packet.header.ssrc,
                seq: packet.header.sequence_number,
                rank,
                keyframe,
            });
        }
        if enough(seen) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_gets_the_capped_simulcast_layer_and_switches_at_keyframes_continuously() {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let mut events = node.events();
    node.create_room("room", RoomPolicy::meeting())
        .expect("room created");

    let publisher = TestPeer::simulcast_publisher(&RIDS).await;
    let offer = publisher.offer().await;
    let (ext, mid) = offer_facts(&offer);
    let answer = node
        .add_participant("room", "alice", Role::Caller, offer, vec![], &[])
        .await
        .expect("publisher added");
    publisher.apply_answer(answer).await;
    assert!(
        publisher
            .wait_state(RTCPeerConnectionState::Connected, Duration::from_secs(10))
            .await
    );

    let mut source = Source {
        peer: publisher,
        ext,
        mid,
        frame: 0,
    };
    let mut track = None;
    for _ in 0..100 {
        source.send_frame().await;
        while let Ok(e) = events.try_recv() {
            if let NodeEvent::TrackPublished { track: t, kind, .. } = e {
                assert_eq!(kind, TrackClass::Camera);
                assert!(track.replace(t).is_none(), "one track for all three rids");
            }
        }
        if track.is_some() {
            break;
        }
    }
    let track = track.expect("simulcast track published");

    let mut subscriber = TestPeer::subscriber().await;
    let capped = |max_layer| {
        vec![SubscriptionRequest {
            track: track.clone(),
            prefs: LayerPrefs {
                max_layer: Some(max_layer),
                ..Default::default()
            },
        }]
    };
    let answer = node
        .add_participant(
            "room",
            "bob",
            Role::Caller,
            subscriber.offer().await,
            capped(0),
            &[],
        )
        .await
        .expect("subscriber added");
    subscriber.apply_answer(answer).await;
    assert!(
        subscriber
            .wait_state(RTCPeerConnectionState::Connected, Duration::from_secs(10))
            .await
    );

    let mut seen: Vec<Seen> = Vec::new();
    // Capped at 0: only the lowest layer, `q`.
    let ok = run(&mut source, &mut subscriber, &mut seen, |s| s.len() >= 20).await;
    assert!(
        ok,
        "subscriber receives the capped layer: {} packets",
        seen.len()
    );
    assert!(
        seen.iter().all(|s| s.rank == 0),
        "only layer 0 while capped at 0"
    );
    assert!(seen[0].keyframe, "the stream starts at a keyframe");

    // Raise the cap to 2: it moves to `f`.
    node.set_subscriptions("room", "bob", capped(2))
        .await
        .expect("cap raised");
    let raised = seen.len();
    let ok = run(&mut source, &mut subscriber, &mut seen, |s| {
        s[raised..].iter().filter(|s| s.rank == 2).count() >= 15
    })
    .await;
    assert!(ok, "switched up to layer 2");

    // Lower it to 1: it moves to `h`.
    node.set_subscriptions("room", "bob", capped(1))
        .await
        .expect("cap lowered");
    let lowered = seen.len();
    let ok = run(&mut source, &mut subscriber, &mut seen, |s| {
        s[lowered..].iter().filter(|s| s.rank == 1).count() >= 15
    })
    .await;
    assert!(ok, "switched down to layer 1");

    // Every change of layer happens at a keyframe of the new layer; after the raise the layers
    // only climb (the core may step through layer 1 while layer 2's rate is being measured)
    // and stay at most 2; after the cap is lowered they only fall and end at 1.
    for pair in seen.windows(2) {
        if pair[1].rank != pair[0].rank {
            assert!(
                pair[1].keyframe,
                "switch to layer {} at a keyframe",
                pair[1].rank
            );
        }
    }
    let climb = &seen[raised..lowered];
    assert!(
        climb.windows(2).all(|w| w[1].rank >= w[0].rank),
        "only up after the raise"
    );
    let fall = &seen[lowered..];
    assert!(
        fall.windows(2).all(|w| w[1].rank <= w[0].rank),
        "only down after lowering"
    );
    assert_eq!(fall.last().map(|s| s.rank), Some(1), "ends on layer 1");
    assert!(fall.iter().any(|s| s.rank == 1) && !fall.iter().any(|s| s.rank == 0));

    // One SSRC, sequence numbers consecutive across both switches.
    assert!(seen.iter().all(|s| s.ssrc == seen[0].ssrc), "one SSRC");
    for pair in seen.windows(2) {
        assert_eq!(
            pair[1].seq,
            pair[0].seq.wrapping_add(1),
            "sequence continuous at {pair:?}"
        );
    }

    let snapshot = node.snapshot().await;
    assert!(snapshot.metrics.layer_switches_up >= 1);
    assert!(snapshot.metrics.layer_switches_down >= 1);
    assert_eq!(
        snapshot.metrics.dropped.unknown_ssrc, 0,
        "every rid's packets belong to the track"
    );
    source.peer.close().await;
    subscriber.close().await;
}
