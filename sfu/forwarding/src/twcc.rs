//! Transport-wide congestion-control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01
//! §3.1): the FCI parser the core uses on subscribers' feedback, and a writer (used by tests and
//! the fuzz corpus; it emits 2-bit status-vector chunks only).

use crate::rtcp::{RtcpError, packet_type};

/// Upper bound on the statuses one feedback may claim. Browsers send a few hundred at most; the
/// bound keeps a 20-byte packet from making the core walk 65,535 run-length entries.
pub const MAX_STATUSES: u16 = 8192;

/// The fixed fields of a feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackHeader {
    /// Transport-wide sequence number of the first status.
    pub base_seq: u16,
    /// Number of statuses.
    pub status_count: u16,
    /// Reference time in multiples of 64 ms (24-bit signed).
    pub reference_time: i32,
    /// Feedback packet count.
    pub feedback_count: u8,
}

/// One packet's status in a feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketStatus {
    /// Transport-wide sequence number.
    pub seq: u16,
    /// Arrival time in µs on the receiver's feedback clock, or `None` when not received.
    pub received_at_us: Option<i64>,
}

/// Parses a transport-cc FCI, replacing the contents of `out` with one status per sequence
/// number from `base_seq`.
pub fn parse_feedback(
    fci: &[u8],
    out: &mut Vec<PacketStatus>,
) -> Result<FeedbackHeader, RtcpError> {
    out.clear();
    let head: &[u8; 8] = fci.first_chunk().ok_or(RtcpError::Truncated)?;
    let base_seq = u16::from_be_bytes([head[0], head[1]]);
    let status_count = u16::from_be_bytes([head[2], head[3]]);
    let reference_time = ((u32::from_be_bytes([0, head[4], head[5], head[6]]) << 8) as i32) >> 8;
    let feedback_count = head[7];
    if status_count > MAX_STATUSES {
        return Err(RtcpError::BadTransportCc);
    }
    let total = usize::from(status_count);
    let mut rest = &fci[8..];
    // First pass: symbols. Until the deltas are read, `received_at_us` holds the symbol
    // (1 = small delta, 2 = large delta) for received packets.
    let mut seq = base_seq;
    let mut push = |out: &mut Vec<PacketStatus>, symbol: u8| {
        out.push(PacketStatus {
            seq,
            received_at_us: (symbol != 0).then_some(i64::from(symbol)),
        });
        seq = seq.wrapping_add(1);
    };
    while out.len() < total {
        let (chunk, r) = rest
            .split_first_chunk::<2>()
            .ok_or(RtcpError::BadTransportCc)?;
        rest = r;
        let chunk = u16::from_be_bytes(*chunk);
        if chunk & 0x8000 == 0 {
            let symbol = ((chunk >> 13) & 0x3) as u8;
            if symbol == 3 {
                return Err(RtcpError::BadTransportCc);
            }
            let run = usize::from(chunk & 0x1fff);
            for _ in 0..run.min(total - out.len()) {
                push(out, symbol);
            }
        } else if chunk & 0x4000 == 0 {
            for i in (0..14).rev() {
                if out.len() == total {
                    break;
                }
                push(out, ((chunk >> i) & 1) as u8);
            }
        } else {
            for i in (0..7).rev() {
                if out.len() == total {
                    break;
                }
                let symbol = ((chunk >> (2 * i)) & 0x3) as u8;
                if symbol == 3 {
                    return Err(RtcpError::BadTransportCc);
                }
                push(out, symbol);
            }
        }
    }
    let mut time_us = i64::from(reference_time) * 64_000;
    for status in out.iter_mut() {
        let Some(symbol) = status.received_at_us else {
            continue;
        };
        let delta = if symbol == 1 {
            let (d, r) = rest.split_first().ok_or(RtcpError::BadTransportCc)?;
            rest = r;
            i64::from(*d)
        } else {
            let (d, r) = rest
                .split_first_chunk::<2>()
                .ok_or(RtcpError::BadTransportCc)?;
            rest = r;
            i64::from(i16::from_be_bytes(*d))
        };
        time_us += delta * 250;
        status.received_at_us = Some(time_us);
    }
    Ok(FeedbackHeader {
        base_seq,
        status_count,
        reference_time,
        feedback_count,
    })
}

