//! The whole node (transport shard + forwarding core + glue) with real `webrtc` clients: one
//! publisher sends audio and video, three subscribers that join with both tracks subscribed
//! receive them, and every payload byte the publisher's client encrypted-and-sent arrives
//! unchanged (the SFU rewrites RTP headers and the VP8 payload descriptor, never frame bytes),
//! decrypted in the shard's receive buffer and encrypted into buffers of its pool.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use crate::common::peers::{
    admit, all_connected, audio_video_subscriber, join, publisher, subscriptions,
};
use call_client::peer::{LocalTrack, RtpCodecKind, vp8_descriptor_len};
use sfu::node::{NodeConfig, NodeEvent, NodeHandle, TrackClass, start_node};
use sfu_forwarding::{Role, RoomPolicy};

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

async fn send_round(video: &mut LocalTrack, audio: &mut LocalTrack, i: u8) {
    let (payload, _) = video_payload(i);
    video.write_next(&payload).await.expect("video rtp written");
    audio
        .write_next(&audio_payload(i))
        .await
        .expect("audio rtp written");
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
        .await
        .expect("room created");

    // The publisher joins and starts sending; its tracks are published on their first packets.
    let (publisher, mut video) = publisher().await;
    let mut audio = publisher
        .add_audio("pub-audio", AUDIO_SSRC)
        .await
        .expect("audio track added");
    join(&node, "room-1", "alice", Role::Caller, &publisher, vec![]).await;
    let mut published: HashMap<TrackClass, String> = HashMap::new();
    for i in 0..100u8 {
        send_round(&mut video, &mut audio, i).await;
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
        let peer = audio_video_subscriber().await;
        let viewer = format!("viewer-{n}");
        let subscribe = subscriptions(published.values());
        admit(&node, "room-1", &viewer, Role::Caller, &peer, subscribe).await;
        subscribers.push(peer);
    }
    all_connected(&subscribers).await;
    assert_eq!(node.participant_count(), 4);

    // Send rounds until every subscriber got several of each, checking every byte.
    let mut got = [(0usize, 0usize); 3];
    for i in 0..=250u8 {
        send_round(&mut video, &mut audio, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (n, peer) in subscribers.iter_mut().enumerate() {
            while let Ok(received) = peer.incoming().try_recv() {
                let p = &received.packet.payload[..];
                if received.kind == RtpCodecKind::Audio {
                    assert_eq!(p, &audio_payload(p[1])[..], "audio payload identical");
                    got[n].0 += 1;
                } else {
                    let d = vp8_descriptor_len(p).expect("a whole VP8 descriptor");
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
    // Each forwarded copy was encrypted into a buffer of the shard's pool, and the buffers came
    // back after `sendmmsg`: far fewer allocated than copies sent.
    let shard = snapshot.shard.expect("the shard answered");
    let forwarded = snapshot.metrics.packets_sent.audio + snapshot.metrics.packets_sent.video;
    assert!(
        shard.send_buffers_allocated < forwarded && shard.send_buffers_free > 0,
        "pooled datagram buffers reused: {} allocated for {forwarded} copies, {} free",
        shard.send_buffers_allocated,
        shard.send_buffers_free
    );

    // A removed subscriber leaves the core; the publisher's tracks stay.
    node.remove_participant("room-1", "viewer-0", None)
        .await
        .expect("removed");
    assert_eq!(node.participant_count(), 3);
    publisher.close().await;
    for peer in &subscribers {
        peer.close().await;
    }
}
