//! Receive slots: a subscriber's fixed, bounded set of downstream streams (audio, video and
//! screen-share slots, chosen at join from the room policy), onto which the core maps the room's
//! sources.
//!
//! A slot is a [`Subscription`] whose track changes: its downstream SSRC, payload type, RTX and
//! mid (its m-section in the subscriber's SDP) stay, and so do its [`crate::rewriter`] state and
//! send history, so each slot is one continuous stream across reassignments. A join or a leave
//! changes which track a slot carries, never the slot layout (the SDP).
//!
//! Assignment (here, on every change of its inputs): audio slots carry the loudest audio tracks
//! of the room (all of them ranked by the smoothed level, as loudest-N ranks them; with the
//! policy's `loudest_n + 1` slots the spare carries the next loudest, so a new speaker usually
//! finds its track already flowing), video slots the pinned cameras then the most recent
//! speakers' cameras (at most `last_n` unpinned), screen slots the room's shares in publish
//! order. A track keeps its slot while it stays wanted; a newly wanted track takes the lowest free
//! slot.
//!
//! Switching (in `forward.rs`): a reassigned slot keeps forwarding its old track until the new
//! track reaches a switch point (its first packet for audio; a keyframe of a layer it may start
//! on for video, which is requested at once), then starts a new rewriting epoch on it. A slot
//! freed with nothing to carry stops at once. NACKs are answered from the track that was in the
//! slot when the sequence number was sent (a ring of the slot's last
//! [`ASSIGNMENT_RING`] assignments, indexed by the assignment number kept in each send record).

use std::{fmt, time::Instant};

use crate::{
    DownstreamParams, Error, Event, MediaKind, Output, ParticipantId, RoomId, SubscriptionId,
    TrackId, TrackKind, core::Sfu, state::Subscription,
};

/// Most slots of one kind a layout may have (a meeting has at most 100 callers).
pub const MAX_SLOTS_PER_KIND: usize = 100;
/// Screen-share slots per subscriber from [`crate::RoomPolicy::slot_counts`].
pub const DEFAULT_SCREEN_SLOTS: usize = 2;
/// Assignments remembered per slot to map NACKed sequence numbers back to their source.
pub(crate) const ASSIGNMENT_RING: usize = 16;

/// What a receive slot carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotKind {
    /// A microphone track (the loudest speakers).
    Audio,
    /// A camera track (pinned, then last-N).
    Video,
    /// A screen share.
    Screen,
}

impl SlotKind {
    /// The letter of slot names in the `slots` message: `a`, `v`, `s`.
    pub fn prefix(self) -> char {
        match self {
            SlotKind::Audio => 'a',
            SlotKind::Video => 'v',
            SlotKind::Screen => 's',
        }
    }

    /// The `kind` of the `slots` message: `audio`, `video`, `screen`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Audio => "audio",
            SlotKind::Video => "video",
            SlotKind::Screen => "screen",
        }
    }

    pub(crate) fn media_kind(self) -> MediaKind {
        match self {
            SlotKind::Audio => MediaKind::Audio,
            SlotKind::Video | SlotKind::Screen => MediaKind::Video,
        }
    }

    fn carries(self, kind: TrackKind) -> bool {
        matches!(
            (self, kind),
            (SlotKind::Audio, TrackKind::Audio)
                | (SlotKind::Video, TrackKind::Camera)
                | (SlotKind::Screen, TrackKind::Screen)
        )
    }
}

/// One receive slot of a subscriber: its kind and its index among the slots of that kind.
/// Displayed as in the `slots` message: `a0`, `v3`, `s1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotRef {
    /// Audio, video or screen share.
    pub kind: SlotKind,
    /// Index among the slots of this kind, as in [`SlotLayout`].
    pub index: u8,
}

impl fmt::Display for SlotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.prefix(), self.index)
    }
}

/// How many slots of each kind a room's policy gives each subscriber (see
/// [`crate::RoomPolicy::slot_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCounts {
    /// Audio slots: loudest-N plus one spare.
    pub audio: usize,
    /// Video slots: last-N.
    pub video: usize,
    /// Screen-share slots.
    pub screen: usize,
}

/// A subscriber's receive slots: one downstream stream (an m-section of its SDP) per slot,
/// chosen by the shell at join from [`crate::RoomPolicy::slot_counts`]. Index `i` of `audio` is
/// slot `a{i}`, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotLayout {
    /// Audio slots.
    pub audio: Vec<DownstreamParams>,
    /// Video (camera) slots.
    pub video: Vec<DownstreamParams>,
    /// Screen-share slots.
    pub screen: Vec<DownstreamParams>,
}

