//! RFC 4571 framing of ICE-TCP (RFC 6544 §3): every STUN, DTLS or SRTP packet on the connection
//! is preceded by its length as a 16-bit big-endian integer.

use bytes::{Buf, BufMut, BytesMut};

/// Largest frame accepted from a client: an Ethernet-sized packet (1500 bytes) plus room for
/// what a browser's SRTP and DTLS records add. A longer length field closes the connection
/// (`oversized_frame`): nothing the SFU speaks is that large, and the bound keeps the read
/// buffer of each connection small.
pub(crate) const MAX_FRAME: usize = 1600;

/// Length of the frame header.
const HEADER: usize = 2;

/// Why the byte stream cannot be cut into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FrameError {
    /// A length field above [`MAX_FRAME`] (received) or above 65535 (to send).
    #[error("frame of {0} bytes is over the limit")]
    Oversized(usize),
}

/// Takes the next complete frame off the front of `buf`: `Ok(None)` while its bytes have not all
/// arrived, an error as soon as its length field exceeds [`MAX_FRAME`].
pub(crate) fn take_frame(buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
    let Some(header) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
    if len > MAX_FRAME {
        return Err(FrameError::Oversized(len));
    }
    if buf.len() < HEADER + len {
        return Ok(None);
    }
    buf.advance(HEADER);
    Ok(Some(buf.split_to(len)))
}

/// Appends `packet` to `out` as one frame.
pub(crate) fn put_frame(out: &mut BytesMut, packet: &[u8]) -> Result<(), FrameError> {
    let len = u16::try_from(packet.len()).map_err(|_| FrameError::Oversized(packet.len()))?;
    out.reserve(HEADER + packet.len());
    out.put_u16(len);
    out.put_slice(packet);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length from 0 to the limit survives framing and unframing, fed in one piece and
    /// byte by byte.
    #[test]
    fn every_length_up_to_the_limit_round_trips() {
        for len in 0..=MAX_FRAME {
            let packet: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut framed = BytesMut::new();
            put_frame(&mut framed, &packet).unwrap();
            assert_eq!(framed.len(), len + HEADER);

            let mut whole = framed.clone();
            assert_eq!(
                take_frame(&mut whole).unwrap().as_deref(),
                Some(&packet[..])
            );
            assert!(whole.is_empty());

            if len % 97 == 0 {
                let mut partial = BytesMut::new();
                for (i, byte) in framed.iter().enumerate() {
                    assert_eq!(take_frame(&mut partial).unwrap(), None, "{len} at {i}");
                    partial.put_u8(*byte);
                }
                assert_eq!(
                    take_frame(&mut partial).unwrap().as_deref(),
                    Some(&packet[..])
                );
            }
        }
    }

    #[test]
    fn two_frames_in_one_read_come_out_in_order() {
        let mut buf = BytesMut::new();
        put_frame(&mut buf, b"first").unwrap();
        put_frame(&mut buf, b"second").unwrap();
        buf.put_u8(0);
        assert_eq!(
            take_frame(&mut buf).unwrap().as_deref(),
            Some(&b"first"[..])
        );
        assert_eq!(
            take_frame(&mut buf).unwrap().as_deref(),
            Some(&b"second"[..])
        );
        assert_eq!(take_frame(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 1);
    }

    /// A length field over the limit is refused from its header alone, before the body arrives.
    #[test]
    fn an_oversized_length_is_refused_from_the_header() {
        for len in [MAX_FRAME + 1, 4096, usize::from(u16::MAX)] {
            let mut buf = BytesMut::new();
            buf.put_u16(u16::try_from(len).unwrap());
            assert_eq!(take_frame(&mut buf), Err(FrameError::Oversized(len)));
        }
        let mut out = BytesMut::new();
        let huge = vec![0u8; usize::from(u16::MAX) + 1];
        assert_eq!(
            put_frame(&mut out, &huge),
            Err(FrameError::Oversized(huge.len()))
        );
    }
}
