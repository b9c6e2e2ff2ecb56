//! Property tests (proptest): round trips for arbitrary frames, KIDs and counters; any single
//! flipped bit fails authentication; replays are refused; counters never repeat.

use std::collections::HashSet;
use std::time::Instant;

use e2ee_frames::{
    BaseKey, CipherSuite, Codec, Header, KeyStore, ReceiveError, Sender, SframeKey, Stream,
};
use proptest::prelude::*;

fn suite() -> impl Strategy<Value = CipherSuite> {
    prop::sample::select(CipherSuite::ALL.to_vec())
}

fn stream() -> impl Strategy<Value = Stream> {
    prop::sample::select(Stream::ALL.to_vec())
}

fn codec() -> impl Strategy<Value = Codec> {
    prop::sample::select(vec![Codec::Vp8, Codec::Opus, Codec::Vp9])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_round_trips(kid: u64, ctr: u64) {
        let h = Header::new(kid, ctr);
        let enc = h.encode();
        prop_assert_eq!(Header::parse(enc.as_bytes()), Ok((h, enc.len())));
    }

    #[test]
    fn sframe_round_trips_any_kid_counter_and_frame(
        suite in suite(),
        base in prop::collection::vec(any::<u8>(), 1..=64),
        kid: u64,
        ctr: u64,
        metadata in prop::collection::vec(any::<u8>(), 0..40),
        plaintext in prop::collection::vec(any::<u8>(), 0..1500),
    ) {
        let key = SframeKey::derive(suite, &BaseKey::from_bytes(&base).unwrap(), kid);
        let mut wire = Vec::new();
        let header = key.encrypt_into(ctr, &metadata, &plaintext, &mut wire).unwrap();
        prop_assert_eq!(header, Header::new(kid, ctr));
        prop_assert_eq!(wire.len(), header.encoded_len() + plaintext.len() + suite.tag_len());
        let mut back = Vec::new();
        prop_assert_eq!(key.decrypt_into(&wire, &metadata, &mut back), Ok(header));
        prop_assert_eq!(back, plaintext);
    }

    #[test]
    fn any_flipped_bit_in_a_media_frame_fails(
        suite in suite(),
        slot in 0u16..4096,
        generation: u16,
        stream in stream(),
        codec in codec(),
        frame in prop::collection::vec(any::<u8>(), 0..600),
        bit_seed: u64,
        ctr in 0u64..1 << 40,
    ) {
        let now = Instant::now();
        let base = BaseKey::from_bytes(&[0x42; 32]).unwrap();
        let mut sender = Sender::new(suite, slot, generation, base.clone()).unwrap();
        sender.advance_counter(stream, ctr).unwrap();
        let mut wire = Vec::new();
        sender.encrypt_media(stream, codec, &frame, &mut wire).unwrap();

        // Flip one bit anywhere: prefix, header, ciphertext or tag.
        let bit = (bit_seed % (wire.len() as u64 * 8)) as usize;
        let mut bad = wire.clone();
        bad[bit / 8] ^= 1 << (bit % 8);

        let mut store = KeyStore::new();
        store.install(now, slot, generation, 0, suite, base).unwrap();
        let mut out = Vec::new();
        prop_assert!(store.decrypt_media(now, codec, &bad, &mut out).is_err(), "bit {} accepted", bit);
        prop_assert!(out.is_empty());
        // The genuine frame still decrypts (the failure changed nothing).
        store.decrypt_media(now, codec, &wire, &mut out).unwrap();
        prop_assert_eq!(out, frame);
    }

    #[test]
    fn a_replayed_frame_is_refused(
        suite in suite(),
        stream in stream(),
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..20),
        replay_index: prop::sample::Index,
    ) {
        let now = Instant::now();
        let base = BaseKey::from_bytes(&[7; 32]).unwrap();
        let mut sender = Sender::new(suite, 1, 1, base.clone()).unwrap();
        let mut store = KeyStore::new();
        store.install(now, 1, 1, 0, suite, base).unwrap();
        let mut wires = Vec::new();
        for f in &frames {
            let mut w = Vec::new();
            sender.encrypt(stream, b"meta", f, &mut w).unwrap();
            let mut out = Vec::new();
            let got = store.decrypt(now, &w, b"meta", &mut out).unwrap();
            prop_assert_eq!(&out, f);
            wires.push((w, got.ctr));
        }
        let (w, ctr) = &wires[replay_index.index(wires.len())];
        let mut out = Vec::new();
        prop_assert_eq!(store.decrypt(now, w, b"meta", &mut out), Err(ReceiveError::Replay(*ctr)));
    }

    #[test]
    fn counters_never_repeat(
        suite in suite(),
        start in prop::option::of(any::<u64>()),
        ops in prop::collection::vec((stream(), any::<bool>()), 1..200),
    ) {
        let mut sender = Sender::new(suite, 100, 9, BaseKey::from_bytes(&[1; 32]).unwrap()).unwrap();
        if let Some(s) = start {
            // Start close to the end of the counter space.
            sender.advance_counter(Stream::Audio, u64::MAX - (s % 64)).unwrap();
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (stream, ratchet) in ops {
            if ratchet && sender.step() < 255 {
                sender.ratchet().unwrap();
            }
            out.clear();
            match sender.encrypt(stream, b"", b"x", &mut out) {
                Ok(h) => prop_assert!(seen.insert((h.kid, h.ctr)), "nonce reuse {:?}", h),
                Err(e) => {
                    prop_assert_eq!(e, e2ee_frames::SendError::CounterExhausted);
                    prop_assert_eq!(sender.next_counter(stream), None);
                }
            }
        }
    }
}
