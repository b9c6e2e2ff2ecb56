//! The whole receive path: arbitrary bytes as SFrame frames and as media frames against a key
//! store holding keys for every suite. Never panics, never authenticates garbage, and leaves
//! the output empty on error. The same bytes as a plaintext round-trip through a sender.
#![no_main]

use std::time::{Duration, Instant};

use e2ee_frames::{BaseKey, CipherSuite, Codec, KeyStore, Sender, Stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let base = BaseKey::from_bytes(&[0x5a; 32]).expect("32 bytes");
    let mut store = KeyStore::new();
    for suite in CipherSuite::ALL {
        // Slots 1..=5 hold generation 0 at step 0 with each suite.
        store
            .install(now, suite.id(), 0, 0, suite, base.clone())
            .expect("fresh store");
    }
    let codec = [Codec::Vp8, Codec::Opus, Codec::Vp9][usize::from(selector % 3)];
    let mut out = Vec::new();
    if store.decrypt(now, rest, b"", &mut out).is_err() {
        assert!(out.is_empty());
    }
    out.clear();
    if store.decrypt_media(now, codec, rest, &mut out).is_err() {
        assert!(out.is_empty());
    }

    // Round trip: the input as a media frame through a sender and back.
    let suite = CipherSuite::ALL[usize::from(selector % 5)];
    let mut sender = Sender::new(suite, suite.id(), 0, base).expect("valid slot");
    let mut wire = Vec::new();
    sender
        .encrypt_media(Stream::Camera, codec, rest, &mut wire)
        .expect("fresh counter");
    let later = now + Duration::from_millis(1);
    let mut back = Vec::new();
    store
        .decrypt_media(later, codec, &wire, &mut back)
        .expect("own frame decrypts");
    assert_eq!(back, rest);
});
