//! The VP8 RTP payload descriptor (RFC 7741 §4.2) and keyframe detection on E2EE frames.
//!
//! The descriptor sits in front of the (encrypted) frame bytes and is never encrypted. The first
//! packet of a frame (S = 1, partition index 0) starts with the frame's clear prefix, whose first
//! byte is the VP8 frame tag: its bit 0 (the P bit, "inverse key frame flag") is 0 for a keyframe
//! (RFC 6386 §9.1). That is the only payload byte the SFU reads.

use thiserror::Error;

/// Why a VP8 payload descriptor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Vp8Error {
    /// The payload ends inside the descriptor.
    #[error("VP8 payload descriptor truncated")]
    Truncated,
}

/// A VP8 picture id as sent: 7 or 15 bits wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureId {
    /// The value (below 128 when 7-bit, below 32768 when 15-bit).
    pub value: u16,
    /// Whether the 15-bit form (M bit) was used.
    pub long: bool,
}

impl PictureId {
    /// The modulus of this id's width (128 or 32768).
    pub fn modulus(self) -> u16 {
        if self.long { 1 << 15 } else { 1 << 7 }
    }
}

/// The fields of a parsed VP8 payload descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// Length of the descriptor in bytes (1 to 6): the frame data starts at this offset.
    pub len: u8,
    /// N bit: the frame is not used as a reference.
    pub non_reference: bool,
    /// S bit: this packet starts a VP8 partition.
    pub start_of_partition: bool,
    /// Partition index (PID, 0–7).
    pub partition_index: u8,
    /// The picture id, when present.
    pub picture_id: Option<PictureId>,
    /// TL0PICIDX, when present.
    pub tl0_pic_idx: Option<u8>,
    /// Temporal layer index and the Y (layer sync) bit, when the T bit is set.
    pub temporal: Option<(u8, bool)>,
    /// KEYIDX, when the K bit is set.
    pub key_idx: Option<u8>,
}

/// Longest descriptor the writer produces: 1 + 1 + 2 (picture id) + 1 + 1.
pub const MAX_DESCRIPTOR_LEN: usize = 6;

impl Vp8Descriptor {
    /// Parses the descriptor at the start of an RTP payload.
    pub fn parse(payload: &[u8]) -> Result<Self, Vp8Error> {
        let mut at = 0usize;
        let mut next = || -> Result<u8, Vp8Error> {
            let b = *payload.get(at).ok_or(Vp8Error::Truncated)?;
            at += 1;
            Ok(b)
        };
        let b0 = next()?;
        let mut d = Vp8Descriptor {
            len: 0,
            non_reference: b0 & 0x20 != 0,
            start_of_partition: b0 & 0x10 != 0,
            partition_index: b0 & 0x07,
            picture_id: None,
            tl0_pic_idx: None,
            temporal: None,
            key_idx: None,
        };
        if b0 & 0x80 != 0 {
            let x = next()?;
            if x & 0x80 != 0 {
                let p0 = next()?;
                d.picture_id = Some(if p0 & 0x80 != 0 {
                    let p1 = next()?;
                    PictureId {
                        value: u16::from(p0 & 0x7f) << 8 | u16::from(p1),
                        long: true,
                    }
                } else {
                    PictureId {
                        value: u16::from(p0),
                        long: false,
                    }
                });
            }
            if x & 0x40 != 0 {
                d.tl0_pic_idx = Some(next()?);
            }
            let has_t = x & 0x20 != 0;
            let has_k = x & 0x10 != 0;
            if has_t || has_k {
                let tk = next()?;
                if has_t {
                    d.temporal = Some((tk >> 6, tk & 0x20 != 0));
                }
                if has_k {
                    d.key_idx = Some(tk & 0x1f);
                }
            }
        }
        // At most 6 bytes were consumed.
        d.len = at as u8;
        Ok(d)
    }

