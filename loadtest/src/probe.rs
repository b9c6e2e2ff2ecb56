//! The in-payload probe: a send timestamp and sequence number carried at the end of every
//! media frame, *inside* the part that SFrame encrypts.
//!
//! Because the probe sits in the ciphertext, only a receiver that decrypted the frame can read
//! it: the latency and loss it measures are end to end, through the SFU, and a frame the SFU
//! mangled fails authentication instead of producing a bogus sample. It is a trailer (the last
//! [`PROBE_LEN`] bytes of the frame) so that the codec payload in front of it stays intact: an
//! Opus packet with the trailer removed still decodes, and the VP8 clear prefix (frame tag, start
//! code, size) stays at the start where the SFU reads it.
//!
//! Layout (big-endian):
//!
//! | bytes | field                                                            |
//! |-------|------------------------------------------------------------------|
//! | 0–3   | magic `"LTP1"`                                                   |
//! | 4–5   | sender (the load-test participant index)                         |
//! | 6     | stream (0 audio, 1 camera low, 2 camera mid, 3 camera high, …)   |
//! | 7     | reserved, zero                                                   |
//! | 8–11  | sequence number, per (sender, stream), starting at 0             |
//! | 12–19 | send time in microseconds since the run's common epoch           |

use thiserror::Error;

/// Length of an encoded probe in bytes.
pub const PROBE_LEN: usize = 20;

/// Marks the start of a probe, so a frame without one is told apart from a corrupt one.
const MAGIC: [u8; 4] = *b"LTP1";

/// What a receiver needs to measure one frame: who sent it, on which stream, in which order and
/// when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The sending participant's index in the run.
    pub sender: u16,
    /// The sender's stream (audio, a simulcast layer, …), so each stream's loss is counted apart.
    pub stream: u8,
    /// Per (sender, stream) sequence number, one per frame (or per packet in the baseline).
    pub seq: u32,
    /// Microseconds since the run's epoch when the frame was handed to the network.
    pub send_time_us: u64,
}

/// Why a byte string holds no valid probe.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeError {
    /// The payload is shorter than a probe.
    #[error("payload of {0} bytes is shorter than a probe ({PROBE_LEN} bytes)")]
    TooShort(usize),
    /// The trailer does not start with the probe's magic bytes.
    #[error("payload does not end with a load-test probe")]
    BadMagic,
    /// The reserved byte is not zero (a newer or corrupt probe).
    #[error("probe reserved byte is {0:#04x}, expected 0")]
    Reserved(u8),
}

impl Probe {
    /// Encodes the probe into its [`PROBE_LEN`]-byte wire form.
    pub fn encode(&self) -> [u8; PROBE_LEN] {
        let mut out = [0u8; PROBE_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.sender.to_be_bytes());
        out[6] = self.stream;
        out[7] = 0;
        out[8..12].copy_from_slice(&self.seq.to_be_bytes());
        out[12..20].copy_from_slice(&self.send_time_us.to_be_bytes());
        out
    }

    /// Appends the encoded probe to `payload` (the frame the probe travels in).
    pub fn append_to(&self, payload: &mut Vec<u8>) {
        payload.extend_from_slice(&self.encode());
    }

    /// Decodes a probe from exactly its wire form.
    pub fn decode(bytes: &[u8; PROBE_LEN]) -> Result<Self, ProbeError> {
        let (magic, rest) = bytes.split_at(4);
        if magic != MAGIC {
            return Err(ProbeError::BadMagic);
        }
        if rest[3] != 0 {
            return Err(ProbeError::Reserved(rest[3]));
        }
        Ok(Probe {
            sender: u16::from_be_bytes([rest[0], rest[1]]),
            stream: rest[2],
            seq: u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
            send_time_us: u64::from_be_bytes([
                rest[8], rest[9], rest[10], rest[11], rest[12], rest[13], rest[14], rest[15],
            ]),
        })
    }

    /// Splits a decrypted frame into the codec payload and the probe at its end.
    ///
    /// The payload is untrusted input: anything short or malformed is an `Err`.
    pub fn split_trailer(frame: &[u8]) -> Result<(&[u8], Probe), ProbeError> {
        let Some(body_len) = frame.len().checked_sub(PROBE_LEN) else {
            return Err(ProbeError::TooShort(frame.len()));
        };
        let (body, trailer) = frame.split_at(body_len);
        let trailer: &[u8; PROBE_LEN] = trailer
            .try_into()
            // The split above leaves exactly PROBE_LEN bytes in `trailer`.
            .expect("trailer is PROBE_LEN bytes");
        Ok((body, Probe::decode(trailer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Probe {
        Probe {
            sender: 0xBEEF,
            stream: 3,
            seq: 0x0102_0304,
            send_time_us: 0x1122_3344_5566_7788,
        }
    }

    #[test]
    fn round_trips_as_trailer_and_leaves_body_intact() {
        let mut frame = b"codec bytes".to_vec();
        sample().append_to(&mut frame);
        assert_eq!(frame.len(), 11 + PROBE_LEN);
        let (body, probe) = Probe::split_trailer(&frame).unwrap();
        assert_eq!(body, b"codec bytes");
        assert_eq!(probe, sample());
    }

    #[test]
    fn wire_layout_is_big_endian_and_fixed() {
        let bytes = sample().encode();
        assert_eq!(&bytes[0..4], b"LTP1");
        assert_eq!(&bytes[4..6], &[0xBE, 0xEF]);
        assert_eq!(bytes[6], 3);
        assert_eq!(bytes[7], 0);
        assert_eq!(&bytes[8..12], &[1, 2, 3, 4]);
        assert_eq!(
            &bytes[12..20],
            &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
    }

    #[test]
    fn every_length_from_0_to_1500_is_handled_without_panic() {
        let good = sample().encode();
        for len in 0..1500usize {
            let mut frame = vec![0xA5u8; len];
            let result = Probe::split_trailer(&frame);
            if len < PROBE_LEN {
                assert_eq!(result, Err(ProbeError::TooShort(len)));
            } else {
                assert_eq!(result, Err(ProbeError::BadMagic));
                let at = len - PROBE_LEN;
                frame[at..].copy_from_slice(&good);
                assert_eq!(Probe::split_trailer(&frame).unwrap().1, sample());
            }
        }
    }

    #[test]
    fn nonzero_reserved_byte_is_refused() {
        let mut bytes = sample().encode();
        bytes[7] = 1;
        assert_eq!(Probe::decode(&bytes), Err(ProbeError::Reserved(1)));
    }
}
