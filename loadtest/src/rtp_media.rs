//! Encoded (encrypted) media frames to RTP payloads and back, as a WebRTC stack does it.
//!
//! - Opus: one frame per packet, the payload is the frame (RFC 7587).
//! - VP8: the frame is split into payloads of at most [`MAX_RTP_PAYLOAD`] bytes, each behind a
//!   4-byte payload descriptor (RFC 7741 §4.2: X and S bits, a 15-bit picture id). The SFU
//!   reads and rewrites the descriptor and reads the frame's first byte (the clear VP8 frame
//!   tag); everything after the clear prefix is SFrame ciphertext.
//!
//! [`Vp8Reassembler`] puts a frame back together on the receiving side from packets in
//! sequence order: a frame starts at a packet with S = 1 and partition 0 and ends at the marker
//! bit; a frame with a missing packet is dropped (the probe inside counts it as lost).

use bytes::Bytes;
use thiserror::Error;

/// Largest RTP payload a packetizer produces (descriptor included), as browsers do.
pub const MAX_RTP_PAYLOAD: usize = 1200;

/// Length of the VP8 payload descriptor the packetizer writes.
pub const VP8_DESCRIPTOR_LEN: usize = 4;

/// Why an RTP payload was refused by the reassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DepacketizeError {
    /// The payload ends inside the VP8 payload descriptor.
    #[error("VP8 payload descriptor truncated")]
    Truncated,
    /// The payload holds a descriptor and no frame data.
    #[error("VP8 payload without frame data")]
    Empty,
}

/// Splits VP8 frames into RTP payloads with a 15-bit picture id that grows by one per frame.
#[derive(Debug, Clone)]
pub struct Vp8Packetizer {
    picture_id: u16,
}

impl Vp8Packetizer {
    /// A packetizer whose first frame carries `first_picture_id` (taken modulo 2^15).
    pub fn new(first_picture_id: u16) -> Self {
        Vp8Packetizer {
            picture_id: first_picture_id & 0x7fff,
        }
    }

