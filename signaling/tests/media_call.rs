//! Two real WebRTC clients (the `webrtc` crate, loopback only) hold an end-to-end-encrypted call
//! through the real signaling service and its embedded SFU: the sender's key travels as an HPKE
//! envelope through signaling, the SDP offer/answer and the SFU's renegotiation offer travel
//! through signaling, and every VP8 frame the subscriber receives decrypts to exactly what the
//! publisher encrypted. The SFU forwards what it cannot read.

mod common;
#[path = "../../sfu/tests/common/test_peer.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod test_peer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, TestServer, config, token};
use e2ee_frames::envelope::{KeyEnvelope, KeyGrant};
use e2ee_frames::identity::{DeviceBundle, DeviceId, DeviceKeys};
use e2ee_frames::key::BaseKey;
use e2ee_frames::kid::Stream;
use e2ee_frames::media::Codec;
use e2ee_frames::receiver::KeyStore;
use e2ee_frames::sender::Sender;
use e2ee_frames::suite::CipherSuite;
use rtc::peer_connection::state::RTCPeerConnectionState;
use serde_json::{Value, json};
use sfu::control::ControlState;
use sfu::node::{NodeConfig, NodeHandle, start_node};
use signaling::auth::Secret;
use signaling::media::RemoteSfu;
use signaling::policy::Role;
use test_peer::TestPeer;

const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;
const FRAMES: u32 = 400;

/// A joined client: its identity keys, its signaling connection and what `joined` said.
struct Device {
    keys: DeviceKeys,
    ws: Client,
    joined: Value,
}

impl Device {
    async fn join(s: &TestServer, room: &str, id: &str) -> Device {
        let keys = DeviceKeys::generate(DeviceId::new(id).expect("valid id"), &mut rand10::rng());
        let bundle: Value = serde_json::from_str(&keys.bundle().to_json()).expect("bundle JSON");
        let mut ws = s.connect().await;
        ws.send(
            &json!({"type": "join", "v": 1, "room": room, "device": bundle,
            "token": token(room, id, Role::Caller), "name": id}),
        )
        .await;
        let joined = ws.recv_type("joined").await;
        assert_eq!(joined["media"], true, "a media node is attached: {joined}");
        Device { keys, ws, joined }
    }

    fn slot(&self) -> u16 {
        self.joined["slot"].as_u64().expect("slot") as u16
    }

    fn call(&self) -> String {
        self.joined["call"].as_str().expect("call id").to_owned()
    }

    /// Sends the first offer with `tracks` and applies the answer signaling relays back.
    async fn connect(&mut self, peer: &TestPeer, tracks: Value) {
        let sdp = peer.offer().await;
        self.ws
            .send(&json!({"type": "offer", "sdp": sdp, "tracks": tracks}))
            .await;
        let answer = self.ws.recv_type("answer").await;
        peer.apply_answer(answer["sdp"].as_str().expect("answer sdp").to_owned())
            .await;
        assert!(
            peer.wait_state(RTCPeerConnectionState::Connected, Duration::from_secs(10))
                .await,
            "peer connects to the SFU"
        );
    }
}

/// The `a=mid` of the first video media section of an SDP.
fn video_mid(sdp: &str) -> String {
    let mut in_video = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
        } else if in_video && let Some(mid) = line.strip_prefix("a=mid:") {
            return mid.trim().to_owned();
        }
    }
    panic!("no video mid in the offer")
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

/// Length of a VP8 payload descriptor (RFC 7741 §4.2), read independently of the SFU.
fn vp8_descriptor_len(p: &[u8]) -> usize {
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
    len
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_exchange_sframe_video_through_signaling_and_the_embedded_sfu() {
    let (s, sfu) = TestServer::start_with_sfu(config()).await;
    call(&s, sfu.node()).await;
}

/// The same call with the SFU reached over its HTTP control API (the production split): the
/// node and its control router run on 127.0.0.1:0 in this process, signaling uses `RemoteSfu`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_callers_exchange_sframe_video_through_signaling_and_a_remote_sfu() {
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
    let s = TestServer::start_with_node(config(), Arc::new(remote)).await;
    call(&s, &node).await;
}

const CONTROL_SECRET: &str = "control-secret-for-the-test-0123456789";

