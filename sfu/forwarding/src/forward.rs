//! The hot path: one incoming RTP packet parsed once, then fanned out to every subscriber with
//! only the header rewritten; and retransmissions answering NACKs.

use std::time::Instant;

use bytes::Bytes;

use crate::{
    Codec, Event, MediaKind, Output, PacketError, ParticipantId, SubscriptionId, TrackId, Transmit,
    core::Sfu,
    media_packet::MediaPacket,
    rtcp,
    rtp::{Extensions, HeaderBuf, OutHeader, RtpPacket},
    state::{NO_PICTURE_ID, SentRecord, Source},
    vp8::Vp8Descriptor,
};

/// Largest gap in a publisher's video stream that the SFU NACKs upstream (one NACK per gap,
/// sent when the packet after the gap arrives); larger jumps are treated as a restart.
const MAX_UPSTREAM_NACK: u16 = 32;

impl Sfu {
    /// Handles one SRTP-decrypted RTP packet from participant `from`. Returns how many packets
    /// were queued for subscribers. A malformed or unexpected packet is an `Err`, counted in
    /// [`crate::Metrics::dropped`], and changes nothing else.
    pub fn handle_rtp(
        &mut self,
        now: Instant,
        from: ParticipantId,
        packet: Bytes,
    ) -> Result<usize, PacketError> {
        self.handle_rtp_arrived(now, now, from, packet)
    }

    /// [`Sfu::handle_rtp`] for a packet that arrived at `arrival` (when the host's kernel
    /// received its datagram), handled at `now`. The transport-cc feedback to the publisher
    /// reports `arrival`, so a burst handled late keeps the spacing it arrived with; everything
    /// else (send times of the copies, timers) takes `now`.
    pub fn handle_rtp_arrived(
        &mut self,
        now: Instant,
        arrival: Instant,
        from: ParticipantId,
        packet: Bytes,
    ) -> Result<usize, PacketError> {
        let r = self.rtp_inner(now, arrival, from, &packet);
        if let Err(e) = &r {
            let d = &mut self.metrics.dropped;
            match e {
                PacketError::UnknownParticipant => d.unknown_participant += 1,
                PacketError::NotPublisher => d.not_publisher += 1,
                PacketError::UnknownSsrc | PacketError::UnknownPayloadType => d.unknown_ssrc += 1,
                _ => d.malformed += 1,
            }
            if let Some(p) = self.participants.get_mut(from.index, from.generation) {
                p.stats.packets_dropped += 1;
            }
        }
        r
    }

