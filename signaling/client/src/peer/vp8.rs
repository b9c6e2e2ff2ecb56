//! The VP8 payload descriptor of a received packet (RFC 7741 §4.2), read independently of the
//! SFU's parser: what a receiver skips to reach the (end-to-end encrypted) frame bytes.

/// The length of the VP8 payload descriptor at the start of `payload`, or `None` when
/// `payload` ends inside it.
pub fn vp8_descriptor_len(payload: &[u8]) -> Option<usize> {
    let first = *payload.first()?;
    let mut len = 1;
    if first & 0x80 != 0 {
        let extensions = *payload.get(1)?;
        len += 1;
        if extensions & 0x80 != 0 {
            // I: a 7- or 15-bit picture id (M bit).
            len += if payload.get(len)? & 0x80 != 0 { 2 } else { 1 };
        }
        if extensions & 0x40 != 0 {
            // L: TL0PICIDX.
            len += 1;
        }
        if extensions & 0x30 != 0 {
            // T or K: TID/Y/KEYIDX.
            len += 1;
        }
    }
    (len <= payload.len()).then_some(len)
}

/// The frame bytes of a VP8 RTP payload: what follows its payload descriptor (empty when the
/// payload ends inside the descriptor).
pub fn vp8_frame_bytes(payload: &[u8]) -> &[u8] {
    vp8_descriptor_len(payload).map_or(&[], |len| &payload[len..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_lengths_follow_the_extension_bits() {
        assert_eq!(vp8_descriptor_len(&[0x10, 0xaa]), Some(1));
        assert_eq!(vp8_descriptor_len(&[0x90, 0x80, 0x80, 0x01, 0xaa]), Some(4));
        assert_eq!(vp8_descriptor_len(&[0x90, 0x80, 0x01, 0xaa]), Some(3));
        assert_eq!(vp8_descriptor_len(&[0x90, 0xf0, 0x80, 0x01, 0, 0]), Some(6));
        assert_eq!(vp8_descriptor_len(&[0x90, 0xf0, 0x80]), None);
        assert_eq!(vp8_descriptor_len(&[]), None);
        assert_eq!(vp8_frame_bytes(&[0x90, 0x80, 0x80, 0x01, 7, 8]), &[7, 8]);
    }
}