    /// Whether this packet starts a frame (S = 1 and partition index 0).
    pub fn starts_frame(&self) -> bool {
        self.start_of_partition && self.partition_index == 0
    }

    /// Whether this packet starts a keyframe: it starts a frame and the first frame byte (the
    /// VP8 frame tag, kept in the clear prefix of E2EE frames) has P bit 0. `frame` is the
    /// payload after the descriptor.
    pub fn is_keyframe_start(&self, frame: &[u8]) -> bool {
        self.starts_frame() && frame.first().is_some_and(|tag| tag & 0x01 == 0)
    }

    /// Writes this descriptor with the given picture id (always in 15-bit form, so that a stream
    /// spliced from layers of different widths stays one sequence) and TL0PICIDX.
    pub(crate) fn write_rewritten(
        &self,
        picture_id: Option<u16>,
        tl0_pic_idx: Option<u8>,
        out: &mut crate::rtp::HeaderBuf,
    ) {
        let has_x = picture_id.is_some()
            || tl0_pic_idx.is_some()
            || self.temporal.is_some()
            || self.key_idx.is_some();
        let b0 = if has_x { 0x80 } else { 0 }
            | if self.non_reference { 0x20 } else { 0 }
            | if self.start_of_partition { 0x10 } else { 0 }
            | (self.partition_index & 0x07);
        out.push(&[b0]);
        if !has_x {
            return;
        }
        let x = if picture_id.is_some() { 0x80 } else { 0 }
            | if tl0_pic_idx.is_some() { 0x40 } else { 0 }
            | if self.temporal.is_some() { 0x20 } else { 0 }
            | if self.key_idx.is_some() { 0x10 } else { 0 };
        out.push(&[x]);
        if let Some(pid) = picture_id {
            out.push(&[0x80 | ((pid >> 8) as u8 & 0x7f), pid as u8]);
        }
        if let Some(t) = tl0_pic_idx {
            out.push(&[t]);
        }
        if self.temporal.is_some() || self.key_idx.is_some() {
            let (tid, y) = self.temporal.unwrap_or((0, false));
            out.push(&[(tid & 0x03) << 6 | u8::from(y) << 5 | (self.key_idx.unwrap_or(0) & 0x1f)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::HeaderBuf;

    #[test]
    fn parses_full_descriptor_and_keyframe_bit() {
        // X=1 S=1 PID=0; I L T K; 15-bit picture id 0x1234; TL0PICIDX 9; TID 2, Y, KEYIDX 5.
        let payload = [0x90, 0xf0, 0x92, 0x34, 9, 0b1010_0101, 0x10, 0x02, 0x00];
        let d = Vp8Descriptor::parse(&payload).expect("valid descriptor");
        assert_eq!(d.len, 6);
        assert_eq!(
            d.picture_id,
            Some(PictureId {
                value: 0x1234,
                long: true
            })
        );
        assert_eq!(d.tl0_pic_idx, Some(9));
        assert_eq!(d.temporal, Some((2, true)));
        assert_eq!(d.key_idx, Some(5));
        assert!(d.is_keyframe_start(&payload[6..]));
        assert!(!d.is_keyframe_start(&[0x11]));
        let mut out = HeaderBuf::default();
        d.write_rewritten(Some(0x0777), Some(42), &mut out);
        let again = Vp8Descriptor::parse(out.as_slice()).expect("written descriptor parses");
        assert_eq!(again.picture_id.map(|p| p.value), Some(0x0777));
        assert_eq!(again.tl0_pic_idx, Some(42));
        assert_eq!(again.temporal, d.temporal);
        assert_eq!(again.key_idx, d.key_idx);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let payload = [0x90, 0xf0, 0x92, 0x34, 9, 0b1010_0101];
        for len in 0..payload.len() {
            assert_eq!(
                Vp8Descriptor::parse(&payload[..len]),
                Err(Vp8Error::Truncated)
            );
        }
    }
}
