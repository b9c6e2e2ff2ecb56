//! End-to-end encrypted chat through the real service: a message sealed with `e2ee_frames::chat`
//! under a sender key that travelled in a real HPKE envelope reaches the other devices stamped
//! with the sender and opens there, while nothing the service received, sent, stores or exports
//! holds the plaintext or the keys; an oversized message is refused and counted, and a device
//! that may not publish cannot chat.

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Client, TestServer, config, token};
use e2ee_frames::chat::{self, ChatContext, SealedChat};
use e2ee_frames::envelope::{KeyEnvelope, KeyGrant};
use e2ee_frames::identity::{DeviceBundle, DeviceId, DeviceKeys};
use e2ee_frames::key::BaseKey;
use e2ee_frames::suite::CipherSuite;
use serde_json::{Value, json};
use signaling::policy::Role;

const ROOM: &str = "chat";
const SECRET: &str = "the eagle lands at dawn";

async fn join_with_keys(s: &TestServer, id: &str, role: Role) -> (Client, DeviceKeys, Value) {
    let keys = DeviceKeys::generate(DeviceId::new(id).expect("valid id"), &mut rand::rng());
    let bundle: Value = serde_json::from_str(&keys.bundle().to_json()).expect("bundle");
    let mut ws = s.connect().await;
    ws.send(
        &json!({"type": "join", "v": 1, "room": ROOM, "device": bundle,
        "token": token(ROOM, id, role), "name": id}),
    )
    .await;
    let joined = ws.recv_type("joined").await;
    (ws, keys, joined)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn chat_is_relayed_as_ciphertext_only() {
    let s = TestServer::start(config()).await;
    s.meeting(ROOM).await;
    let (mut a, a_keys, a_joined) = join_with_keys(&s, "dev-a", Role::Caller).await;
    let (mut b, b_keys, _) = join_with_keys(&s, "dev-b", Role::Caller).await;
    let (mut c, c_keys, _) = join_with_keys(&s, "dev-c", Role::Caller).await;
    let call = a_joined["call"].as_str().expect("call").to_owned();
    let a_slot = a_joined["slot"].as_u64().expect("slot") as u16;
    let a_bundle = DeviceBundle::from_json(&a_keys.bundle().to_json())
        .unwrap()
        .verify()
        .unwrap();

    // Alice wraps her sender key to Bob and Carol (real HPKE envelopes through the service).
    let suite = CipherSuite::Aes256GcmSha512_128;
    let base = BaseKey::random(&mut rand::rng());
    let grant = KeyGrant {
        slot: a_slot,
        generation: 1,
        step: 0,
        suite,
    };
    for to in [&b_keys, &c_keys] {
        let to = DeviceBundle::from_json(&to.bundle().to_json())
            .unwrap()
            .verify()
            .unwrap();
        let env = KeyEnvelope::seal(&a_keys, &to, ROOM, &call, grant, &base, &mut rand::rng())
            .expect("seals");
        a.send(&json!({"type": "key_envelope", "envelope": serde_json::to_value(&env).unwrap()}))
            .await;
    }

    // Alice seals a chat message under that key and sends it; the service relays it.
    let ctx = ChatContext {
        room: ROOM,
        call: &call,
        sender: "dev-a",
        slot: a_slot,
    };
    let sealed = chat::seal(&base, &ctx, 1, 0, SECRET.as_bytes(), &mut rand::rng()).unwrap();
    let mut msg = json!({"type": "chat", "chat": serde_json::to_value(&sealed).unwrap()});
    // A `from` written by the client is ignored: the service stamps the sender.
    msg["from"] = json!("dev-c");
    a.send(&msg).await;

    for (ws, keys) in [(&mut b, &b_keys), (&mut c, &c_keys)] {
        let env = ws.recv_type("key_envelope").await;
        let env: KeyEnvelope = serde_json::from_value(env["envelope"].clone()).unwrap();
        let (grant, key) = env.open(keys, &a_bundle, ROOM, &call).expect("opens");
        let got = ws.recv_type("chat").await;
        assert_eq!(got["from"], "dev-a", "stamped with the sender: {got}");
        let relayed: SealedChat = serde_json::from_value(got["chat"].clone()).unwrap();
        assert_eq!(relayed, sealed, "relayed untouched");
        let text = relayed
            .open(&key, &ctx, grant.generation, grant.step)
            .expect("opens with the key from the envelope");
        assert_eq!(text, SECRET.as_bytes());
    }

    // Nothing the service saw, stores or exports holds the plaintext or the key.
    let mut seen: Vec<u8> = Vec::new();
    for ws in [&a, &b, &c] {
        for t in &ws.transcript {
            seen.extend_from_slice(t.as_bytes());
            seen.push(b'\n');
        }
    }
    let detail = s
        .http
        .get(s.url(&format!("/v1/rooms/{ROOM}")))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("admin detail")
        .text()
        .await
        .expect("body");
    assert!(detail.contains("dev-c"), "the detail lists the room");
    seen.extend_from_slice(detail.as_bytes());
    seen.extend_from_slice(s.metrics().await.as_bytes());
    assert!(
        contains(&seen, sealed.ct.as_slice())
            || contains(&seen, URL_SAFE_NO_PAD.encode(&sealed.ct).as_bytes()),
        "the capture holds the ciphertext"
    );
    for needle in [
        SECRET.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.encode(SECRET).into_bytes(),
        STANDARD.encode(SECRET).into_bytes(),
        "eagle".as_bytes().to_vec(),
        base.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.encode(base.as_bytes()).into_bytes(),
        STANDARD.encode(base.as_bytes()).into_bytes(),
    ] {
        assert!(
            !contains(&seen, &needle),
            "{:?} appears in what the service saw",
            String::from_utf8_lossy(&needle)
        );
    }
}

#[tokio::test]
async fn oversized_chat_is_refused_and_counted() {
    let s = TestServer::start(config()).await;
    s.meeting(ROOM).await;
    let (mut a, _, _) = join_with_keys(&s, "dev-a", Role::Caller).await;
    let (mut b, _, _) = join_with_keys(&s, "dev-b", Role::Caller).await;
    a.recv_type("membership").await;

    let sealed = |ct_len: usize| {
        json!({"type": "chat", "chat": {"v": 1, "generation": 1, "step": 0,
            "nonce": URL_SAFE_NO_PAD.encode([7u8; 12]),
            "ct": URL_SAFE_NO_PAD.encode(vec![9u8; ct_len])}})
    };
    let reason = "signaling_rejected_total{reason=\"chat_too_large\"}";
    let before = s.metric(reason).await;
    a.send(&sealed(4097)).await;
    let err = a.expect_error("malformed").await;
    assert!(
        err["message"].as_str().unwrap().contains("4096"),
        "names the bound: {err}"
    );
    assert_eq!(s.metric(reason).await, before + 1.0);
    b.expect_silence(Duration::from_millis(200)).await;

    // At the bound it goes through; the connection and the room go on.
    a.send(&sealed(4096)).await;
    let got = b.recv_type("chat").await;
    assert_eq!(got["from"], "dev-a");
    assert_eq!(s.metric(reason).await, before + 1.0);

    // Shorter than a tag: malformed too (not counted as too large).
    a.send(&sealed(15)).await;
    a.expect_error("malformed").await;
    assert_eq!(s.metric(reason).await, before + 1.0);
}

#[tokio::test]
async fn a_device_that_may_not_publish_cannot_chat() {
    let s = TestServer::start(config()).await;
    s.create_room(json!({"name": ROOM, "kind": "broadcast"}))
        .await;
    let (mut p, _, _) = join_with_keys(&s, "dev-p", Role::Presenter).await;
    let (mut v, _, _) = join_with_keys(&s, "dev-v", Role::Viewer).await;
    let msg = json!({"type": "chat", "chat": {"v": 1, "generation": 1, "step": 0,
        "nonce": URL_SAFE_NO_PAD.encode([7u8; 12]), "ct": URL_SAFE_NO_PAD.encode([9u8; 40])}});
    v.send(&msg).await;
    v.expect_error("forbidden").await;
    // The presenter's reaches the viewer.
    p.send(&msg).await;
    assert_eq!(v.recv_type("chat").await["from"], "dev-p");
}
