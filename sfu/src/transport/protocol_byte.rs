//! RFC 7983 §7: the first byte of a packet says which protocol it belongs to, for a UDP datagram
//! and an ICE-TCP frame alike.

/// Whether the first byte puts the packet in one of the protocols the shard speaks (0–3 STUN,
/// 20–63 DTLS, 128–191 RTP/RTCP). Anything else (empty, ZRTP, TURN channel data, random bytes)
/// is garbage, dropped before any lookup.
pub(crate) fn is_webrtc_protocol(data: &[u8]) -> bool {
    matches!(data.first(), Some(0..=3 | 20..=63 | 128..=191))
}

#[cfg(test)]
mod tests {
    use super::is_webrtc_protocol;

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
}
