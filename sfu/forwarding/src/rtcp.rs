//! The RTCP the core reads (RFC 3550 SR/RR, RFC 4585 generic NACK and PLI, RFC 5104 FIR,
//! draft-holmer transport-wide CC) parsed zero-copy from a compound packet, and writers for the
//! RTCP it sends.

use thiserror::Error;

/// Why an RTCP packet was refused. Counted as `malformed` by the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Empty, or shorter than a 4-byte RTCP header.
    #[error("RTCP packet shorter than its header")]
    TooShort,
    /// The version field is not 2.
    #[error("RTCP version is not 2")]
    BadVersion,
    /// The length field points past the end of the buffer.
    #[error("RTCP length field runs past the end of the buffer")]
    LengthOverrun,
    /// The padding count is zero or larger than the packet body.
    #[error("RTCP padding count is invalid")]
    BadPadding,
    /// The body is too short for its type (report blocks, feedback fields, FCI entries).
    #[error("RTCP body too short for its packet type")]
    Truncated,
    /// A transport-cc feedback's status chunks or deltas do not match its status count, or it
    /// claims more statuses than the core accepts.
    #[error("transport-cc feedback is inconsistent")]
    BadTransportCc,
}

/// RTCP packet types (RFC 3550, RFC 4585).
pub mod packet_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Transport-layer feedback.
    pub const RTPFB: u8 = 205;
    /// Payload-specific feedback.
    pub const PSFB: u8 = 206;
}

/// One RFC 3550 reception report block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (LSR).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8; 24]) -> Self {
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
        // Sign-extend the 24-bit field.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Self {
            ssrc: u32_at(0),
            fraction_lost: b[4],
            cumulative_lost,
            highest_seq: u32_at(8),
            jitter: u32_at(12),
            last_sr: u32_at(16),
            delay_since_last_sr: u32_at(20),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.push(self.fraction_lost);
        let lost = (self.cumulative_lost.clamp(-(1 << 23), (1 << 23) - 1) as u32).to_be_bytes();
        out.extend_from_slice(&lost[1..]);
        out.extend_from_slice(&self.highest_seq.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// The report blocks of an SR or RR, read lazily.
#[derive(Debug, Clone, Copy)]
pub struct ReportBlocks<'a>(&'a [u8]);

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.0.split_first_chunk::<24>()?;
        self.0 = rest;
        Some(ReportBlock::parse(block))
    }
}

/// The (PID, BLP) items of a generic NACK, expanded lazily into lost sequence numbers.
#[derive(Debug, Clone, Copy)]
pub struct NackItems<'a> {
    fci: &'a [u8],
    pid: u16,
    bits: u32,
}

impl<'a> NackItems<'a> {
    fn new(fci: &'a [u8]) -> Self {
        Self {
            fci,
            pid: 0,
            bits: 0,
        }
    }
}

impl Iterator for NackItems<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        loop {
            if self.bits != 0 {
                let i = self.bits.trailing_zeros();
                self.bits &= self.bits - 1;
                // Bit 0 is the PID itself, bit k (1..=16) is PID + k.
                return Some(self.pid.wrapping_add(i as u16));
            }
            let (item, rest) = self.fci.split_first_chunk::<4>()?;
            self.fci = rest;
            self.pid = u16::from_be_bytes([item[0], item[1]]);
            self.bits = 1 | u32::from(u16::from_be_bytes([item[2], item[3]])) << 1;
        }
    }
}

/// The (SSRC, command sequence number) entries of a FIR.
#[derive(Debug, Clone, Copy)]
pub struct FirEntries<'a>(&'a [u8]);

impl Iterator for FirEntries<'_> {
    type Item = (u32, u8);
    fn next(&mut self) -> Option<(u32, u8)> {
        let (e, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some((u32::from_be_bytes([e[0], e[1], e[2], e[3]]), e[4]))
    }
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// Sender report.
    SenderReport {
        /// The sender.
        ssrc: u32,
        /// NTP timestamp (64-bit fixed point).
        ntp: u64,
        /// RTP timestamp corresponding to `ntp`.
        rtp_timestamp: u32,
        /// Packets sent.
        packet_count: u32,
        /// Payload octets sent.
        octet_count: u32,
        /// Reception reports.
        reports: ReportBlocks<'a>,
    },
    /// Receiver report.
    ReceiverReport {
        /// The reporter.
        ssrc: u32,
        /// Reception reports.
        reports: ReportBlocks<'a>,
    },
    /// Generic NACK (RTPFB FMT 1).
    Nack {
        /// The sender of the feedback.
        sender_ssrc: u32,
        /// The media source with losses.
        media_ssrc: u32,
        /// Lost sequence numbers.
        lost: NackItems<'a>,
    },
    /// Picture loss indication (PSFB FMT 1).
    Pli {
        /// The sender of the feedback.
        sender_ssrc: u32,
        /// The media source.
        media_ssrc: u32,
    },
    /// Full intra request (PSFB FMT 4).
    Fir {
        /// The sender of the feedback.
        sender_ssrc: u32,
        /// The requested sources and command sequence numbers.
        entries: FirEntries<'a>,
    },
    /// Transport-wide congestion-control feedback (RTPFB FMT 15); parse the FCI with
    /// [`crate::twcc::parse_feedback`].
    TransportCc {
        /// The sender of the feedback.
        sender_ssrc: u32,
        /// The media source field (unused by transport-wide feedback).
        media_ssrc: u32,
        /// The feedback control information.
        fci: &'a [u8],
    },
    /// Any other packet (SDES, BYE, APP, XR, REMB...): valid framing, content not read.
    Other {
        /// Packet type.
        packet_type: u8,
        /// Report count / feedback format field.
        format: u8,
    },
}