impl SlotLayout {
    /// Every slot with its downstream parameters, audio first, then video, then screen.
    pub fn slots(&self) -> impl Iterator<Item = (SlotRef, &DownstreamParams)> {
        [
            (SlotKind::Audio, &self.audio),
            (SlotKind::Video, &self.video),
            (SlotKind::Screen, &self.screen),
        ]
        .into_iter()
        .flat_map(|(kind, v)| {
            v.iter().enumerate().map(move |(i, d)| {
                (
                    SlotRef {
                        kind,
                        index: i as u8,
                    },
                    d,
                )
            })
        })
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.audio.len() + self.video.len() + self.screen.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The slot part of a slot's [`Subscription`].
#[derive(Debug, Clone)]
pub(crate) struct SlotState {
    pub(crate) slot: SlotRef,
    /// `(assignment number, track)` of the last assignments, at `number % ASSIGNMENT_RING`.
    ring: [(u8, TrackId); ASSIGNMENT_RING],
}

impl SlotState {
    pub(crate) fn new(slot: SlotRef) -> Self {
        Self {
            slot,
            ring: [(0, TrackId::NONE); ASSIGNMENT_RING],
        }
    }

    /// Records that assignment number `n` forwards `track`.
    pub(crate) fn begin(&mut self, n: u8, track: TrackId) {
        self.ring[usize::from(n) % ASSIGNMENT_RING] = (n, track);
    }

    /// The track forwarded under assignment number `n`, while it is remembered.
    pub(crate) fn track_of(&self, n: u8) -> Option<TrackId> {
        let (m, t) = self.ring[usize::from(n) % ASSIGNMENT_RING];
        (m == n && t != TrackId::NONE).then_some(t)
    }
}

impl Subscription {
    /// The track this slot carries or is switching to (`None`: empty slot).
    pub(crate) fn assigned_track(&self) -> Option<TrackId> {
        self.next_track
            .or((self.track != TrackId::NONE).then_some(self.track))
    }
}

impl Sfu {
    /// Sets (or replaces) a subscriber's receive slots, from the SDP the shell made at join. The
    /// core then assigns the room's sources to the slots itself, reassigns them as speakers,
    /// last-N and publishers change, and reports each new map as [`Event::SlotsChanged`].
    /// Replacing a layout (the policy's slot counts changed) starts every slot afresh.
    /// Refused for more than [`MAX_SLOTS_PER_KIND`] slots of a kind, an SSRC used twice
    /// (`InvalidSlotLayout`), or an SSRC of one of the subscriber's per-track subscriptions
    /// (`DuplicateSubscription`).
    pub fn set_slot_layout(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        layout: SlotLayout,
    ) -> Result<(), Error> {
        let p = self
            .participants
            .get(subscriber.index, subscriber.generation)
            .ok_or(Error::UnknownParticipant)?;
        if [&layout.audio, &layout.video, &layout.screen]
            .iter()
            .any(|v| v.len() > MAX_SLOTS_PER_KIND)
        {
            return Err(Error::InvalidSlotLayout);
        }
        let mut ssrcs: Vec<u32> = Vec::with_capacity(layout.len() * 2);
        for (_, d) in layout.slots() {
            for s in std::iter::once(d.ssrc).chain(d.rtx.map(|r| r.ssrc)) {
                if ssrcs.contains(&s) {
                    return Err(Error::InvalidSlotLayout);
                }
                ssrcs.push(s);
            }
        }
        for sid in &p.subscriptions {
            if let Some(s) = self.subs.get(sid.index, sid.generation)
                && std::iter::once(s.down.ssrc)
                    .chain(s.down.rtx.map(|r| r.ssrc))
                    .any(|x| ssrcs.contains(&x))
            {
                return Err(Error::DuplicateSubscription);
            }
        }
        let ext = p.ext;
        for sid in p.slots.clone() {
            self.drop_subscription(sid);
        }
        let mut ids = Vec::with_capacity(layout.len());
        for (slot, down) in layout.slots() {
            let kind = slot.kind.media_kind();
            let mut sub = Subscription::new(subscriber, TrackId::NONE, kind, down.clone(), ext);
            sub.slot = Some(SlotState::new(slot));
            if kind == MediaKind::Audio {
                sub.target_layer = Some(0);
            }
            ids.push(SubscriptionId::new(self.subs.insert(sub)));
        }
        if let Some(p) = self
            .participants
            .get_mut(subscriber.index, subscriber.generation)
        {
            p.slots = ids;
            p.slot_layout = Some(layout);
        }
        self.assign_slots(now, subscriber, true);
        Ok(())
    }

    /// A subscriber's slot layout, as last set by [`Sfu::set_slot_layout`].
    pub fn slot_layout(&self, subscriber: ParticipantId) -> Option<&SlotLayout> {
        self.participants
            .get(subscriber.index, subscriber.generation)?
            .slot_layout
            .as_ref()
    }

    /// The track each of a subscriber's slots carries (or is switching to at its next switch
    /// point), in layout order; as last announced in [`Event::SlotsChanged`].
    pub fn slot_map(&self, subscriber: ParticipantId) -> Option<Vec<(SlotRef, Option<TrackId>)>> {
        let p = self
            .participants
            .get(subscriber.index, subscriber.generation)?;
        Some(
            p.slots
                .iter()
                .filter_map(|sid| self.subs.get(sid.index, sid.generation))
                .filter_map(|s| Some((s.slot.as_ref()?.slot, s.assigned_track())))
                .collect(),
        )
    }

    /// The track a slot forwards packets of right now (`None`: nothing yet, e.g. a video slot
    /// waiting for the keyframe of its first source).
    pub fn slot_forwarding(&self, subscriber: ParticipantId, slot: SlotRef) -> Option<TrackId> {
        let p = self
            .participants
            .get(subscriber.index, subscriber.generation)?;
        let s = p
            .slots
            .iter()
            .filter_map(|sid| self.subs.get(sid.index, sid.generation))
            .find(|s| s.slot.as_ref().is_some_and(|x| x.slot == slot))?;
        (s.track != TrackId::NONE && s.current_layer.is_some()).then_some(s.track)
    }

    /// Re-runs the slot assignment of every subscriber with slots in `room`.
    pub(crate) fn assign_room_slots(&mut self, now: Instant, room: RoomId) {
        let Some(r) = self.rooms.get(room.index, room.generation) else {
            return;
        };
        for p in r.participants.clone() {
            self.assign_slots(now, p, false);
        }
    }

    /// Assigns the room's tracks to a subscriber's slots (see the module docs) and announces
    /// the map when it changed (or when `announce`).
    pub(crate) fn assign_slots(&mut self, now: Instant, subscriber: ParticipantId, announce: bool) {
        let Some(p) = self
            .participants
            .get(subscriber.index, subscriber.generation)
        else {
            return;
        };
        if p.slots.is_empty() {
            return;
        }
        let Some(room) = self.rooms.get(p.room.index, p.room.generation) else {
            return;
        };
        let counts = |kind: SlotKind| {
            p.slots
                .iter()
                .filter_map(|sid| self.subs.get(sid.index, sid.generation))
                .filter(|s| s.slot.as_ref().is_some_and(|x| x.slot.kind == kind))
                .count()
        };
        let eligible = |t: &TrackId, kind: SlotKind| {
            self.tracks
                .get(t.index, t.generation)
                .is_some_and(|tr| tr.publisher != subscriber && kind.carries(tr.kind))
        };
        let audio: Vec<TrackId> = room
            .audio_rank
            .iter()
            .filter(|t| eligible(t, SlotKind::Audio))
            .take(counts(SlotKind::Audio))
            .copied()
            .collect();
        let video_slots = counts(SlotKind::Video);
        let mut video: Vec<TrackId> = p
            .slot_pins
            .iter()
            .filter(|t| eligible(t, SlotKind::Video))
            .take(video_slots)
            .copied()
            .collect();
        let mut unpinned = 0;
        'order: for publisher in &room.speaker_order {
            let Some(pp) = self.participants.get(publisher.index, publisher.generation) else {
                continue;
            };
            for t in &pp.tracks {
                if video.len() >= video_slots || unpinned >= room.policy.last_n {
                    break 'order;
                }
                if eligible(t, SlotKind::Video) && !video.contains(t) {
                    video.push(*t);
                    unpinned += 1;
                }
            }
        }
        let screen: Vec<TrackId> = room
            .tracks
            .iter()
            .filter(|t| eligible(t, SlotKind::Screen))
            .take(counts(SlotKind::Screen))
            .copied()
            .collect();

        let slots = p.slots.clone();
        let mut changed = false;
        let mut video_changed = false;
        for (kind, wanted) in [
            (SlotKind::Audio, audio),
            (SlotKind::Video, video),
            (SlotKind::Screen, screen),
        ] {
            let of_kind: Vec<(SubscriptionId, Option<TrackId>)> = slots
                .iter()
                .filter_map(|sid| {
                    let s = self.subs.get(sid.index, sid.generation)?;
                    (s.slot.as_ref()?.slot.kind == kind).then(|| (*sid, s.assigned_track()))
                })
                .collect();
            // Tracks still wanted keep their slot; new ones take the lowest free slot.
            let mut next: Vec<Option<TrackId>> = of_kind
                .iter()
                .map(|(_, t)| t.filter(|t| wanted.contains(t)))
                .collect();
            for w in &wanted {
                if !next.contains(&Some(*w))
                    && let Some(free) = next.iter_mut().find(|n| n.is_none())
                {
                    *free = Some(*w);
                }
            }
            for ((sid, current), new) in of_kind.into_iter().zip(next) {
                if current == new {
                    continue;
                }
                changed = true;
                video_changed |= kind != SlotKind::Audio;
                if new.is_some() {
                    self.metrics.slot_reassignments.add(kind, 1);
                }
                self.retarget_slot(sid, new);
            }
        }
        if video_changed {
            self.allocate(now, subscriber);
        }
        let stale = self
            .participants
            .get_mut(subscriber.index, subscriber.generation)
            .is_some_and(|p| std::mem::take(&mut p.slots_stale));
        if changed || announce || stale {
            let Some(map) = self.slot_map(subscriber) else {
                return;
            };
            let Some(p) = self
                .participants
                .get_mut(subscriber.index, subscriber.generation)
            else {
                return;
            };
            p.slots_version += 1;
            self.out.push_back(Output::Event(Event::SlotsChanged {
                subscriber,
                version: p.slots_version,
                map,
            }));
        }
    }

    /// Points a slot at `new`: it keeps forwarding its current track until `new` reaches a
    /// switch point (`forward.rs`); with `None` it stops at once.
    fn retarget_slot(&mut self, sid: SubscriptionId, new: Option<TrackId>) {
        let Some(s) = self.subs.get_mut(sid.index, sid.generation) else {
            return;
        };
        let current = s.track;
        if let Some(pending) = s.next_track.take()
            && pending != current
            && let Some(t) = self.tracks.get_mut(pending.index, pending.generation)
        {
            t.subscribers.retain(|x| *x != sid);
        }
        match new {
            None => {
                if let Some(t) = self.tracks.get_mut(current.index, current.generation) {
                    t.subscribers.retain(|x| *x != sid);
                }
                s.track = TrackId::NONE;
                s.current_layer = None;
                if s.kind == MediaKind::Video {
                    s.target_layer = None;
                }
            }
            Some(t) if t == current => {}
            Some(t) => {
                s.next_track = Some(t);
                s.keyframe_asked_at = None;
                if let Some(tr) = self.tracks.get_mut(t.index, t.generation) {
                    tr.subscribers.push(sid);
                }
            }
        }
    }

    /// Pins or unpins a camera for a subscriber's video slots.
    pub(crate) fn set_slot_pinned(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        track: TrackId,
        pinned: bool,
    ) -> Result<(), Error> {
        if self.tracks.get(track.index, track.generation).is_none() {
            return Err(Error::UnknownTrack);
        }
        let p = self
            .participants
            .get_mut(subscriber.index, subscriber.generation)
            .ok_or(Error::UnknownParticipant)?;
        p.slot_pins.retain(|t| *t != track);
        if pinned {
            p.slot_pins.push(track);
        }
        self.assign_slots(now, subscriber, false);
        self.allocate(now, subscriber);
        Ok(())
    }

    /// A track went away: slots forwarding it or switching to it let go of it (their rewriting
    /// state stays, so the next source continues the stream).
    pub(crate) fn vacate_slot(&mut self, sid: SubscriptionId, track: TrackId) {
        let Some(s) = self.subs.get_mut(sid.index, sid.generation) else {
            return;
        };
        if s.track == track {
            s.track = TrackId::NONE;
            s.current_layer = None;
        }
        if s.next_track == Some(track) {
            s.next_track = None;
        }
        let subscriber = s.subscriber;
        if let Some(p) = self
            .participants
            .get_mut(subscriber.index, subscriber.generation)
        {
            p.slots_stale = true;
        }
    }
}
