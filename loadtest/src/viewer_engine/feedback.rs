//! What a receive-only viewer tells the SFU about the media it receives. Most of a viewer's
//! packets skip `rtc`'s read pipeline (the short path, `worker.rs`), and with it `rtc`'s
//! receiving interceptors, so the engine writes this RTCP itself, as a browser would:
//!
//! - transport-wide congestion control feedback every [`FEEDBACK_INTERVAL`] (the SFU's bandwidth
//!   estimate for the viewer, and with it the layers it forwards);
//! - generic NACKs for the sequence numbers a source skipped, at once and again at the next two
//!   feedback times while still missing (the SFU retransmits them from its RTX buffer);
//! - receiver reports every [`REPORT_INTERVAL`]: loss, jitter and the last sender report echoed
//!   (the SFU's round-trip time and quality figures for the viewer).
//!
//! The pieces are the SFU's own (`sfu_forwarding::{recv_stats, twcc_receiver, rtcp}`), the ones
//! it reports to publishers with. Packets of both receive paths are recorded here (the pipeline
//! still delivers each stream's first packets and every retransmission).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sfu_forwarding::recv_stats::RecvStats;
use sfu_forwarding::rtcp;
use sfu_forwarding::twcc_receiver::TwccReceiver;

/// How often transport-cc feedback goes out (a browser sends it about every 100 ms).
pub(super) const FEEDBACK_INTERVAL: Duration = Duration::from_millis(100);

/// How often receiver reports go out.
pub(super) const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// A larger jump of a source's sequence number is a restart, not loss.
const MAX_NACK_GAP: u16 = 64;

/// How often a missing packet is asked for.
const NACK_ATTEMPTS: u8 = 3;

/// Missing packets remembered per source (the oldest are given up beyond it).
const MAX_MISSING: usize = 256;

/// One packet as the feedback needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrival {
    pub(super) ssrc: u32,
    pub(super) sequence_number: u16,
    pub(super) timestamp: u32,
    /// The source's RTP clock rate (48 kHz Opus, 90 kHz video).
    pub(super) clock_rate: u32,
    /// The transport-wide sequence number, when the packet carried one.
    pub(super) transport_cc: Option<u16>,
    pub(super) at: Instant,
}

#[derive(Debug, Default)]
struct Source {
    stats: RecvStats,
    /// (sequence number, times asked for).
    missing: Vec<(u16, u8)>,
}

/// One viewer's reception state and the RTCP it owes the SFU.
#[derive(Debug)]
pub(super) struct ViewerFeedback {
    /// The viewer's own SSRC, the sender of its RTCP.
    ssrc: u32,
    /// The origin of the arrival times it reports (its creation).
    origin: Instant,
    sources: HashMap<u32, Source>,
    twcc: TwccReceiver,
    /// The media SSRC named in transport-cc feedback (the last source that carried a
    /// transport-wide number; the SFU reads the feedback by its numbers, not by it).
    twcc_media_ssrc: u32,
    next_feedback: Instant,
    next_report: Instant,
    /// A gap was found since the last write: NACK it now.
    nack_now: bool,
}

impl ViewerFeedback {
    pub(super) fn new(ssrc: u32, now: Instant) -> Self {
        Self {
            ssrc,
            origin: now,
            sources: HashMap::new(),
            twcc: TwccReceiver::default(),
            twcc_media_ssrc: 0,
            next_feedback: now + FEEDBACK_INTERVAL,
            next_report: now + REPORT_INTERVAL,
            nack_now: false,
        }
    }

    /// Records one received RTP packet (after SRTP).
    pub(super) fn on_rtp(&mut self, packet: Arrival) {
        let arrival_us = packet.at.saturating_duration_since(self.origin).as_micros() as i64;
        if let Some(seq) = packet.transport_cc {
            self.twcc.on_packet(seq, arrival_us);
            self.twcc_media_ssrc = packet.ssrc;
        }
        let source = self.sources.entry(packet.ssrc).or_default();
        let seq = packet.sequence_number;
        if let Some((first, count)) = source.stats.missing_before(seq, MAX_NACK_GAP) {
            for i in 0..count {
                if source.missing.len() == MAX_MISSING {
                    source.missing.remove(0);
                }
                source.missing.push((first.wrapping_add(i), 0));
            }
            self.nack_now = true;
        } else if let Some(i) = source.missing.iter().position(|&(s, _)| s == seq) {
            // A retransmission, or a late packet.
            source.missing.remove(i);
        }
        let arrival_ticks = arrival_us * i64::from(packet.clock_rate) / 1_000_000;
        source.stats.update(seq, packet.timestamp, arrival_ticks);
    }

    /// Records a sender report of `ssrc` (its NTP time), echoed in the next receiver report.
    pub(super) fn on_sender_report(&mut self, ssrc: u32, ntp: u64, now: Instant) {
        if let Some(source) = self.sources.get_mut(&ssrc) {
            source.stats.on_sender_report(ntp, now);
        }
    }

    /// When [`Self::write`] has something to send next.
    pub(super) fn deadline(&self, now: Instant) -> Instant {
        if self.nack_now {
            now
        } else {
            self.next_feedback.min(self.next_report)
        }
    }

