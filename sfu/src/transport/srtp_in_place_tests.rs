//! The vendored `rtc-srtp`'s in-place decryption and encryption into a caller's buffer (what
//! the short receive path and the shard's datagram pool use: `sfu/vendor/README.md`), held
//! against the allocating paths of the same crate, for every protection profile the SFU offers
//! (AES-GCM 128 and 256, AES-CM with HMAC-SHA1 80 and 32).

use bytes::{Bytes, BytesMut};
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::shared::error::Error;
use rtc::shared::marshal::{Marshal, Unmarshal};
use rtc::srtp::context::Context;
use rtc::srtp::option::srtp_replay_protection;
use rtc::srtp::protection_profile::ProtectionProfile;

const PROFILES: [ProtectionProfile; 4] = [
    ProtectionProfile::AeadAes128Gcm,
    ProtectionProfile::AeadAes256Gcm,
    ProtectionProfile::Aes128CmHmacSha1_80,
    ProtectionProfile::Aes128CmHmacSha1_32,
];

const SSRC: u32 = 0x1234_5678;

/// A context of `profile` with a fixed master key and salt, replay protection as `rtc` sets it
/// up for received SRTP (a window of 64).
fn context(profile: ProtectionProfile) -> Context {
    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let key: Vec<u8> = (0..profile.key_len()).map(|i| i as u8).collect();
    let salt: Vec<u8> = (0..profile.salt_len()).map(|i| 0xa0 ^ i as u8).collect();
    Context::new(
        &key,
        &salt,
        profile,
        Some(srtp_replay_protection(64)),
        None,
        provider.crypto(),
    )
    .expect("an SRTP context")
}

/// A marshalled RTP packet: sequence number `seq`, a payload of `len` bytes that depend on it.
fn rtp(seq: u16, len: usize) -> Vec<u8> {
    let packet = Packet {
        header: Header {
            version: 2,
            payload_type: 111,
            sequence_number: seq,
            timestamp: u32::from(seq) * 960,
            ssrc: SSRC,
            marker: seq.is_multiple_of(7),
            ..Default::default()
        },
        payload: Bytes::from(
            (0..len)
                .map(|i| (i as u8) ^ (seq as u8))
                .collect::<Vec<u8>>(),
        ),
    };
    packet.marshal().expect("marshal").to_vec()
}

fn header_of(packet: &[u8]) -> Header {
    let mut buf = packet;
    Header::unmarshal(&mut buf).expect("an RTP header")
}

/// Protects `count` packets (sequence numbers rolling over 65535 → 0) both ways: the
/// allocating `encrypt_rtp` and `encrypt_rtp_with_header_into` appending to one reused buffer.
fn protect_both_ways(profile: ProtectionProfile, count: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut allocating = context(profile);
    let mut into = context(profile);
    let mut out = BytesMut::with_capacity(1500);
    (0..count)
        .map(|i| {
            let plain = rtp(65_530u16.wrapping_add(i), 100 + usize::from(i) * 13);
            let expected = allocating.encrypt_rtp(&plain).expect("encrypt_rtp");
            out.clear();
            out.extend_from_slice(b"kept");
            into.encrypt_rtp_with_header_into(&plain, &header_of(&plain), &mut out)
                .expect("encrypt_rtp_with_header_into");
            assert_eq!(
                &out[..4],
                b"kept",
                "{profile:?}: what was in the buffer stays"
            );
            assert_eq!(
                &out[4..],
                &expected[..],
                "{profile:?}: packet {i} encrypted into the buffer as encrypt_rtp does"
            );
            (plain, expected.to_vec())
        })
        .collect()
}