    /// Appends `frame`'s payloads to `out` (cleared first); the last one is the frame's end
    /// (the marker bit goes on its packet). An empty frame yields one payload with no data.
    pub fn packetize(&mut self, frame: &[u8], out: &mut Vec<Bytes>) {
        out.clear();
        let chunk = MAX_RTP_PAYLOAD - VP8_DESCRIPTOR_LEN;
        let pid = self.picture_id;
        let mut first = true;
        let mut rest = frame;
        loop {
            let (now, later) = rest.split_at(rest.len().min(chunk));
            let mut p = Vec::with_capacity(VP8_DESCRIPTOR_LEN + now.len());
            p.push(if first { 0x90 } else { 0x80 }); // X, S on the first packet, PID 0
            p.push(0x80); // I: picture id present
            p.push(0x80 | (pid >> 8) as u8); // M: 15-bit picture id
            p.push(pid as u8);
            p.extend_from_slice(now);
            out.push(Bytes::from(p));
            first = false;
            rest = later;
            if rest.is_empty() {
                break;
            }
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
    }
}

/// Length of the VP8 payload descriptor at the start of `payload` (RFC 7741 §4.2) and whether
/// it starts a frame (S = 1 and partition index 0).
pub fn vp8_descriptor(payload: &[u8]) -> Result<(usize, bool), DepacketizeError> {
    let first = *payload.first().ok_or(DepacketizeError::Truncated)?;
    let starts_frame = first & 0x10 != 0 && first & 0x0f == 0;
    let mut len = 1;
    if first & 0x80 != 0 {
        let x = *payload.get(1).ok_or(DepacketizeError::Truncated)?;
        len = 2;
        if x & 0x80 != 0 {
            let pid = *payload.get(len).ok_or(DepacketizeError::Truncated)?;
            len += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            len += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            len += 1; // TID/Y/KEYIDX
        }
    }
    if payload.len() < len {
        return Err(DepacketizeError::Truncated);
    }
    Ok((len, starts_frame))
}

/// Rebuilds VP8 frames from one RTP stream's packets, arriving in order (the WebRTC stack
/// hands them over in arrival order; a reordered packet ends the frame it belongs to).
#[derive(Debug, Default)]
pub struct Vp8Reassembler {
    frame: Vec<u8>,
    /// Sequence number the next packet of the frame in progress must have.
    next_seq: Option<u16>,
    /// Frames dropped because a packet was missing.
    broken_frames: u64,
}

impl Vp8Reassembler {
    /// An empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one packet; returns the complete frame when `marker` ends one.
    pub fn push(
        &mut self,
        seq: u16,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<&[u8]>, DepacketizeError> {
        let (len, starts) = vp8_descriptor(payload)?;
        let data = &payload[len..];
        if data.is_empty() {
            return Err(DepacketizeError::Empty);
        }
        if starts {
            if self.next_seq.is_some() {
                self.broken_frames += 1;
            }
            self.frame.clear();
        } else if self.next_seq != Some(seq) {
            // A middle packet without its predecessor: the frame is incomplete.
            if self.next_seq.is_some() {
                self.broken_frames += 1;
            }
            self.next_seq = None;
            return Ok(None);
        }
        self.frame.extend_from_slice(data);
        if marker {
            self.next_seq = None;
            Ok(Some(&self.frame))
        } else {
            self.next_seq = Some(seq.wrapping_add(1));
            Ok(None)
        }
    }

    /// Frames dropped because one of their packets was missing or out of order.
    pub fn broken_frames(&self) -> u64 {
        self.broken_frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
    }

    #[test]
    fn frames_of_every_size_round_trip() {
        let mut p = Vp8Packetizer::new(0x7ffe);
        let mut r = Vp8Reassembler::new();
        let mut payloads = Vec::new();
        let mut seq = 65_530u16;
        for (n, len) in [1usize, 100, 1196, 1197, 2392, 2393, 10_000]
            .into_iter()
            .enumerate()
        {
            let f = frame(len, n as u8);
            p.packetize(&f, &mut payloads);
            assert_eq!(payloads.len(), len.div_ceil(1196));
            assert!(payloads.iter().all(|b| b.len() <= MAX_RTP_PAYLOAD));
            let mut got = None;
            for (i, b) in payloads.iter().enumerate() {
                let last = i + 1 == payloads.len();
                got = r.push(seq, last, b).unwrap().map(<[u8]>::to_vec);
                seq = seq.wrapping_add(1);
                assert_eq!(got.is_some(), last);
            }
            assert_eq!(got.unwrap(), f);
        }
        assert_eq!(r.broken_frames(), 0);
    }

    #[test]
    fn picture_id_is_15_bit_and_wraps() {
        let mut p = Vp8Packetizer::new(0x7fff);
        let mut out = Vec::new();
        p.packetize(&[1, 2, 3], &mut out);
        assert_eq!(&out[0][..4], &[0x90, 0x80, 0xff, 0xff]);
        p.packetize(&[1, 2, 3], &mut out);
        assert_eq!(&out[0][..4], &[0x90, 0x80, 0x80, 0x00]);
    }

    #[test]
    fn a_missing_packet_drops_its_frame_only() {
        let mut p = Vp8Packetizer::new(1);
        let mut r = Vp8Reassembler::new();
        let mut out = Vec::new();
        let f = frame(3000, 1);
        p.packetize(&f, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(r.push(10, false, &out[0]).unwrap(), None);
        // Packet 11 lost.
        assert_eq!(r.push(12, true, &out[2]).unwrap(), None);
        assert_eq!(r.broken_frames(), 1);
        let g = frame(500, 2);
        p.packetize(&g, &mut out);
        assert_eq!(r.push(13, true, &out[0]).unwrap(), Some(&g[..]));
    }

    #[test]
    fn descriptors_of_every_shape_parse_and_truncation_is_an_error() {
        assert_eq!(vp8_descriptor(&[0x10, 9]), Ok((1, true)));
        assert_eq!(vp8_descriptor(&[0x90, 0x80, 0x05, 9]), Ok((3, true)));
        assert_eq!(
            vp8_descriptor(&[0x80, 0xf0, 0x85, 1, 2, 3, 9]),
            Ok((6, false))
        );
        // S set but partition 1: not a frame start.
        assert_eq!(vp8_descriptor(&[0x11, 9]), Ok((1, false)));
        let full = [0x90u8, 0xf0, 0x85, 1, 2, 3];
        for len in 0..full.len() {
            assert_eq!(
                vp8_descriptor(&full[..len]),
                Err(DepacketizeError::Truncated)
            );
        }
        let mut r = Vp8Reassembler::new();
        assert_eq!(r.push(0, true, &full), Err(DepacketizeError::Empty));
    }
}
