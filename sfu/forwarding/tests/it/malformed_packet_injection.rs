//! Malformed RTP and RTCP at every length from 0 to 1500 bytes: each is an `Err` that is
//! counted, nothing panics, and other subscribers keep receiving.

use crate::common::*;
use proptest::prelude::*;
use sfu_forwarding::{Config, PacketError, rtcp, twcc};

/// Deterministic pseudo-random bytes (xorshift), so the sweep is reproducible.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A valid camera packet carrying extensions and a full VP8 descriptor, `len` bytes long.
fn valid_rtp(len: usize) -> Vec<u8> {
    let payload = vp8_payload(3, 1, true, true, &vec![0x55; len.saturating_sub(34)]);
    rtp(
        5002,
        VIDEO_PT,
        9,
        9,
        true,
        &[(1, b"v0"), (2, b"f"), (5, &[0, 1])],
        &payload,
    )
    .to_vec()
}

fn valid_rtcp() -> Vec<u8> {
    let mut b = Vec::new();
    rtcp::write_rr(
        &mut b,
        1,
        &[rtcp::ReportBlock {
            ssrc: 10_000,
            ..Default::default()
        }],
    );
    rtcp::write_nack(&mut b, 1, 10_000, &[1, 2, 3]);
    rtcp::write_pli(&mut b, 1, 10_000);
    twcc::write_feedback(&mut b, 1, 0, 0, 0, &[Some(1000), None, Some(3000)]);
    b
}

/// Checks the other subscriber still gets a valid keyframe after the abuse.
fn still_forwarding(r: &mut CameraRoom) {
    let healthy = r.subscribers[1];
    let got = received_by(&r.send_frame([true; 3]), healthy);
    assert!(!got.is_empty(), "the healthy subscriber keeps receiving");
}

#[test]
fn rtp_of_every_length_from_0_to_1500_never_panics() {
    let mut r = CameraRoom::new(Config::default(), 2, true);
    r.send_frame([true; 3]);
    let attacker = r.publisher;
    let base = valid_rtp(1600);
    let mut errors = 0u64;
    for len in 0..=1500 {
        // Truncations of a valid packet, random bytes, and random bytes with a valid version.
        let mut cases = vec![base[..len].to_vec(), noise(len, len as u64 + 1)];
        let mut v2 = noise(len, len as u64 + 7);
        if let Some(b) = v2.first_mut() {
            *b = 0x90 | (*b & 0x2f);
        }
        if let Some(b) = v2.get_mut(1) {
            *b = VIDEO_PT;
        }
        cases.push(v2);
        for case in cases {
            if r.sim
                .sfu
                .handle_rtp(r.sim.now, attacker, case.into())
                .is_err()
            {
                errors += 1;
            }
        }
        r.sim.drain();
    }
    let d = r.sim.sfu.metrics().dropped;
    assert!(errors > 2500, "{errors}");
    assert_eq!(
        d.malformed + d.unknown_ssrc + d.not_publisher + d.unknown_participant,
        errors,
        "every refusal is counted"
    );
    still_forwarding(&mut r);
}

#[test]
fn rtcp_of_every_length_from_0_to_1500_never_panics() {
    let mut r = CameraRoom::new(Config::default(), 2, true);
    r.send_frame([true; 3]);
    let attacker = r.subscribers[0];
    let mut base = valid_rtcp();
    while base.len() < 1500 {
        base.extend(valid_rtcp());
    }
    let mut errors = 0u64;
    for len in 0..=1500 {
        let mut v2 = noise(len, len as u64 + 3);
        if let Some(b) = v2.first_mut() {
            *b = 0x80 | (*b & 0x3f);
        }
        for case in [base[..len].to_vec(), noise(len, len as u64 + 11), v2] {
            if r.sim.sfu.handle_rtcp(r.sim.now, attacker, &case).is_err() {
                errors += 1;
            }
        }
        r.sim.drain();
    }
    assert!(errors > 2000, "{errors}");
    assert_eq!(r.sim.sfu.metrics().dropped.malformed, errors);
    still_forwarding(&mut r);
}

#[test]
fn bad_rtx_and_bad_descriptors_are_errors() {
    let mut r = CameraRoom::new(Config::default(), 2, true);
    // VP8 descriptor that promises a picture id it does not carry.
    let p = rtp(5000, VIDEO_PT, 1, 1, false, &[], &[0x90, 0x80]);
    assert!(matches!(
        r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p),
        Err(PacketError::MalformedVp8(_))
    ));
    // Wrong payload type for the track.
    let p = rtp(5000, 100, 1, 1, false, &[], &[0x10, 0]);
    assert_eq!(
        r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p),
        Err(PacketError::UnknownPayloadType)
    );
    // Unknown SSRC without mid/rid to bind it.
    let p = rtp(7777, VIDEO_PT, 1, 1, false, &[], &[0x10, 0]);
    assert_eq!(
        r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p),
        Err(PacketError::UnknownSsrc)
    );
    still_forwarding(&mut r);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_handled_without_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..1500),
        as_rtcp in any::<bool>(),
    ) {
        let mut r = CameraRoom::new(Config::default(), 2, true);
        if as_rtcp {
            let _ = r.sim.sfu.handle_rtcp(r.sim.now, r.subscribers[0], &bytes);
        } else {
            let _ = r.sim.sfu.handle_rtp(r.sim.now, r.publisher, bytes.into());
        }
        r.sim.drain();
        still_forwarding(&mut r);
    }
}