/// The published crate's own test vectors (`rtc-srtp` 0.21.1, `src/context/context_test.rs` and
/// `srtp_test.rs`, which the vendoring does not build): encrypting into a caller's buffer gives
/// the published ciphertext, decrypting in place the published plaintext. Holds the patched
/// functions against the crate as published, not against themselves.
#[test]
fn in_place_and_into_reproduce_the_published_crates_test_vectors() {
    const GCM_KEY: [u8; 16] = [
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
        0x0f,
    ];
    const GCM_SALT: [u8; 12] = [
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
    ];
    const GCM_PLAIN: [u8; 28] = [
        0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xab, 0xab, 0xab,
        0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
    ];
    const GCM_PROTECTED: [u8; 44] = [
        0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba, 0xbe, 0xc5, 0x00, 0x2e,
        0xde, 0x04, 0xcf, 0xdd, 0x2e, 0xb9, 0x11, 0x59, 0xe0, 0x88, 0x0a, 0xa0, 0x6e, 0xd2, 0x97,
        0x68, 0x26, 0xf7, 0x96, 0xb2, 0x01, 0xdf, 0x31, 0x31, 0xa1, 0x27, 0xe8, 0xa3, 0x92,
    ];
    const CM_KEY: [u8; 16] = [
        0x0d, 0xcd, 0x21, 0x3e, 0x4c, 0xbc, 0xf2, 0x8f, 0x01, 0x7f, 0x69, 0x94, 0x40, 0x1e, 0x28,
        0x89,
    ];
    const CM_SALT: [u8; 14] = [
        0x62, 0x77, 0x60, 0x38, 0xc0, 0x6d, 0xc9, 0x41, 0x9f, 0x6d, 0xd9, 0x43, 0x3e, 0x7c,
    ];
    const CM_PAYLOAD: [u8; 6] = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05];
    // Payload and tag of the packets with these sequence numbers (the rest of the header zero).
    const CM_CASES: [(u16, [u8; 16]); 3] = [
        (
            5000,
            [
                0x6d, 0xd3, 0x7e, 0xd5, 0x99, 0xb7, 0x2d, 0x28, 0xb1, 0xf3, 0xa1, 0xf0, 0xc, 0xfb,
                0xfd, 0x8,
            ],
        ),
        (
            5001,
            [
                0xda, 0x47, 0xb, 0x2a, 0x74, 0x53, 0x65, 0xbd, 0x2f, 0xeb, 0xdc, 0x4b, 0x6d, 0x23,
                0xf3, 0xde,
            ],
        ),
        (
            5002,
            [
                0x6e, 0xa7, 0x69, 0x8d, 0x24, 0x6d, 0xdc, 0xbf, 0xec, 0x2, 0x1c, 0xd1, 0x60, 0x76,
                0xc1, 0x0e,
            ],
        ),
    ];

    let provider = rtc::crypto::default_provider().expect("a crypto provider");
    let keyed = |key: &[u8], salt: &[u8], profile| {
        Context::new(key, salt, profile, None, None, provider.crypto()).expect("a context")
    };

    let gcm = ProtectionProfile::AeadAes128Gcm;
    let mut out = BytesMut::new();
    keyed(&GCM_KEY, &GCM_SALT, gcm)
        .encrypt_rtp_with_header_into(&GCM_PLAIN, &header_of(&GCM_PLAIN), &mut out)
        .expect("encrypt into");
    assert_eq!(&out[..], &GCM_PROTECTED[..], "AES-GCM-128 ciphertext");
    let mut datagram = GCM_PROTECTED;
    let len = keyed(&GCM_KEY, &GCM_SALT, gcm)
        .decrypt_rtp_in_place_with_header(&mut datagram, &header_of(&GCM_PROTECTED))
        .expect("decrypt in place");
    assert_eq!(&datagram[..len], &GCM_PLAIN[..], "AES-GCM-128 plaintext");

    let cm = ProtectionProfile::Aes128CmHmacSha1_80;
    let mut sender = keyed(&CM_KEY, &CM_SALT, cm);
    let mut receiver = keyed(&CM_KEY, &CM_SALT, cm);
    for (seq, protected_payload) in CM_CASES {
        let packet = |payload: &[u8]| {
            Packet {
                header: Header {
                    sequence_number: seq,
                    ..Default::default()
                },
                payload: Bytes::copy_from_slice(payload),
            }
            .marshal()
            .expect("marshal")
            .to_vec()
        };
        let plain = packet(&CM_PAYLOAD);
        let protected = packet(&protected_payload);
        out.clear();
        sender
            .encrypt_rtp_with_header_into(&plain, &header_of(&plain), &mut out)
            .expect("encrypt into");
        assert_eq!(&out[..], &protected[..], "AES-CM-HMAC-SHA1-80 packet {seq}");
        let mut datagram = protected.clone();
        let len = receiver
            .decrypt_rtp_in_place_with_header(&mut datagram, &header_of(&protected))
            .expect("decrypt in place");
        assert_eq!(
            &datagram[..len],
            &plain[..],
            "AES-CM-HMAC-SHA1-80 packet {seq}"
        );
    }
}

/// Encrypting into a caller's buffer and decrypting in place give the allocating paths' bytes,
/// across a sequence-number rollover (the rollover counter kept alike), for every profile.
#[test]
fn in_place_and_allocating_srtp_give_identical_bytes_for_every_profile() {
    for profile in PROFILES {
        let packets = protect_both_ways(profile, 12);
        let mut allocating = context(profile);
        let mut in_place = context(profile);
        for (i, (plain, protected)) in packets.iter().enumerate() {
            assert_eq!(
                protected.len(),
                plain.len() + profile.rtp_auth_tag_len().max(profile.aead_auth_tag_len()),
                "{profile:?}: the tag appended"
            );
            let expected = allocating.decrypt_rtp(protected).expect("decrypt_rtp");
            assert_eq!(
                &expected[..],
                &plain[..],
                "{profile:?}: packet {i} round trip"
            );

            let mut datagram = protected.clone();
            let len = in_place
                .decrypt_rtp_in_place_with_header(&mut datagram, &header_of(protected))
                .expect("decrypt in place");
            assert_eq!(
                &datagram[..len],
                &expected[..],
                "{profile:?}: packet {i} decrypted in place as decrypt_rtp does"
            );
        }
    }
}

