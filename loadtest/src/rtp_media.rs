//! Encoded (encrypted) media frames to RTP payloads and back, as a WebRTC stack does it.
//!
//! - Opus: one frame per packet, the payload is the frame (RFC 7587).
//! - VP8: the frame is split into payloads of at most [`MAX_RTP_PAYLOAD`] bytes, each behind a
//!   4-byte payload descriptor (RFC 7741 §4.2: X and S bits, a 15-bit picture id). The SFU
//!   reads and rewrites the descriptor and reads the frame's first byte (the clear VP8 frame
//!   tag); everything after the clear prefix is SFrame ciphertext.
//!
//! [`Vp8Reassembler`] puts a frame back together on the receiving side, as a browser's jitter
//! buffer does: the packets of one RTP timestamp, from the one with S = 1 and partition 0 to the
//! one with the marker bit, in any arrival order, so a packet recovered by NACK/RTX later still
//! completes its frame. A frame still incomplete when [`MAX_PENDING_FRAMES`] newer frames are
//! in progress is given up (the probe inside counts it as lost).

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

/// Frames of one stream held while packets are missing (about half a second of a 15-30 fps
/// stream: room for a retransmission round trip or two).
pub const MAX_PENDING_FRAMES: usize = 12;

/// Timestamps of completed frames remembered, so a late duplicate does not start a frame again.
const COMPLETED_REMEMBERED: usize = 32;

/// One frame in progress: its packets' data in arrival order and where each one lies.
#[derive(Debug)]
struct PendingFrame {
    timestamp: u32,
    data: Vec<u8>,
    /// (sequence number, offset in `data`, length), in arrival order.
    parts: Vec<(u16, usize, usize)>,
    first_seq: Option<u16>,
    last_seq: Option<u16>,
}

impl PendingFrame {
    /// Whether every packet from the first to the marker is here.
    fn is_complete(&self) -> bool {
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => {
                usize::from(last.wrapping_sub(first)) + 1 == self.parts.len()
                    && self
                        .parts
                        .iter()
                        .all(|(seq, ..)| seq.wrapping_sub(first) <= last.wrapping_sub(first))
            }
            _ => false,
        }
    }
}

/// Rebuilds VP8 frames from one RTP stream's packets (see the module documentation).
#[derive(Debug, Default)]
pub struct Vp8Reassembler {
    pending: std::collections::VecDeque<PendingFrame>,
    completed: std::collections::VecDeque<u32>,
    frame: Vec<u8>,
    /// Frames given up because a packet never arrived.
    broken_frames: u64,
}

impl Vp8Reassembler {
    /// An empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one packet; returns the frame it completes, if any.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<&[u8]>, DepacketizeError> {
        let (len, starts) = vp8_descriptor(payload)?;
        let data = &payload[len..];
        if data.is_empty() {
            return Err(DepacketizeError::Empty);
        }
        if self.completed.contains(&timestamp) {
            return Ok(None);
        }
        let index = match self.pending.iter().position(|f| f.timestamp == timestamp) {
            Some(i) => i,
            None => {
                if self.pending.len() == MAX_PENDING_FRAMES {
                    self.pending.pop_front();
                    self.broken_frames += 1;
                }
                self.pending.push_back(PendingFrame {
                    timestamp,
                    data: Vec::with_capacity(data.len() * 8),
                    parts: Vec::new(),
                    first_seq: None,
                    last_seq: None,
                });
                self.pending.len() - 1
            }
        };
        let frame = &mut self.pending[index];
        if frame.parts.iter().any(|(s, ..)| *s == seq) {
            return Ok(None);
        }
        frame.parts.push((seq, frame.data.len(), data.len()));
        frame.data.extend_from_slice(data);
        if starts {
            frame.first_seq = Some(seq);
        }
        if marker {
            frame.last_seq = Some(seq);
        }
        if !frame.is_complete() {
            return Ok(None);
        }
        let Some(frame) = self.pending.remove(index) else {
            return Ok(None);
        };
        if self.completed.len() == COMPLETED_REMEMBERED {
            self.completed.pop_front();
        }
        self.completed.push_back(timestamp);
        let first = frame.first_seq.unwrap_or(seq);
        let in_order = frame
            .parts
            .windows(2)
            .all(|w| w[0].0.wrapping_sub(first) < w[1].0.wrapping_sub(first));
        if in_order {
            self.frame = frame.data;
        } else {
            let mut parts = frame.parts;
            parts.sort_by_key(|(s, ..)| s.wrapping_sub(first));
            self.frame.clear();
            for (_, offset, len) in parts {
                self.frame
                    .extend_from_slice(&frame.data[offset..offset + len]);
            }
        }
        Ok(Some(&self.frame))
    }

    /// Frames given up because one of their packets never arrived.
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
                got = r
                    .push(seq, n as u32 * 3000, last, b)
                    .unwrap()
                    .map(<[u8]>::to_vec);
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
    fn a_late_packet_completes_its_frame_and_a_lost_one_drops_only_its_frame() {
        let mut p = Vp8Packetizer::new(1);
        let mut r = Vp8Reassembler::new();
        let mut out = Vec::new();
        let f = frame(3000, 1);
        p.packetize(&f, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(r.push(10, 100, false, &out[0]).unwrap(), None);
        // Packet 11 late (a retransmission): the frame waits for it.
        assert_eq!(r.push(12, 100, true, &out[2]).unwrap(), None);
        assert_eq!(r.push(11, 100, false, &out[1]).unwrap(), Some(&f[..]));
        // A duplicate of a completed frame is ignored.
        assert_eq!(r.push(11, 100, false, &out[1]).unwrap(), None);
        // Frame 200 loses packet 14 for good: it is given up once enough newer frames came.
        let g = frame(3000, 2);
        p.packetize(&g, &mut out);
        assert_eq!(r.push(13, 200, false, &out[0]).unwrap(), None);
        assert_eq!(r.push(15, 200, true, &out[2]).unwrap(), None);
        let mut seq = 16u16;
        for i in 0..MAX_PENDING_FRAMES as u32 {
            let h = frame(500, i as u8);
            p.packetize(&h, &mut out);
            assert_eq!(r.push(seq, 300 + i, true, &out[0]).unwrap(), Some(&h[..]));
            seq += 1;
        }
        assert_eq!(r.broken_frames(), 0, "completed frames do not push it out");
        for i in 0..MAX_PENDING_FRAMES as u32 {
            let h = frame(3000, i as u8);
            p.packetize(&h, &mut out);
            assert_eq!(r.push(seq, 1000 + i, false, &out[0]).unwrap(), None);
            seq += 3;
        }
        assert_eq!(r.broken_frames(), 1);
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
        assert_eq!(r.push(0, 0, true, &full), Err(DepacketizeError::Empty));
    }
}
