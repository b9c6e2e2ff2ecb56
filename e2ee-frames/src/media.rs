//! Codec-aware clear prefixes (docs/e2ee.md §1.2): the first bytes of an encoded frame that stay
//! readable for the SFU and are authenticated as SFrame metadata.
//!
//! On the wire a media frame is `clear_prefix || sframe_header || ciphertext || tag`.

/// A media codec as far as the clear prefix is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// VP8: 10-byte prefix on keyframes (frame tag, start code, size), 3 on delta frames.
    Vp8,
    /// VP9: no prefix until the project defines one.
    Vp9,
    /// Opus: the 1-byte TOC.
    Opus,
}

/// What kind of frame a frame is, as read from its clear bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A video keyframe (VP8: bit 0 of the first byte is 0).
    Key,
    /// A video delta (inter) frame.
    Delta,
    /// An audio frame.
    Audio,
    /// A codec with no clear prefix defined.
    Opaque,
}

/// VP8 keyframe prefix: 3-byte frame tag, 3-byte start code, 4 bytes of size.
pub const VP8_KEYFRAME_PREFIX: usize = 10;
/// VP8 delta-frame prefix: the 3-byte frame tag.
pub const VP8_DELTA_PREFIX: usize = 3;
/// Opus prefix: the TOC byte.
pub const OPUS_PREFIX: usize = 1;

impl Codec {
    /// The codec name used in fixtures and SDP (`"vp8"`, `"vp9"`, `"opus"`).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Opus => "opus",
        }
    }

    /// Parses a codec name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Vp8, Codec::Vp9, Codec::Opus]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// Classifies a frame from its first byte (the same byte leads the wire form, since the clear
/// prefix comes first). An empty VP8 frame counts as a keyframe.
pub fn frame_kind(codec: Codec, frame: &[u8]) -> FrameKind {
    match codec {
        Codec::Vp8 => match frame.first() {
            Some(b) if b & 1 == 1 => FrameKind::Delta,
            _ => FrameKind::Key,
        },
        Codec::Opus => FrameKind::Audio,
        Codec::Vp9 => FrameKind::Opaque,
    }
}

/// The prefix length the table of docs/e2ee.md §1.2 gives for a codec and frame kind.
pub const fn nominal_prefix_len(codec: Codec, kind: FrameKind) -> usize {
    match (codec, kind) {
        (Codec::Vp8, FrameKind::Key) => VP8_KEYFRAME_PREFIX,
        (Codec::Vp8, _) => VP8_DELTA_PREFIX,
        (Codec::Opus, _) => OPUS_PREFIX,
        (Codec::Vp9, _) => 0,
    }
}

/// The clear-prefix length for an encoded frame: the nominal length for its codec and kind, or
/// the whole frame when it is shorter than that.
pub fn clear_prefix_len(codec: Codec, frame: &[u8]) -> usize {
    nominal_prefix_len(codec, frame_kind(codec, frame)).min(frame.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_table() {
        assert_eq!(clear_prefix_len(Codec::Vp8, &[0x10; 40]), 10);
        assert_eq!(clear_prefix_len(Codec::Vp8, &[0x11; 40]), 3);
        assert_eq!(clear_prefix_len(Codec::Opus, &[0xfc; 40]), 1);
        assert_eq!(clear_prefix_len(Codec::Vp9, &[0x00; 40]), 0);
        assert_eq!(clear_prefix_len(Codec::Vp8, &[0x10; 4]), 4);
        assert_eq!(clear_prefix_len(Codec::Vp8, &[0x11; 2]), 2);
        assert_eq!(clear_prefix_len(Codec::Opus, &[]), 0);
        assert_eq!(Codec::from_name("VP8"), Some(Codec::Vp8));
        assert_eq!(Codec::from_name("h264"), None);
    }
}
