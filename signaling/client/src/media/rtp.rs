//! Encoded (sealed) frames to RTP payloads and back, as a WebRTC stack does it.
//!
//! - Opus (RFC 7587): one frame per packet; the payload is the frame ([`opus_payload`],
//!   [`opus_frame`]).
//! - VP8 (RFC 7741): [`Vp8Packetizer`] cuts a frame into payloads of at most its MTU, each
//!   behind a 4-byte payload descriptor (X and S bits, a 15-bit picture id); the marker bit goes
//!   on the last packet of the frame. The SFU reads and rewrites the descriptor and reads the
//!   frame's first bytes (the clear VP8 header); everything after the clear prefix is SFrame
//!   ciphertext. The receiving side is [`super::Vp8Reassembler`].

use bytes::{BufMut, Bytes, BytesMut};

/// Largest RTP payload a packetizer produces by default (descriptor included), as browsers do.
pub const MAX_RTP_PAYLOAD: usize = 1200;

/// Length of the VP8 payload descriptor [`Vp8Packetizer`] writes.
pub const VP8_DESCRIPTOR_LEN: usize = 4;

/// The RTP payload of an Opus frame: the frame itself (RFC 7587 §4.2).
pub fn opus_payload(frame: &[u8]) -> &[u8] {
    frame
}

/// The Opus frame an RTP payload carries: the payload itself (RFC 7587 §4.2).
pub fn opus_frame(payload: &[u8]) -> &[u8] {
    payload
}

/// Cuts VP8 frames into RTP payloads with a 15-bit picture id that grows by one per frame.
#[derive(Debug, Clone)]
pub struct Vp8Packetizer {
    picture_id: u16,
    max_payload: usize,
}

impl Vp8Packetizer {
    /// A packetizer of payloads of at most [`MAX_RTP_PAYLOAD`] bytes whose first frame carries
    /// `first_picture_id` (taken modulo 2^15).
    pub fn new(first_picture_id: u16) -> Self {
        Self::with_max_payload(first_picture_id, MAX_RTP_PAYLOAD)
    }

    /// A packetizer of payloads of at most `max_payload` bytes (descriptor included; at least
    /// one frame byte per payload, so at least `VP8_DESCRIPTOR_LEN + 1`).
    pub fn with_max_payload(first_picture_id: u16, max_payload: usize) -> Self {
        Vp8Packetizer {
            picture_id: first_picture_id & 0x7fff,
            max_payload: max_payload.max(VP8_DESCRIPTOR_LEN + 1),
        }
    }

    /// Appends `frame`'s payloads to `out` (cleared first), in order; the last one ends the
    /// frame (its packet carries the marker bit). An empty frame yields one payload with no
    /// frame bytes. All payloads share one allocation.
    pub fn packetize(&mut self, frame: &[u8], out: &mut Vec<Bytes>) {
        out.clear();
        let chunk = self.max_payload - VP8_DESCRIPTOR_LEN;
        let packets = frame.len().div_ceil(chunk).max(1);
        let mut buf = BytesMut::with_capacity(frame.len() + packets * VP8_DESCRIPTOR_LEN);
        let pid = self.picture_id;
        let mut chunks = frame.chunks(chunk);
        for n in 0..packets {
            buf.put_u8(if n == 0 { 0x90 } else { 0x80 }); // X; S on the first packet; PID 0
            buf.put_u8(0x80); // I: picture id present
            buf.put_u16(0x8000 | pid); // M: 15-bit picture id
            buf.put_slice(chunks.next().unwrap_or_default());
            out.push(buf.split().freeze());
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_id_is_15_bit_and_wraps() {
        let mut p = Vp8Packetizer::new(0x7fff);
        let mut out = Vec::new();
        p.packetize(&[1, 2, 3], &mut out);
        assert_eq!(&out[0][..], &[0x90, 0x80, 0xff, 0xff, 1, 2, 3]);
        p.packetize(&[1, 2, 3], &mut out);
        assert_eq!(&out[0][..4], &[0x90, 0x80, 0x80, 0x00]);
    }

    #[test]
    fn only_the_first_payload_starts_the_frame_and_none_exceeds_the_mtu() {
        let mut p = Vp8Packetizer::new(5);
        let mut out = Vec::new();
        p.packetize(&[7u8; 2393], &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0][0], 0x90);
        assert!(out[1..].iter().all(|b| b[0] == 0x80));
        assert!(out.iter().all(|b| b.len() <= MAX_RTP_PAYLOAD));
        p.packetize(&[], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), VP8_DESCRIPTOR_LEN);
    }
}
