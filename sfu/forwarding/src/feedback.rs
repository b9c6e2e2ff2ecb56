//! RTCP from participants: sender reports from publishers; receiver reports, NACK, PLI, FIR and
//! transport-wide CC feedback from subscribers.

use std::time::{Duration, Instant};

use crate::{
    Direction, Event, Output, PacketError, ParticipantId, SubscriptionId,
    core::Sfu,
    rtcp::{ReportBlock, RtcpIter, RtcpPacket},
    state::PublisherSr,
    twcc,
};

impl Sfu {
    /// Handles one SRTCP-decrypted compound RTCP packet from participant `from`. The whole
    /// compound packet is checked before any part of it is acted on; a malformed one is an
    /// `Err`, counted in [`crate::Metrics::dropped`], and changes nothing.
    pub fn handle_rtcp(
        &mut self,
        now: Instant,
        from: ParticipantId,
        packet: &[u8],
    ) -> Result<(), PacketError> {
        self.metrics.rtcp_received += 1;
        let r = self.rtcp_inner(now, from, packet);
        if let Err(e) = &r {
            match e {
                PacketError::UnknownParticipant => self.metrics.dropped.unknown_participant += 1,
                _ => self.metrics.dropped.malformed += 1,
            }
        }
        r
    }

    fn rtcp_inner(
        &mut self,
        now: Instant,
        from: ParticipantId,
        packet: &[u8],
    ) -> Result<(), PacketError> {
        if self.participants.get(from.index, from.generation).is_none() {
            return Err(PacketError::UnknownParticipant);
        }
        RtcpIter::validate(packet)?;
        // Transport-cc FCIs are checked up front too, so an invalid one changes nothing.
        for p in RtcpIter::new(packet).flatten() {
            if let RtcpPacket::TransportCc { fci, .. } = p {
                twcc::parse_feedback(fci, &mut self.scratch_statuses)?;
            }
        }
        for p in RtcpIter::new(packet).flatten() {
            match p {
                RtcpPacket::SenderReport {
                    ssrc,
                    ntp,
                    rtp_timestamp,
                    reports,
                    ..
                } => {
                    self.on_sender_report(now, from, ssrc, ntp, rtp_timestamp);
                    for block in reports {
                        self.on_report_block(now, from, &block);
                    }
                }
                RtcpPacket::ReceiverReport { reports, .. } => {
                    for block in reports {
                        self.on_report_block(now, from, &block);
                    }
                }
                RtcpPacket::Nack {
                    media_ssrc, lost, ..
                } => {
                    self.metrics.feedback.nack_received += 1;
                    if let Some(p) = self.participants.get_mut(from.index, from.generation) {
                        p.stats.nacks_received += 1;
                    }
                    if let Some(sid) = self.subscription_by_ssrc(from, media_ssrc) {
                        self.serve_nack(now, sid, lost);
                    }
                }
                RtcpPacket::Pli { media_ssrc, .. } => {
                    self.metrics.feedback.pli_received += 1;
                    self.on_keyframe_request(now, from, media_ssrc, false);
                }
                RtcpPacket::Fir { entries, .. } => {
                    self.metrics.feedback.fir_received += 1;
                    for (ssrc, _) in entries {
                        self.on_keyframe_request(now, from, ssrc, true);
                    }
                }
                RtcpPacket::TransportCc { fci, .. } => {
                    let mut statuses = std::mem::take(&mut self.scratch_statuses);
                    let now_us = self.micros(now);
                    if twcc::parse_feedback(fci, &mut statuses).is_ok()
                        && let Some(p) = self.participants.get_mut(from.index, from.generation)
                    {
                        p.bwe.on_feedback(now, now_us, &statuses);
                    }
                    self.scratch_statuses = statuses;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn subscription_by_ssrc(&self, subscriber: ParticipantId, ssrc: u32) -> Option<SubscriptionId> {
        let p = self
            .participants
            .get(subscriber.index, subscriber.generation)?;
        p.subscriptions.iter().chain(&p.slots).copied().find(|s| {
            self.subs
                .get(s.index, s.generation)
                .is_some_and(|s| s.down.ssrc == ssrc || s.down.rtx.is_some_and(|r| r.ssrc == ssrc))
        })
    }

    fn on_sender_report(
        &mut self,
        now: Instant,
        from: ParticipantId,
        ssrc: u32,
        ntp: u64,
        rtp_timestamp: u32,
    ) {
        let Some(p) = self.participants.get(from.index, from.generation) else {
            return;
        };
        let Some(source) = p.sources.iter().find(|s| s.ssrc == ssrc && !s.rtx).copied() else {
            return;
        };
        let Some(layer) = self
            .tracks
            .get_mut(source.track.index, source.track.generation)
            .and_then(|t| t.layers.get_mut(usize::from(source.layer)))
        else {
            return;
        };
        layer.sr = Some(PublisherSr {
            ntp,
            rtp_timestamp,
            arrival: now,
        });
        layer.recv.on_sender_report(ntp, now);
    }

    fn on_report_block(&mut self, now: Instant, from: ParticipantId, block: &ReportBlock) {
        let Some(sid) = self.subscription_by_ssrc(from, block.ssrc) else {
            return;
        };
        let Some(sub) = self.subs.get(sid.index, sid.generation) else {
            return;
        };
        let clock = self
            .tracks
            .get(sub.track.index, sub.track.generation)
            .map_or(
                if sub.kind == crate::MediaKind::Audio {
                    48_000
                } else {
                    90_000
                },
                |t| t.codec.clock_rate(),
            );
        let rtt = match sub.last_sr {
            Some((mid, at)) if block.last_sr != 0 && block.last_sr == mid => {
                let since = now.saturating_duration_since(at);
                let dlsr = Duration::from_secs_f64(f64::from(block.delay_since_last_sr) / 65536.0);
                since.checked_sub(dlsr)
            }
            _ => None,
        };
        let kind = sub.kind;
        if let Some(p) = self.participants.get_mut(from.index, from.generation)
            && rtt.is_some()
        {
            p.stats.rtt = rtt;
        }
        self.out.push_back(Output::Event(Event::QualityReport {
            participant: from,
            direction: Direction::Subscriber,
            kind,
            fraction_lost: f64::from(block.fraction_lost) / 256.0,
            jitter_seconds: f64::from(block.jitter) / f64::from(clock),
            rtt_seconds: rtt.map(|d| d.as_secs_f64()),
        }));
    }

    fn on_keyframe_request(&mut self, now: Instant, from: ParticipantId, ssrc: u32, fir: bool) {
        if let Some(p) = self.participants.get_mut(from.index, from.generation) {
            p.stats.keyframe_requests_received += 1;
        }
        let Some(sid) = self.subscription_by_ssrc(from, ssrc) else {
            return;
        };
        let Some(sub) = self.subs.get(sid.index, sid.generation) else {
            return;
        };
        // A receive slot that forwards nothing yet asks the source it is switching to.
        let track = match sub.current_layer {
            Some(_) => sub.track,
            None => sub.next_track.unwrap_or(sub.track),
        };
        let layer = sub.current_layer.or(sub.target_layer);
        if let Some(layer) = layer {
            self.request_keyframe(now, track, layer, fir);
        }
    }
}
