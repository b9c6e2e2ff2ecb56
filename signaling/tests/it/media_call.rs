//! Two real WebRTC clients (the `webrtc` crate, loopback only) hold an end-to-end-encrypted call
//! through the real signaling service and an SFU (embedded, or a separate node reached over its
//! control API): each sender's key travels as an HPKE envelope through signaling, the SDP
//! offer/answer and the SFU's renegotiation offers travel through signaling, and every audio and
//! VP8 frame each side receives decrypts to exactly what the other encrypted. The SFU forwards
//! what it cannot read, and its speaker detection (from the audio-level extension) reaches the
//! clients as `speakers` updates.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use call_client::peer::{
    AUDIO_LEVEL_URI, Incoming, LocalTrack, Peer, RtpCodecKind, VideoLayer, extmap_id,
    first_mid_of_kind, vp8_frame_bytes,
};
use common::{Client, TestServer, config, token};
use e2ee_frames::envelope::{KeyEnvelope, KeyGrant};
use e2ee_frames::identity::{DeviceBundle, DeviceId, DeviceKeys};
use e2ee_frames::key::BaseKey;
use e2ee_frames::kid::Stream;
use e2ee_frames::media::Codec;
use e2ee_frames::receiver::KeyStore;
use e2ee_frames::sender::Sender;
use e2ee_frames::suite::CipherSuite;
use serde_json::{Value, json};
use sfu::control::ControlState;
use sfu::node::{NodeConfig, NodeHandle, start_node};
use signaling::auth::Secret;
use signaling::media_node::RemoteSfu;
use signaling::policy::Role;

pub(crate) const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;
const FRAMES: u32 = 400;

/// A joined client: its identity keys, its signaling connection and what `joined` said.
pub(crate) struct Device {
    pub(crate) keys: DeviceKeys,
    pub(crate) ws: Client,
    pub(crate) joined: Value,
}

impl Device {
    pub(crate) async fn join(s: &TestServer, room: &str, id: &str) -> Device {
        let dev = Device::join_at(&s.ws_url(), room, id, Role::Caller, None, None).await;
        assert_eq!(
            dev.joined["media"], true,
            "a media node is attached: {}",
            dev.joined
        );
        dev
    }

    /// Joins `room` at `url` as device `id` with `role`: with its `keys` (new ones when
    /// `None`), resuming `resume` (`(call, slot)`) when given.
    pub(crate) async fn join_at(
        url: &str,
        room: &str,
        id: &str,
        role: Role,
        keys: Option<DeviceKeys>,
        resume: Option<(String, u16)>,
    ) -> Device {
        let keys = keys.unwrap_or_else(|| {
            DeviceKeys::generate(DeviceId::new(id).expect("valid id"), &mut rand::rng())
        });
        let bundle: Value = serde_json::from_str(&keys.bundle().to_json()).expect("bundle JSON");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let mut ws = Client {
            ws,
            transcript: Vec::new(),
        };
        let mut join = json!({"type": "join", "v": 1, "room": room, "device": bundle,
            "token": token(room, id, role), "name": id});
        if let Some((call, slot)) = resume {
            join["resume"] = json!({"call": call, "slot": slot});
        }
        ws.send(&join).await;
        let joined = ws.recv_type("joined").await;
        Device { keys, ws, joined }
    }

    pub(crate) fn slot(&self) -> u16 {
        self.joined["slot"].as_u64().expect("slot") as u16
    }

    pub(crate) fn call(&self) -> String {
        self.joined["call"].as_str().expect("call id").to_owned()
    }
}

/// Encoded VP8 frame number `i`: a keyframe every 10 frames (10-byte clear prefix), delta frames
/// otherwise; the body holds the frame number and index-dependent bytes.
fn vp8_frame(i: u32) -> Vec<u8> {
    let mut frame = if i.is_multiple_of(10) {
        vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00]
    } else {
        vec![0x11, 0x02, 0x00]
    };
    frame.extend_from_slice(&i.to_be_bytes());
    frame.extend((0..300u32).map(|b| (b.wrapping_mul(29) ^ i) as u8));
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_exchange_sframe_video_through_signaling_and_the_embedded_sfu() {
    let (s, sfu) = TestServer::start_with_sfu(config()).await;
    call(&s, sfu.node()).await;
    join_phases_were_observed(&s).await;
}