    /// Appends the RTCP due at `now` to `out` (a compound packet: receiver report, NACKs,
    /// transport-cc feedback, each when due). Nothing is appended when nothing is due.
    pub(super) fn write(&mut self, now: Instant, out: &mut Vec<u8>) {
        let feedback_due = now >= self.next_feedback;
        if now >= self.next_report {
            self.next_report = now + REPORT_INTERVAL;
            let blocks: Vec<rtcp::ReportBlock> = self
                .sources
                .iter_mut()
                .filter(|(_, s)| s.stats.started())
                .map(|(&ssrc, s)| s.stats.report(ssrc, now).0)
                .collect();
            rtcp::write_rr(out, self.ssrc, &blocks);
        }
        if self.nack_now || feedback_due {
            self.nack_now = false;
            let mut lost = Vec::new();
            for (&media_ssrc, source) in &mut self.sources {
                lost.clear();
                for (seq, asked) in &mut source.missing {
                    *asked += 1;
                    lost.push(*seq);
                }
                source.missing.retain(|&(_, asked)| asked < NACK_ATTEMPTS);
                if !lost.is_empty() {
                    rtcp::write_nack(out, self.ssrc, media_ssrc, &lost);
                }
            }
        }
        if feedback_due {
            self.next_feedback = now + FEEDBACK_INTERVAL;
            self.twcc
                .write_feedback(out, self.ssrc, self.twcc_media_ssrc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu_forwarding::rtcp::{RtcpIter, RtcpPacket};

    fn arrival(ssrc: u32, seq: u16, tcc: u16, at: Instant) -> Arrival {
        Arrival {
            ssrc,
            sequence_number: seq,
            timestamp: u32::from(seq) * 3000,
            clock_rate: 90_000,
            transport_cc: Some(tcc),
            at,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The RTCP packets of a compound packet, by kind: (receiver reports, NACKed sequence
    /// numbers per media SSRC, transport-cc feedbacks).
    fn parse(buf: &[u8]) -> (usize, Vec<(u32, Vec<u16>)>, usize) {
        let (mut rrs, mut nacks, mut twccs) = (0, Vec::new(), 0);
        for packet in RtcpIter::new(buf) {
            match packet.expect("well-formed RTCP") {
                RtcpPacket::ReceiverReport { .. } => rrs += 1,
                RtcpPacket::Nack {
                    media_ssrc, lost, ..
                } => nacks.push((media_ssrc, lost.collect())),
                RtcpPacket::TransportCc { .. } => twccs += 1,
                _ => {}
            }
        }
        (rrs, nacks, twccs)
    }

    #[test]
    fn a_gap_is_nacked_at_once_and_again_while_missing_and_a_repair_ends_it() {
        let start = Instant::now();
        let mut f = ViewerFeedback::new(7, start);
        for (i, seq) in [10u16, 11, 14].into_iter().enumerate() {
            f.on_rtp(arrival(1000, seq, i as u16, start + ms(i as u64)));
        }
        // 12 and 13 are missing: asked for now, not at the next feedback time.
        assert_eq!(f.deadline(start), start);
        let mut out = Vec::new();
        f.write(start, &mut out);
        assert_eq!(parse(&out), (0, vec![(1000, vec![12, 13])], 0));
        assert!(f.deadline(start) > start, "nothing more is due now");
        // 12 is repaired; 13 is asked for again with the next transport-cc feedback.
        f.on_rtp(arrival(1000, 12, 3, start + ms(5)));
        let t = start + FEEDBACK_INTERVAL;
        assert_eq!(f.deadline(start), t);
        out.clear();
        f.write(t, &mut out);
        assert_eq!(parse(&out), (0, vec![(1000, vec![13])], 1));
        // Asked three times at most.
        out.clear();
        f.write(t + FEEDBACK_INTERVAL, &mut out);
        assert_eq!(parse(&out).1, vec![(1000, vec![13])]);
        out.clear();
        f.write(t + 2 * FEEDBACK_INTERVAL, &mut out);
        assert_eq!(
            parse(&out).1,
            vec![],
            "given up after {NACK_ATTEMPTS} requests"
        );
    }

    #[test]
    fn a_restart_of_the_sequence_numbers_is_not_loss() {
        let start = Instant::now();
        let mut f = ViewerFeedback::new(7, start);
        f.on_rtp(arrival(1000, 10, 0, start));
        f.on_rtp(arrival(1000, 10 + MAX_NACK_GAP + 2, 1, start + ms(1)));
        assert!(f.deadline(start) > start);
    }

    #[test]
    fn every_source_is_reported_each_second_with_its_loss() {
        let start = Instant::now();
        let mut f = ViewerFeedback::new(7, start);
        // Audio: every packet; video: one of ten lost (and never repaired).
        for seq in 0..100u16 {
            f.on_rtp(Arrival {
                ssrc: 1,
                sequence_number: seq,
                timestamp: u32::from(seq) * 960,
                clock_rate: 48_000,
                transport_cc: None,
                at: start + ms(u64::from(seq) * 20),
            });
            if seq % 10 != 5 {
                f.on_rtp(arrival(2, seq, seq, start + ms(u64::from(seq) * 20)));
            }
        }
        let mut out = Vec::new();
        let t = start + REPORT_INTERVAL;
        f.write(t, &mut out);
        let mut blocks = Vec::new();
        for packet in RtcpIter::new(&out) {
            if let RtcpPacket::ReceiverReport { ssrc, reports } = packet.unwrap() {
                assert_eq!(ssrc, 7);
                blocks.extend(reports.map(|b| (b.ssrc, b.cumulative_lost, b.highest_seq)));
            }
        }
        blocks.sort_unstable();
        assert_eq!(blocks, vec![(1, 0, 99), (2, 10, 99)]);
    }
}
