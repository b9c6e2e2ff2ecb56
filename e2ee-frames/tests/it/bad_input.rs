//! Bad input returns a specific error and never panics: truncated headers, maximal KID and CTR,
//! unknown KID, ratchet beyond the bound, wrong recipient, bad signature, wrong suite, and a
//! length sweep 0..2048 over decrypt.

use std::time::Instant;

use e2ee_frames::aead::{AeadError, SframeAead};
use e2ee_frames::hpke_base::HpkeError;
use e2ee_frames::{
    BaseKey, BundleError, CipherSuite, Codec, DeviceBundle, DeviceId, DeviceKeys, EnvelopeError,
    Header, HeaderError, InstallError, KeyEnvelope, KeyGrant, KeyStore, Kid, KidError,
    ReceiveError, SendError, Sender, SframeError, SframeKey, Stream, UnknownSuite,
};

fn base() -> BaseKey {
    BaseKey::from_bytes(&[9; 32]).unwrap()
}

#[test]
fn truncated_headers() {
    assert_eq!(Header::parse(&[]), Err(HeaderError::Empty));
    // Config byte announcing an 8-byte KID and 8-byte CTR, with 0..16 bytes following.
    let full = Header::new(u64::MAX, u64::MAX).encode();
    assert_eq!(full.as_bytes()[0], 0xff);
    for n in 1..17 {
        assert_eq!(
            Header::parse(&full.as_bytes()[..n]),
            Err(HeaderError::Truncated {
                needed: 17,
                available: n
            })
        );
    }
    let key = SframeKey::derive(CipherSuite::DEFAULT, &base(), u64::MAX);
    let mut out = Vec::new();
    assert_eq!(
        key.decrypt_into(&[0x88, 1], b"", &mut out),
        Err(SframeError::Header(HeaderError::Truncated {
            needed: 3,
            available: 2
        }))
    );
    let mut store = KeyStore::new();
    assert_eq!(
        store.decrypt(Instant::now(), &[0xf0], b"", &mut out),
        Err(ReceiveError::Header(HeaderError::Truncated {
            needed: 9,
            available: 1
        }))
    );
}

#[test]
fn maximal_kid_and_ctr() {
    // SFrame itself takes any 64-bit KID and counter.
    let key = SframeKey::derive(CipherSuite::DEFAULT, &base(), u64::MAX);
    let mut wire = Vec::new();
    key.encrypt_into(u64::MAX, b"m", b"payload", &mut wire)
        .unwrap();
    assert_eq!(wire.len(), 17 + 7 + 16);
    let mut out = Vec::new();
    assert_eq!(
        key.decrypt_into(&wire, b"m", &mut out),
        Ok(Header::new(u64::MAX, u64::MAX))
    );
    // The project's KID layout refuses bits 40..63.
    let mut store = KeyStore::new();
    assert_eq!(
        store.decrypt(Instant::now(), &wire, b"m", &mut out),
        Err(ReceiveError::Kid(KidError::HighBitsSet(u64::MAX)))
    );
    // The largest valid KID works end to end, and the counter refuses to wrap.
    let now = Instant::now();
    let kid = Kid::new(4095, Stream::ScreenAudio, u16::MAX, 0).unwrap();
    let mut sender = Sender::new(CipherSuite::DEFAULT, 4095, u16::MAX, base()).unwrap();
    sender
        .advance_counter(Stream::ScreenAudio, u64::MAX)
        .unwrap();
    let mut frame = Vec::new();
    let h = sender
        .encrypt(Stream::ScreenAudio, b"", b"last", &mut frame)
        .unwrap();
    assert_eq!(h, Header::new(kid.to_u64(), u64::MAX));
    assert_eq!(
        sender.encrypt(Stream::ScreenAudio, b"", b"wrap", &mut Vec::new()),
        Err(SendError::CounterExhausted)
    );
    assert_eq!(
        sender
            .advance_counter(Stream::Audio, 0)
            .and(sender.advance_counter(Stream::ScreenAudio, 0)),
        Err(SendError::CounterExhausted)
    );
    store
        .install(now, 4095, u16::MAX, 0, CipherSuite::DEFAULT, base())
        .unwrap();
    assert_eq!(
        store.decrypt(now, &frame, b"", &mut out).unwrap().ctr,
        u64::MAX
    );
    // Reserved stream numbers and slot 4096 are refused.
    assert_eq!(Kid::from_u64(0x0f00), Err(KidError::ReservedStream(15)));
    assert_eq!(
        Sender::new(CipherSuite::DEFAULT, 4096, 0, base()).err(),
        Some(SendError::Kid(KidError::SlotOutOfRange(4096)))
    );
}