/// Each phase of both callers' joins is on a metrics endpoint as a histogram (docs/metrics.md,
/// "Join phases"): join → SDP answer on signaling's `/metrics`, answer → connected and
/// connected → first keyframe forwarded on the SFU's (`/sfu/metrics` of the embedded node).
async fn join_phases_were_observed(s: &TestServer) {
    let sfu_metrics = reqwest::get(s.url("/sfu/metrics"))
        .await
        .expect("SFU metrics request")
        .text()
        .await
        .expect("SFU metrics body");
    let count = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} not exported"))
    };
    let phases = [
        (
            "signaling_join_latency_seconds_count",
            count(&s.metrics().await, "signaling_join_latency_seconds_count"),
        ),
        (
            "sfu_join_latency_seconds_count",
            count(&sfu_metrics, "sfu_join_latency_seconds_count"),
        ),
        (
            "sfu_join_first_keyframe_seconds_count",
            count(&sfu_metrics, "sfu_join_first_keyframe_seconds_count"),
        ),
    ];
    for (name, n) in phases {
        assert!(n >= 2.0, "{name} = {n}: each caller's join is observed");
    }
}

/// The same call with the SFU reached over its HTTP control API (the production split): the
/// node and its control router run on 127.0.0.1:0 in this process, signaling uses `RemoteSfu`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_exchange_sframe_video_through_signaling_and_a_remote_sfu() {
    let (node, remote) = node_behind_control_api().await;
    let s = TestServer::start_with_node(config(), Arc::new(remote)).await;
    call(&s, &node).await;
}

pub(crate) const CONTROL_SECRET: &str = "control-secret-for-the-test-0123456789";

