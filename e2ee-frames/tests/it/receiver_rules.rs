//! Receiver rules of docs/e2ee.md §1.3 with real keys: bounded ratchet look-ahead, forward
//! secrecy with a 2 s grace for the previous step, the replay window (moves only after
//! authentication) and eviction of old generations.

use std::time::{Duration, Instant};

use e2ee_frames::{BaseKey, CipherSuite, Codec, KeyStore, Kid, ReceiveError, Sender, Stream};

const SUITE: CipherSuite = CipherSuite::DEFAULT;

fn key(byte: u8) -> BaseKey {
    BaseKey::from_bytes(&[byte; 32]).unwrap()
}

fn frame(sender: &mut Sender, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    sender
        .encrypt(Stream::Camera, b"", payload, &mut out)
        .unwrap();
    out
}

fn open(store: &mut KeyStore, now: Instant, f: &[u8]) -> Result<Vec<u8>, ReceiveError> {
    let mut out = Vec::new();
    store.decrypt(now, f, b"", &mut out).map(|_| out)
}

#[test]
fn ratchet_look_ahead_is_bounded_to_16_steps() {
    let t0 = Instant::now();
    let mut store = KeyStore::new();
    store.install(t0, 7, 1, 0, SUITE, key(1)).unwrap();

    let mut far = Sender::new(SUITE, 7, 1, key(1)).unwrap();
    for _ in 0..17 {
        far.ratchet().unwrap();
    }
    let f17 = frame(&mut far, b"step 17");
    assert_eq!(
        open(&mut store, t0, &f17),
        Err(ReceiveError::RatchetBeyondBound {
            held: 0,
            requested: 17
        })
    );

    let mut near = Sender::new(SUITE, 7, 1, key(1)).unwrap();
    for _ in 0..16 {
        near.ratchet().unwrap();
    }
    let f16 = frame(&mut near, b"step 16");
    assert_eq!(open(&mut store, t0, &f16).unwrap(), b"step 16");
    assert_eq!(store.held_step(t0, 7, 1), Some(16));
    // From 16, step 17 is now within reach.
    assert_eq!(open(&mut store, t0, &f17).unwrap(), b"step 17");
    assert_eq!(store.held_step(t0, 7, 1), Some(17));
}

#[test]
fn old_steps_are_refused_except_the_previous_for_two_seconds() {
    let t0 = Instant::now();
    let mut store = KeyStore::new();
    store.install(t0, 3, 0, 0, SUITE, key(2)).unwrap();
    let mut sender = Sender::new(SUITE, 3, 0, key(2)).unwrap();
    let at0_a = frame(&mut sender, b"a");
    let at0_b = frame(&mut sender, b"b");
    let at0_c = frame(&mut sender, b"c");
    assert_eq!(open(&mut store, t0, &at0_a).unwrap(), b"a");

    sender.ratchet().unwrap();
    let at1 = frame(&mut sender, b"one");
    assert_eq!(open(&mut store, t0, &at1).unwrap(), b"one");
    // In-flight step-0 frame within 2 s: accepted.
    let t1 = t0 + Duration::from_millis(1_500);
    assert_eq!(open(&mut store, t1, &at0_b).unwrap(), b"b");
    // After 2 s the step-0 key is gone.
    let t2 = t0 + Duration::from_millis(2_001);
    assert_eq!(
        open(&mut store, t2, &at0_c),
        Err(ReceiveError::StepTooOld {
            held: 1,
            requested: 0
        })
    );

    // Two ratchets on: step 1 was the previous, step 0 is gone for good.
    sender.ratchet().unwrap();
    sender.ratchet().unwrap();
    let at3 = frame(&mut sender, b"three");
    assert_eq!(open(&mut store, t2, &at3).unwrap(), b"three");
    assert_eq!(
        open(&mut store, t2, &at0_c),
        Err(ReceiveError::StepTooOld {
            held: 3,
            requested: 0
        })
    );
}

