//! After the first answer only the SFU offers (architecture §7.53): a device asks for a new
//! source with `publish`, the SFU offers a section it receives the source on, the device
//! answers with its track there; `unpublish` makes the SFU offer the section `inactive` and end
//! the track at its subscribers. Real WebRTC clients (`call_client::peer`) through signaling and
//! the embedded SFU; refusals name the request's id.

use std::sync::Arc;
use std::time::Duration;

use call_client::peer::{Incoming, LocalTrack, Peer, RtpCodecKind, VideoLayer, vp8_frame_bytes};
use e2ee_frames::key::BaseKey;
use e2ee_frames::kid::Stream;
use e2ee_frames::media::Codec;
use e2ee_frames::receiver::KeyStore;
use e2ee_frames::sender::Sender;
use serde_json::{Value, json};
use signaling::policy::Role;
use tokio::time::Instant;

use crate::common::{Client, TestServer, config, token};
use crate::media_call::{Device, SUITE, node_behind_control_api, publish, send_key};

/// The next message of type `ty` to `ws` within `within`, skipping others.
async fn next_of(ws: &mut Client, ty: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let m: Value = tokio::time::timeout_at(deadline, ws.recv())
            .await
            .unwrap_or_else(|_| panic!("a {ty} within {within:?}"));
        if m["type"] == ty {
            return m;
        }
    }
}

/// The direction of the media section `mid` in `sdp`.
fn direction_of(sdp: &str, mid: &str) -> Option<String> {
    sdp.split("\nm=").skip(1).find_map(|section| {
        let lines: Vec<&str> = section.lines().map(str::trim).collect();
        lines.contains(&format!("a=mid:{mid}").as_str()).then(|| {
            lines
                .iter()
                .find_map(|l| {
                    ["sendrecv", "sendonly", "recvonly", "inactive"]
                        .into_iter()
                        .find(|d| l.strip_prefix("a=") == Some(*d))
                })
                .unwrap_or("sendrecv")
                .to_owned()
        })
    })
}

/// The mids of the video sections of `sdp` in which its author receives only (`recvonly`): in
/// an SFU offer, the publisher's camera section and a section it asked for with `publish`.
fn receive_only_video_mids(sdp: &str) -> Vec<String> {
    sdp.split("\nm=")
        .skip(1)
        .filter(|s| s.starts_with("video"))
        .filter_map(|s| {
            let lines: Vec<&str> = s.lines().map(str::trim).collect();
            let mid = lines.iter().find_map(|l| l.strip_prefix("a=mid:"))?;
            lines.contains(&"a=recvonly").then(|| mid.to_owned())
        })
        .collect()
}

/// Screen frame `i` (VP8: a keyframe every 10 frames).
fn screen_frame(i: u32) -> Vec<u8> {
    let mut frame = if i.is_multiple_of(10) {
        vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]
    } else {
        vec![0x11, 0x02, 0x00]
    };
    frame.extend_from_slice(&i.to_be_bytes());
    frame.extend((0..500u32).map(|b| (b.wrapping_mul(13) ^ i) as u8));
    frame
}

async fn send_screen_frame(track: &mut LocalTrack, sender: &mut Sender, i: u32) {
    let mut wire = Vec::new();
    sender
        .encrypt_media(Stream::ScreenVideo, Codec::Vp8, &screen_frame(i), &mut wire)
        .expect("frame encrypts");
    let mut payload = vec![0x10];
    payload.extend_from_slice(&wire);
    track.write_next(&payload).await.expect("screen written");
}

/// Alice and Bob in a meeting, both publishing microphone and camera from their first offer;
/// Bob holds Alice's key.
struct Call {
    s: TestServer,
    alice: Device,
    bob: Device,
    alice_peer: Peer,
    /// The mid Alice sends her camera on (from her first offer).
    alice_camera: String,
    bob_peer: Peer,
    bob_rtp: tokio::sync::mpsc::UnboundedReceiver<Incoming>,
    bob_store: KeyStore,
    alice_sender: Sender,
}

async fn call() -> Call {
    call_on(TestServer::start(config()).await).await
}