/// A replayed packet is refused in place, before anything is decrypted: the buffer keeps the
/// datagram as received, the context its state, and the same buffer then takes the next packet.
#[test]
fn a_replayed_packet_is_refused_in_place_and_the_buffer_is_reusable() {
    for profile in PROFILES {
        let packets = protect_both_ways(profile, 2);
        let mut receiver = context(profile);
        let mut buffer = [0u8; 1500];

        let (first_plain, first) = &packets[0];
        buffer[..first.len()].copy_from_slice(first);
        let len = receiver
            .decrypt_rtp_in_place_with_header(&mut buffer[..first.len()], &header_of(first))
            .expect("first packet");
        assert_eq!(&buffer[..len], &first_plain[..]);

        buffer[..first.len()].copy_from_slice(first);
        let refused = receiver
            .decrypt_rtp_in_place_with_header(&mut buffer[..first.len()], &header_of(first));
        assert!(
            matches!(refused, Err(Error::SrtpSsrcDuplicated(SSRC, _))),
            "{profile:?}: the replay refused, got {refused:?}"
        );
        assert_eq!(
            &buffer[..first.len()],
            &first[..],
            "{profile:?}: a replay is refused before decryption touches the buffer"
        );

        let (second_plain, second) = &packets[1];
        buffer[..second.len()].copy_from_slice(second);
        let len = receiver
            .decrypt_rtp_in_place_with_header(&mut buffer[..second.len()], &header_of(second))
            .expect("the next packet in the same buffer");
        assert_eq!(&buffer[..len], &second_plain[..], "{profile:?}");
    }
}

/// A packet with a broken tag is refused in place and changes nothing in the context: the
/// intact packet of the same sequence number is still accepted (not taken for a replay),
/// decrypted in the same buffer. AES-CM verifies before it decrypts, so its refused buffer
/// still holds the datagram; an AEAD profile's is unspecified, reusable all the same.
#[test]
fn a_packet_with_a_broken_tag_is_refused_in_place_and_the_buffer_is_reusable() {
    for profile in PROFILES {
        let packets = protect_both_ways(profile, 1);
        let (plain, protected) = &packets[0];
        let mut receiver = context(profile);
        let mut buffer = protected.clone();
        let last = buffer.len() - 1;
        buffer[last] ^= 0x01;
        let forged = buffer.clone();

        let refused = receiver.decrypt_rtp_in_place_with_header(&mut buffer, &header_of(protected));
        assert!(
            matches!(
                refused,
                Err(Error::RtpFailedToVerifyAuthTag | Error::ErrFailedToVerifyAuthTag)
            ),
            "{profile:?}: the broken tag refused, got {refused:?}"
        );
        if profile.aead_auth_tag_len() == 0 {
            assert_eq!(
                buffer, forged,
                "{profile:?}: AES-CM refuses before decrypting"
            );
        }

        buffer.copy_from_slice(protected);
        let len = receiver
            .decrypt_rtp_in_place_with_header(&mut buffer, &header_of(protected))
            .expect("the intact packet after the forged one");
        assert_eq!(&buffer[..len], &plain[..], "{profile:?}");
    }
}

/// A datagram shorter than its header and the profile's tag is refused, not decrypted (AES-CM
/// as too short; the AEAD profiles, whose RTP tag `rtc-srtp` counts as the cipher's, as
/// unauthenticated, as the allocating path refuses it).
#[test]
fn a_packet_too_short_for_its_tag_is_refused_in_place() {
    for profile in PROFILES {
        let mut receiver = context(profile);
        let plain = rtp(1, 0);
        let mut short = plain.clone();
        short.extend_from_slice(&[0u8; 3]);
        let allocating = context(profile).decrypt_rtp(&short);
        let refused = receiver.decrypt_rtp_in_place_with_header(&mut short, &header_of(&plain));
        assert!(
            matches!(
                refused,
                Err(Error::ErrTooShortRtp | Error::ErrFailedToVerifyAuthTag)
            ),
            "{profile:?}: got {refused:?}"
        );
        assert_eq!(
            format!("{refused:?}"),
            format!("{:?}", allocating.map(|b| b.len())),
            "{profile:?}: refused as the allocating path refuses it"
        );
    }
}