#[test]
fn a_forged_frame_does_not_move_the_ratchet_or_the_window() {
    let t0 = Instant::now();
    let mut store = KeyStore::new();
    store.install(t0, 9, 4, 0, SUITE, key(3)).unwrap();

    // A forger without the key: right KID at step 5, wrong key.
    let mut forger = Sender::new(SUITE, 9, 4, key(99)).unwrap();
    for _ in 0..5 {
        forger.ratchet().unwrap();
    }
    let forged = frame(&mut forger, b"x");
    assert_eq!(
        open(&mut store, t0, &forged),
        Err(ReceiveError::Authentication)
    );
    assert_eq!(
        store.held_step(t0, 9, 4),
        Some(0),
        "ratchet moved on a forged frame"
    );

    // Forged frame with a huge counter at step 0 must not move the window.
    let mut forger0 = Sender::new(SUITE, 9, 4, key(99)).unwrap();
    forger0.advance_counter(Stream::Camera, 1_000_000).unwrap();
    let forged_high = frame(&mut forger0, b"x");
    assert_eq!(
        open(&mut store, t0, &forged_high),
        Err(ReceiveError::Authentication)
    );

    let mut sender = Sender::new(SUITE, 9, 4, key(3)).unwrap();
    let genuine = frame(&mut sender, b"genuine ctr 0");
    assert_eq!(open(&mut store, t0, &genuine).unwrap(), b"genuine ctr 0");
}

#[test]
fn replay_window_is_128_below_the_highest_authenticated() {
    let t0 = Instant::now();
    let mut store = KeyStore::new();
    store.install(t0, 1, 1, 0, SUITE, key(4)).unwrap();
    let mut sender = Sender::new(SUITE, 1, 1, key(4)).unwrap();
    let frames: Vec<Vec<u8>> = (0..300).map(|i| frame(&mut sender, &[i as u8])).collect();

    // Deliver 200 first, then late ones.
    open(&mut store, t0, &frames[200]).unwrap();
    assert_eq!(
        open(&mut store, t0, &frames[200]),
        Err(ReceiveError::Replay(200))
    );
    open(&mut store, t0, &frames[72]).unwrap(); // 200 - 128: the lowest tracked
    assert_eq!(
        open(&mut store, t0, &frames[71]),
        Err(ReceiveError::Replay(71))
    );
    assert_eq!(
        open(&mut store, t0, &frames[72]),
        Err(ReceiveError::Replay(72))
    );
    open(&mut store, t0, &frames[150]).unwrap();
    open(&mut store, t0, &frames[299]).unwrap();
    assert_eq!(
        open(&mut store, t0, &frames[150]),
        Err(ReceiveError::Replay(150))
    );
    assert_eq!(
        open(&mut store, t0, &frames[170]),
        Err(ReceiveError::Replay(170))
    );
    open(&mut store, t0, &frames[171]).unwrap();
}

#[test]
fn windows_are_per_kid() {
    let t0 = Instant::now();
    let mut store = KeyStore::new();
    store.install(t0, 2, 0, 0, SUITE, key(5)).unwrap();
    let mut sender = Sender::new(SUITE, 2, 0, key(5)).unwrap();
    let mut audio = Vec::new();
    let mut video = Vec::new();
    sender
        .encrypt(Stream::Audio, b"", b"a0", &mut audio)
        .unwrap();
    sender
        .encrypt(Stream::Camera, b"", b"v0", &mut video)
        .unwrap();
    // Both carry counter 0 under different KIDs: both accepted.
    assert_eq!(open(&mut store, t0, &audio).unwrap(), b"a0");
    assert_eq!(open(&mut store, t0, &video).unwrap(), b"v0");
}

#[test]
fn at_most_three_generations_and_old_ones_expire_after_a_newer_one_authenticates() {
    let t0 = Instant::now();
    let mut store = KeyStore::new();
    for g in 0..3u16 {
        store
            .install(t0, 5, g, 0, SUITE, key(10 + g as u8))
            .unwrap();
    }
    assert_eq!(store.generations(t0, 5), vec![0, 1, 2]);
    store.install(t0, 5, 3, 0, SUITE, key(13)).unwrap();
    assert_eq!(store.generations(t0, 5), vec![1, 2, 3], "oldest evicted");
    let mut g0 = Sender::new(SUITE, 5, 0, key(10)).unwrap();
    let f0 = frame(&mut g0, b"g0");
    let kid0 = Kid::new(5, Stream::Camera, 0, 0).unwrap().to_u64();
    assert_eq!(
        open(&mut store, t0, &f0),
        Err(ReceiveError::UnknownKid(kid0))
    );

    let mut g1 = Sender::new(SUITE, 5, 1, key(11)).unwrap();
    let mut g3 = Sender::new(SUITE, 5, 3, key(13)).unwrap();
    let g1_early = frame(&mut g1, b"g1 early");
    let g1_late = frame(&mut g1, b"g1 late");
    assert_eq!(open(&mut store, t0, &g1_early).unwrap(), b"g1 early");
    // Generation 3 authenticates its first frame at t0 + 1 s: 1 and 2 live until t0 + 11 s.
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(open(&mut store, t1, &frame(&mut g3, b"g3")).unwrap(), b"g3");
    let t_before = t0 + Duration::from_millis(10_999);
    assert_eq!(store.generations(t_before, 5), vec![1, 2, 3]);
    let t_after = t0 + Duration::from_secs(11);
    assert_eq!(store.generations(t_after, 5), vec![3]);
    assert!(matches!(
        open(&mut store, t_after, &g1_late),
        Err(ReceiveError::UnknownKid(_))
    ));
}

