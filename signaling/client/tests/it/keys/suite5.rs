use call_client::keys::{KeyInput, Membership};
use e2ee_frames::CipherSuite;

use super::{config_with, started_among};

#[test]
fn suite5_64_byte_ratcheted_key_is_sent_and_opened() {
    let mut call = started_among(
        &["a", "b", "c"],
        &["a", "b"],
        config_with(CipherSuite::Aes256GcmSha512_128),
    );
    // Generation 0 is a fresh 32-byte key: ct = 32 + 16 bytes.
    assert!(call.sent.iter().all(|s| s.ct_len == 48));

    let t = call.at(2_000);
    call.add_to_roster("a", &["c"], t);
    call.add_to_roster("c", &["a"], t);
    let before = call.sent.len();
    call.input(
        "a",
        t,
        KeyInput::Membership(Membership::Ratchet {
            joined: vec!["c".into()],
        }),
    );

    // The ratcheted key is SHA-512's Nh = 64 bytes, sent as it is: ct = 64 + 16 bytes.
    let sent = &call.sent[before..];
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to.as_str(), sent[0].step, sent[0].ct_len),
        ("c", 1, 80)
    );
    assert_eq!(
        call.get("a")
            .sender_keys
            .last()
            .unwrap()
            .key
            .as_bytes()
            .len(),
        64
    );
    // c opened it: a 64-byte key at step 1, and it decrypts a's frames.
    assert_eq!(
        call.get("c").received.last().cloned(),
        Some(("a".into(), 0, 1, 64))
    );
    assert!(call.frame_decrypts("a", "c", t));
    assert!(call.frame_decrypts("a", "b", t));
    // And c acknowledged step 1.
    assert!(call.acks.contains(&("c".into(), "a".into(), 0, 1)));
}
