//! [`Sfu`]: the forwarding core's state, its commands, and the sans-IO run loop
//! (`handle_*` in, `poll_output`/`poll_timeout` out).

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use crate::{
    Config, DownstreamParams, Error, Event, ExtensionIds, Gauges, MediaKind, Metrics, Output,
    ParticipantId, ParticipantStats, Role, RoomId, RoomPolicy, SubscriptionId, TrackId, TrackKind,
    TrackSpec,
    bwe::Bwe,
    recv_stats::RecvStats,
    rtx_buffer::RtxBuffer,
    slab::Slab,
    state::{AudioActivity, Layer, Participant, RateMeter, Room, Source, Subscription, Track},
    twcc::PacketStatus,
};

/// The forwarding core of one SFU shard. See the crate docs for the run loop.
#[derive(Debug)]
pub struct Sfu {
    pub(crate) config: Config,
    pub(crate) epoch: Instant,
    pub(crate) ntp_at_epoch: u64,
    pub(crate) rooms: Slab<Room>,
    pub(crate) participants: Slab<Participant>,
    pub(crate) tracks: Slab<Track>,
    pub(crate) subs: Slab<Subscription>,
    pub(crate) out: VecDeque<Output>,
    pub(crate) metrics: Metrics,
    pub(crate) next_speakers: Instant,
    pub(crate) next_feedback: Instant,
    pub(crate) next_allocation: Instant,
    pub(crate) next_reports: Instant,
    pub(crate) scratch_statuses: Vec<PacketStatus>,
    /// Receive slots that switched to another track during one fan-out, with the track they
    /// left (their entry in its subscriber list goes after the loop).
    pub(crate) scratch_slot_switches: Vec<(SubscriptionId, TrackId)>,
}

/// Converts a wall-clock time to a 64-bit NTP timestamp (seconds since 1900 in the high half),
/// for [`Sfu::new`]: the shell reads the clock, the core never does.
pub fn ntp_from_system_time(t: std::time::SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    duration_to_ntp(d).wrapping_add(UNIX_TO_NTP << 32)
}

