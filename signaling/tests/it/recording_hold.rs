//! Strict recording through the real service and its embedded SFU, with native WebRTC peers
//! (loopback only): a caller in a recorded room hears `recording_ready` for its tracks only once
//! the recorder's subscription to them is live, that is after the service applied the
//! recorder's answer at the media node; with no recorder in the room it hears none. Its tracks
//! exist at the SFU before any media (one padding-only packet per track), and once ready the
//! recorder receives the first frame the caller sends.

use crate::common;

use std::time::Duration;

use call_client::peer::{Incoming, Peer, RtpCodecKind};
use common::{Client, TestServer, config, token};
use e2ee_frames::identity::{DeviceId, DeviceKeys};
use serde_json::{Value, json};
use signaling::policy::Role;

use crate::media_call::{Device, publish};

const ROOM: &str = "held";
const RECORDER: &str = "rec-hold";

/// Reads `ws` until `n` `track_published` of `publisher` came; returns their ids.
async fn published_tracks(ws: &mut Client, publisher: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let m = ws.recv_type("track_published").await;
        if m["track"]["publisher"] == publisher {
            ids.push(m["track"]["id"].as_str().expect("track id").to_owned());
        }
    }
    ids.sort();
    ids
}

/// Fails when a `recording_ready` reaches `ws` within `d` (other messages are skipped).
async fn no_recording_ready(ws: &mut Client, d: Duration, when: &str) {
    let deadline = tokio::time::Instant::now() + d;
    while let Ok(m) = tokio::time::timeout_at(deadline, ws.recv()).await {
        assert_ne!(m["type"], "recording_ready", "{when}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_media_is_held_until_the_recorder_receives_it() {
    let s = TestServer::start(config()).await;
    let rec_keys = DeviceKeys::generate(DeviceId::new(RECORDER).expect("id"), &mut rand::rng());
    s.create_room(json!({"name": ROOM, "kind": "meeting", "recording": common::recording_policy(ROOM, RECORDER, &rec_keys)}))
        .await;

    // The caller joins first, alone with no recorder: its tracks exist at the SFU (a
    // padding-only packet each, no media), and no `recording_ready` comes.
    let mut alice = Device::join(&s, ROOM, "alice-dev").await;
    assert!(alice.joined["recording"].is_object(), "{}", alice.joined);
    let mut media = publish(&mut alice, 0x0a0a_0a0a, 30).await;
    media.audio.write_padding(0, 0).await.expect("audio probe");
    media.camera.write_padding(0, 0).await.expect("video probe");
    let own = published_tracks(&mut alice.ws, "alice-dev", 2).await;
    no_recording_ready(
        &mut alice.ws,
        Duration::from_secs(1),
        "no recorder in the room",
    )
    .await;

    // The recorder joins (receive-only), connects and subscribes to the caller's two tracks.
    let bundle: Value = serde_json::from_str(&rec_keys.bundle().to_json()).expect("bundle");
    let mut rec = s.connect().await;
    rec.send(
        &json!({"type": "join", "v": 1, "room": ROOM, "device": bundle,
        "token": token(ROOM, "archiver", Role::Recorder), "name": "archiver"}),
    )
    .await;
    let joined = rec.recv_type("joined").await;
    let mut listed: Vec<String> = joined["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, own, "the recorder sees the held tracks: {joined}");
    let mut rec_peer = Peer::builder().build().await.expect("recorder peer");
    let mut incoming = rec_peer.take_incoming();
    rec_peer
        .add_recvonly(RtpCodecKind::Audio)
        .await
        .expect("audio section");
    rec_peer
        .add_recvonly(RtpCodecKind::Video)
        .await
        .expect("video section");
    let offer = rec_peer.offer().await.expect("recorder offer");
    rec.send(&json!({"type": "offer", "sdp": offer})).await;
    let answer = rec.recv_type("answer").await;
    rec_peer
        .apply_answer(answer["sdp"].as_str().expect("sdp"))
        .await
        .expect("answer applies");
    rec_peer
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("the recorder connects");
    let subs: Vec<Value> = own.iter().map(|t| json!({"track": t})).collect();
    rec.send(&json!({"type": "subscribe", "subscriptions": subs}))
        .await;
    let sfu_offer = rec.recv_type("offer").await;
    // Subscribed but not negotiated: the subscription is pending at the SFU, nothing is
    // forwarded to the recorder yet, so the caller still holds.
    no_recording_ready(
        &mut alice.ws,
        Duration::from_millis(500),
        "before the recorder answered",
    )
    .await;
    let rec_answer = rec_peer
        .answer(sfu_offer["sdp"].as_str().expect("sdp"))
        .await
        .expect("recorder answers");
    rec.send(&json!({"type": "answer", "sdp": rec_answer}))
        .await;

    // Live: the caller is told, naming exactly its two tracks.
    let mut ready = Vec::new();
    while ready.len() < own.len() {
        let m = alice.ws.recv_type("recording_ready").await;
        ready.extend(
            m["tracks"]
                .as_array()
                .expect("tracks")
                .iter()
                .map(|t| t.as_str().expect("id").to_owned()),
        );
    }
    ready.sort();
    assert_eq!(ready, own);

    // The first frames sent after `recording_ready` reach the recorder: a keyframe first.
    let keyframe = [
        0x10, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0, 0, 0, 0,
    ];
    media.camera.write_next(&keyframe).await.expect("keyframe");
    media
        .audio
        .write_next(&[0xf8, 1, 2, 3])
        .await
        .expect("audio");
    let (mut audio, mut video) = (None, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while audio.is_none() || video.is_none() {
        let Incoming { kind, packet, .. } = tokio::time::timeout_at(deadline, incoming.recv())
            .await
            .unwrap_or_else(|_| panic!("the first frames reach the recorder: {audio:?} {video:?}"))
            .expect("recorder peer open");
        if kind == RtpCodecKind::Audio {
            audio.get_or_insert(packet.payload.to_vec());
        } else {
            video.get_or_insert(packet.payload.to_vec());
        }
    }
    assert_eq!(audio.as_deref(), Some(&[0xf8, 1, 2, 3][..]), "first audio");
    assert_eq!(video.as_deref(), Some(&keyframe[..]), "the keyframe first");
    rec_peer.close().await;
    media.peer.close().await;
}
