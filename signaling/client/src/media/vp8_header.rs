//! The VP8 frame header (RFC 6386 §9.1): what a VP8 frame's clear prefix holds, so what the SFU
//! and a receiver read without the media key.
//!
//! Frame tag (3 bytes, little-endian 24-bit): bit 0 `!key_frame`, bits 1–3 version, bit 4
//! show_frame, bits 5–23 size of the first partition. A keyframe continues with the start code
//! `9d 01 2a` and two little-endian 16-bit fields: 14 bits width + 2 bits horizontal scale, 14
//! bits height + 2 bits vertical scale. So a keyframe's header is 10 bytes and a delta frame's 3:
//! exactly the clear-prefix lengths of docs/e2ee.md §1.2.

use thiserror::Error;

/// Length of a keyframe's header: frame tag, start code, width and height.
pub const VP8_KEYFRAME_HEADER_LEN: usize = 10;

/// Length of a delta frame's header: the frame tag.
pub const VP8_DELTA_HEADER_LEN: usize = 3;

/// The keyframe start code (RFC 6386 §9.1).
pub const VP8_START_CODE: [u8; 3] = [0x9d, 0x01, 0x2a];

/// What a VP8 frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Header {
    /// Bit 0 of the frame tag is 0.
    pub keyframe: bool,
    /// Bitstream version (0–3).
    pub version: u8,
    /// Whether the frame is meant to be displayed.
    pub show_frame: bool,
    /// Size in bytes of the first partition.
    pub first_partition_size: u32,
    /// For a keyframe: width and height in pixels (scale bits dropped).
    pub picture_size: Option<(u16, u16)>,
}

/// Why bytes are not a VP8 frame header.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Vp8HeaderError {
    /// Fewer bytes than the header needs.
    #[error("VP8 frame of {0} bytes is shorter than its header")]
    TooShort(usize),
    /// A keyframe without the `9d 01 2a` start code.
    #[error("VP8 keyframe without start code")]
    BadStartCode,
    /// A version above 3 is reserved.
    #[error("VP8 version {0} is reserved")]
    Version(u8),
}

impl Vp8Header {
    /// Whether a VP8 frame (or its wire form, which starts with the clear frame tag) starting
    /// with `first_byte` is a keyframe.
    pub const fn is_keyframe(first_byte: u8) -> bool {
        first_byte & 1 == 0
    }

    /// Parses the frame tag and, for a keyframe, the start code and picture size.
    pub fn parse(frame: &[u8]) -> Result<Self, Vp8HeaderError> {
        let [b0, b1, b2, rest @ ..] = frame else {
            return Err(Vp8HeaderError::TooShort(frame.len()));
        };
        let tag = u32::from_le_bytes([*b0, *b1, *b2, 0]);
        let keyframe = Self::is_keyframe(*b0);
        let version = ((tag >> 1) & 0b111) as u8;
        if version > 3 {
            return Err(Vp8HeaderError::Version(version));
        }
        let picture_size = if keyframe {
            let [s0, s1, s2, w0, w1, h0, h1, ..] = rest else {
                return Err(Vp8HeaderError::TooShort(frame.len()));
            };
            if [*s0, *s1, *s2] != VP8_START_CODE {
                return Err(Vp8HeaderError::BadStartCode);
            }
            Some((
                u16::from_le_bytes([*w0, *w1]) & 0x3fff,
                u16::from_le_bytes([*h0, *h1]) & 0x3fff,
            ))
        } else {
            None
        };
        Ok(Vp8Header {
            keyframe,
            version,
            show_frame: tag & (1 << 4) != 0,
            first_partition_size: tag >> 5,
            picture_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_and_delta_headers_parse() {
        // Tag: first partition 100, show_frame, keyframe; then start code and 640x360.
        let tag = (100u32 << 5 | 1 << 4).to_le_bytes();
        let mut key = vec![tag[0], tag[1], tag[2]];
        key.extend_from_slice(&VP8_START_CODE);
        key.extend_from_slice(&640u16.to_le_bytes());
        key.extend_from_slice(&360u16.to_le_bytes());
        let h = Vp8Header::parse(&key).unwrap();
        assert!(h.keyframe && h.show_frame);
        assert_eq!(
            (h.first_partition_size, h.picture_size),
            (100, Some((640, 360)))
        );
        let h = Vp8Header::parse(&[tag[0] | 1, tag[1], tag[2]]).unwrap();
        assert!(!h.keyframe);
        assert_eq!(h.picture_size, None);
    }

    #[test]
    fn header_parser_refuses_every_short_length_and_a_bad_start_code() {
        let key = [0x10u8, 0, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];
        for len in 0..VP8_KEYFRAME_HEADER_LEN {
            assert_eq!(
                Vp8Header::parse(&key[..len]),
                Err(Vp8HeaderError::TooShort(len))
            );
        }
        let mut bad = key;
        bad[4] = 0;
        assert_eq!(Vp8Header::parse(&bad), Err(Vp8HeaderError::BadStartCode));
        assert_eq!(
            Vp8Header::parse(&[0x0e, 0, 0]),
            Err(Vp8HeaderError::Version(7))
        );
    }
}