#[test]
fn unknown_kid_and_ratchet_beyond_bound() {
    let now = Instant::now();
    let mut store = KeyStore::new();
    store
        .install(now, 1, 1, 10, CipherSuite::DEFAULT, base())
        .unwrap();
    let mut out = Vec::new();
    for (slot, generation) in [(2, 1), (1, 2)] {
        let kid = Kid::new(slot, Stream::Audio, generation, 10)
            .unwrap()
            .to_u64();
        let key = SframeKey::derive(CipherSuite::DEFAULT, &base(), kid);
        let mut wire = Vec::new();
        key.encrypt_into(0, b"", b"x", &mut wire).unwrap();
        assert_eq!(
            store.decrypt(now, &wire, b"", &mut out),
            Err(ReceiveError::UnknownKid(kid))
        );
    }
    for step in [27u8, 255] {
        let kid = Kid::new(1, Stream::Audio, 1, step).unwrap().to_u64();
        let mut wire = Vec::new();
        SframeKey::derive(CipherSuite::DEFAULT, &base(), kid)
            .encrypt_into(0, b"", b"x", &mut wire)
            .unwrap();
        assert_eq!(
            store.decrypt(now, &wire, b"", &mut out),
            Err(ReceiveError::RatchetBeyondBound {
                held: 10,
                requested: step
            })
        );
    }
    let mut sender = Sender::new(CipherSuite::DEFAULT, 1, 1, base()).unwrap();
    for _ in 0..255 {
        sender.ratchet().unwrap();
    }
    assert_eq!(sender.ratchet(), Err(SendError::StepExhausted));
    assert_eq!(
        store.install(now, 1, 1, 3, CipherSuite::DEFAULT, base()),
        Err(InstallError::StaleStep {
            held: 10,
            offered: 3
        })
    );
}

#[test]
fn wrong_suite() {
    assert_eq!(CipherSuite::try_from(0), Err(UnknownSuite(0)));
    assert_eq!(CipherSuite::try_from(6), Err(UnknownSuite(6)));
    assert_eq!(
        SframeAead::new(CipherSuite::Aes128GcmSha256_128, &[0; 32]).err(),
        Some(AeadError::KeyLength {
            expected: 16,
            actual: 32
        })
    );
    // A frame sealed under suite 4 does not open under the same base key held as suite 5.
    let now = Instant::now();
    let mut sender = Sender::new(CipherSuite::Aes128GcmSha256_128, 1, 0, base()).unwrap();
    let mut wire = Vec::new();
    sender
        .encrypt(Stream::Audio, b"", b"hello", &mut wire)
        .unwrap();
    let mut store = KeyStore::new();
    store
        .install(now, 1, 0, 0, CipherSuite::DEFAULT, base())
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        store.decrypt(now, &wire, b"", &mut out),
        Err(ReceiveError::Authentication)
    );
    assert_eq!(
        store.install(now, 1, 0, 1, CipherSuite::Aes128GcmSha256_128, base()),
        Err(InstallError::SuiteMismatch { held: 5 })
    );
}

fn device(name: &str) -> DeviceKeys {
    DeviceKeys::generate(DeviceId::new(name).unwrap(), &mut rand::rng())
}

fn grant() -> KeyGrant {
    KeyGrant {
        slot: 3,
        generation: 7,
        step: 0,
        suite: CipherSuite::DEFAULT,
    }
}

