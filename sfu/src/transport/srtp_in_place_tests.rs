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
            marker: seq % 7 == 0,
            ..Default::default()
        },
        payload: Bytes::from((0..len).map(|i| (i as u8) ^ (seq as u8)).collect::<Vec<u8>>()),
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
            assert_eq!(&out[..4], b"kept", "{profile:?}: what was in the buffer stays");
            assert_eq!(
                &out[4..],
                &expected[..],
                "{profile:?}: packet {i} encrypted into the buffer as encrypt_rtp does"
            );
            (plain, expected.to_vec())
        })
        .collect()
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
            assert_eq!(&expected[..], &plain[..], "{profile:?}: packet {i} round trip");

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
            assert_eq!(buffer, forged, "{profile:?}: AES-CM refuses before decrypting");
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
