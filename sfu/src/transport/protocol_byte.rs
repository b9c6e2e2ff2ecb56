//! RFC 7983 §7: the first byte of a packet says which protocol it belongs to, for a UDP datagram
//! and an ICE-TCP frame alike.

/// Whether the first byte puts the packet in one of the protocols the shard speaks (0–3 STUN,
/// 20–63 DTLS, 128–191 RTP/RTCP). Anything else (empty, ZRTP, TURN channel data, random bytes)
/// is garbage, dropped before any lookup.
pub(crate) fn is_webrtc_protocol(data: &[u8]) -> bool {
    matches!(data.first(), Some(0..=3 | 20..=63 | 128..=191))
}

/// Whether the packet is SRTP rather than SRTCP or anything else: RTP/RTCP by its first byte
/// (128–191), and not RTCP by its second (a packet type of 192–223, RFC 5761 §4), the split
/// `rtc`'s own SRTP handler makes, so both receive paths agree on every packet.
pub(crate) fn is_srtp(data: &[u8]) -> bool {
    matches!(data.first(), Some(128..=191)) && !rtc::shared::util::is_rtcp(data)
}

#[cfg(test)]
mod tests {
    use super::{is_srtp, is_webrtc_protocol};

    #[test]
    fn first_byte_classifies_stun_dtls_and_rtp_and_nothing_else() {
        for first in [0u8, 3, 20, 63, 128, 191] {
            assert!(is_webrtc_protocol(&[first, 0, 0, 0]), "{first}");
        }
        for first in [4u8, 19, 64, 79, 127, 192, 255] {
            assert!(!is_webrtc_protocol(&[first, 0, 0, 0]), "{first}");
        }
        assert!(!is_webrtc_protocol(&[]));
    }

    #[test]
    fn rtp_is_srtp_and_rtcp_stun_dtls_are_not() {
        // Version 2, payload type 96 (and 96 with the marker bit): RTP.
        assert!(is_srtp(&[0x80, 96, 0, 1]));
        assert!(is_srtp(&[0x80, 0x80 | 96, 0, 1]));
        // Sender report (200), receiver report (201), transport-cc feedback (205): RTCP.
        for packet_type in [192u8, 200, 201, 205, 223] {
            assert!(!is_srtp(&[0x80, packet_type, 0, 1]), "{packet_type}");
        }
        assert!(!is_srtp(&[0x00, 0x01, 0, 0]), "STUN");
        assert!(!is_srtp(&[22, 0xfe, 0xfd, 0]), "DTLS");
        assert!(!is_srtp(&[]));
    }
}