async fn call_on(s: TestServer) -> Call {
    s.meeting("call").await;
    let mut alice = Device::join(&s, "call", "alice-dev").await;
    let mut bob = Device::join(&s, "call", "bob-dev").await;
    let a = publish(&mut alice, 0x4444_0001, 10).await;
    let mut b = publish(&mut bob, 0x4444_0002, 50).await;
    let key = BaseKey::random(&mut rand::rng());
    send_key(&mut alice, &mut bob, &key, &mut b.store).await;
    let alice_sender = Sender::new(SUITE, alice.slot(), 1, key).expect("sender");
    let bob_rtp = b.peer.take_incoming();
    Call {
        s,
        alice,
        bob,
        alice_camera: a.camera.mid().expect("camera negotiated").to_owned(),
        alice_peer: a.peer,
        bob_peer: b.peer,
        bob_rtp,
        bob_store: b.store,
        alice_sender,
    }
}

/// Alice asks to publish her screen (request `id`), answers the SFU's offer with a screen
/// track on the section it receives on, and returns the track and that section's mid.
async fn alice_shares(c: &mut Call, id: u64) -> (LocalTrack, String) {
    let name = format!("screen-{id}");
    c.alice
        .ws
        .send(&json!({"type": "publish", "id": id, "kind": "video", "source": "screen"}))
        .await;
    let offer = next_of(&mut c.alice.ws, "offer", Duration::from_secs(10)).await;
    let offer = offer["sdp"].as_str().expect("offer sdp");
    // Besides Alice's camera section, one new video section the SFU only receives on.
    let mut receiving = receive_only_video_mids(offer);
    receiving.retain(|mid| *mid != c.alice_camera);
    assert_eq!(
        receiving.len(),
        1,
        "the SFU's offer has one video section for the screen: {receiving:?}"
    );
    let (answer, track) = c
        .alice_peer
        .answer_publishing_video(offer, &name, &[VideoLayer::single(0x5C5C_0000 + id as u32)])
        .await
        .expect("answer with the screen track");
    assert_eq!(
        direction_of(&answer, &receiving[0]).as_deref(),
        Some("sendonly"),
        "the answer sends the screen on the SFU's section"
    );
    c.alice
        .ws
        .send(&json!({"type": "answer", "sdp": answer}))
        .await;
    (track, receiving[0].clone())
}

/// Bob subscribes to `track` and answers the SFU's offer for it.
async fn bob_subscribes(c: &mut Call, track: &Value) {
    c.bob
        .ws
        .send(&json!({"type": "subscribe", "subscriptions": [{"track": track["id"], "width": 1280, "height": 720}]}))
        .await;
    let offer = next_of(&mut c.bob.ws, "offer", Duration::from_secs(10)).await;
    let answer = c
        .bob_peer
        .answer(offer["sdp"].as_str().expect("offer sdp"))
        .await
        .expect("answer");
    c.bob
        .ws
        .send(&json!({"type": "answer", "sdp": answer}))
        .await;
}

/// Sends screen frames from number `from` on, every 20 ms, until `want` of them were decrypted
/// at Bob with Alice's key as screen video (stream 2), each intact; returns the next number.
async fn bob_decrypts_screen(c: &mut Call, track: &mut LocalTrack, from: u32, want: u32) -> u32 {
    let mut out = Vec::new();
    let mut got = 0;
    for i in from..from + 750 {
        send_screen_frame(track, &mut c.alice_sender, i).await;
        let until = Instant::now() + Duration::from_millis(20);
        while let Ok(Some(incoming)) = tokio::time::timeout_at(until, c.bob_rtp.recv()).await {
            if incoming.kind != RtpCodecKind::Video {
                continue;
            }
            let Ok(received) = c.bob_store.decrypt_media(
                std::time::Instant::now(),
                Codec::Vp8,
                vp8_frame_bytes(&incoming.packet.payload),
                &mut out,
            ) else {
                continue;
            };
            if received.kid.stream() != Stream::ScreenVideo {
                continue;
            }
            assert_eq!(received.kid.slot(), c.alice.slot());
            let prefix = if out[0] & 1 == 0 { 10 } else { 3 };
            let index = u32::from_be_bytes(out[prefix..prefix + 4].try_into().expect("4 bytes"));
            assert_eq!(out, screen_frame(index), "screen frame {index} intact");
            got += 1;
        }
        if got >= want {
            return i + 1;
        }
    }
    panic!("only {got} screen frames decrypted at Bob in 15 s");
}

