//! The VP8 RTP payload descriptor (RFC 7741 §4.2): what precedes the frame bytes in every VP8
//! RTP payload. A receiver reads it to find where the (end-to-end encrypted) frame bytes start
//! and whether the packet starts a frame.

use thiserror::Error;

/// Why a payload has no readable VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Vp8DescriptorError {
    /// The payload ends inside the descriptor.
    #[error("VP8 payload descriptor truncated")]
    Truncated,
}

/// What a VP8 payload descriptor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// Bytes of the descriptor; the frame bytes start here.
    pub len: usize,
    /// Whether the packet starts a frame: S = 1 and partition index 0.
    pub starts_frame: bool,
    /// The picture id (7 or 15 bits), when the I bit is set.
    pub picture_id: Option<u16>,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of `payload`.
    pub fn parse(payload: &[u8]) -> Result<Self, Vp8DescriptorError> {
        let first = *payload.first().ok_or(Vp8DescriptorError::Truncated)?;
        let starts_frame = first & 0x10 != 0 && first & 0x0f == 0;
        let mut len = 1;
        let mut picture_id = None;
        if first & 0x80 != 0 {
            let extensions = *payload.get(1).ok_or(Vp8DescriptorError::Truncated)?;
            len = 2;
            if extensions & 0x80 != 0 {
                // I: a 7- or 15-bit picture id (M bit).
                let high = *payload.get(len).ok_or(Vp8DescriptorError::Truncated)?;
                if high & 0x80 != 0 {
                    let low = *payload.get(len + 1).ok_or(Vp8DescriptorError::Truncated)?;
                    picture_id = Some(u16::from_be_bytes([high & 0x7f, low]));
                    len += 2;
                } else {
                    picture_id = Some(u16::from(high));
                    len += 1;
                }
            }
            if extensions & 0x40 != 0 {
                len += 1; // L: TL0PICIDX
            }
            if extensions & 0x30 != 0 {
                len += 1; // T or K: TID/Y/KEYIDX
            }
        }
        if payload.len() < len {
            return Err(Vp8DescriptorError::Truncated);
        }
        Ok(Vp8Descriptor {
            len,
            starts_frame,
            picture_id,
        })
    }
}

/// The length of the VP8 payload descriptor at the start of `payload`, or `None` when
/// `payload` ends inside it.
pub fn vp8_descriptor_len(payload: &[u8]) -> Option<usize> {
    Vp8Descriptor::parse(payload).ok().map(|d| d.len)
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

    #[test]
    fn start_of_frame_needs_s_and_partition_zero() {
        let d = Vp8Descriptor::parse(&[0x90, 0x80, 0x85, 0x01, 9]).unwrap();
        assert!(d.starts_frame);
        assert_eq!(d.picture_id, Some(0x0501));
        assert!(!Vp8Descriptor::parse(&[0x11, 9]).unwrap().starts_frame);
        assert!(
            !Vp8Descriptor::parse(&[0x80, 0x80, 0x05, 9])
                .unwrap()
                .starts_frame
        );
        let full = [0x90u8, 0xf0, 0x85, 1, 2, 3];
        for len in 0..full.len() {
            assert_eq!(
                Vp8Descriptor::parse(&full[..len]),
                Err(Vp8DescriptorError::Truncated)
            );
        }
    }
}