async fn call(s: &TestServer, node: &NodeHandle) {
    s.meeting("call").await;
    let mut alice = Device::join(s, "call", "alice-dev").await;
    let mut bob = Device::join(s, "call", "bob-dev").await;
    let roster = alice.ws.recv_type("roster").await;
    assert_eq!(roster["added"][0]["device"], "bob-dev");

    // Alice's sender key reaches Bob as an HPKE envelope relayed by signaling.
    let base = BaseKey::random(&mut rand10::rng());
    let bob_bundle = DeviceBundle::from_json(&roster["added"][0]["bundle"].to_string())
        .expect("bundle parses")
        .verify()
        .expect("bob's bundle is self-signed");
    let grant = KeyGrant {
        slot: alice.slot(),
        generation: 1,
        step: 0,
        suite: SUITE,
    };
    let envelope = KeyEnvelope::seal(
        &alice.keys,
        &bob_bundle,
        "call",
        &alice.call(),
        grant,
        &base,
        &mut rand10::rng(),
    )
    .expect("envelope seals");
    alice
        .ws
        .send(&json!({"type": "key_envelope", "envelope": serde_json::to_value(&envelope).expect("json")}))
        .await;
    let relayed = bob.ws.recv_type("key_envelope").await;
    let relayed: KeyEnvelope =
        serde_json::from_value(relayed["envelope"].clone()).expect("envelope parses");
    let alice_bundle = bob.joined["roster"]["devices"]
        .as_array()
        .expect("roster devices")
        .iter()
        .find(|d| d["device"] == "alice-dev")
        .map(|d| DeviceBundle::from_json(&d["bundle"].to_string()).expect("bundle parses"))
        .expect("alice in bob's roster")
        .verify()
        .expect("alice's bundle is self-signed");
    let (got_grant, got_key) = relayed
        .open(&bob.keys, &alice_bundle, "call", &bob.call())
        .expect("bob opens the envelope");
    assert_eq!(got_grant, grant);
    assert_eq!(
        got_key.as_bytes(),
        base.as_bytes(),
        "bob derives alice's key"
    );
    let mut store = KeyStore::new();
    store
        .install(Instant::now(), grant.slot, 1, 0, SUITE, got_key)
        .expect("key installs");

    // Alice publishes camera video; Bob connects receive-only.
    let mut publisher = TestPeer::publisher().await;
    let offer_sdp = publisher.offer().await;
    let mid = video_mid(&offer_sdp);
    alice
        .ws
        .send(&json!({"type": "offer", "sdp": offer_sdp,
            "tracks": [{"mid": mid, "kind": "video", "source": "camera"}]}))
        .await;
    let answer = alice.ws.recv_type("answer").await;
    publisher
        .apply_answer(answer["sdp"].as_str().expect("answer sdp").to_owned())
        .await;
    assert!(
        publisher
            .wait_state(RTCPeerConnectionState::Connected, Duration::from_secs(10))
            .await
    );
    let mut subscriber = TestPeer::subscriber().await;
    bob.connect(&subscriber, json!([])).await;

    // Alice sends encrypted frames for up to FRAMES × 20 ms while Bob subscribes.
    let mut sender = Sender::new(SUITE, alice.slot(), 1, base).expect("sender");
    let sending = tokio::spawn(async move {
        let mut wire = Vec::new();
        for i in 0..FRAMES {
            sender
                .encrypt_media(Stream::Camera, Codec::Vp8, &vp8_frame(i), &mut wire)
                .expect("frame encrypts");
            // VP8 payload descriptor: S bit, partition 0, no extensions.
            let mut payload = vec![0x10];
            payload.extend_from_slice(&wire);
            publisher.send_rtp(&payload).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        publisher
    });

    // Bob learns of the track from signaling, subscribes, and answers the SFU's offer.
    let published = bob.ws.recv_type("track_published").await;
    let track = &published["track"];
    assert_eq!(track["publisher"], "alice-dev");
    assert_eq!(track["kind"], "video");
    assert_eq!(track["source"], "camera", "the announced source: {track}");
    bob.ws
        .send(&json!({"type": "subscribe", "subscriptions": [{"track": track["id"]}]}))
        .await;
    let offer = bob.ws.recv_type("offer").await;
    let answer = subscriber
        .answer(offer["sdp"].as_str().expect("offer sdp").to_owned())
        .await;
    bob.ws.send(&json!({"type": "answer", "sdp": answer})).await;

    // Every frame Bob receives decrypts to the frame Alice encrypted.
    let mut decrypted = 0u32;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while decrypted < 50 {
        let packet = tokio::time::timeout_at(deadline, subscriber.rtp.recv())
            .await
            .expect("frames arrive within 15 s")
            .expect("subscriber open");
        let wire = &packet.payload[vp8_descriptor_len(&packet.payload)..];
        let received = store
            .decrypt_media(Instant::now(), Codec::Vp8, wire, &mut out)
            .expect("every forwarded frame authenticates with alice's key");
        let prefix = if out[0] & 1 == 0 { 10 } else { 3 };
        let index = u32::from_be_bytes(out[prefix..prefix + 4].try_into().expect("4 bytes"));
        assert_eq!(out, vp8_frame(index), "frame {index} intact");
        assert_eq!(received.kid.slot(), alice.slot());
        decrypted += 1;
    }
    let stats = node.snapshot().await;
    assert!(
        stats.metrics.packets_sent.video >= 50,
        "the SFU forwarded what bob decrypted: {:?}",
        stats.metrics.packets_sent
    );

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