/// Appends a complete transport-cc RTCP packet. `arrivals[i]` is the arrival time in µs of
/// sequence number `base_seq + i` (or `None` if lost); the reference time is taken from the
/// first received packet, rounded down to 64 ms.
pub fn write_feedback(
    out: &mut Vec<u8>,
    sender_ssrc: u32,
    media_ssrc: u32,
    base_seq: u16,
    feedback_count: u8,
    arrivals: &[Option<i64>],
) {
    let at = out.len();
    out.extend_from_slice(&[0x80 | 15, packet_type::RTPFB, 0, 0]);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    let arrivals = &arrivals[..arrivals.len().min(usize::from(MAX_STATUSES))];
    let first = arrivals.iter().flatten().next().copied().unwrap_or(0);
    let reference = first.div_euclid(64_000);
    out.extend_from_slice(&base_seq.to_be_bytes());
    out.extend_from_slice(&(arrivals.len() as u16).to_be_bytes());
    out.extend_from_slice(&((reference as i32) as u32).to_be_bytes()[1..]);
    out.push(feedback_count);
    let mut deltas = Vec::new();
    let mut prev = reference * 64_000;
    let mut symbols = Vec::with_capacity(arrivals.len());
    for a in arrivals {
        match a {
            None => symbols.push(0u16),
            Some(t) => {
                let d = (t - prev).div_euclid(250);
                prev += d * 250;
                if (0..=255).contains(&d) {
                    symbols.push(1);
                    deltas.push(d as u8);
                } else {
                    let d = d.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16;
                    symbols.push(2);
                    deltas.extend_from_slice(&d.to_be_bytes());
                }
            }
        }
    }
    for chunk in symbols.chunks(7) {
        let mut c = 0xc000u16;
        for (i, s) in chunk.iter().enumerate() {
            c |= s << (2 * (6 - i));
        }
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&deltas);
    while !(out.len() - at).is_multiple_of(4) {
        out.push(0);
    }
    let words = ((out.len() - at) / 4 - 1) as u16;
    out[at + 2..at + 4].copy_from_slice(&words.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::{RtcpIter, RtcpPacket};

    #[test]
    fn written_feedback_round_trips() {
        let arrivals = [
            Some(1_000_000),
            None,
            Some(1_000_500),
            Some(1_200_000),
            None,
            Some(900_000),
        ];
        let mut buf = Vec::new();
        write_feedback(&mut buf, 1, 2, 65534, 3, &arrivals);
        let mut packets = RtcpIter::new(&buf);
        let Some(Ok(RtcpPacket::TransportCc { fci, .. })) = packets.next() else {
            panic!("expected transport-cc");
        };
        let mut statuses = Vec::new();
        let h = parse_feedback(fci, &mut statuses).expect("valid feedback");
        assert_eq!(h.base_seq, 65534);
        assert_eq!(statuses.len(), arrivals.len());
        for (i, (s, a)) in statuses.iter().zip(arrivals).enumerate() {
            assert_eq!(s.seq, 65534u16.wrapping_add(i as u16));
            assert_eq!(s.received_at_us.is_some(), a.is_some());
            if let (Some(got), Some(want)) = (s.received_at_us, a) {
                assert!((got - want).abs() < 250, "{got} vs {want}");
            }
        }
    }

    /// The bytes of one feedback, worked out by hand from draft-holmer-rmcat-transport-wide-cc-
    /// extensions-01 §3.1 (what libwebrtc's parser reads): seq 100 received 1,000,000 µs, 101
    /// lost, 102 received 500 µs later, 103 received 99.5 ms after that.
    #[test]
    fn feedback_bytes_follow_the_draft_layout() {
        let arrivals = [Some(1_000_000), None, Some(1_000_500), Some(1_100_000)];
        let mut buf = Vec::new();
        write_feedback(&mut buf, 1, 2, 100, 7, &arrivals);
        #[rustfmt::skip]
        let expected = [
            // V=2, FMT=15, PT=205 (RTPFB), length 6 words - 1.
            0x8f, 0xcd, 0x00, 0x06,
            0x00, 0x00, 0x00, 0x01, // sender SSRC
            0x00, 0x00, 0x00, 0x02, // media SSRC
            0x00, 0x64, // base sequence number 100
            0x00, 0x04, // packet status count 4
            0x00, 0x00, 0x0f, // reference time 15 × 64 ms = 960 ms
            0x07, // feedback packet count
            // Status vector chunk, 2-bit symbols: small, not received, small, large, (3 unused).
            0b1101_0001, 0b1000_0000,
            0xa0, // 40 ms after the reference, in 250 µs ticks: 160
            0x02, // 500 µs: 2
            0x01, 0x8e, // 99.5 ms: 398, a large (16-bit signed) delta
            0x00, 0x00, // to a 32-bit boundary
        ];
        assert_eq!(buf, expected);
    }

    #[test]
    fn claimed_statuses_without_chunks_is_an_error() {
        let fci = [0, 1, 0, 10, 0, 0, 0, 0];
        assert_eq!(
            parse_feedback(&fci, &mut Vec::new()),
            Err(RtcpError::BadTransportCc)
        );
    }
}
