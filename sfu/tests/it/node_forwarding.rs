//! The whole node (transport shard + forwarding core + glue) with real `webrtc` clients: one
//! publisher sends audio and video, three subscribers that join with both tracks subscribed
//! receive them, and every payload byte the publisher's client encrypted-and-sent arrives
//! unchanged (the SFU rewrites RTP headers and the VP8 payload descriptor, never frame bytes).

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use crate::common::test_peer::{TestPeer, vp8_descriptor_len};
use rtc::peer_connection::state::RTCPeerConnectionState;
use sfu::node::{NodeConfig, NodeEvent, NodeHandle, SubscriptionRequest, TrackClass, start_node};
use sfu_forwarding::{Role, RoomPolicy};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

const OPUS_PT: u8 = 111;
const AUDIO_SSRC: u32 = 0x2222_0001;
const AUDIO_MARK: u8 = 0xA7;

/// A VP8 payload: descriptor with a 15-bit picture id (X, S, I, M set), then a keyframe's
/// "encrypted" frame: frame tag with P = 0, the index, and index-dependent bytes.
fn video_payload(i: u8) -> (Vec<u8>, Vec<u8>) {
    let picture_id = 0x8000u16 | u16::from(i);
    let mut frame = vec![0x10, 0x02, 0x00, 0x9d, i];
    frame.extend((0..400u32).map(|b| (b.wrapping_mul(31) ^ u32::from(i)) as u8));
    let mut payload = vec![0x90, 0x80, (picture_id >> 8) as u8, picture_id as u8];
    payload.extend_from_slice(&frame);
    (payload, frame)
}

fn audio_payload(i: u8) -> Vec<u8> {
    let mut p = vec![AUDIO_MARK, i];
    p.extend((0..120u32).map(|b| (b.wrapping_mul(13) + u32::from(i)) as u8));
    p
}

async fn send_round(
    publisher: &mut TestPeer,
    audio: &TrackLocalStaticRTP,
    i: u8,
    audio_seq: &mut u16,
) {
    let (payload, _) = video_payload(i);
    publisher.send_rtp(&payload).await;
    *audio_seq = audio_seq.wrapping_add(1);
    let packet = rtc::rtp::Packet {
        header: rtc::rtp::Header {
            version: 2,
            payload_type: OPUS_PT,
            sequence_number: *audio_seq,
            timestamp: u32::from(*audio_seq) * 960,
            ssrc: AUDIO_SSRC,
            marker: false,
            ..Default::default()
        },
        payload: bytes::Bytes::from(audio_payload(i)),
    };
    audio.write_rtp(packet).await.expect("audio rtp written");
}

async fn start() -> NodeHandle {
    start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_three_subscribers_receive_identical_audio_and_video_payloads() {
    common::init_tracing();
    let node = start().await;
    let mut events = node.events();
    node.create_room("room-1", RoomPolicy::meeting())
        .expect("room created");

    // The publisher joins and starts sending; its tracks are published on their first packets.
    let mut publisher = TestPeer::publisher().await;
    let audio = publisher.add_audio_track(AUDIO_SSRC).await;
    let answer = node
        .add_participant(
            "room-1",
            "alice",
            Role::Caller,
            publisher.offer().await,
            vec![],
            &[],
        )
        .await
        .expect("publisher added");
    publisher.apply_answer(answer).await;
    assert!(
        publisher
            .wait_state(RTCPeerConnectionState::Connected, Duration::from_secs(10))
            .await
    );
    let mut audio_seq = 0;
    let mut published: HashMap<TrackClass, String> = HashMap::new();
    for i in 0..100u8 {
        send_round(&mut publisher, &audio, i, &mut audio_seq).await;
        while let Ok(e) = events.try_recv() {
            if let NodeEvent::TrackPublished {
                room,
                publisher,
                track,
                kind,
                ..
            } = e
            {
                assert_eq!((room.as_str(), publisher.as_str()), ("room-1", "alice"));
                published.insert(kind, track);
            }
        }
        if published.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        published.contains_key(&TrackClass::Audio) && published.contains_key(&TrackClass::Camera),
        "audio and camera published: {published:?}"
    );

    // Three subscribers join with both tracks in their first answer.
    let mut subscribers = Vec::new();
    for n in 0..3 {
        let peer = TestPeer::audio_video_subscriber().await;
        let answer = node
            .add_participant(
                "room-1",
                &format!("viewer-{n}"),
                Role::Caller,
                peer.offer().await,
                published
                    .values()
                    .map(|t| SubscriptionRequest {
                        track: t.clone(),
                        prefs: Default::default(),
                    })
                    .collect(),
                &[],
            )
            .await
            .expect("subscriber added");
        peer.apply_answer(answer).await;
        subscribers.push(peer);
    }
    for peer in &subscribers {
        assert!(
            peer.wait_state(RTCPeerConnectionState::Connected, Duration::from_secs(10))
                .await
        );
    }
    assert_eq!(node.participant_count(), 4);

    // Send rounds until every subscriber got several of each, checking every byte.
    let mut got = [(0usize, 0usize); 3];
    for i in 0..=250u8 {
        send_round(&mut publisher, &audio, i, &mut audio_seq).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (n, peer) in subscribers.iter_mut().enumerate() {
            while let Ok(packet) = peer.rtp.try_recv() {
                let p = &packet.payload[..];
                if p.first() == Some(&AUDIO_MARK) && p.len() == audio_payload(0).len() {
                    assert_eq!(p, &audio_payload(p[1])[..], "audio payload identical");
                    got[n].0 += 1;
                } else {
                    let d = vp8_descriptor_len(p);
                    assert_eq!(p[0] & 0x10, 0x10, "start of partition kept");
                    let frame = &p[d..];
                    let (_, expected) = video_payload(frame[4]);
                    assert_eq!(frame, &expected[..], "video frame bytes identical");
                    got[n].1 += 1;
                }
            }
        }
        if got.iter().all(|(a, v)| *a >= 5 && *v >= 5) {
            break;
        }
    }
    assert!(
        got.iter().all(|(a, v)| *a >= 5 && *v >= 5),
        "every subscriber receives audio and video: {got:?}"
    );

    let snapshot = node.snapshot().await;
    assert!(snapshot.metrics.packets_sent.audio >= 15);
    assert!(snapshot.metrics.packets_sent.video >= 15);
    assert_eq!(snapshot.gauges.participants, 4);

    // A removed subscriber leaves the core; the publisher's tracks stay.
    node.remove_participant("room-1", "viewer-0")
        .await
        .expect("removed");
    assert_eq!(node.participant_count(), 3);
    publisher.close().await;
    for peer in &subscribers {
        peer.close().await;
    }
}
