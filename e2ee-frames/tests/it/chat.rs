//! Chat messages (docs/e2ee.md §6): sealed and opened through the public API, refused under
//! another generation, and byte for byte the vectors of `../data/chat-v1.json` (made with
//! Python's `cryptography`, independently of this crate; the browser twin checks the same file).

use e2ee_frames::chat::{self, ChatContext, ChatError, SealedChat};
use e2ee_frames::key::BaseKey;
use e2ee_frames::suite::CipherSuite;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    base_key: String,
    room: String,
    call: String,
    sender: String,
    slot: u16,
    generation: u16,
    step: u8,
    nonce: String,
    plaintext: String,
    ct: String,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

const CTX: ChatContext<'static> = ChatContext {
    room: "standup",
    call: "c-9aQ",
    sender: "dev-A",
    slot: 3,
};

#[test]
fn chat_seal_open_round_trip() {
    let key = BaseKey::random(&mut rand::rng());
    let text = "Lunch at 1? ☕".as_bytes();
    let sealed = chat::seal(&key, &CTX, 7, 0, text, &mut rand::rng()).expect("seals");
    // Through the JSON wire form, as the service relays it.
    let wire = serde_json::to_string(&sealed).unwrap();
    assert!(!wire.contains("Lunch"), "the wire form holds no plaintext");
    let back: SealedChat = serde_json::from_str(&wire).unwrap();
    assert_eq!(back.open(&key, &CTX, 7, 0).expect("opens"), text);
    // Two seals of the same text differ (random nonce).
    let again = chat::seal(&key, &CTX, 7, 0, text, &mut rand::rng()).unwrap();
    assert_ne!(again.ct, sealed.ct);
}

#[test]
fn chat_under_the_wrong_generation_fails() {
    let gen7 = BaseKey::random(&mut rand::rng());
    let gen8 = BaseKey::random(&mut rand::rng());
    let sealed = chat::seal(&gen7, &CTX, 7, 0, b"hi", &mut rand::rng()).unwrap();
    assert_eq!(
        sealed.open(&gen8, &CTX, 8, 0),
        Err(ChatError::WrongKey {
            generation: 7,
            step: 0
        })
    );
    // Generation 8's key, claimed as generation 7's: does not authenticate.
    assert_eq!(
        sealed.open(&gen8, &CTX, 7, 0),
        Err(ChatError::Authentication)
    );
    // The generation in the clear is authenticated: relabelled, it fails under the right key.
    let mut relabelled = sealed.clone();
    relabelled.generation = 8;
    assert_eq!(
        relabelled.open(&gen7, &CTX, 8, 0),
        Err(ChatError::Authentication)
    );
    // A ratcheted key (the next step) is another key too.
    let step1 = gen7.ratchet(CipherSuite::Aes256GcmSha512_128);
    assert_eq!(
        sealed.open(&step1, &CTX, 7, 0),
        Err(ChatError::Authentication)
    );
}

#[test]
fn chat_vectors_match() {
    let vectors: Vectors =
        serde_json::from_str(include_str!("../data/chat-v1.json")).expect("vector file");
    assert!(vectors.cases.len() >= 2);
    for case in &vectors.cases {
        let key = BaseKey::from_bytes(&unhex(&case.base_key)).unwrap();
        let ctx = ChatContext {
            room: &case.room,
            call: &case.call,
            sender: &case.sender,
            slot: case.slot,
        };
        let nonce: [u8; 12] = unhex(&case.nonce).try_into().unwrap();
        let sealed = chat::seal_with_nonce(
            &key,
            &ctx,
            case.generation,
            case.step,
            nonce,
            &unhex(&case.plaintext),
        )
        .unwrap();
        assert_eq!(hex::encode(&sealed.ct), case.ct, "{} seals", case.sender);
        let given = SealedChat {
            v: 1,
            generation: case.generation,
            step: case.step,
            nonce,
            ct: unhex(&case.ct),
        };
        assert_eq!(
            given.open(&key, &ctx, case.generation, case.step).unwrap(),
            unhex(&case.plaintext)
        );
    }
}