    fn rtp_inner(
        &mut self,
        now: Instant,
        arrival: Instant,
        from: ParticipantId,
        packet: &Bytes,
    ) -> Result<usize, PacketError> {
        let p = RtpPacket::parse(packet)?;
        let participant = self
            .participants
            .get(from.index, from.generation)
            .ok_or(PacketError::UnknownParticipant)?;
        if !participant.role.can_publish() {
            return Err(PacketError::NotPublisher);
        }
        let ids = participant.ext;
        let ext = Extensions::parse(p.extension, &ids)?;
        let arrival_us = self.micros(arrival);
        let now_us = self.micros(now);
        if let Some(seq) = ext.transport_cc
            && let Some(participant) = self.participants.get_mut(from.index, from.generation)
        {
            // Every packet that arrived is reported to the publisher's congestion controller,
            // also the padding-only probes returned early below: a probe reported lost keeps a
            // browser's estimate (and with it its simulcast layers) from growing.
            participant.twcc_rx.on_packet(seq, arrival_us);
        }
        let participant = self
            .participants
            .get(from.index, from.generation)
            .ok_or(PacketError::UnknownParticipant)?;
        let source = match participant.sources.iter().find(|s| s.ssrc == p.ssrc) {
            Some(s) => *s,
            None => self.bind_source(from, &p, &ext)?,
        };
        let track = self
            .tracks
            .get_mut(source.track.index, source.track.generation)
            .ok_or(PacketError::UnknownSsrc)?;
        let (seq, body_start) = if source.rtx {
            if Some(p.payload_type) != track.rtx_payload_type {
                return Err(PacketError::UnknownPayloadType);
            }
            if p.padding && p.payload_offset == p.payload_end {
                // A padding-only RTX packet: the publisher's bandwidth probe, nothing to forward.
                return Ok(0);
            }
            let osn = packet
                .get(p.payload_offset..p.payload_offset + 2)
                .filter(|_| p.payload_offset + 2 <= p.payload_end)
                .ok_or(PacketError::MalformedRtx)?;
            (u16::from_be_bytes([osn[0], osn[1]]), p.payload_offset + 2)
        } else {
            if p.payload_type != track.payload_type {
                return Err(PacketError::UnknownPayloadType);
            }
            (p.sequence_number, p.payload_offset)
        };
        // body_start <= payload_end was checked above (RTX) or by the RTP parser.
        let body = &packet[body_start..p.payload_end];
        let kind = track.kind.media_kind();
        let (vp8, switch_point) = match track.codec {
            Codec::Opus => (None, true),
            Codec::Vp8 if body.is_empty() => (None, false),
            Codec::Vp8 => {
                let d = Vp8Descriptor::parse(body)?;
                let frame = &body[usize::from(d.len)..];
                (Some(d), d.is_keyframe_start(frame))
            }
            // VP9 (RFC 9628 descriptor): B (start of frame) set and P (inter-picture
            // predicted) clear.
            Codec::Vp9 => (
                None,
                body.first().is_some_and(|b| b & 0x08 != 0 && b & 0x40 == 0),
            ),
        };
        let descriptor_len = vp8.map_or(0, |d| usize::from(d.len));
        let media = MediaPacket {
            seq,
            timestamp: p.timestamp,
            marker: p.marker,
            padding: p.padding,
            vp8,
            switch_point,
            audio_level: ext.audio_level,
            payload: packet.slice(body_start + descriptor_len..),
            arrival: now,
        };

        self.metrics.packets_received.add(kind, 1);
        self.metrics.bytes_received.add(kind, packet.len() as u64);
        if let Some(participant) = self.participants.get_mut(from.index, from.generation) {
            participant.stats.packets_received += 1;
            participant.stats.bytes_received += packet.len() as u64;
        }

        let clock_rate = track.codec.clock_rate();
        let arrival_ticks = (now.saturating_duration_since(self.epoch).as_secs_f64()
            * f64::from(clock_rate)) as i64;
        let layer_index = source.layer;
        let Some(layer) = track.layers.get_mut(usize::from(layer_index)) else {
            return Err(PacketError::UnknownSsrc);
        };
        let mut upstream_nack = None;
        if !source.rtx {
            if kind == MediaKind::Video
                && let (Some(ssrc), Some((first, count))) = (
                    layer.ssrc,
                    layer.recv.missing_before(seq, MAX_UPSTREAM_NACK),
                )
            {
                upstream_nack = Some((ssrc, first, count));
            }
            layer.recv.update(seq, p.timestamp, arrival_ticks);
        }
        layer.rate.add(now, packet.len());
        if !body.is_empty() {
            // Only media makes a layer available to the allocator; padding-only probes do not.
            layer.last_media = Some(now);
        }
        if let Some(level) = media.audio_level {
            track.audio.sum += if level.voice {
                u64::from(127 - level.level)
            } else {
                0
            };
            track.audio.packets += 1;
        }

        let mut sent = 0;
        let mut header = HeaderBuf::default();
        for &sid in &track.subscribers {
            let Some(sub) = self.subs.get_mut(sid.index, sid.generation) else {
                continue;
            };
            if sub.paused {
                continue;
            }
            if sub.track != source.track {
                // A receive slot switching to this track: it does at a switch point of a layer
                // it may start on, and forwards its old track until then.
                if sub.next_track != Some(source.track) {
                    continue;
                }
                let Some(target) = sub.target_layer else {
                    continue;
                };
                if !(media.switch_point && layer_index <= target) {
                    continue;
                }
                self.scratch_slot_switches.push((sid, sub.track));
                sub.track = source.track;
                sub.next_track = None;
                sub.current_layer = None;
                sub.assignment = sub.assignment.wrapping_add(1);
                if let Some(slot) = sub.slot.as_mut() {
                    slot.begin(sub.assignment, source.track);
                }
            }
            if sub.current_layer != Some(layer_index) {
                let Some(target) = sub.target_layer else {
                    continue;
                };
                let allowed = match sub.current_layer {
                    // Starting: any layer up to the target will do, the allocator upgrades later.
                    None => layer_index <= target,
                    Some(_) => layer_index == target,
                };
                if !(media.switch_point && allowed) {
                    continue;
                }
                sub.rewriter.start(now, &media, clock_rate);
                let from_layer = sub.current_layer;
                sub.current_layer = Some(layer_index);
                if kind == MediaKind::Video {
                    match from_layer {
                        Some(f) if f < layer_index => self.metrics.layer_switches_up += 1,
                        Some(_) => self.metrics.layer_switches_down += 1,
                        None => {}
                    }
                    self.out.push_back(Output::Event(Event::LayerChanged {
                        subscriber: sub.subscriber,
                        track: source.track,
                        from: from_layer,
                        to: layer_index,
                    }));
                }
            }
            let Some(rw) = sub.rewriter.rewrite(now, &media) else {
                self.metrics.dropped.stale += 1;
                continue;
            };
            let Some(to) = self
                .participants
                .get_mut(sub.subscriber.index, sub.subscriber.generation)
            else {
                continue;
            };
            let twcc = to.twcc_seq;
            to.twcc_seq = twcc.wrapping_add(1);
            OutHeader {
                marker: media.marker,
                padding: media.padding,
                payload_type: sub.down.payload_type,
                sequence_number: rw.seq,
                timestamp: rw.timestamp,
                ssrc: sub.down.ssrc,
                transport_cc: sub.ext.transport_cc.map(|id| (id, twcc)),
                audio_level: sub.ext.audio_level.zip(media.audio_level),
                mid: sub.ext.mid.zip(sub.mid_bytes()),
            }
            .write(&mut header);
            if let Some(d) = media.vp8 {
                d.write_rewritten(rw.picture_id, rw.tl0_pic_idx, &mut header);
            }
            let size = header.as_slice().len() + media.payload.len();
            if sub.ext.transport_cc.is_some() {
                to.bwe.on_sent(twcc, now_us, size);
            }
            to.stats.packets_sent += 1;
            to.stats.bytes_sent += size as u64;
            sub.packets_sent = sub.packets_sent.wrapping_add(1);
            sub.octets_sent = sub
                .octets_sent
                .wrapping_add((size - header.as_slice().len()) as u32);
            sub.record(SentRecord {
                out_seq: rw.seq,
                src_seq: media.seq,
                layer: layer_index,
                retransmits: 0,
                assignment: sub.assignment,
                out_ts: rw.timestamp,
                out_pid: rw.picture_id.unwrap_or(NO_PICTURE_ID),
                out_tl0: rw.tl0_pic_idx,
            });
            self.metrics.packets_sent.add(kind, 1);
            self.metrics.bytes_sent.add(kind, size as u64);
            self.out.push_back(Output::Transmit(Transmit::Rtp {
                to: sub.subscriber,
                kind,
                retransmit: false,
                header,
                payload: media.payload.clone(),
            }));
            sent += 1;
        }
        if sent == 0 {
            self.metrics.dropped.no_subscriber += 1;
        } else {
            // Only what somebody received can be NACKed: layers nobody receives are not kept.
            layer.buffer.insert(&media);
        }
        if !self.scratch_slot_switches.is_empty() {
            let mut switches = std::mem::take(&mut self.scratch_slot_switches);
            for (sid, left) in switches.drain(..) {
                if let Some(t) = self.tracks.get_mut(left.index, left.generation) {
                    t.subscribers.retain(|x| *x != sid);
                }
            }
            self.scratch_slot_switches = switches;
        }
        if let Some((ssrc, first, count)) = upstream_nack {
            let lost: Vec<u16> = (0..count).map(|i| first.wrapping_add(i)).collect();
            let mut buf = Vec::with_capacity(16 + 4 * lost.len());
            rtcp::write_nack(&mut buf, self.config.rtcp_ssrc, ssrc, &lost);
            self.metrics.feedback.nack_sent += 1;
            self.out.push_back(Output::Transmit(Transmit::Rtcp {
                to: from,
                packet: Bytes::from(buf),
            }));
        }
        Ok(sent)
    }