#[test]
fn media_frames_round_trip_through_sender_and_store() {
    let t0 = Instant::now();
    let mut store = KeyStore::new();
    store.install(t0, 12, 2, 0, SUITE, key(6)).unwrap();
    let mut sender = Sender::new(SUITE, 12, 2, key(6)).unwrap();
    let key_frame: Vec<u8> = (0..400u16).map(|i| (i as u8) & 0xfe).collect();
    let delta: Vec<u8> = (0..90u8).map(|i| i | 1).collect();
    let opus = vec![0xfc; 60];
    let mut wire = Vec::new();
    let mut back = Vec::new();
    for (codec, stream, f, prefix) in [
        (Codec::Vp8, Stream::Camera, &key_frame, 10),
        (Codec::Vp8, Stream::Camera, &delta, 3),
        (Codec::Opus, Stream::Audio, &opus, 1),
        (Codec::Vp8, Stream::Camera, &vec![0x00; 4], 4),
        (Codec::Opus, Stream::Audio, &vec![], 0),
    ] {
        sender.encrypt_media(stream, codec, f, &mut wire).unwrap();
        assert_eq!(&wire[..prefix], &f[..prefix], "clear prefix readable");
        let got = store.decrypt_media(t0, codec, &wire, &mut back).unwrap();
        assert_eq!(&back, f);
        assert_eq!(got.kid.stream(), stream);
    }
}

#[test]
fn frames_shorter_than_their_prefix_round_trip_at_every_length() {
    let t0 = Instant::now();
    for suite in CipherSuite::ALL {
        let mut store = KeyStore::new();
        store.install(t0, 4095, 65535, 0, suite, key(7)).unwrap();
        let mut sender = Sender::new(suite, 4095, 65535, key(7)).unwrap();
        // Long headers too: an 8-byte counter.
        sender
            .advance_counter(Stream::Camera, u64::MAX - 100)
            .unwrap();
        let mut wire = Vec::new();
        let mut back = Vec::new();
        for len in 0..=12usize {
            for (codec, stream, first) in [
                (Codec::Vp8, Stream::Camera, 0x00u8),
                (Codec::Vp8, Stream::Camera, 0x01),
                (Codec::Opus, Stream::Audio, 0xfc),
                (Codec::Vp9, Stream::ScreenVideo, 0x80),
            ] {
                let mut frame: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                if let Some(b) = frame.first_mut() {
                    *b = first;
                }
                sender
                    .encrypt_media(stream, codec, &frame, &mut wire)
                    .unwrap();
                store
                    .decrypt_media(t0, codec, &wire, &mut back)
                    .unwrap_or_else(|e| {
                        panic!("{suite:?} {codec:?} len {len}: {e}");
                    });
                assert_eq!(back, frame, "{suite:?} {codec:?} len {len}");
            }
        }
    }
}

#[test]
fn a_sender_made_at_a_ratcheted_step_equals_one_that_ratcheted() {
    // What a key policy hands to the media path after a join: the step's key, not the
    // generation's first key (which it no longer holds).
    let suite = CipherSuite::Aes256GcmSha512_128;
    let mut ratcheted = Sender::new(suite, 3, 7, key(9)).unwrap();
    ratcheted.ratchet().unwrap();
    ratcheted.ratchet().unwrap();
    let step_key = ratcheted.base_key().clone();
    assert_eq!(step_key.as_bytes().len(), 64);
    let mut made = Sender::at_step(suite, 3, 7, 2, step_key).unwrap();
    assert_eq!(made.kid(Stream::Audio), ratcheted.kid(Stream::Audio));
    assert_eq!(frame(&mut made, b"same"), frame(&mut ratcheted, b"same"));
    // A receiver holding step 0 follows it by ratcheting.
    let mut store = KeyStore::new();
    let now = Instant::now();
    store.install(now, 3, 7, 0, suite, key(9)).unwrap();
    let f = frame(&mut made, b"hello");
    assert_eq!(open(&mut store, now, &f).unwrap(), b"hello");
    // Out-of-range slots are refused as by `Sender::new`.
    assert!(Sender::at_step(suite, 4096, 7, 2, key(9)).is_err());
}
