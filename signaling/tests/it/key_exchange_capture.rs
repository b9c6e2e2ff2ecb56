//! A full key exchange among five clients through the real service, with real identity keys,
//! HPKE envelopes and SFrame: every byte the service received or sent (each client's transcript),
//! what it stores (the admin API's room detail) and what it exports (`/metrics`) is searched for
//! every sender's base key and ratcheted key in raw, base64url, base64 and hex form. None is there,
//! while every client derives the same keys (each decrypts every other sender's frame).

use crate::common;

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{Client, TestServer, config, token};
use e2ee_frames::envelope::{KeyEnvelope, KeyGrant};
use e2ee_frames::identity::{DeviceBundle, DeviceId, DeviceKeys, VerifiedBundle};
use e2ee_frames::key::BaseKey;
use e2ee_frames::kid::Stream;
use e2ee_frames::media::Codec;
use e2ee_frames::receiver::KeyStore;
use e2ee_frames::sender::Sender;
use e2ee_frames::suite::CipherSuite;
use serde_json::{Value, json};
use signaling::policy::Role;

const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;
const ROOM: &str = "kx";

struct Member {
    id: String,
    keys: DeviceKeys,
    ws: Client,
    slot: u16,
    call: String,
    base: BaseKey,
    /// Bundles of the others as this member saw them (joined roster or roster updates).
    bundles: BTreeMap<String, VerifiedBundle>,
}

fn verified(v: &Value) -> VerifiedBundle {
    DeviceBundle::from_json(&v.to_string())
        .expect("bundle parses")
        .verify()
        .expect("bundle is self-signed")
}

/// Every written form of `key` a careless service might leak.
fn forms(key: &[u8]) -> Vec<(String, Vec<u8>)> {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        ("raw".into(), key.to_vec()),
        ("base64url".into(), URL_SAFE_NO_PAD.encode(key).into_bytes()),
        ("base64".into(), STANDARD.encode(key).into_bytes()),
        ("hex".into(), hex.into_bytes()),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn five_clients_exchange_keys_and_the_service_never_sees_a_base_key() {
    let s = TestServer::start(config()).await;
    s.meeting(ROOM).await;

    let mut members: Vec<Member> = Vec::new();
    for n in 0..5 {
        let id = format!("dev-{n}");
        let keys = DeviceKeys::generate(DeviceId::new(&id).expect("valid id"), &mut rand::rng());
        let bundle: Value = serde_json::from_str(&keys.bundle().to_json()).expect("bundle");
        let mut ws = s.connect().await;
        ws.send(
            &json!({"type": "join", "v": 1, "room": ROOM, "device": bundle,
            "token": token(ROOM, &id, Role::Caller), "name": id}),
        )
        .await;
        let joined = ws.recv_type("joined").await;
        let bundles = joined["roster"]["devices"]
            .as_array()
            .expect("roster")
            .iter()
            .filter(|d| d["device"] != id.as_str())
            .map(|d| {
                (
                    d["device"].as_str().expect("id").to_owned(),
                    verified(&d["bundle"]),
                )
            })
            .collect();
        members.push(Member {
            slot: joined["slot"].as_u64().expect("slot") as u16,
            call: joined["call"].as_str().expect("call").to_owned(),
            id,
            keys,
            ws,
            base: BaseKey::random(&mut rand::rng()),
            bundles,
        });
    }
    // Earlier members learn of later ones from roster updates.
    for member in &mut members {
        while member.bundles.len() < 4 {
            let roster = member.ws.recv_type("roster").await;
            for d in roster["added"].as_array().expect("added") {
                let id = d["device"].as_str().expect("id").to_owned();
                member.bundles.insert(id, verified(&d["bundle"]));
            }
        }
    }

    // Each member seals its key to each other member; signaling routes the envelopes.
    for member in &mut members {
        let grant = KeyGrant {
            slot: member.slot,
            generation: 1,
            step: 0,
            suite: SUITE,
        };
        let sealed: Vec<Value> = member
            .bundles
            .values()
            .map(|to| {
                let env = KeyEnvelope::seal(
                    &member.keys,
                    to,
                    ROOM,
                    &member.call,
                    grant,
                    &member.base,
                    &mut rand::rng(),
                )
                .expect("seals");
                json!({"type": "key_envelope", "envelope": serde_json::to_value(&env).expect("json")})
            })
            .collect();
        for msg in sealed {
            member.ws.send(&msg).await;
        }
    }

    // Each member opens four envelopes and decrypts a frame from each sender with the result.
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|m| {
            let mut sender = Sender::new(
                SUITE,
                members[m].slot,
                1,
                BaseKey::from_bytes(members[m].base.as_bytes()).expect("key"),
            )
            .expect("sender");
            let mut wire = Vec::new();
            sender
                .encrypt_media(
                    Stream::Audio,
                    Codec::Opus,
                    format!("hello from {m}").as_bytes(),
                    &mut wire,
                )
                .expect("encrypts");
            wire
        })
        .collect();
    for m in 0..5 {
        let mut store = KeyStore::new();
        let mut opened = 0;
        while opened < 4 {
            let msg = members[m].ws.recv_type("key_envelope").await;
            let env: KeyEnvelope = serde_json::from_value(msg["envelope"].clone()).expect("parses");
            assert_eq!(
                env.recipient, members[m].id,
                "only envelopes for this device arrive"
            );
            let from = &members[m].bundles[&env.sender];
            let (grant, key) = env
                .open(&members[m].keys, from, ROOM, &members[m].call)
                .expect("opens");
            let sender = members
                .iter()
                .position(|x| x.id == env.sender)
                .expect("known sender");
            assert_eq!(key.as_bytes(), members[sender].base.as_bytes());
            store
                .install(
                    Instant::now(),
                    grant.slot,
                    grant.generation,
                    grant.step,
                    grant.suite,
                    key,
                )
                .expect("installs");
            let mut out = Vec::new();
            store
                .decrypt_media(Instant::now(), Codec::Opus, &frames[sender], &mut out)
                .expect("the derived keys agree");
            assert_eq!(out, format!("hello from {sender}").as_bytes());
            opened += 1;
        }
    }

    // Everything the service saw, stored and exported.
    let mut seen: Vec<u8> = Vec::new();
    for m in &members {
        for t in &m.ws.transcript {
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
    assert!(
        detail.contains("dev-4"),
        "the detail lists the room's devices"
    );
    seen.extend_from_slice(detail.as_bytes());
    seen.extend_from_slice(s.metrics().await.as_bytes());
    assert!(
        seen.len() > 20 * 300,
        "the capture holds the 20 envelopes and more ({} bytes)",
        seen.len()
    );
    for m in &members {
        let ratcheted = m.base.ratchet(SUITE);
        for key in [m.base.as_bytes(), ratcheted.as_bytes()] {
            for (form, needle) in forms(key) {
                assert!(
                    !contains(&seen, &needle),
                    "{}'s key appears ({form}) in what the service saw",
                    m.id
                );
            }
        }
    }
    // Sanity of the search itself: a key written into the capture is found.
    let mut planted = seen.clone();
    planted.extend_from_slice(
        URL_SAFE_NO_PAD
            .encode(members[0].base.as_bytes())
            .as_bytes(),
    );
    assert!(contains(&planted, &forms(members[0].base.as_bytes())[1].1));
}