    /// Binds an SSRC not signaled in the SDP to a track layer from its mid and rid (or
    /// repaired-rid) extensions, as browsers send RID-based simulcast.
    fn bind_source(
        &mut self,
        from: ParticipantId,
        p: &RtpPacket<'_>,
        ext: &Extensions<'_>,
    ) -> Result<Source, PacketError> {
        let participant = self
            .participants
            .get_mut(from.index, from.generation)
            .ok_or(PacketError::UnknownParticipant)?;
        let mid = ext.mid.ok_or(PacketError::UnknownSsrc)?;
        let track_id = participant
            .tracks
            .iter()
            .copied()
            .find(|t| {
                self.tracks
                    .get(t.index, t.generation)
                    .is_some_and(|tr| tr.mid.as_bytes() == mid)
            })
            .ok_or(PacketError::UnknownSsrc)?;
        let track = self
            .tracks
            .get_mut(track_id.index, track_id.generation)
            .ok_or(PacketError::UnknownSsrc)?;
        let (rid, rtx) = match (ext.rid, ext.repaired_rid) {
            (Some(r), _) => (Some(r), false),
            (None, Some(r)) => (Some(r), true),
            (None, None) => (None, Some(p.payload_type) == track.rtx_payload_type),
        };
        let index = match rid {
            Some(rid) => track
                .layers
                .iter()
                .position(|l| l.spec.rid.as_deref().map(str::as_bytes) == Some(rid)),
            None if track.layers.len() == 1 => Some(0),
            None => None,
        }
        .ok_or(PacketError::UnknownSsrc)?;
        let layer = &mut track.layers[index];
        let slot = if rtx {
            &mut layer.rtx_ssrc
        } else {
            &mut layer.ssrc
        };
        if slot.is_some() {
            return Err(PacketError::UnknownSsrc);
        }
        *slot = Some(p.ssrc);
        let source = Source {
            ssrc: p.ssrc,
            track: track_id,
            layer: index as u8,
            rtx,
        };
        participant.sources.push(source);
        Ok(source)
    }

