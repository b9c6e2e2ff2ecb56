//! Work done on timers: active-speaker detection with loudest-N audio and last-N video, layer
//! allocation from the bandwidth estimates, and RTCP sender/receiver reports.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{
    Direction, Event, MediaKind, Output, ParticipantId, Role, RoomId, SubscriptionId, TrackId,
    TrackKind, Transmit,
    core::{Sfu, duration_to_ntp},
    rtcp::{self, SenderInfo},
};

/// Re-request a keyframe for a subscription still waiting for one after this long.
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);
/// Flush a compound report packet once it grows past this size.
const REPORT_MTU: usize = 1000;

impl Sfu {
    /// Scores every audio track from the audio levels of the last interval, announces active
    /// speakers, applies loudest-N, and re-applies last-N when the speaker order changed.
    pub(crate) fn evaluate_speakers(&mut self, now: Instant) {
        let room_ids: Vec<RoomId> = self
            .rooms
            .iter()
            .map(|(i, g, _)| RoomId::new((i, g)))
            .collect();
        for room_id in room_ids {
            let Some(room) = self.rooms.get(room_id.index, room_id.generation) else {
                continue;
            };
            let policy = room.policy;
            let large = room.participants.len() > policy.loudest_n_threshold;
            let track_ids = room.tracks.clone();
            // (score, track, publisher, previously selected)
            let mut scored: Vec<(f32, TrackId, ParticipantId, bool)> = Vec::new();
            for tid in track_ids {
                let Some(t) = self.tracks.get_mut(tid.index, tid.generation) else {
                    continue;
                };
                if t.kind != TrackKind::Audio {
                    continue;
                }
                let a = &mut t.audio;
                let avg = if a.packets > 0 {
                    a.sum as f32 / a.packets as f32
                } else {
                    0.0
                };
                a.score = 0.5 * a.score + 0.5 * avg;
                a.sum = 0;
                a.packets = 0;
                scored.push((a.score, tid, t.publisher, a.selected));
            }
            // Loudest first; ties keep the previous selection, then a stable order.
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.3.cmp(&a.3)).then(a.1.cmp(&b.1)));
            let rank: Vec<TrackId> = scored.iter().map(|s| s.1).collect();
            let mut speakers: Vec<ParticipantId> = Vec::new();
            let mut levels: Vec<f32> = Vec::new();
            for (score, _, publisher, _) in &scored {
                if *score >= self.config.speaker_threshold && !speakers.contains(publisher) {
                    speakers.push(*publisher);
                    // Scores average `127 - level` of RFC 6464 (-dBov): 127 is 0 dBov.
                    levels.push((*score / 127.0).clamp(0.0, 1.0));
                }
            }
            let Some(room) = self.rooms.get_mut(room_id.index, room_id.generation) else {
                continue;
            };
            let rank_changed = room.audio_rank != rank;
            room.audio_rank = rank;
            let mut order_changed = false;
            if speakers != room.speakers {
                for p in speakers.iter().rev() {
                    if room.speaker_order.first() != Some(p) {
                        room.speaker_order.retain(|x| x != p);
                        room.speaker_order.insert(0, *p);
                        order_changed = true;
                    }
                }
                room.speakers = speakers.clone();
                self.out.push_back(Output::Event(Event::ActiveSpeakers {
                    room: room_id,
                    speakers,
                    levels,
                }));
            }
            let participants = room.participants.clone();
            for (rank, (_, tid, _, was_selected)) in scored.iter().enumerate() {
                let selected = !large || rank < policy.loudest_n;
                if selected != *was_selected {
                    self.set_audio_selected(*tid, selected);
                }
            }
            if order_changed {
                for p in participants {
                    self.apply_last_n(p);
                    self.allocate(now, p);
                }
            }
            if order_changed || rank_changed {
                self.assign_room_slots(now, room_id);
            }
        }
    }

    fn set_audio_selected(&mut self, track: TrackId, selected: bool) {
        let Some(t) = self.tracks.get_mut(track.index, track.generation) else {
            return;
        };
        t.audio.selected = selected;
        for sid in &t.subscribers {
            let Some(s) = self.subs.get_mut(sid.index, sid.generation) else {
                continue;
            };
            // Receive slots are filled from the ranking instead (`slots.rs`); a recorder keeps
            // every voice (it is never paused, see `subscribe`).
            let recorder = self
                .participants
                .get(s.subscriber.index, s.subscriber.generation)
                .is_some_and(|p| p.role == Role::Recorder);
            if s.paused != selected || s.slot.is_some() || recorder {
                continue;
            }
            s.paused = !selected;
            // Resuming starts a new rewriting epoch at the next packet.
            s.current_layer = None;
            self.out.push_back(Output::Event(Event::ForwardingChanged {
                subscriber: s.subscriber,
                track,
                forwarding: selected,
            }));
        }
    }

    /// Pauses or resumes a subscriber's camera subscriptions: the `last_n` most recent speakers'
    /// cameras are forwarded, plus pinned ones. Screen shares are always forwarded.
    pub(crate) fn apply_last_n(&mut self, subscriber: ParticipantId) {
        let Some(p) = self
            .participants
            .get(subscriber.index, subscriber.generation)
        else {
            return;
        };
        let Some(room) = self.rooms.get(p.room.index, p.room.generation) else {
            return;
        };
        // A recorder keeps every camera: last-N is for what a screen can show.
        let last_n = if p.role == Role::Recorder {
            usize::MAX
        } else {
            room.policy.last_n
        };
        let mut cams: Vec<(bool, usize, SubscriptionId)> = Vec::new();
        for sid in &p.subscriptions {
            let Some(s) = self.subs.get(sid.index, sid.generation) else {
                continue;
            };
            let Some(t) = self.tracks.get(s.track.index, s.track.generation) else {
                continue;
            };
            if t.kind != TrackKind::Camera {
                continue;
            }
            let pos = room
                .speaker_order
                .iter()
                .position(|x| *x == t.publisher)
                .unwrap_or(usize::MAX);
            cams.push((s.pinned, pos, *sid));
        }
        cams.sort_by_key(|(_, pos, sid)| (*pos, *sid));
        let mut unpinned_rank = 0;
        for (pinned, _, sid) in cams {
            let allowed = pinned || {
                unpinned_rank += 1;
                unpinned_rank <= last_n
            };
            let Some(s) = self.subs.get_mut(sid.index, sid.generation) else {
                continue;
            };
            if s.paused != allowed {
                continue;
            }
            s.paused = !allowed;
            s.current_layer = None;
            s.target_layer = None;
            self.out.push_back(Output::Event(Event::ForwardingChanged {
                subscriber,
                track: s.track,
                forwarding: allowed,
            }));
        }
    }

    /// Chooses the target layer of each of a subscriber's video subscriptions: the smallest
    /// layer covering the requested size (capped by any max layer), within the bandwidth
    /// estimate. Every subscription first gets its lowest available layer, then in priority
    /// order (pinned, screen share, cameras by speaker recency) each is raised as far as the
    /// remaining budget allows. A new target is reached at its next keyframe, which is requested.
    pub(crate) fn allocate(&mut self, now: Instant, subscriber: ParticipantId) {
        let Some(p) = self
            .participants
            .get(subscriber.index, subscriber.generation)
        else {
            return;
        };
        // A recorder gets the layer it asks for: an archive is not sized to a bandwidth
        // estimate (it runs next to the SFU, on a path sized for it; docs/architecture.md).
        let mut budget = if p.role == Role::Recorder {
            i64::MAX / 2
        } else {
            p.bwe.estimate_bps() as i64
        };
        let order = self
            .rooms
            .get(p.room.index, p.room.generation)
            .map(|r| r.speaker_order.as_slice())
            .unwrap_or(&[]);
        struct Item {
            sid: SubscriptionId,
            prio: (u8, usize),
            costs: [i64; crate::MAX_LAYERS],
            available: [bool; crate::MAX_LAYERS],
            desired: Option<u8>,
            chosen: Option<u8>,
        }
        let mut items: Vec<Item> = Vec::new();
        for sid in p.subscriptions.iter().chain(&p.slots) {
            let Some(s) = self.subs.get(sid.index, sid.generation) else {
                continue;
            };
            if s.kind != MediaKind::Video || s.paused {
                continue;
            }
            // A receive slot is allocated for the track it switches to.
            let track = s.next_track.unwrap_or(s.track);
            let Some(t) = self.tracks.get(track.index, track.generation) else {
                continue;
            };
            let n = t.layers.len().min(crate::MAX_LAYERS);
            let mut costs = [0i64; crate::MAX_LAYERS];
            let mut available = [false; crate::MAX_LAYERS];
            for (i, l) in t.layers.iter().take(n).enumerate() {
                costs[i] = l.cost_bps(i) as i64;
                available[i] = l.ssrc.is_some()
                    && l.last_media.is_some_and(|at| {
                        now.saturating_duration_since(at) <= self.config.layer_timeout
                    });
            }
            let top = (n - 1) as u8;
            let by_size = match s.requested_height {
                Some(0) => None,
                Some(h) => Some(
                    t.layers
                        .iter()
                        .position(|l| l.spec.height >= h)
                        .map_or(top, |i| i as u8),
                ),
                None => Some(top),
            };
            let desired = by_size.map(|d| s.max_layer.map_or(d, |m| d.min(m)));
            let kind_rank = if s.pinned {
                0
            } else if t.kind == TrackKind::Screen {
                1
            } else {
                2
            };
            let pos = order
                .iter()
                .position(|x| *x == t.publisher)
                .unwrap_or(usize::MAX);
            items.push(Item {
                sid: *sid,
                prio: (kind_rank, pos),
                costs,
                available,
                desired,
                chosen: None,
            });
        }
        items.sort_by_key(|i| (i.prio, i.sid));
        for it in &mut items {
            let Some(desired) = it.desired else {
                continue;
            };
            let lowest_ok = (0..=desired).find(|l| it.available[usize::from(*l)]);
            let lowest_any = (0..crate::MAX_LAYERS as u8).find(|l| it.available[usize::from(*l)]);
            let c = lowest_ok.or(lowest_any).unwrap_or(desired);
            it.chosen = Some(c);
            budget -= it.costs[usize::from(c)];
        }
        for it in &mut items {
            let (Some(desired), Some(c)) = (it.desired, it.chosen) else {
                continue;
            };
            for l in (c + 1..=desired).rev() {
                if !it.available[usize::from(l)] {
                    continue;
                }
                let extra = it.costs[usize::from(l)] - it.costs[usize::from(c)];
                if extra <= budget {
                    budget -= extra;
                    it.chosen = Some(l);
                    break;
                }
            }
        }
        for it in items {
            let Some(s) = self.subs.get_mut(it.sid.index, it.sid.generation) else {
                continue;
            };
            let changed = s.target_layer != it.chosen;
            s.target_layer = it.chosen;
            let Some(target) = it.chosen else {
                s.current_layer = None;
                continue;
            };
            if s.next_track.is_none() && s.current_layer == Some(target) {
                continue;
            }
            let retry = s
                .keyframe_asked_at
                .is_none_or(|at| now.saturating_duration_since(at) >= KEYFRAME_RETRY);
            if changed || retry {
                s.keyframe_asked_at = Some(now);
                let track = s.next_track.unwrap_or(s.track);
                self.request_keyframe(now, track, target, false);
            }
        }
    }

    /// Sends each publisher transport-wide CC feedback for the packets that arrived since the
    /// last one.
    pub(crate) fn send_transport_feedback(&mut self) {
        let rtcp_ssrc = self.config.rtcp_ssrc;
        for (index, generation, p) in self.participants.iter_mut() {
            let Some(media_ssrc) = p.sources.first().map(|s| s.ssrc) else {
                continue;
            };
            let mut buf = Vec::new();
            p.twcc_rx.write_feedback(&mut buf, rtcp_ssrc, media_ssrc);
            if !buf.is_empty() {
                self.out.push_back(Output::Transmit(Transmit::Rtcp {
                    to: ParticipantId::new((index, generation)),
                    packet: Bytes::from(buf),
                }));
            }
        }
    }

    /// Sends RRs to publishers (one block per received layer) and SRs to subscribers (one per
    /// forwarded stream).
    pub(crate) fn send_reports(&mut self, now: Instant) {
        let rtcp_ssrc = self.config.rtcp_ssrc;
        let ntp_now = self.ntp(now);
        let ids: Vec<ParticipantId> = self
            .participants
            .iter()
            .map(|(i, g, _)| ParticipantId::new((i, g)))
            .collect();
        for pid in ids {
            let Some(p) = self.participants.get(pid.index, pid.generation) else {
                continue;
            };
            let tracks = p.tracks.clone();
            let subs: Vec<SubscriptionId> =
                p.subscriptions.iter().chain(&p.slots).copied().collect();
            let mut blocks = Vec::new();
            for tid in tracks {
                let Some(t) = self.tracks.get_mut(tid.index, tid.generation) else {
                    continue;
                };
                let kind = t.kind.media_kind();
                let clock = f64::from(t.codec.clock_rate());
                for l in &mut t.layers {
                    let (Some(ssrc), true) = (l.ssrc, l.recv.started()) else {
                        continue;
                    };
                    let (block, fraction) = l.recv.report(ssrc, now);
                    blocks.push(block);
                    self.out.push_back(Output::Event(Event::QualityReport {
                        participant: pid,
                        direction: Direction::Publisher,
                        kind,
                        fraction_lost: fraction,
                        jitter_seconds: l.recv.jitter() / clock,
                        rtt_seconds: None,
                    }));
                }
            }
            for chunk in blocks.chunks(31) {
                let mut buf = Vec::new();
                rtcp::write_rr(&mut buf, rtcp_ssrc, chunk);
                self.out.push_back(Output::Transmit(Transmit::Rtcp {
                    to: pid,
                    packet: Bytes::from(buf),
                }));
            }
            let mut buf = Vec::new();
            for sid in subs {
                let Some(s) = self.subs.get_mut(sid.index, sid.generation) else {
                    continue;
                };
                let Some((highest_ts, at)) = s.rewriter.highest_timestamp() else {
                    continue;
                };
                let Some(t) = self.tracks.get(s.track.index, s.track.generation) else {
                    continue;
                };
                let clock = f64::from(t.codec.clock_rate());
                let publisher_sr = s
                    .current_layer
                    .and_then(|l| t.layers.get(usize::from(l)))
                    .and_then(|l| l.sr);
                let (ntp, rtp_timestamp) = match publisher_sr {
                    // Translate the publisher's own NTP↔RTP mapping (keeps its lip sync).
                    Some(sr) => {
                        let e = now.saturating_duration_since(sr.arrival);
                        let ticks = (e.as_secs_f64() * clock) as u32;
                        (
                            sr.ntp.wrapping_add(duration_to_ntp(e)),
                            sr.rtp_timestamp
                                .wrapping_add(s.rewriter.ts_offset())
                                .wrapping_add(ticks),
                        )
                    }
                    None => {
                        let e = now.saturating_duration_since(at);
                        let ticks = (e.as_secs_f64() * clock) as u32;
                        (ntp_now, highest_ts.wrapping_add(ticks))
                    }
                };
                let info = SenderInfo {
                    ntp,
                    rtp_timestamp,
                    packet_count: s.packets_sent,
                    octet_count: s.octets_sent,
                };
                rtcp::write_sr(&mut buf, s.down.ssrc, &info, &[]);
                s.last_sr = Some(((ntp >> 16) as u32, now));
                if buf.len() >= REPORT_MTU {
                    self.out.push_back(Output::Transmit(Transmit::Rtcp {
                        to: pid,
                        packet: Bytes::from(std::mem::take(&mut buf)),
                    }));
                }
            }
            if !buf.is_empty() {
                self.out.push_back(Output::Transmit(Transmit::Rtcp {
                    to: pid,
                    packet: Bytes::from(buf),
                }));
            }
        }
    }
}