#[test]
fn wrong_recipient_room_call_and_bad_signatures() {
    let (alice, bob, eve) = (device("dev-A"), device("dev-B"), device("dev-E"));
    let alice_b = alice.bundle().verify().unwrap();
    let bob_b = bob.bundle().verify().unwrap();
    let key = BaseKey::random(&mut rand::rng());
    let env = KeyEnvelope::seal(
        &alice,
        &bob_b,
        "standup",
        "c-1",
        grant(),
        &key,
        &mut rand::rng(),
    )
    .unwrap();
    assert_eq!(env.ct.len(), 48);

    let (g, opened) = env.open(&bob, &alice_b, "standup", "c-1").unwrap();
    assert_eq!((g, opened), (grant(), key.clone()));

    assert_eq!(
        env.open(&eve, &alice_b, "standup", "c-1"),
        Err(EnvelopeError::WrongRecipient)
    );
    // A device that takes Bob's name but not his HPKE key cannot open it.
    let impostor = device("dev-B");
    assert_eq!(
        env.open(&impostor, &alice_b, "standup", "c-1"),
        Err(EnvelopeError::Hpke(HpkeError::Open))
    );
    assert_eq!(
        env.open(&bob, &alice_b, "other", "c-1"),
        Err(EnvelopeError::WrongRoom)
    );
    assert_eq!(
        env.open(&bob, &alice_b, "standup", "c-2"),
        Err(EnvelopeError::WrongCall)
    );
    assert_eq!(
        env.open(&bob, &bob_b, "standup", "c-1"),
        Err(EnvelopeError::SenderMismatch)
    );

    // Eve relabels the recipient to herself: the signature no longer verifies, and even with
    // the signature out of the way HPKE would not open for her key.
    let mut relabelled = env.clone();
    relabelled.recipient = "dev-E".into();
    assert_eq!(
        relabelled.open(&eve, &alice_b, "standup", "c-1"),
        Err(EnvelopeError::BadSignature)
    );

    // Every signed field is covered.
    let mut tampered: Vec<KeyEnvelope> = Vec::new();
    for f in 0..6 {
        let mut e = env.clone();
        match f {
            0 => e.step = 1,
            1 => e.generation ^= 1,
            2 => e.slot ^= 1,
            3 => e.suite = 4,
            4 => e.ct[0] ^= 1,
            _ => e.enc[0] ^= 1,
        }
        tampered.push(e);
    }
    let mut unknown_suite = env.clone();
    unknown_suite.suite = 6;
    tampered.push(unknown_suite);
    let mut bad_sig = env.clone();
    bad_sig.sig[10] ^= 1;
    tampered.push(bad_sig);
    for e in tampered {
        assert_eq!(
            e.open(&bob, &alice_b, "standup", "c-1"),
            Err(EnvelopeError::BadSignature)
        );
    }

    // Eve signs her own envelope but claims to be Alice: Alice's key does not verify it.
    let mut forged = KeyEnvelope::seal(
        &eve,
        &bob_b,
        "standup",
        "c-1",
        grant(),
        &key,
        &mut rand::rng(),
    )
    .unwrap();
    forged.sender = "dev-A".into();
    assert_eq!(
        forged.open(&bob, &alice_b, "standup", "c-1"),
        Err(EnvelopeError::BadSignature)
    );

    // The key's length follows suite and step: 32 at step 0, Nh once ratcheted (64 for the
    // default suite), so ct is 48 or 80 bytes.
    let ratcheted = key.ratchet(CipherSuite::DEFAULT);
    let step1 = KeyGrant { step: 1, ..grant() };
    let env1 = KeyEnvelope::seal(
        &alice,
        &bob_b,
        "r",
        "c",
        step1,
        &ratcheted,
        &mut rand::rng(),
    )
    .unwrap();
    assert_eq!(env1.ct.len(), 80);
    assert_eq!(
        env1.open(&bob, &alice_b, "r", "c").unwrap(),
        (step1, ratcheted.clone())
    );
    let sha256_step1 = KeyGrant {
        step: 1,
        suite: CipherSuite::Aes128GcmSha256_128,
        ..grant()
    };
    let ratcheted_256 = key.ratchet(CipherSuite::Aes128GcmSha256_128);
    let env2 = KeyEnvelope::seal(
        &alice,
        &bob_b,
        "r",
        "c",
        sha256_step1,
        &ratcheted_256,
        &mut rand::rng(),
    )
    .unwrap();
    assert_eq!(env2.ct.len(), 48);
    for (g, k, expected) in [
        (grant(), &ratcheted, 32),
        (step1, &key, 64),
        (sha256_step1, &ratcheted, 32),
    ] {
        assert_eq!(
            KeyEnvelope::seal(&alice, &bob_b, "r", "c", g, k, &mut rand::rng()),
            Err(EnvelopeError::BaseKeyLength {
                expected,
                actual: k.as_bytes().len()
            })
        );
    }
    assert_eq!(
        KeyEnvelope::seal(
            &alice,
            &bob_b,
            "r",
            "c",
            KeyGrant {
                slot: 4096,
                ..grant()
            },
            &key,
            &mut rand::rng()
        ),
        Err(EnvelopeError::Kid(KidError::SlotOutOfRange(4096)))
    );
}