    /// Sends a keyframe request (PLI, or FIR when `fir`) for a layer to its publisher, at most
    /// once per `keyframe_request_interval` per layer. Returns whether one was sent.
    pub(crate) fn request_keyframe(
        &mut self,
        now: Instant,
        track: TrackId,
        layer: u8,
        fir: bool,
    ) -> bool {
        let Some(t) = self.tracks.get_mut(track.index, track.generation) else {
            return false;
        };
        if t.kind == crate::TrackKind::Audio {
            return false;
        }
        let publisher = t.publisher;
        let Some(l) = t.layers.get_mut(usize::from(layer)) else {
            return false;
        };
        let Some(ssrc) = l.ssrc else {
            return false;
        };
        if l.last_keyframe_request.is_some_and(|at| {
            now.saturating_duration_since(at) < self.config.keyframe_request_interval
        }) {
            return false;
        }
        l.last_keyframe_request = Some(now);
        let mut buf = Vec::with_capacity(20);
        if fir {
            l.fir_seq = l.fir_seq.wrapping_add(1);
            rtcp::write_fir(&mut buf, self.config.rtcp_ssrc, ssrc, l.fir_seq);
            self.metrics.feedback.fir_sent += 1;
        } else {
            rtcp::write_pli(&mut buf, self.config.rtcp_ssrc, ssrc);
            self.metrics.feedback.pli_sent += 1;
        }
        self.out.push_back(Output::Transmit(Transmit::Rtcp {
            to: publisher,
            packet: Bytes::from(buf),
        }));
        self.out.push_back(Output::Event(Event::KeyframeRequested {
            publisher,
            track,
            layer,
        }));
        true
    }

