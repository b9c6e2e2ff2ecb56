//! A full key exchange among five clients through the real service, with real identity keys,
//! HPKE envelopes and SFrame: every byte the service received or sent (each client's transcript),
//! what it stores (the admin API's room detail) and what it exports (`/metrics`) is searched for
//! every sender's base key and ratcheted key in raw, base64url, base64 and hex form. None is there,
//! while every client derives the same keys (each decrypts every other sender's frame). The same
//! in a recorded room with its recorder joined: the callers wrap their keys to the recorder the
//! signed policy names too, the recorder opens them and decrypts every caller's frame, and
//! nothing the service relayed to it or stored holds a key either.

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
const CALLERS: usize = 5;
const RECORDER: &str = "rec-1";

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
    exchange_keys_and_search_the_capture(None).await;
}

#[tokio::test]
async fn no_base_key_is_in_what_signaling_relayed_in_a_recorded_room() {
    let recorder =
        DeviceKeys::generate(DeviceId::new(RECORDER).expect("valid id"), &mut rand::rng());
    exchange_keys_and_search_the_capture(Some(recorder)).await;
}

/// The recorder joined to the room: its socket, its keys and its view of the call.
struct RecorderMember {
    keys: DeviceKeys,
    ws: Client,
    call: String,
    /// The callers' bundles as the recorder saw them (roster updates).
    bundles: BTreeMap<String, VerifiedBundle>,
}

/// Five callers (and `recorder`, joined first, in a room whose signed policy names it) exchange
/// keys through the service; everything the service relayed, stored and exported is searched
/// for every caller's keys.
async fn exchange_keys_and_search_the_capture(recorder: Option<DeviceKeys>) {
    let s = TestServer::start(config()).await;
    let mut recorder = match recorder {
        None => {
            s.meeting(ROOM).await;
            None
        }
        Some(keys) => {
            s.create_room(json!({"name": ROOM, "kind": "meeting", "recording": common::recording_policy(ROOM, RECORDER, &keys)}))
                .await;
            let bundle: Value = serde_json::from_str(&keys.bundle().to_json()).expect("bundle");
            let mut ws = s.connect().await;
            ws.send(
                &json!({"type": "join", "v": 1, "room": ROOM, "device": bundle,
                "token": token(ROOM, "archiver", Role::Recorder), "name": "archiver"}),
            )
            .await;
            let joined = ws.recv_type("joined").await;
            assert!(
                joined["recording"].is_object(),
                "the room is recorded: {joined}"
            );
            let call = joined["call"].as_str().expect("call").to_owned();
            Some(RecorderMember {
                keys,
                ws,
                call,
                bundles: BTreeMap::new(),
            })
        }
    };
    // Each caller sees the other callers, and the recorder.
    let others = CALLERS - 1 + usize::from(recorder.is_some());

    let mut members: Vec<Member> = Vec::new();
    for n in 0..CALLERS {
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
        while member.bundles.len() < others {
            let roster = member.ws.recv_type("roster").await;
            for d in roster["added"].as_array().expect("added") {
                let id = d["device"].as_str().expect("id").to_owned();
                member.bundles.insert(id, verified(&d["bundle"]));
            }
        }
    }

    // Each member seals its key to each other member (and the recorder); signaling routes the
    // envelopes.
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
    let frames: Vec<Vec<u8>> = (0..CALLERS)
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
    for m in 0..CALLERS {
        let mut store = KeyStore::new();
        let mut opened = 0;
        while opened < CALLERS - 1 {
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

    // The recorder learns of the callers from roster updates, opens every caller's envelope and
    // decrypts every caller's frame.
    if let Some(rec) = &mut recorder {
        while rec.bundles.len() < CALLERS {
            let roster = rec.ws.recv_type("roster").await;
            for d in roster["added"].as_array().expect("added") {
                let id = d["device"].as_str().expect("id").to_owned();
                rec.bundles.insert(id, verified(&d["bundle"]));
            }
        }
        let mut store = KeyStore::new();
        let mut opened = std::collections::BTreeSet::new();
        while opened.len() < CALLERS {
            let msg = rec.ws.recv_type("key_envelope").await;
            let env: KeyEnvelope = serde_json::from_value(msg["envelope"].clone()).expect("parses");
            assert_eq!(
                env.recipient, RECORDER,
                "only envelopes for the recorder arrive"
            );
            let sender = members
                .iter()
                .position(|x| x.id == env.sender)
                .expect("a caller");
            let from = &rec.bundles[&env.sender];
            let (grant, key) = env
                .open(&rec.keys, from, ROOM, &rec.call)
                .expect("the recorder opens it");
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
                .expect("the recorder decrypts the caller's frame");
            assert_eq!(out, format!("hello from {sender}").as_bytes());
            opened.insert(sender);
        }
    }

    // Everything the service saw, stored and exported.
    let mut seen: Vec<u8> = Vec::new();
    let transcripts = members
        .iter()
        .map(|m| &m.ws.transcript)
        .chain(recorder.as_ref().map(|r| &r.ws.transcript));
    for transcript in transcripts {
        for t in transcript {
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
    if recorder.is_some() {
        assert!(
            detail.contains(RECORDER),
            "the detail lists the recorder: {detail}"
        );
    }
    seen.extend_from_slice(detail.as_bytes());
    seen.extend_from_slice(s.metrics().await.as_bytes());
    let envelopes = CALLERS * others;
    assert!(
        seen.len() > envelopes * 300,
        "the capture holds the {envelopes} envelopes and more ({} bytes)",
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