#[test]
fn bundles_and_json_refuse_bad_input() {
    let alice = device("dev-A");
    let bundle = alice.bundle();
    let json = bundle.to_json();
    assert_eq!(DeviceBundle::from_json(&json).unwrap(), bundle);
    assert!(!json.contains('='), "no base64 padding: {json}");

    let mut bad = bundle.clone();
    bad.hpke_key[0] ^= 1;
    assert_eq!(bad.verify().err(), Some(BundleError::BadSignature));
    let mut bad = bundle.clone();
    bad.device = "dev-B".into();
    assert_eq!(bad.verify().err(), Some(BundleError::BadSignature));
    let mut bad = bundle.clone();
    bad.device = "has space".into();
    assert!(matches!(bad.verify(), Err(BundleError::DeviceId(_))));
    let mut bad = bundle.clone();
    bad.v = 2;
    assert_eq!(bad.verify().err(), Some(BundleError::Version(2)));

    for text in [
        "",
        "{}",
        &json.replace("\"v\":1", "\"v\":\"1\""),
        &json.replacen("\"sig\":\"", "\"sig\":\"AA", 1),
    ] {
        assert!(
            matches!(DeviceBundle::from_json(text), Err(BundleError::Json(_))),
            "{text}"
        );
    }
    assert!(matches!(
        KeyEnvelope::from_json("{\"v\":1}"),
        Err(EnvelopeError::Json(_))
    ));
    for bad_id in ["", "a b", "é", &"x".repeat(65)] {
        assert!(DeviceId::new(bad_id).is_err());
    }
    assert!(DeviceId::new("x".repeat(64)).is_ok());
    assert_eq!(DeviceId::random(&mut rand::rng()).as_str().len(), 22);
}

#[test]
fn length_sweep_over_decrypt_never_panics() {
    let now = Instant::now();
    let mut store = KeyStore::new();
    for suite in CipherSuite::ALL {
        store.install(now, suite.id(), 0, 0, suite, base()).unwrap();
    }
    let mut out = Vec::new();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for len in 0..2048usize {
        for suite in CipherSuite::ALL {
            // Random bytes, and a well-formed header for a held KID followed by random bytes.
            let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let kid = Kid::new(suite.id(), Stream::Camera, 0, 0).unwrap().to_u64();
            let header = Header::new(kid, next() % 1000).encode();
            if len >= header.len() {
                junk[..header.len()].copy_from_slice(header.as_bytes());
            }
            let err = store.decrypt(now, &junk, b"", &mut out).unwrap_err();
            assert!(out.is_empty());
            if len >= header.len() {
                let body = len - header.len();
                let expected = if body < suite.tag_len() {
                    ReceiveError::TooShort
                } else {
                    ReceiveError::Authentication
                };
                assert_eq!(err, expected, "len {len} suite {suite:?}");
            }
            for codec in [Codec::Vp8, Codec::Opus, Codec::Vp9] {
                assert!(store.decrypt_media(now, codec, &junk, &mut out).is_err());
                assert!(out.is_empty());
            }
            let key = SframeKey::derive(suite, &base(), kid);
            assert!(key.decrypt_into(&junk, b"", &mut out).is_err());
        }
    }
}