    /// Answers a NACK from a subscriber for the output sequence numbers `lost`.
    pub(crate) fn serve_nack(
        &mut self,
        now: Instant,
        sid: SubscriptionId,
        lost: impl Iterator<Item = u16>,
    ) {
        let max_age = self.config.retransmit_max_age;
        let now_us = self.micros(now);
        let max_per_packet = self.config.retransmit_max_per_packet;
        for out_seq in lost {
            let Some(sub) = self.subs.get_mut(sid.index, sid.generation) else {
                return;
            };
            let Some(rec_copy) = sub.sent(out_seq).map(|r| *r) else {
                self.metrics.dropped.nack_miss += 1;
                continue;
            };
            if rec_copy.retransmits >= max_per_packet {
                self.metrics.dropped.nack_miss += 1;
                continue;
            }
            // A receive slot answers from the track it carried when it sent this number.
            let source_track = match &sub.slot {
                Some(slot) => slot.track_of(rec_copy.assignment),
                None => Some(sub.track),
            };
            let Some(media) = source_track
                .and_then(|t| self.tracks.get(t.index, t.generation))
                .and_then(|t| t.layers.get(usize::from(rec_copy.layer)))
                .and_then(|l| l.buffer.get(rec_copy.src_seq, now, max_age))
            else {
                self.metrics.dropped.nack_miss += 1;
                continue;
            };
            if let Some(rec) = sub.sent(out_seq) {
                rec.retransmits += 1;
            }
            let Some(to) = self
                .participants
                .get_mut(sub.subscriber.index, sub.subscriber.generation)
            else {
                return;
            };
            let twcc = to.twcc_seq;
            to.twcc_seq = twcc.wrapping_add(1);
            let (ssrc, payload_type, seq) = match sub.down.rtx {
                Some(rtx) => {
                    let s = sub.rtx_seq;
                    sub.rtx_seq = s.wrapping_add(1);
                    (rtx.ssrc, rtx.payload_type, s)
                }
                None => (sub.down.ssrc, sub.down.payload_type, out_seq),
            };
            let mut header = HeaderBuf::default();
            OutHeader {
                marker: media.marker,
                padding: media.padding,
                payload_type,
                sequence_number: seq,
                timestamp: rec_copy.out_ts,
                ssrc,
                transport_cc: sub.ext.transport_cc.map(|id| (id, twcc)),
                audio_level: sub.ext.audio_level.zip(media.audio_level),
                mid: sub.ext.mid.zip(sub.mid_bytes()),
            }
            .write(&mut header);
            if sub.down.rtx.is_some() {
                header.push(&out_seq.to_be_bytes());
            }
            if let Some(d) = media.vp8 {
                d.write_rewritten(rec_copy.picture_id(), rec_copy.out_tl0, &mut header);
            }
            let size = header.as_slice().len() + media.payload.len();
            if sub.ext.transport_cc.is_some() {
                to.bwe.on_sent(twcc, now_us, size);
            }
            to.stats.packets_retransmitted += 1;
            let kind = sub.kind;
            self.metrics.packets_retransmitted.add(kind, 1);
            self.metrics.bytes_retransmitted.add(kind, size as u64);
            self.out.push_back(Output::Transmit(Transmit::Rtp {
                to: sub.subscriber,
                kind,
                retransmit: true,
                header,
                payload: media.payload.clone(),
            }));
        }
    }
}