/// Sends screen frames from number `from` on, every 20 ms, until Bob hears that Alice's screen
/// is published (the first frames open the track on the SFU); returns the `track` and the next
/// frame number.
async fn shares_until_published(c: &mut Call, track: &mut LocalTrack, from: u32) -> (Value, u32) {
    for i in from..from + 750 {
        send_screen_frame(track, &mut c.alice_sender, i).await;
        let until = Instant::now() + Duration::from_millis(20);
        while let Ok(m) = tokio::time::timeout_at(until, c.bob.ws.recv()).await {
            if m["type"] == "track_published"
                && m["track"]["publisher"] == "alice-dev"
                && m["track"]["source"] == "screen"
            {
                return (m["track"].clone(), i + 1);
            }
        }
    }
    panic!("Alice's screen published within 15 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_request_is_offered_by_the_sfu_and_its_media_reaches_subscribers() {
    let mut c = call().await;
    let (mut screen, _) = alice_shares(&mut c, 7).await;
    // Frames publish the track; Bob hears of it as Alice's screen, subscribes and decrypts.
    let (published, next) = shares_until_published(&mut c, &mut screen, 0).await;
    assert_eq!(published["kind"], "video");
    bob_subscribes(&mut c, &published).await;
    bob_decrypts_screen(&mut c, &mut screen, next, 20).await;
    // Alice never offered after her first answer; the SFU did.
    assert_eq!(c.s.metric("signaling_client_reoffers_total").await, 0.0);
}

/// The same through an SFU reached over its HTTP control API (`RemoteSfu`: `POST
/// …/publications`, `DELETE …/publications/screen`), with a refusal mapped back to the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_request_through_a_remote_sfu_reaches_subscribers_and_unpublishes() {
    let (_, remote) = node_behind_control_api().await;
    let mut c = call_on(TestServer::start_with_node(config(), Arc::new(remote)).await).await;
    let (mut screen, _) = alice_shares(&mut c, 7).await;
    c.alice
        .ws
        .send(&json!({"type": "publish", "id": 8, "kind": "video", "source": "screen"}))
        .await;
    let refused = next_of(&mut c.alice.ws, "error", Duration::from_secs(5)).await;
    assert_eq!(
        (refused["code"].clone(), refused["request_id"].clone()),
        (json!("wrong_state"), json!(8)),
        "the node's 409 already_published, named by the request: {refused}"
    );
    let (published, next) = shares_until_published(&mut c, &mut screen, 0).await;
    bob_subscribes(&mut c, &published).await;
    bob_decrypts_screen(&mut c, &mut screen, next, 10).await;
    c.alice
        .ws
        .send(&json!({"type": "unpublish", "id": 9, "source": "screen"}))
        .await;
    let gone = next_of(&mut c.bob.ws, "track_unpublished", Duration::from_secs(5)).await;
    assert_eq!(gone["track"], published["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_request_ends_the_track_at_subscribers() {
    let mut c = call().await;
    let (mut screen, mid) = alice_shares(&mut c, 7).await;
    let (published, next) = shares_until_published(&mut c, &mut screen, 0).await;
    let track = published["id"].clone();
    bob_subscribes(&mut c, &published).await;
    bob_decrypts_screen(&mut c, &mut screen, next, 5).await;

    c.alice
        .ws
        .send(&json!({"type": "unpublish", "id": 8, "source": "screen"}))
        .await;
    // Bob is told at once; Alice gets the SFU's offer turning the section inactive.
    let gone = next_of(&mut c.bob.ws, "track_unpublished", Duration::from_secs(5)).await;
    assert_eq!(gone["track"], track);
    let offer = next_of(&mut c.alice.ws, "offer", Duration::from_secs(10)).await;
    let offer = offer["sdp"].as_str().expect("offer sdp");
    assert_eq!(direction_of(offer, &mid).as_deref(), Some("inactive"));
    let answer = c.alice_peer.answer(offer).await.expect("answer");
    c.alice
        .ws
        .send(&json!({"type": "answer", "sdp": answer}))
        .await;
    // A second share gets a section of its own (the stopped one stays inactive) and is
    // published anew.
    let (mut again, again_mid) = alice_shares(&mut c, 9).await;
    assert_ne!(again_mid, mid, "a new section");
    let (republished, _) = shares_until_published(&mut c, &mut again, 1000).await;
    assert_ne!(republished["id"], track, "a new track");
    assert_eq!(c.s.metric("signaling_client_reoffers_total").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_by_a_viewer_is_refused_with_the_request_id() {
    let s = TestServer::start(config()).await;
    s.create_room(json!({"name": "bc", "kind": "broadcast"}))
        .await;
    let mut viewer = s.connect().await;
    viewer
        .join("bc", &token("bc", "v1", Role::Viewer), "dev-v1")
        .await;
    viewer
        .send(&json!({"type": "publish", "id": 5, "kind": "video", "source": "screen"}))
        .await;
    let refused = viewer.expect_error("forbidden").await;
    assert_eq!(refused["request_id"], 5);
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"forbidden\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_before_the_first_answer_is_refused() {
    let s = TestServer::start(config()).await;
    s.meeting("call").await;
    let mut alice = Device::join(&s, "call", "alice-dev").await;
    alice
        .ws
        .send(&json!({"type": "publish", "id": 3, "kind": "video", "source": "screen"}))
        .await;
    let refused = alice.ws.expect_error("wrong_state").await;
    assert_eq!(refused["request_id"], 3);
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"wrong_state\"}")
            .await,
        1.0
    );
}

/// A second `publish` of the screen while it is published, and an `unpublish` of a screen
/// that is not, are refused as `wrong_state` naming their ids; the share goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_of_a_published_source_and_unpublish_of_an_unpublished_one_are_refused() {
    let mut c = call().await;
    c.alice
        .ws
        .send(&json!({"type": "unpublish", "id": 4, "source": "screen"}))
        .await;
    let refused = next_of(&mut c.alice.ws, "error", Duration::from_secs(5)).await;
    assert_eq!(
        (refused["code"].clone(), refused["request_id"].clone()),
        (json!("wrong_state"), json!(4))
    );
    let (mut screen, _) = alice_shares(&mut c, 5).await;
    c.alice
        .ws
        .send(&json!({"type": "publish", "id": 6, "kind": "video", "source": "screen"}))
        .await;
    let refused = next_of(&mut c.alice.ws, "error", Duration::from_secs(5)).await;
    assert_eq!(
        (refused["code"].clone(), refused["request_id"].clone()),
        (json!("wrong_state"), json!(6))
    );
    let (published, next) = shares_until_published(&mut c, &mut screen, 0).await;
    bob_subscribes(&mut c, &published).await;
    bob_decrypts_screen(&mut c, &mut screen, next, 5).await;
}

/// Only video `screen` can be asked for: another source is `malformed`, naming the id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_of_another_source_is_refused_as_malformed() {
    let s = TestServer::start(config()).await;
    s.meeting("call").await;
    let mut alice = Device::join(&s, "call", "alice-dev").await;
    alice
        .ws
        .send(&json!({"type": "publish", "id": 11, "kind": "video", "source": "camera"}))
        .await;
    let refused = alice.ws.expect_error("malformed").await;
    assert_eq!(refused["request_id"], 11);
}

/// The compatibility path: a client that offers after its first answer (a standards client
/// renegotiating on its own) is still answered, and counted in
/// `signaling_client_reoffers_total`; its first offer is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reoffer_after_the_first_answer_is_answered_and_counted() {
    let s = TestServer::start(config()).await;
    s.meeting("call").await;
    let mut alice = Device::join(&s, "call", "alice-dev").await;
    let a = publish(&mut alice, 0x4444_0003, 10).await;
    assert_eq!(s.metric("signaling_client_reoffers_total").await, 0.0);
    let offer = a.peer.offer().await.expect("offer");
    alice.ws.send(&json!({"type": "offer", "sdp": offer})).await;
    let answer = next_of(&mut alice.ws, "answer", Duration::from_secs(10)).await;
    a.peer
        .apply_answer(answer["sdp"].as_str().expect("answer sdp"))
        .await
        .expect("answer applies");
    assert_eq!(s.metric("signaling_client_reoffers_total").await, 1.0);
}
