//! The emoji sequence (docs/e2ee.md §4.1): the vectors of `../data/emoji-v1.json` (made with
//! Python's hashlib/hmac, independently of this crate; the browser module's `emoji.test.mjs`
//! checks the same file), symmetry, and sensitivity to either key and device id.

use e2ee_frames::emoji_sequence::{SEQUENCE_LEN, SYMBOLS_PER_HALF};
use e2ee_frames::{DeviceIdentity, EMOJI_TABLE, emoji_sequence, safety_number};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    table: Vec<Symbol>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Symbol {
    emoji: String,
    word: String,
}

#[derive(Deserialize)]
struct Device {
    device: String,
    identity_key: String,
}

#[derive(Deserialize)]
struct Case {
    a: Device,
    b: Device,
    safety_number: String,
    indices: Vec<u8>,
    emoji: String,
    words: String,
}

fn key(hex_key: &str) -> [u8; 32] {
    hex::decode(hex_key)
        .expect("hex key")
        .try_into()
        .expect("32-byte key")
}

#[test]
fn emoji_sequence_matches_the_vectors() {
    let vectors: Vectors =
        serde_json::from_str(include_str!("../data/emoji-v1.json")).expect("vector file");
    assert_eq!(vectors.table.len(), 64);
    for (i, (ours, theirs)) in EMOJI_TABLE.iter().zip(&vectors.table).enumerate() {
        assert_eq!(
            (ours.emoji, ours.word),
            (&*theirs.emoji, &*theirs.word),
            "symbol {i}"
        );
    }
    assert!(vectors.cases.len() >= 3);
    for case in &vectors.cases {
        let (ka, kb) = (key(&case.a.identity_key), key(&case.b.identity_key));
        let a = DeviceIdentity {
            device: &case.a.device,
            identity_key: &ka,
        };
        let b = DeviceIdentity {
            device: &case.b.device,
            identity_key: &kb,
        };
        assert_eq!(safety_number(a, b).digits(), case.safety_number);
        let seq = emoji_sequence(a, b);
        assert_eq!(
            seq.indices().as_slice(),
            case.indices.as_slice(),
            "{}",
            case.a.device
        );
        let emoji: Vec<&str> = seq.symbols().map(|s| s.emoji).collect();
        assert_eq!(emoji.join(" "), case.emoji);
        assert_eq!(seq.words(), case.words);
    }
}

#[test]
fn emoji_sequence_is_the_same_from_both_sides() {
    let (ka, kb) = ([0x11u8; 32], [0x22u8; 32]);
    let a = DeviceIdentity {
        device: "dev-A",
        identity_key: &ka,
    };
    let b = DeviceIdentity {
        device: "dev-B",
        identity_key: &kb,
    };
    let seq = emoji_sequence(a, b);
    assert_eq!(seq, emoji_sequence(b, a));
    assert_eq!(seq.indices().len(), SEQUENCE_LEN);
    assert!(seq.indices().iter().all(|&i| i < 64));
    assert!(
        seq.words().split(' ').count() >= SEQUENCE_LEN,
        "one word or more per symbol"
    );
    // Displayed as two groups of 8 emoji.
    let shown = seq.to_string();
    let (first, second) = shown.split_once(" · ").expect("two groups");
    assert_eq!(first.split(' ').count(), SYMBOLS_PER_HALF);
    assert_eq!(second.split(' ').count(), SYMBOLS_PER_HALF);
}

#[test]
fn different_identity_keys_give_a_different_sequence() {
    let (ka, kb) = ([0x11u8; 32], [0x22u8; 32]);
    let a = DeviceIdentity {
        device: "dev-A",
        identity_key: &ka,
    };
    let b = DeviceIdentity {
        device: "dev-B",
        identity_key: &kb,
    };
    let seq = emoji_sequence(a, b);
    // Each device's 8 symbols are its own: an impostor's key for B changes B's half and leaves
    // A's as it was (so the sequence differs in B's 8 symbols).
    for flip in [0usize, 17, 31] {
        let mut forged = kb;
        forged[flip] ^= 1;
        let impostor = DeviceIdentity {
            device: "dev-B",
            identity_key: &forged,
        };
        let other = emoji_sequence(a, impostor);
        assert_ne!(other, seq, "flipped byte {flip}");
        let halves = |s: &e2ee_frames::EmojiSequence| {
            let (x, y) = s.indices().split_at(SYMBOLS_PER_HALF);
            [x.to_vec(), y.to_vec()]
        };
        let a_half = halves(&emoji_sequence(a, a))[0].clone();
        assert!(halves(&seq).contains(&a_half));
        assert!(halves(&other).contains(&a_half), "A's half stays");
    }
    let mut forged = ka;
    forged[0] ^= 0x80;
    let a2 = DeviceIdentity {
        device: "dev-A",
        identity_key: &forged,
    };
    assert_ne!(emoji_sequence(a2, b), seq);
    // The device id is bound as well (as in the safety number).
    let renamed = DeviceIdentity {
        device: "dev-C",
        identity_key: &kb,
    };
    assert_ne!(emoji_sequence(a, renamed), seq);
}