/// A real SFU node on loopback, served by its HTTP control API, and a [`RemoteSfu`] that reaches
/// it there (signaling's split deployment).
pub(crate) async fn node_behind_control_api() -> (NodeHandle, RemoteSfu) {
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let app = sfu::control::router(ControlState {
        node: node.clone(),
        secret: CONTROL_SECRET.into(),
        node_id: "sfu-test".into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("control port");
    let control = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let remote = RemoteSfu::new(
        &format!("http://{control}"),
        Secret::new(CONTROL_SECRET),
        None,
    )
    .expect("client");
    (node, remote)
}

/// One caller's media: its peer connection, its camera and Opus tracks (the audio carrying the
/// level it "speaks" at, RFC 6464 -dBov), and the keys it received.
pub(crate) struct Media {
    pub(crate) peer: Peer,
    pub(crate) camera: LocalTrack,
    pub(crate) audio: LocalTrack,
    pub(crate) store: KeyStore,
}

/// The `a=mid` of the first media section of `kind` in an SDP.
fn mid_of(sdp: &str, kind: &str) -> String {
    first_mid_of_kind(sdp, kind).unwrap_or_else(|| panic!("no {kind} mid in the offer"))
}

/// Encoded Opus frame number `i`: a TOC byte (the 1-byte clear prefix), then the number.
fn opus_frame(i: u32) -> Vec<u8> {
    let mut frame = vec![0x78];
    frame.extend_from_slice(&i.to_be_bytes());
    frame.extend((0..60u32).map(|b| (b.wrapping_mul(7) ^ i) as u8));
    frame
}

/// Seals `from`'s key for `to` and sends it through signaling; `to` opens it and installs it
/// (room `call`).
pub(crate) async fn send_key(
    from: &mut Device,
    to: &mut Device,
    base: &BaseKey,
    store: &mut KeyStore,
) {
    send_key_in("call", from, to, base, store).await;
}

/// [`send_key`] in room `room`.
pub(crate) async fn send_key_in(
    room: &str,
    from: &mut Device,
    to: &mut Device,
    base: &BaseKey,
    store: &mut KeyStore,
) {
    let to_bundle = DeviceBundle::from_json(&to.keys.bundle().to_json())
        .expect("bundle parses")
        .verify()
        .expect("self-signed");
    let grant = KeyGrant {
        slot: from.slot(),
        generation: 1,
        step: 0,
        suite: SUITE,
    };
    let envelope = KeyEnvelope::seal(
        &from.keys,
        &to_bundle,
        room,
        &from.call(),
        grant,
        base,
        &mut rand::rng(),
    )
    .expect("envelope seals");
    from.ws
        .send(&json!({"type": "key_envelope", "envelope": serde_json::to_value(&envelope).expect("json")}))
        .await;
    let relayed = to.ws.recv_type("key_envelope").await;
    let relayed: KeyEnvelope =
        serde_json::from_value(relayed["envelope"].clone()).expect("envelope parses");
    // The sender's bundle as the recipient knows it: from the roster signaling relayed.
    let from_bundle = DeviceBundle::from_json(&from.keys.bundle().to_json())
        .expect("bundle parses")
        .verify()
        .expect("self-signed");
    let (got_grant, got_key) = relayed
        .open(&to.keys, &from_bundle, room, &to.call())
        .expect("the recipient opens the envelope");
    assert_eq!(got_grant, grant);
    assert_eq!(
        got_key.as_bytes(),
        base.as_bytes(),
        "both derive the same key"
    );
    store
        .install(Instant::now(), grant.slot, 1, 0, SUITE, got_key)
        .expect("key installs");
}

/// Joins the media session: offer with the announced audio and camera tracks, answer applied.
pub(crate) async fn publish(dev: &mut Device, audio_ssrc: u32, level: u8) -> Media {
    let peer = Peer::builder()
        .audio_level()
        .build()
        .await
        .expect("client peer connection builds");
    let camera = peer
        .add_video("camera", &[VideoLayer::single(0x1234_5678)])
        .await
        .expect("camera track added");
    let mut audio = peer
        .add_audio("microphone", audio_ssrc)
        .await
        .expect("audio track added");
    let sdp = peer.offer().await.expect("offer");
    let tracks = json!([
        {"mid": mid_of(&sdp, "audio"), "kind": "audio", "source": "microphone"},
        {"mid": mid_of(&sdp, "video"), "kind": "video", "source": "camera"},
    ]);
    assert!(
        extmap_id(&sdp, AUDIO_LEVEL_URI).is_some(),
        "audio-level extension offered"
    );
    // Voice, at `level` -dBov.
    audio.set_audio_level(Some((true, level)));
    dev.ws
        .send(&json!({"type": "offer", "sdp": sdp, "tracks": tracks}))
        .await;
    let answer = dev.ws.recv_type("answer").await;
    peer.apply_answer(answer["sdp"].as_str().expect("answer sdp"))
        .await
        .expect("answer applies");
    peer.wait_connected(Duration::from_secs(10))
        .await
        .expect("peer connects to the SFU");
    Media {
        peer,
        camera,
        audio,
        store: KeyStore::new(),
    }
}

/// Sends encrypted frame `i` of both tracks.
pub(crate) async fn send_frames(m: &mut Media, sender: &mut Sender, i: u32) {
    send_frames_on(&mut m.camera, &mut m.audio, sender, i).await;
}

/// Sends encrypted frame `i` on a camera and an audio track (of a [`Media`] whose peer
/// connection is used elsewhere meanwhile).
pub(crate) async fn send_frames_on(
    camera: &mut LocalTrack,
    audio: &mut LocalTrack,
    sender: &mut Sender,
    i: u32,
) {
    let mut wire = Vec::new();
    sender
        .encrypt_media(Stream::Camera, Codec::Vp8, &vp8_frame(i), &mut wire)
        .expect("frame encrypts");
    // VP8 payload descriptor: S bit, partition 0, no extensions.
    let mut payload = vec![0x10];
    payload.extend_from_slice(&wire);
    camera.write_next(&payload).await.expect("video written");
    sender
        .encrypt_media(Stream::Audio, Codec::Opus, &opus_frame(i), &mut wire)
        .expect("audio encrypts");
    audio.write_next(&wire).await.expect("audio written");
}

/// Reads `dev`'s messages until the other's two tracks are published, subscribes to them and
/// answers the SFU's renegotiation offer; returns the `speakers` messages seen meanwhile.
pub(crate) async fn subscribe_all(
    dev: &mut Device,
    peer: &Peer,
    other: &str,
    speakers: &mut Vec<Value>,
) {
    let mut tracks: Vec<Value> = Vec::new();
    while tracks.len() < 2 {
        let m = dev.ws.recv().await;
        match m["type"].as_str() {
            // Everyone hears of every track, its own included.
            Some("track_published") if m["track"]["publisher"] == other => {
                tracks.push(m["track"].clone());
            }
            Some("speakers") => speakers.push(m),
            _ => {}
        }
    }
    let sources: Vec<&str> = tracks.iter().filter_map(|t| t["source"].as_str()).collect();
    assert!(
        sources.contains(&"microphone") && sources.contains(&"camera"),
        "the announced sources: {tracks:?}"
    );
    let subs: Vec<Value> = tracks.iter().map(|t| json!({"track": t["id"]})).collect();
    dev.ws
        .send(&json!({"type": "subscribe", "subscriptions": subs}))
        .await;
    loop {
        let m = dev.ws.recv().await;
        match m["type"].as_str() {
            Some("offer") => {
                let answer = peer
                    .answer(m["sdp"].as_str().expect("offer sdp"))
                    .await
                    .expect("answer");
                dev.ws.send(&json!({"type": "answer", "sdp": answer})).await;
                return;
            }
            Some("speakers") => speakers.push(m),
            _ => {}
        }
    }
}

/// The receiving half of a caller: what its peer connection receives and the keys it holds.
pub(crate) struct Receiver {
    pub(crate) rtp: tokio::sync::mpsc::UnboundedReceiver<Incoming>,
    pub(crate) store: KeyStore,
}

/// Decrypts what `m` receives until `want` video frames and `want` audio frames, all from
/// `slot`, each equal to what was encrypted; returns when the first one was decrypted. (The
/// SFU sends every forwarded track on a `sendonly` section of its own, never on the client's
/// sending sections.)
pub(crate) async fn receive(m: &mut Receiver, slot: u16, want: u32) -> tokio::time::Instant {
    let (mut audio, mut video) = (0u32, 0u32);
    let mut first = None;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while video < want || audio < want {
        let Incoming { kind, packet, .. } = tokio::time::timeout_at(deadline, m.rtp.recv())
            .await
            .unwrap_or_else(|_| panic!("frames arrive within 15 s: {audio} audio, {video} video"))
            .expect("peer open");
        let is_audio = kind == RtpCodecKind::Audio;
        let (codec, wire) = if is_audio {
            (Codec::Opus, &packet.payload[..])
        } else {
            (Codec::Vp8, vp8_frame_bytes(&packet.payload))
        };
        let received = m
            .store
            .decrypt_media(Instant::now(), codec, wire, &mut out)
            .expect("every forwarded frame authenticates with the sender's key");
        assert_eq!(received.kid.slot(), slot);
        first.get_or_insert_with(tokio::time::Instant::now);
        if is_audio {
            let index = u32::from_be_bytes(out[1..5].try_into().expect("4 bytes"));
            assert_eq!(out, opus_frame(index), "audio frame {index} intact");
            audio += 1;
        } else {
            let prefix = if out[0] & 1 == 0 { 10 } else { 3 };
            let index = u32::from_be_bytes(out[prefix..prefix + 4].try_into().expect("4 bytes"));
            assert_eq!(out, vp8_frame(index), "video frame {index} intact");
            video += 1;
        }
    }
    // `want` is at least one frame, so one was decrypted.
    first.expect("a frame was decrypted")
}

async fn call(s: &TestServer, node: &NodeHandle) {
    s.meeting("call").await;
    let mut alice = Device::join(s, "call", "alice-dev").await;
    let mut bob = Device::join(s, "call", "bob-dev").await;
    let roster = alice.ws.recv_type("roster").await;
    assert_eq!(roster["added"][0]["device"], "bob-dev");
    assert_eq!(
        roster["added"][0]["bundle"],
        serde_json::from_str::<Value>(&bob.keys.bundle().to_json()).expect("json"),
        "signaling relays bundles unchanged"
    );

    // Both publish audio and camera; Alice speaks louder than Bob.
    let mut a = publish(&mut alice, 0x2222_0001, 10).await;
    let mut b = publish(&mut bob, 0x2222_0002, 50).await;

    // Each sender key reaches the other as an HPKE envelope relayed by signaling.
    let (alice_key, bob_key) = (
        BaseKey::random(&mut rand::rng()),
        BaseKey::random(&mut rand::rng()),
    );
    send_key(&mut alice, &mut bob, &alice_key, &mut b.store).await;
    send_key(&mut bob, &mut alice, &bob_key, &mut a.store).await;
    let mut a_sender = Sender::new(SUITE, alice.slot(), 1, alice_key).expect("sender");
    let mut b_sender = Sender::new(SUITE, bob.slot(), 1, bob_key).expect("sender");

    // A first second of frames publishes the tracks; then each side subscribes to the other's.
    for i in 0..50 {
        send_frames(&mut a, &mut a_sender, i).await;
        send_frames(&mut b, &mut b_sender, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut speakers: Vec<Value> = Vec::new();
    subscribe_all(&mut alice, &a.peer, "bob-dev", &mut speakers).await;
    subscribe_all(&mut bob, &b.peer, "alice-dev", &mut speakers).await;

    // A task keeps both sending; the receive halves stay here.
    let mut a_rx = Receiver {
        rtp: a.peer.take_incoming(),
        store: std::mem::take(&mut a.store),
    };
    let mut b_rx = Receiver {
        rtp: b.peer.take_incoming(),
        store: std::mem::take(&mut b.store),
    };
    let sending = tokio::spawn(async move {
        for i in 50..FRAMES {
            send_frames(&mut a, &mut a_sender, i).await;
            send_frames(&mut b, &mut b_sender, i).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (a, b)
    });
    receive(&mut a_rx, bob.slot(), 30).await;
    receive(&mut b_rx, alice.slot(), 30).await;
    let stats = node.snapshot().await;
    assert!(
        stats.metrics.packets_sent.video >= 60 && stats.metrics.packets_sent.audio >= 60,
        "the SFU forwarded both sides' audio and video: {:?}",
        stats.metrics.packets_sent
    );

    // The SFU's speaker detection reaches both clients: Alice is the loudest.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let loudest = loop {
        if let Some(m) = speakers
            .iter()
            .rev()
            .find(|m| m["speakers"][0]["device"].is_string())
        {
            break m.clone();
        }
        let m = tokio::time::timeout_at(deadline, bob.ws.recv_type("speakers"))
            .await
            .expect("a speakers update within 5 s");
        speakers.push(m);
    };
    assert_eq!(loudest["speakers"][0]["device"], "alice-dev", "{loudest}");
    // Levels are the SFU's smoothed scores (rising from 0 as speech starts), ordered.
    let level = |i: usize| loudest["speakers"][i]["level"].as_f64().unwrap_or(0.0);
    assert!(level(0) > 0.0 && level(0) <= 1.0, "{loudest}");
    assert!(level(1) < level(0), "Bob at -50 dBov is quieter: {loudest}");

    // Bob leaves: Alice's roster drops him and the SFU forgets his session.
    bob.ws.send(&json!({"type": "leave"})).await;
    let roster = alice.ws.recv_type("roster").await;
    assert_eq!(roster["removed"][0], "bob-dev");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while node.participant_count() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "SFU drops bob");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sending.abort();
}