pub(crate) fn duration_to_ntp(d: Duration) -> u64 {
    (d.as_secs() << 32).wrapping_add((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

impl Sfu {
    /// A core with no rooms. `now` anchors its clock; `ntp_now` is the wall-clock NTP time at
    /// `now` (see [`ntp_from_system_time`]), used in the sender reports it writes.
    pub fn new(config: Config, now: Instant, ntp_now: u64) -> Self {
        Self {
            next_speakers: now + config.speaker_interval,
            next_feedback: now + config.feedback_interval,
            next_allocation: now + config.allocation_interval,
            next_reports: now + config.report_interval,
            config,
            epoch: now,
            ntp_at_epoch: ntp_now,
            rooms: Slab::default(),
            participants: Slab::default(),
            tracks: Slab::default(),
            subs: Slab::default(),
            out: VecDeque::new(),
            metrics: Metrics::default(),
            scratch_statuses: Vec::new(),
            scratch_slot_switches: Vec::new(),
        }
    }

    /// The next packet to send or event to report, in order; `None` when there is nothing.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Sfu::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(
            self.next_speakers
                .min(self.next_feedback)
                .min(self.next_allocation)
                .min(self.next_reports),
        )
    }

    /// Runs whatever is due at `now`: speaker detection with loudest-N and last-N,
    /// transport-wide CC feedback to publishers, layer allocation, sender and receiver reports.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_speakers {
            self.next_speakers = now + self.config.speaker_interval;
            self.evaluate_speakers(now);
        }
        if now >= self.next_feedback {
            self.next_feedback = now + self.config.feedback_interval;
            self.send_transport_feedback();
        }
        if now >= self.next_allocation {
            self.next_allocation = now + self.config.allocation_interval;
            let ids: Vec<ParticipantId> = self
                .participants
                .iter()
                .map(|(i, g, _)| ParticipantId::new((i, g)))
                .collect();
            for id in ids {
                self.allocate(now, id);
            }
        }
        if now >= self.next_reports {
            self.next_reports = now + self.config.report_interval;
            self.send_reports(now);
        }
    }

    /// Node-wide counters for the metrics endpoint.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Node-wide gauges for the metrics endpoint.
    pub fn gauges(&self) -> Gauges {
        let mut g = Gauges {
            rooms: self.rooms.len() as u64,
            participants: self.participants.len() as u64,
            ..Gauges::default()
        };
        for (_, _, t) in self.tracks.iter() {
            g.tracks.add(t.kind.media_kind(), 1);
        }
        for (_, _, p) in self.participants.iter() {
            for sid in &p.slots {
                let Some(s) = self.subs.get(sid.index, sid.generation) else {
                    continue;
                };
                let Some(slot) = &s.slot else {
                    continue;
                };
                g.slots.add(slot.slot.kind, 1);
                if s.assigned_track().is_some() {
                    g.slots_occupied.add(slot.slot.kind, 1);
                }
            }
        }
        g
    }

    /// Statistics of one participant.
    pub fn participant_stats(&self, id: ParticipantId) -> Option<ParticipantStats> {
        let p = self.participants.get(id.index, id.generation)?;
        let mut s = p.stats;
        s.estimate_bps = p.bwe.estimate_bps();
        Some(s)
    }

    /// The participants of a room, in join order.
    pub fn room_participants(&self, room: RoomId) -> Option<&[ParticipantId]> {
        self.rooms
            .get(room.index, room.generation)
            .map(|r| r.participants.as_slice())
    }

    /// The active speakers of a room as last announced, loudest first.
    pub fn active_speakers(&self, room: RoomId) -> Option<&[ParticipantId]> {
        self.rooms
            .get(room.index, room.generation)
            .map(|r| r.speakers.as_slice())
    }

    /// The layer a subscriber currently receives of a track (`None`: nothing forwarded yet, or
    /// paused), and the layer it should receive next.
    pub fn subscription_layers(
        &self,
        subscriber: ParticipantId,
        track: TrackId,
    ) -> Option<(Option<u8>, Option<u8>)> {
        let sid = self.find_subscription(subscriber, track)?;
        let s = self.subs.get(sid.index, sid.generation)?;
        Some((s.current_layer, s.target_layer))
    }

    /// Whether a subscription is currently forwarded (not paused by loudest-N or last-N).
    pub fn is_forwarding(&self, subscriber: ParticipantId, track: TrackId) -> Option<bool> {
        let sid = self.find_subscription(subscriber, track)?;
        self.subs.get(sid.index, sid.generation).map(|s| !s.paused)
    }

    // ---- commands ----

    /// Opens a room with `policy`. Refused when the policy exceeds the hard limits.
    pub fn create_room(&mut self, policy: RoomPolicy) -> Result<RoomId, Error> {
        if !policy.within_limits() {
            return Err(Error::PolicyExceedsLimits);
        }
        Ok(RoomId::new(self.rooms.insert(Room {
            policy,
            participants: Vec::new(),
            publishers: 0,
            viewers: 0,
            tracks: Vec::new(),
            speakers: Vec::new(),
            speaker_order: Vec::new(),
            audio_rank: Vec::new(),
        })))
    }

    /// Closes a room: every participant, track and subscription in it goes away.
    pub fn close_room(&mut self, now: Instant, room: RoomId) -> Result<(), Error> {
        let r = self
            .rooms
            .get(room.index, room.generation)
            .ok_or(Error::UnknownRoom)?;
        for p in r.participants.clone() {
            self.remove_participant(now, p)?;
        }
        self.rooms.remove(room.index, room.generation);
        self.out
            .push_back(Output::Event(Event::RoomClosed { room }));
        Ok(())
    }

    /// Admits a participant with `role` into `room`. `ext` are the header-extension ids its SDP
    /// negotiated. Refused when the role is not allowed in the room's kind or the room is full
    /// for that role (100 callers per meeting, 500 viewers per broadcast by default).
    pub fn add_participant(
        &mut self,
        room: RoomId,
        role: Role,
        ext: ExtensionIds,
    ) -> Result<ParticipantId, Error> {
        let r = self
            .rooms
            .get_mut(room.index, room.generation)
            .ok_or(Error::UnknownRoom)?;
        if !role.allowed_in(r.policy.kind) {
            return Err(Error::RoleNotAllowed);
        }
        if role.can_publish() {
            if r.publishers >= r.policy.max_publishers {
                return Err(Error::Capacity);
            }
            r.publishers += 1;
        } else {
            if r.viewers >= r.policy.max_viewers {
                return Err(Error::Capacity);
            }
            r.viewers += 1;
        }
        let id = ParticipantId::new(self.participants.insert(Participant {
            room,
            role,
            ext,
            tracks: Vec::new(),
            sources: Vec::new(),
            subscriptions: Vec::new(),
            slots: Vec::new(),
            slot_layout: None,
            slot_pins: Vec::new(),
            slots_version: 0,
            slots_stale: false,
            twcc_seq: 0,
            twcc_rx: Default::default(),
            bwe: Bwe::new(
                self.config.initial_estimate_bps,
                self.config.min_estimate_bps,
                self.config.max_estimate_bps,
            ),
            stats: ParticipantStats::default(),
        }));
        r.participants.push(id);
        if role.can_publish() {
            r.speaker_order.push(id);
        }
        Ok(id)
    }

    /// Removes a participant: its tracks are unpublished and its subscriptions dropped.
    pub fn remove_participant(&mut self, now: Instant, id: ParticipantId) -> Result<(), Error> {
        let p = self
            .participants
            .get(id.index, id.generation)
            .ok_or(Error::UnknownParticipant)?;
        let tracks = p.tracks.clone();
        let subs: Vec<SubscriptionId> = p.subscriptions.iter().chain(&p.slots).copied().collect();
        let (room, role) = (p.room, p.role);
        for s in subs {
            self.drop_subscription(s);
        }
        for t in tracks {
            self.unpublish_track(t)?;
        }
        self.participants.remove(id.index, id.generation);
        if let Some(r) = self.rooms.get_mut(room.index, room.generation) {
            r.participants.retain(|p| *p != id);
            r.speaker_order.retain(|p| *p != id);
            r.speakers.retain(|p| *p != id);
            if role.can_publish() {
                r.publishers -= 1;
            } else {
                r.viewers -= 1;
            }
        }
        // One reassignment (and one `slots` message per subscriber) for all the tracks it had.
        self.assign_room_slots(now, room);
        Ok(())
    }

    /// Publishes a track for `publisher`. Refused for roles that may not publish, codecs not
    /// allowed for the kind, and inconsistent layer descriptions.
    pub fn publish(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        spec: TrackSpec,
    ) -> Result<TrackId, Error> {
        let p = self
            .participants
            .get(publisher.index, publisher.generation)
            .ok_or(Error::UnknownParticipant)?;
        if !p.role.can_publish() {
            return Err(Error::PublishNotAllowed);
        }
        if p.tracks.len() >= crate::MAX_TRACKS_PER_PARTICIPANT {
            return Err(Error::TooManyTracks);
        }
        use crate::Codec::*;
        let codec_ok = match spec.kind {
            TrackKind::Audio => spec.codec == Opus && spec.layers.len() == 1,
            TrackKind::Camera | TrackKind::Screen => match spec.codec {
                Vp8 => (1..=crate::MAX_LAYERS).contains(&spec.layers.len()),
                Vp9 => spec.layers.len() == 1,
                Opus => false,
            },
        };
        if !codec_ok {
            return Err(
                if spec.layers.is_empty() || spec.layers.len() > crate::MAX_LAYERS {
                    Error::InvalidTrack
                } else {
                    Error::CodecNotAllowed
                },
            );
        }
        // Layers must be tellable apart, SSRCs unique, mid unique for this publisher.
        let mut ssrcs: Vec<u32> = p.sources.iter().map(|s| s.ssrc).collect();
        for l in &spec.layers {
            if spec.layers.len() > 1 && l.rid.is_none() && l.ssrc.is_none() {
                return Err(Error::InvalidTrack);
            }
            for s in [l.ssrc, l.rtx_ssrc].into_iter().flatten() {
                if ssrcs.contains(&s) {
                    return Err(Error::InvalidTrack);
                }
                ssrcs.push(s);
            }
        }
        if spec.mid.is_empty()
            || p.tracks.iter().any(|t| {
                self.tracks
                    .get(t.index, t.generation)
                    .is_some_and(|t| t.mid == spec.mid)
            })
        {
            return Err(Error::InvalidTrack);
        }
        let room = p.room;
        let buffer_len = if spec.kind == TrackKind::Audio {
            128
        } else {
            self.config.retransmit_buffer_packets
        };
        let layers: Vec<Layer> = spec
            .layers
            .into_iter()
            .map(|l| Layer {
                ssrc: l.ssrc,
                rtx_ssrc: l.rtx_ssrc,
                spec: l,
                buffer: RtxBuffer::new(buffer_len),
                recv: RecvStats::default(),
                rate: RateMeter::default(),
                last_media: None,
                last_keyframe_request: None,
                fir_seq: 0,
                sr: None,
            })
            .collect();
        let kind = spec.kind;
        let id = TrackId::new(self.tracks.insert(Track {
            room,
            publisher,
            kind,
            codec: spec.codec,
            mid: spec.mid,
            payload_type: spec.payload_type,
            rtx_payload_type: spec.rtx_payload_type,
            layers,
            subscribers: Vec::new(),
            audio: AudioActivity {
                selected: true,
                ..AudioActivity::default()
            },
        }));
        // The track was just inserted.
        let t = self
            .tracks
            .get(id.index, id.generation)
            .expect("just inserted");
        let mut new_sources = Vec::new();
        for (i, l) in t.layers.iter().enumerate() {
            if let Some(ssrc) = l.ssrc {
                new_sources.push(Source {
                    ssrc,
                    track: id,
                    layer: i as u8,
                    rtx: false,
                });
            }
            if let Some(ssrc) = l.rtx_ssrc {
                new_sources.push(Source {
                    ssrc,
                    track: id,
                    layer: i as u8,
                    rtx: true,
                });
            }
        }
        if let Some(p) = self
            .participants
            .get_mut(publisher.index, publisher.generation)
        {
            p.tracks.push(id);
            p.sources.extend(new_sources);
        }
        if let Some(r) = self.rooms.get_mut(room.index, room.generation) {
            r.tracks.push(id);
            if kind == TrackKind::Audio {
                r.audio_rank.push(id);
            }
        }
        self.out.push_back(Output::Event(Event::TrackPublished {
            room,
            publisher,
            track: id,
            kind,
        }));
        self.assign_room_slots(now, room);
        Ok(id)
    }

    /// Unpublishes a track; its subscriptions are dropped.
    pub fn unpublish(&mut self, now: Instant, track: TrackId) -> Result<(), Error> {
        let room = self.unpublish_track(track)?;
        self.assign_room_slots(now, room);
        Ok(())
    }

    /// [`Sfu::unpublish`] without the slot reassignment; returns the track's room.
    fn unpublish_track(&mut self, track: TrackId) -> Result<RoomId, Error> {
        let t = self
            .tracks
            .remove(track.index, track.generation)
            .ok_or(Error::UnknownTrack)?;
        for s in &t.subscribers {
            if self
                .subs
                .get(s.index, s.generation)
                .is_some_and(|s| s.slot.is_some())
            {
                self.vacate_slot(*s, track);
            } else {
                self.drop_subscription(*s);
            }
        }
        if let Some(p) = self
            .participants
            .get_mut(t.publisher.index, t.publisher.generation)
        {
            p.tracks.retain(|x| *x != track);
            p.sources.retain(|s| s.track != track);
        }
        if let Some(r) = self.rooms.get_mut(t.room.index, t.room.generation) {
            r.tracks.retain(|x| *x != track);
            r.audio_rank.retain(|x| *x != track);
        }
        self.out.push_back(Output::Event(Event::TrackUnpublished {
            room: t.room,
            publisher: t.publisher,
            track,
        }));
        Ok(t.room)
    }

    /// Subscribes `subscriber` to `track`, sent as `down` describes. Video subscriptions start
    /// at the next keyframe of the allocated layer (a keyframe is requested).
    pub fn subscribe(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        track: TrackId,
        down: DownstreamParams,
    ) -> Result<SubscriptionId, Error> {
        let p = self
            .participants
            .get(subscriber.index, subscriber.generation)
            .ok_or(Error::UnknownParticipant)?;
        let t = self
            .tracks
            .get(track.index, track.generation)
            .ok_or(Error::UnknownTrack)?;
        if t.room != p.room || t.publisher == subscriber {
            return Err(Error::CannotSubscribe);
        }
        for s in p.subscriptions.iter().chain(&p.slots) {
            if let Some(s) = self.subs.get(s.index, s.generation) {
                let rtx = s.down.rtx.map(|r| r.ssrc);
                if (s.track == track && s.slot.is_none())
                    || s.down.ssrc == down.ssrc
                    || rtx == Some(down.ssrc)
                    || down.rtx.is_some_and(|r| {
                        r.ssrc == down.ssrc || Some(r.ssrc) == rtx || r.ssrc == s.down.ssrc
                    })
                {
                    return Err(Error::DuplicateSubscription);
                }
            }
        }
        let kind = t.kind.media_kind();
        let mut sub = Subscription::new(subscriber, track, kind, down, p.ext);
        // A recorder keeps every voice: loudest-N never pauses its audio.
        sub.paused = kind == MediaKind::Audio && !t.audio.selected && p.role != Role::Recorder;
        let sid = SubscriptionId::new(self.subs.insert(sub));
        if let Some(t) = self.tracks.get_mut(track.index, track.generation) {
            t.subscribers.push(sid);
        }
        if let Some(p) = self
            .participants
            .get_mut(subscriber.index, subscriber.generation)
        {
            p.subscriptions.push(sid);
        }
        if kind == MediaKind::Audio {
            if let Some(s) = self.subs.get_mut(sid.index, sid.generation) {
                s.target_layer = Some(0);
            }
        } else {
            self.apply_last_n(subscriber);
            self.allocate(now, subscriber);
        }
        Ok(sid)
    }

    /// Ends a per-track subscription (receive slots end with [`Sfu::set_slot_layout`] or when
    /// the subscriber leaves).
    pub fn unsubscribe(&mut self, subscriber: ParticipantId, track: TrackId) -> Result<(), Error> {
        let sid = self
            .find_track_subscription(subscriber, track)
            .ok_or(Error::NotSubscribed)?;
        self.drop_subscription(sid);
        Ok(())
    }

    /// Sets the size at which the subscriber shows a video track: it gets the smallest layer at
    /// least that tall (bandwidth permitting). A height of 0 stops the video until set again.
    /// Layers are matched on height; the width is taken for the API's symmetry with what
    /// clients report (a visible element's size) and not used.
    pub fn set_requested_size(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        track: TrackId,
        width: u32,
        height: u32,
    ) -> Result<(), Error> {
        let _ = width;
        let s = self.subscription_mut(subscriber, track)?;
        s.requested_height = Some(height);
        self.allocate(now, subscriber);
        Ok(())
    }

    /// Caps the layer a subscriber receives of a track (`None` removes the cap).
    pub fn set_max_layer(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        track: TrackId,
        max_layer: Option<u8>,
    ) -> Result<(), Error> {
        let s = self.subscription_mut(subscriber, track)?;
        s.max_layer = max_layer;
        self.allocate(now, subscriber);
        Ok(())
    }

    /// Pins (or unpins) a video track for a subscriber: pinned tracks are forwarded on top of
    /// last-N and get bandwidth first.
    pub fn set_pinned(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        track: TrackId,
        pinned: bool,
    ) -> Result<(), Error> {
        if self.find_track_subscription(subscriber, track).is_none()
            && self
                .participants
                .get(subscriber.index, subscriber.generation)
                .is_some_and(|p| !p.slots.is_empty())
        {
            return self.set_slot_pinned(now, subscriber, track, pinned);
        }
        let s = self.subscription_mut(subscriber, track)?;
        s.pinned = pinned;
        self.apply_last_n(subscriber);
        self.allocate(now, subscriber);
        Ok(())
    }

    // ---- helpers ----

    /// The subscription of `subscriber` to `track`: its per-track subscription, else the
    /// receive slot that carries the track (or is switching to it).
    pub(crate) fn find_subscription(
        &self,
        subscriber: ParticipantId,
        track: TrackId,
    ) -> Option<SubscriptionId> {
        self.find_track_subscription(subscriber, track).or_else(|| {
            let p = self
                .participants
                .get(subscriber.index, subscriber.generation)?;
            p.slots.iter().copied().find(|s| {
                self.subs
                    .get(s.index, s.generation)
                    .is_some_and(|s| s.assigned_track() == Some(track))
            })
        })
    }

    /// The per-track subscription of `subscriber` to `track` (receive slots not included).
    fn find_track_subscription(
        &self,
        subscriber: ParticipantId,
        track: TrackId,
    ) -> Option<SubscriptionId> {
        let p = self
            .participants
            .get(subscriber.index, subscriber.generation)?;
        p.subscriptions.iter().copied().find(|s| {
            self.subs
                .get(s.index, s.generation)
                .is_some_and(|s| s.track == track)
        })
    }

    fn subscription_mut(
        &mut self,
        subscriber: ParticipantId,
        track: TrackId,
    ) -> Result<&mut Subscription, Error> {
        if self
            .participants
            .get(subscriber.index, subscriber.generation)
            .is_none()
        {
            return Err(Error::UnknownParticipant);
        }
        let sid = self
            .find_subscription(subscriber, track)
            .ok_or(Error::NotSubscribed)?;
        self.subs
            .get_mut(sid.index, sid.generation)
            .ok_or(Error::NotSubscribed)
    }

    pub(crate) fn drop_subscription(&mut self, sid: SubscriptionId) {
        let Some(s) = self.subs.remove(sid.index, sid.generation) else {
            return;
        };
        for track in std::iter::once(s.track).chain(s.next_track) {
            if let Some(t) = self.tracks.get_mut(track.index, track.generation) {
                t.subscribers.retain(|x| *x != sid);
            }
        }
        if let Some(p) = self
            .participants
            .get_mut(s.subscriber.index, s.subscriber.generation)
        {
            p.subscriptions.retain(|x| *x != sid);
            p.slots.retain(|x| *x != sid);
        }
    }

    /// Microseconds since the core's epoch.
    pub(crate) fn micros(&self, now: Instant) -> i64 {
        now.saturating_duration_since(self.epoch).as_micros() as i64
    }

    /// NTP time at `now`.
    pub(crate) fn ntp(&self, now: Instant) -> u64 {
        self.ntp_at_epoch
            .wrapping_add(duration_to_ntp(now.saturating_duration_since(self.epoch)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_can_move_to_the_shells_task() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Sfu>();
        assert_send::<Output>();
    }

    #[test]
    fn ntp_conversion_matches_the_epochs() {
        let unix_2000 = std::time::UNIX_EPOCH + Duration::from_secs(946_684_800);
        // 2000-01-01 is 3,155,673,600 s after the NTP epoch (1900-01-01).
        assert_eq!(ntp_from_system_time(unix_2000), 3_155_673_600u64 << 32);
        assert_eq!(duration_to_ntp(Duration::from_millis(500)), 1 << 31);
    }
}
