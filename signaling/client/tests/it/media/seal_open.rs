//! `seal_frame`/`open_frame`: the wire form keeps the clear prefix, opens to the same frame,
//! and refusals are sorted into missing key, replay and refused.

use std::time::Instant;

use call_client::media::{
    Codec, OpenError, Vp8Header, Vp8Packetizer, Vp8Reassembler, open_frame, seal_frame,
};
use e2ee_frames::{BaseKey, CipherSuite, KeyStore, Sender, Stream};

use super::frame;

const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;

fn sender_and_keys(slot: u16) -> (Sender, KeyStore) {
    let key = [slot as u8 ^ 0x5a; 32];
    let sender = Sender::new(SUITE, slot, 0, BaseKey::from_bytes(&key).unwrap()).unwrap();
    let mut keys = KeyStore::default();
    keys.install(
        Instant::now(),
        slot,
        0,
        0,
        SUITE,
        BaseKey::from_bytes(&key).unwrap(),
    )
    .unwrap();
    (sender, keys)
}

/// A VP8 keyframe header (640x360) followed by `len - 10` pattern bytes.
fn vp8_keyframe(len: usize) -> Vec<u8> {
    let mut f = frame(0x10, len);
    f[..10].copy_from_slice(&[0x10, 0x0c, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
    f
}

#[test]
fn a_sealed_frame_of_each_codec_opens_to_the_same_bytes() {
    let (mut sender, mut keys) = sender_and_keys(3);
    let (mut wire, mut opened) = (Vec::new(), Vec::new());
    for (codec, stream, f) in [
        (Codec::Vp8, Stream::Camera, vp8_keyframe(3000)),
        (Codec::Vp8, Stream::Camera, frame(0x11, 900)),
        (Codec::Opus, Stream::Audio, frame(0xfc, 80)),
    ] {
        seal_frame(&mut sender, stream, codec, &f, &mut wire).unwrap();
        assert!(wire.len() > f.len());
        assert_ne!(&wire[wire.len() - 40..], &f[f.len() - 40..]);
        let got = open_frame(&mut keys, Instant::now(), codec, &wire, &mut opened).unwrap();
        assert_eq!(opened, f);
        assert_eq!(got.kid.slot(), 3);
    }
}

#[test]
fn a_sealed_keyframe_survives_rtp_and_its_header_stays_readable() {
    let (mut sender, mut keys) = sender_and_keys(9);
    let f = vp8_keyframe(5000);
    let mut wire = Vec::new();
    seal_frame(&mut sender, Stream::Camera, Codec::Vp8, &f, &mut wire).unwrap();
    // What the SFU reads from the first packet: the clear keyframe header.
    let header = Vp8Header::parse(&wire).unwrap();
    assert!(header.keyframe);
    assert_eq!(header.picture_size, Some((640, 360)));
    let mut payloads = Vec::new();
    Vp8Packetizer::new(0).packetize(&wire, &mut payloads);
    let mut r = Vp8Reassembler::new();
    let last = payloads.len() - 1;
    for (i, p) in payloads.iter().enumerate().rev() {
        r.push(i as u16, 90_000, i == last, p).unwrap();
    }
    let assembled = r.next_frame().unwrap();
    assert!(assembled.keyframe);
    let mut opened = Vec::new();
    open_frame(
        &mut keys,
        Instant::now(),
        Codec::Vp8,
        assembled.data,
        &mut opened,
    )
    .unwrap();
    assert_eq!(opened, f);
}

#[test]
fn refusals_are_sorted_into_missing_key_replay_and_refused() {
    let (mut sender, mut keys) = sender_and_keys(1);
    let (mut wire, mut out) = (Vec::new(), Vec::new());
    let f = frame(0xfc, 40);
    seal_frame(&mut sender, Stream::Audio, Codec::Opus, &f, &mut wire).unwrap();
    let now = Instant::now();
    for flip in [0, 5, wire.len() - 1] {
        let mut bad = wire.clone();
        bad[flip] ^= 0x01;
        let e = open_frame(&mut keys, now, Codec::Opus, &bad, &mut out).unwrap_err();
        assert!(matches!(e, OpenError::Refused(_)), "flip {flip}: {e}");
    }
    for len in 0..wire.len() {
        let e = open_frame(&mut keys, now, Codec::Opus, &wire[..len], &mut out).unwrap_err();
        assert!(matches!(e, OpenError::Refused(_)), "length {len}: {e}");
    }
    open_frame(&mut keys, now, Codec::Opus, &wire, &mut out).unwrap();
    let e = open_frame(&mut keys, now, Codec::Opus, &wire, &mut out).unwrap_err();
    assert!(matches!(e, OpenError::Replay(_)), "{e}");
    let (mut stranger, _) = sender_and_keys(2);
    seal_frame(&mut stranger, Stream::Audio, Codec::Opus, &f, &mut wire).unwrap();
    let e = open_frame(&mut keys, now, Codec::Opus, &wire, &mut out).unwrap_err();
    assert!(matches!(e, OpenError::KeyMissing(_)), "{e}");
}
