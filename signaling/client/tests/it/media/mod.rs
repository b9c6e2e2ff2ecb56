//! `call_client::media`: SFrame seal/open with the clear prefix, RTP (de)packetization, VP8
//! frame reassembly.

mod clear_prefix;
mod reassembler;
mod rtp_properties;
mod seal_open;

use call_client::media::{Vp8Packetizer, Vp8Reassembler};

/// A frame of `len` bytes starting with `first` (bit 0 clear: a VP8 keyframe), then a pattern.
pub(super) fn frame(first: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| if i == 0 { first } else { (i * 31 + 7) as u8 })
        .collect()
}

/// One RTP packet as the reassembler takes it.
#[derive(Debug, Clone)]
pub(super) struct Packet {
    pub(super) seq: u16,
    pub(super) timestamp: u32,
    pub(super) marker: bool,
    pub(super) payload: bytes::Bytes,
}

/// Packetizes `frames` as one RTP stream from sequence number `first_seq`, timestamps 3000
/// apart (30 fps at 90 kHz).
pub(super) fn packets(frames: &[Vec<u8>], first_seq: u16, max_payload: usize) -> Vec<Packet> {
    let mut p = Vp8Packetizer::with_max_payload(17, max_payload);
    let mut payloads = Vec::new();
    let mut seq = first_seq;
    let mut out = Vec::new();
    for (n, f) in frames.iter().enumerate() {
        p.packetize(f, &mut payloads);
        let last = payloads.len() - 1;
        for (i, payload) in payloads.drain(..).enumerate() {
            out.push(Packet {
                seq,
                timestamp: n as u32 * 3000,
                marker: i == last,
                payload,
            });
            seq = seq.wrapping_add(1);
        }
    }
    out
}

/// Pushes `packets` in the given order and collects every frame handed out.
pub(super) fn reassemble(r: &mut Vp8Reassembler, packets: &[Packet]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in packets {
        r.push(p.seq, p.timestamp, p.marker, &p.payload).unwrap();
        while let Some(f) = r.next_frame() {
            out.push(f.data.to_vec());
        }
    }
    out
}