/// Iterates over the packets of a compound RTCP packet. Yields an error (and then stops) at the
/// first malformed packet.
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> RtcpIter<'a> {
    /// Starts iterating over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            rest: buf,
            failed: false,
        }
    }

    /// Checks every packet of `buf`; returns how many there are.
    pub fn validate(buf: &'a [u8]) -> Result<usize, RtcpError> {
        if buf.is_empty() {
            return Err(RtcpError::TooShort);
        }
        let mut n = 0;
        for p in Self::new(buf) {
            p?;
            n += 1;
        }
        Ok(n)
    }

    fn parse_one(&mut self) -> Result<RtcpPacket<'a>, RtcpError> {
        let head: &[u8; 4] = self.rest.first_chunk().ok_or(RtcpError::TooShort)?;
        if head[0] >> 6 != 2 {
            return Err(RtcpError::BadVersion);
        }
        let padding = head[0] & 0x20 != 0;
        let count = head[0] & 0x1f;
        let pt = head[1];
        let total = (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1) * 4;
        let packet = self.rest.get(..total).ok_or(RtcpError::LengthOverrun)?;
        self.rest = &self.rest[total..];
        let mut body = &packet[4..];
        if padding {
            let n = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
            if n == 0 || n > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = &body[..body.len() - n];
        }
        let u32_at = |b: &[u8], i: usize| -> Result<u32, RtcpError> {
            let s = b.get(i..i + 4).ok_or(RtcpError::Truncated)?;
            Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        };
        let blocks = |b: &'a [u8], at: usize| -> Result<ReportBlocks<'a>, RtcpError> {
            let len = usize::from(count) * 24;
            b.get(at..at + len)
                .map(ReportBlocks)
                .ok_or(RtcpError::Truncated)
        };
        Ok(match pt {
            packet_type::SR => RtcpPacket::SenderReport {
                ssrc: u32_at(body, 0)?,
                ntp: u64::from(u32_at(body, 4)?) << 32 | u64::from(u32_at(body, 8)?),
                rtp_timestamp: u32_at(body, 12)?,
                packet_count: u32_at(body, 16)?,
                octet_count: u32_at(body, 20)?,
                reports: blocks(body, 24)?,
            },
            packet_type::RR => RtcpPacket::ReceiverReport {
                ssrc: u32_at(body, 0)?,
                reports: blocks(body, 4)?,
            },
            packet_type::RTPFB | packet_type::PSFB => {
                let sender_ssrc = u32_at(body, 0)?;
                let media_ssrc = u32_at(body, 4)?;
                let fci = &body[8..];
                match (pt, count) {
                    (packet_type::RTPFB, 1) => {
                        if fci.is_empty() || fci.len() % 4 != 0 {
                            return Err(RtcpError::Truncated);
                        }
                        RtcpPacket::Nack {
                            sender_ssrc,
                            media_ssrc,
                            lost: NackItems::new(fci),
                        }
                    }
                    (packet_type::RTPFB, 15) => RtcpPacket::TransportCc {
                        sender_ssrc,
                        media_ssrc,
                        fci,
                    },
                    (packet_type::PSFB, 1) => RtcpPacket::Pli {
                        sender_ssrc,
                        media_ssrc,
                    },
                    (packet_type::PSFB, 4) => {
                        if fci.is_empty() || fci.len() % 8 != 0 {
                            return Err(RtcpError::Truncated);
                        }
                        RtcpPacket::Fir {
                            sender_ssrc,
                            entries: FirEntries(fci),
                        }
                    }
                    _ => RtcpPacket::Other {
                        packet_type: pt,
                        format: count,
                    },
                }
            }
            _ => RtcpPacket::Other {
                packet_type: pt,
                format: count,
            },
        })
    }
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let r = self.parse_one();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

fn header(out: &mut Vec<u8>, count: u8, pt: u8) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0x80 | (count & 0x1f), pt, 0, 0]);
    at
}

fn finish(out: &mut [u8], at: usize) {
    let words = ((out.len() - at) / 4 - 1) as u16;
    let w = words.to_be_bytes();
    out[at + 2] = w[0];
    out[at + 3] = w[1];
}

/// Appends a PLI for `media_ssrc`.
pub fn write_pli(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32) {
    let at = header(out, 1, packet_type::PSFB);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    finish(out, at);
}

/// Appends a FIR for `media_ssrc` with command sequence number `seq`.
pub fn write_fir(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32, seq: u8) {
    let at = header(out, 4, packet_type::PSFB);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    out.extend_from_slice(&[seq, 0, 0, 0]);
    finish(out, at);
}

/// Appends a generic NACK for `lost` (sequence numbers in any order).
pub fn write_nack(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32, lost: &[u16]) {
    let at = header(out, 1, packet_type::RTPFB);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    let mut rest: Vec<u16> = lost.to_vec();
    rest.sort_unstable();
    rest.dedup();
    let mut i = 0;
    while i < rest.len() {
        let pid = rest[i];
        let mut blp = 0u16;
        i += 1;
        while i < rest.len() {
            let d = rest[i].wrapping_sub(pid);
            if !(1..=16).contains(&d) {
                break;
            }
            blp |= 1 << (d - 1);
            i += 1;
        }
        out.extend_from_slice(&pid.to_be_bytes());
        out.extend_from_slice(&blp.to_be_bytes());
    }
    finish(out, at);
}

/// The sender-info part of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit fixed point).
    pub ntp: u64,
    /// RTP timestamp of the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// Appends an SR from `ssrc` with up to 31 report blocks.
pub fn write_sr(out: &mut Vec<u8>, ssrc: u32, info: &SenderInfo, blocks: &[ReportBlock]) {
    let blocks = &blocks[..blocks.len().min(31)];
    let at = header(out, blocks.len() as u8, packet_type::SR);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&info.ntp.to_be_bytes());
    out.extend_from_slice(&info.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&info.packet_count.to_be_bytes());
    out.extend_from_slice(&info.octet_count.to_be_bytes());
    for b in blocks {
        b.write(out);
    }
    finish(out, at);
}

/// Appends an RR from `ssrc` with up to 31 report blocks.
pub fn write_rr(out: &mut Vec<u8>, ssrc: u32, blocks: &[ReportBlock]) {
    let blocks = &blocks[..blocks.len().min(31)];
    let at = header(out, blocks.len() as u8, packet_type::RR);
    out.extend_from_slice(&ssrc.to_be_bytes());
    for b in blocks {
        b.write(out);
    }
    finish(out, at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_feedback_parses_back() {
        let mut buf = Vec::new();
        write_pli(&mut buf, 1, 2);
        write_fir(&mut buf, 1, 3, 7);
        write_nack(&mut buf, 1, 4, &[10, 11, 26, 27, 65535, 0]);
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 12,
            cumulative_lost: -3,
            highest_seq: 70000,
            jitter: 5,
            last_sr: 6,
            delay_since_last_sr: 7,
        };
        write_rr(&mut buf, 1, &[block]);
        let info = SenderInfo {
            ntp: 1 << 40,
            rtp_timestamp: 3,
            packet_count: 4,
            octet_count: 5,
        };
        write_sr(&mut buf, 1, &info, &[]);
        assert_eq!(RtcpIter::validate(&buf), Ok(5));
        let packets: Vec<_> = RtcpIter::new(&buf).map(|p| p.expect("valid")).collect();
        assert!(matches!(
            packets[0],
            RtcpPacket::Pli {
                sender_ssrc: 1,
                media_ssrc: 2
            }
        ));
        let RtcpPacket::Fir { mut entries, .. } = packets[1] else {
            panic!("expected FIR, got {:?}", packets[1]);
        };
        assert_eq!(entries.next(), Some((3, 7)));
        let RtcpPacket::Nack { lost, .. } = packets[2] else {
            panic!("expected NACK, got {:?}", packets[2]);
        };
        let mut lost: Vec<u16> = lost.collect();
        lost.sort_unstable();
        assert_eq!(lost, vec![0, 10, 11, 26, 27, 65535]);
        let RtcpPacket::ReceiverReport { mut reports, .. } = packets[3] else {
            panic!("expected RR, got {:?}", packets[3]);
        };
        assert_eq!(reports.next(), Some(block));
        assert!(matches!(
            packets[4],
            RtcpPacket::SenderReport { ntp, .. } if ntp == 1 << 40
        ));
    }
}
