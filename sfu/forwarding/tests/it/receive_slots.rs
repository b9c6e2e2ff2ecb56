//! Receive slots: a subscriber's bounded set of downstream streams chosen at join from the room
//! policy; the core maps the room's sources onto them (loudest audio, last-N cameras, screen
//! shares), keeps each slot one continuous stream across reassignments, switches video at a
//! keyframe of the new source, answers NACKs from the source that was in the slot, and never
//! changes a slot layout (an SDP) when someone joins or leaves.

use std::time::{Duration, Instant};

use sfu_forwarding::{
    Codec, Config, DownstreamParams, Event, LayerSpec, Output, ParticipantId, Role, RoomId,
    RoomPolicy, RtxParams, SlotCounts, SlotKind, SlotLayout, SlotRef, TrackId, TrackKind,
    TrackSpec, rtcp,
};

use crate::common::*;

/// A caller publishing a microphone and a one-layer VP8 camera (a frame every 20 ms, one packet
/// each). Its payloads carry its index, so what a slot receives tells whose media it is.
struct Caller {
    id: ParticipantId,
    index: u8,
    audio: TrackId,
    camera: TrackId,
    audio_seq: u16,
    audio_ts: u32,
    video_seq: u16,
    video_ts: u32,
    pid: u16,
    tl0: u8,
    /// Level in -dBov while speaking; `None`: silence.
    level: Option<u8>,
    /// Whether the camera answers a keyframe request with a keyframe on its next frame.
    answers_pli: bool,
    keyframe_due: bool,
}

impl Caller {
    fn audio_ssrc(&self) -> u32 {
        100 + u32::from(self.index)
    }

    fn camera_ssrc(&self) -> u32 {
        200 + u32::from(self.index)
    }
}

/// A `SlotsChanged` map: every slot with the track it carries.
type SlotMap = Vec<(SlotRef, Option<TrackId>)>;

struct SlotRoom {
    sim: Sim,
    room: RoomId,
    policy: RoomPolicy,
    callers: Vec<Caller>,
    /// Every output, with the virtual time it came out.
    log: Vec<(Instant, Output)>,
}

fn camera_spec(ssrc: u32) -> TrackSpec {
    TrackSpec {
        kind: TrackKind::Camera,
        codec: Codec::Vp8,
        mid: "v0".into(),
        payload_type: VIDEO_PT,
        rtx_payload_type: None,
        layers: vec![LayerSpec {
            ssrc: Some(ssrc),
            width: 640,
            height: 360,
            ..LayerSpec::default()
        }],
    }
}

/// The slot layout a shell would put in a joining subscriber's SDP for `counts`, with SSRCs
/// from `base`; video and screen slots negotiate RTX.
fn layout_for(counts: SlotCounts, base: u32) -> SlotLayout {
    let video = |i: usize, off: u32, prefix: char| DownstreamParams {
        ssrc: base + off + 10 * i as u32,
        payload_type: VIDEO_PT,
        rtx: Some(RtxParams {
            ssrc: base + off + 10 * i as u32 + 1,
            payload_type: RTX_PT,
        }),
        mid: Some(format!("{prefix}{i}")),
    };
    SlotLayout {
        audio: (0..counts.audio)
            .map(|i| DownstreamParams {
                ssrc: base + i as u32,
                payload_type: OPUS_PT,
                rtx: None,
                mid: Some(format!("a{i}")),
            })
            .collect(),
        video: (0..counts.video).map(|i| video(i, 1000, 'v')).collect(),
        screen: (0..counts.screen).map(|i| video(i, 3000, 's')).collect(),
    }
}

fn slot(kind: SlotKind, index: u8) -> SlotRef {
    SlotRef { kind, index }
}

impl SlotRoom {
    /// A meeting with `n` callers, each publishing audio and camera.
    fn new(policy: RoomPolicy, n: usize) -> Self {
        let mut sim = Sim::new(Config::default());
        let room = sim.sfu.create_room(policy).unwrap();
        let mut callers = Vec::new();
        for i in 0..n {
            let index = i as u8;
            let id = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
            let audio = sim
                .sfu
                .publish(sim.now, id, audio_spec(100 + u32::from(index)))
                .unwrap();
            let camera = sim
                .sfu
                .publish(sim.now, id, camera_spec(200 + u32::from(index)))
                .unwrap();
            callers.push(Caller {
                id,
                index,
                audio,
                camera,
                // Every source starts somewhere else, as real ones do.
                audio_seq: 1000 * u16::from(index) + 7,
                audio_ts: 0x1000_0000 * u32::from(index),
                video_seq: 65_000u16.wrapping_add(3000 * u16::from(index)),
                video_ts: 0xFFFF_0000u32.wrapping_add(0x0300_0000 * u32::from(index)),
                pid: ((9000 * u32::from(index) + 32_760) % 32_768) as u16,
                tl0: 250u8.wrapping_add(40 * index),
                level: None,
                answers_pli: true,
                keyframe_due: true,
            });
        }
        sim.drain();
        Self {
            sim,
            room,
            policy,
            callers,
            log: Vec::new(),
        }
    }

    /// A subscriber joins with the slot layout of the room's policy (SSRCs from `base`).
    fn join(&mut self, base: u32) -> (ParticipantId, SlotLayout) {
        let id = self
            .sim
            .sfu
            .add_participant(self.room, Role::Caller, EXT)
            .unwrap();
        let layout = layout_for(self.policy.slot_counts(), base);
        self.sim
            .sfu
            .set_slot_layout(self.sim.now, id, layout.clone())
            .unwrap();
        self.collect();
        (id, layout)
    }

    fn collect(&mut self) {
        let now = self.sim.now;
        for o in self.sim.drain() {
            if let Output::Event(Event::KeyframeRequested { publisher, .. }) = &o
                && let Some(c) = self.callers.iter_mut().find(|c| c.id == *publisher)
                && c.answers_pli
            {
                c.keyframe_due = true;
            }
            self.log.push((now, o));
        }
    }

    /// Runs `ms` milliseconds in 20 ms steps: every caller sends one Opus packet and one VP8
    /// frame per step.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 20 {
            self.sim.advance(Duration::from_millis(20));
            self.collect();
            for i in 0..self.callers.len() {
                let c = &mut self.callers[i];
                let (level, voice) = c.level.map_or((127, false), |l| (l, true));
                let audio = rtp(
                    c.audio_ssrc(),
                    OPUS_PT,
                    c.audio_seq,
                    c.audio_ts,
                    false,
                    &[(4, &[u8::from(voice) << 7 | level])],
                    &[0xFC, c.index, 0xAA, 0xBB],
                );
                c.audio_seq = c.audio_seq.wrapping_add(1);
                c.audio_ts = c.audio_ts.wrapping_add(960);
                let key = std::mem::take(&mut c.keyframe_due);
                let video = rtp(
                    c.camera_ssrc(),
                    VIDEO_PT,
                    c.video_seq,
                    c.video_ts,
                    true,
                    &[],
                    &vp8_payload(c.pid, c.tl0, true, key, &[c.index, 0x55, 0x66]),
                );
                c.video_seq = c.video_seq.wrapping_add(1);
                c.video_ts = c.video_ts.wrapping_add(1800);
                c.pid = (c.pid + 1) % 32_768;
                c.tl0 = c.tl0.wrapping_add(1);
                let (id, now) = (c.id, self.sim.now);
                self.sim.sfu.handle_rtp(now, id, audio).unwrap();
                self.sim.sfu.handle_rtp(now, id, video).unwrap();
                self.collect();
            }
        }
    }

    fn mark(&self) -> usize {
        self.log.len()
    }

    /// Packets `to` received on `ssrc` since `from` (a [`Self::mark`]), with their time.
    fn received_on(&self, from: usize, to: ParticipantId, ssrc: u32) -> Vec<(Instant, Received)> {
        self.log[from..]
            .iter()
            .filter_map(|(at, o)| match o {
                Output::Transmit(t) if t.to() == to => {
                    parse_transmit(t, Some(RTX_PT)).map(|r| (*at, r))
                }
                _ => None,
            })
            .filter(|(_, r)| r.ssrc == ssrc)
            .collect()
    }

    /// The slot maps announced to `to` since `from`, with their versions.
    fn slot_maps(&self, from: usize, to: ParticipantId) -> Vec<(u64, SlotMap)> {
        self.log[from..]
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Event(Event::SlotsChanged {
                    subscriber,
                    version,
                    map,
                }) if *subscriber == to => Some((*version, map.clone())),
                _ => None,
            })
            .collect()
    }

    fn assigned(&self, to: ParticipantId, s: SlotRef) -> Option<TrackId> {
        self.sim
            .sfu
            .slot_map(to)
            .unwrap()
            .into_iter()
            .find(|(x, _)| *x == s)
            .and_then(|(_, t)| t)
    }
}

/// A meeting whose policy gives `last_n` video slots.
fn policy_with_last_n(last_n: usize) -> RoomPolicy {
    RoomPolicy {
        last_n,
        ..RoomPolicy::meeting()
    }
}

#[test]
fn slots_assigned_at_join_from_policy() {
    let counts = RoomPolicy::meeting().slot_counts();
    assert_eq!(
        (counts.audio, counts.video, counts.screen),
        (4, 25, 2),
        "loudest-N (3) plus a spare, last-N (25), two shares"
    );
    let mut r = SlotRoom::new(policy_with_last_n(3), 6);
    r.run(100);
    let start = r.mark();
    let (listener, layout) = r.join(10_000);
    assert_eq!(
        (layout.audio.len(), layout.video.len(), layout.screen.len()),
        (4, 3, 2)
    );
    let maps = r.slot_maps(start, listener);
    assert_eq!(maps.len(), 1, "one map announced at join");
    let (version, map) = &maps[0];
    assert_eq!(*version, 1);
    let expected: Vec<(SlotRef, Option<TrackId>)> = (0..4)
        .map(|i| {
            (
                slot(SlotKind::Audio, i),
                Some(r.callers[usize::from(i)].audio),
            )
        })
        .chain((0..3).map(|i| {
            (
                slot(SlotKind::Video, i),
                Some(r.callers[usize::from(i)].camera),
            )
        }))
        .chain((0..2).map(|i| (slot(SlotKind::Screen, i), None)))
        .collect();
    assert_eq!(
        map, &expected,
        "first four microphones, first three cameras, no share"
    );
    assert_eq!(r.sim.sfu.slot_map(listener).as_ref(), Some(&expected));
    let g = r.sim.sfu.gauges();
    assert_eq!((g.slots.audio, g.slots.video, g.slots.screen), (4, 3, 2));
    assert_eq!(
        (
            g.slots_occupied.audio,
            g.slots_occupied.video,
            g.slots_occupied.screen
        ),
        (4, 3, 0)
    );

    // Media flows on the slots' own SSRCs: audio at once, video from the keyframe it asked for.
    let from = r.mark();
    r.run(200);
    for (i, d) in layout.audio.iter().enumerate() {
        let rx = r.received_on(from, listener, d.ssrc);
        assert!(!rx.is_empty(), "audio slot a{i} receives");
        assert!(
            rx.iter()
                .all(|(_, p)| p.pt == OPUS_PT && usize::from(p.frame[1]) == i)
        );
    }
    for (i, d) in layout.video.iter().enumerate() {
        let rx = r.received_on(from, listener, d.ssrc);
        assert!(
            rx[0].1.keyframe_start(),
            "video slot v{i} starts at a keyframe"
        );
        assert!(rx.iter().all(|(_, p)| usize::from(p.frame[1]) == i));
    }
    // Callers 3.. are not sent to the listener at all: no per-track stream exists for them.
    let all_ssrcs: Vec<u32> = layout.slots().map(|(_, d)| d.ssrc).collect();
    assert!(r.log[from..].iter().all(|(_, o)| match o {
        Output::Transmit(t) if t.to() == listener =>
            parse_transmit(t, Some(RTX_PT)).is_none_or(|p| all_ssrcs.contains(&p.ssrc)),
        _ => true,
    }));

    // A screen share fills the first screen slot.
    let presenter = r.callers[4].id;
    let share = r
        .sim
        .sfu
        .publish(
            r.sim.now,
            presenter,
            TrackSpec {
                kind: TrackKind::Screen,
                mid: "s0".into(),
                ..camera_spec(900)
            },
        )
        .unwrap();
    assert_eq!(r.assigned(listener, slot(SlotKind::Screen, 0)), Some(share));
    assert_eq!(r.assigned(listener, slot(SlotKind::Screen, 1)), None);
    assert_eq!(r.sim.sfu.metrics().slot_reassignments.screen, 1);
}

#[test]
fn speaker_change_reassigns_audio_slot() {
    let mut r = SlotRoom::new(RoomPolicy::meeting(), 6);
    let (listener, layout) = r.join(10_000);
    r.run(400);
    let a3 = slot(SlotKind::Audio, 3);
    assert_eq!(r.assigned(listener, a3), Some(r.callers[3].audio));
    let before = r.sim.sfu.metrics().slot_reassignments.audio;

    // Caller 5 (not in any slot) starts to speak: it becomes the loudest, and the quietest of
    // the four (caller 3, last in the ranking) leaves its slot to it.
    r.callers[5].level = Some(10);
    let mark = r.mark();
    r.run(600);
    assert_eq!(r.assigned(listener, a3), Some(r.callers[5].audio));
    for (i, c) in r.callers.iter().take(3).enumerate() {
        assert_eq!(
            r.assigned(listener, slot(SlotKind::Audio, i as u8)),
            Some(c.audio),
            "the others keep their slots"
        );
    }
    assert_eq!(r.sim.sfu.metrics().slot_reassignments.audio, before + 1);
    let maps = r.slot_maps(mark, listener);
    assert_eq!(maps.len(), 1, "one change, one map");
    assert_eq!(maps[0].0, 2, "version counts up");
    assert!(r.log[mark..].iter().any(|(_, o)| matches!(
        o,
        Output::Event(Event::ActiveSpeakers { speakers, .. }) if speakers.first() == Some(&r.callers[5].id)
    )));

    // The slot's stream now carries caller 5, and caller 3 is heard no more.
    let rx = r.received_on(mark, listener, layout.audio[3].ssrc);
    let first_new = rx
        .iter()
        .position(|(_, p)| p.frame[1] == 5)
        .expect("caller 5 heard");
    assert!(rx[..first_new].iter().all(|(_, p)| p.frame[1] == 3));
    assert!(rx[first_new..].iter().all(|(_, p)| p.frame[1] == 5));
    assert!(rx.len() - first_new >= 10);
}

#[test]
fn last_n_change_reassigns_video_slot() {
    let mut r = SlotRoom::new(policy_with_last_n(2), 4);
    let (listener, layout) = r.join(10_000);
    r.run(200);
    let (v0, v1) = (slot(SlotKind::Video, 0), slot(SlotKind::Video, 1));
    assert_eq!(r.assigned(listener, v0), Some(r.callers[0].camera));
    assert_eq!(r.assigned(listener, v1), Some(r.callers[1].camera));

    // Caller 3 speaks: last-2 is now {3, 0}; caller 1's camera leaves, caller 3's takes v1.
    r.callers[3].level = Some(20);
    let mark = r.mark();
    r.run(600);
    assert_eq!(r.assigned(listener, v0), Some(r.callers[0].camera));
    assert_eq!(r.assigned(listener, v1), Some(r.callers[3].camera));
    assert_eq!(
        r.sim.sfu.metrics().slot_reassignments.video,
        3,
        "2 at join, 1 now"
    );
    let maps = r.slot_maps(mark, listener);
    assert_eq!(maps.len(), 1);
    assert!(
        r.log[mark..].iter().any(|(_, o)| matches!(
            o,
            Output::Event(Event::KeyframeRequested { publisher, .. }) if *publisher == r.callers[3].id
        )),
        "a keyframe is asked of the new source"
    );
    let rx = r.received_on(mark, listener, layout.video[1].ssrc);
    let first_new = rx
        .iter()
        .position(|(_, p)| p.frame[1] == 3)
        .expect("caller 3 seen");
    assert!(rx[first_new].1.keyframe_start());
    assert!(rx[first_new..].iter().all(|(_, p)| p.frame[1] == 3));
    assert_eq!(
        r.sim.sfu.slot_forwarding(listener, v1),
        Some(r.callers[3].camera)
    );
}

#[test]
fn publisher_leaving_frees_its_slot() {
    let mut r = SlotRoom::new(RoomPolicy::meeting(), 5);
    let (listener, layout) = r.join(10_000);
    r.run(200);
    let (a0, v0) = (slot(SlotKind::Audio, 0), slot(SlotKind::Video, 0));
    assert_eq!(r.assigned(listener, a0), Some(r.callers[0].audio));
    assert_eq!(r.assigned(listener, v0), Some(r.callers[0].camera));
    assert_eq!(r.sim.sfu.gauges().slots_occupied.video, 5);

    let leaver = r.callers.remove(0);
    r.sim.sfu.remove_participant(r.sim.now, leaver.id).unwrap();
    r.collect();
    // The audio slot goes to the fifth microphone, which had none (4 audio slots, 5 callers);
    // the video slot (25 of them, only 4 cameras left) stays empty.
    assert_eq!(r.assigned(listener, a0), Some(r.callers[3].audio));
    assert_eq!(r.assigned(listener, v0), None);
    let g = r.sim.sfu.gauges();
    assert_eq!((g.slots_occupied.audio, g.slots_occupied.video), (4, 4));
    let mark = r.mark();
    r.run(200);
    assert!(
        r.received_on(mark, listener, layout.video[0].ssrc)
            .is_empty()
    );
    let rx = r.received_on(mark, listener, layout.audio[0].ssrc);
    assert!(!rx.is_empty() && rx.iter().all(|(_, p)| p.frame[1] == 4));
}

#[test]
fn a_leave_that_only_empties_a_slot_announces_a_new_map() {
    // 25 video slots, 3 cameras: the leaver's video slot has no camera to take it, so the
    // assignment changes nothing; the listener must still learn its slot is empty.
    let mut r = SlotRoom::new(RoomPolicy::meeting(), 3);
    let (listener, _) = r.join(10_000);
    r.run(200);
    let v0 = slot(SlotKind::Video, 0);
    let leaver = r.callers.remove(0);
    assert_eq!(r.assigned(listener, v0), Some(leaver.camera));
    let before = r.slot_maps(0, listener).last().map(|(v, _)| *v).unwrap();
    let mark = r.mark();
    r.sim.sfu.remove_participant(r.sim.now, leaver.id).unwrap();
    r.collect();
    let maps = r.slot_maps(mark, listener);
    let (version, map) = maps.last().expect("a leave announces a new slot map");
    assert!(*version > before);
    assert!(
        map.iter()
            .all(|(_, t)| *t != Some(leaver.camera) && *t != Some(leaver.audio)),
        "the new map no longer names the leaver: {map:?}"
    );
    assert_eq!(
        map.iter().find(|(s, _)| *s == v0).map(|(_, t)| *t),
        Some(None)
    );
}

/// Checks one slot's stream: sequence numbers without gaps, timestamps moving forward by the
/// wall-clock time between packets (also at the switch), picture ids and TL0PICIDX one per frame.
fn assert_continuous(rx: &[(Instant, Received)], clock: f64) {
    for w in rx.windows(2) {
        let ((t0, a), (t1, b)) = (&w[0], &w[1]);
        assert_eq!(
            b.seq,
            a.seq.wrapping_add(1),
            "sequence numbers continue: {a:?} {b:?}"
        );
        let ticks = b.ts.wrapping_sub(a.ts) as i32;
        let wall = (t1.saturating_duration_since(*t0).as_secs_f64() * clock).round() as i32;
        assert!(ticks > 0, "timestamps move forward: {a:?} {b:?}");
        assert!(
            (ticks - wall).abs() <= 1,
            "timestamp advance {ticks} matches the {wall} ticks elapsed"
        );
        if let (Some(p0), Some(p1)) = (a.pid, b.pid) {
            assert_eq!(p1, (p0 + 1) % 32_768, "picture ids continue");
        }
        if let (Some(x), Some(y)) = (a.tl0, b.tl0) {
            assert_eq!(y, x.wrapping_add(1), "TL0PICIDX continues");
        }
    }
}

#[test]
fn seq_ts_picture_id_continuous_across_reassignment() {
    // One video slot and four audio slots for five callers: when caller 4 speaks, both the
    // video slot and an audio slot change source.
    let mut r = SlotRoom::new(policy_with_last_n(1), 5);
    let (listener, layout) = r.join(10_000);
    r.run(300);
    r.callers[4].level = Some(10);
    r.run(700);
    r.callers[4].level = None;
    r.callers[0].level = Some(10);
    r.run(1500);
    let video = r.received_on(0, listener, layout.video[0].ssrc);
    let sources: Vec<u8> = video.iter().map(|(_, p)| p.frame[1]).collect();
    let switches = sources.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, 2, "0 → 4 → 0: {sources:?}");
    assert_continuous(&video, 90_000.0);
    let audio = r.received_on(0, listener, layout.audio[3].ssrc);
    assert!(audio.windows(2).any(|w| w[0].1.frame[1] != w[1].1.frame[1]));
    assert_continuous(&audio, 48_000.0);
}

#[test]
fn video_switch_waits_for_keyframe_of_new_source() {
    let mut r = SlotRoom::new(policy_with_last_n(1), 3);
    let (listener, layout) = r.join(10_000);
    r.run(200);
    let v0 = slot(SlotKind::Video, 0);
    // Caller 1's camera ignores keyframe requests for now.
    r.callers[1].answers_pli = false;
    r.callers[1].level = Some(10);
    let mark = r.mark();
    r.run(1000);
    assert_eq!(
        r.assigned(listener, v0),
        Some(r.callers[1].camera),
        "assigned"
    );
    assert_eq!(
        r.sim.sfu.slot_forwarding(listener, v0),
        Some(r.callers[0].camera),
        "but the old source is forwarded until the new one's keyframe"
    );
    let rx = r.received_on(mark, listener, layout.video[0].ssrc);
    assert!(rx.len() >= 45, "the slot did not go dark");
    assert!(rx.iter().all(|(_, p)| p.frame[1] == 0));
    let requests = r.log[mark..]
        .iter()
        .filter(|(_, o)| {
            matches!(o, Output::Event(Event::KeyframeRequested { publisher, .. }) if *publisher == r.callers[1].id)
        })
        .count();
    assert!(requests >= 1, "a keyframe was requested of the new source");

    // Its keyframe arrives: the slot switches at it.
    r.callers[1].keyframe_due = true;
    let mark = r.mark();
    r.run(200);
    let rx = r.received_on(mark, listener, layout.video[0].ssrc);
    let first_new = rx
        .iter()
        .position(|(_, p)| p.frame[1] == 1)
        .expect("switched");
    assert!(rx[first_new].1.keyframe_start(), "starts at the keyframe");
    assert!(rx[first_new..].iter().all(|(_, p)| p.frame[1] == 1));
    assert_eq!(
        r.sim.sfu.slot_forwarding(listener, v0),
        Some(r.callers[1].camera)
    );
}

#[test]
fn nack_on_slot_served_from_the_right_source() {
    let mut r = SlotRoom::new(policy_with_last_n(1), 3);
    let (listener, layout) = r.join(10_000);
    r.run(200);
    r.callers[2].level = Some(10);
    r.run(400);
    let v0 = &layout.video[0];
    let rx = r.received_on(0, listener, v0.ssrc);
    let old = rx
        .iter()
        .rev()
        .find(|(_, p)| p.frame[1] == 0)
        .expect("caller 0 was in v0")
        .1
        .clone();
    let new = rx
        .iter()
        .rev()
        .find(|(_, p)| p.frame[1] == 2)
        .expect("caller 2 is in v0")
        .1
        .clone();

    let mut nack = Vec::new();
    rtcp::write_nack(&mut nack, 4242, v0.ssrc, &[old.seq, new.seq]);
    let mark = r.mark();
    r.sim.sfu.handle_rtcp(r.sim.now, listener, &nack).unwrap();
    r.collect();
    let rtx_ssrc = v0.rtx.expect("video slots negotiate RTX").ssrc;
    let resent = r.received_on(mark, listener, rtx_ssrc);
    assert_eq!(resent.len(), 2);
    for (orig, (_, re)) in [&old, &new].into_iter().zip(&resent) {
        assert!(re.retransmit);
        assert_eq!(re.pt, RTX_PT, "the slot's RTX payload type");
        assert_eq!(re.osn, Some(orig.seq));
        assert_eq!(
            re.frame, orig.frame,
            "the payload of the source that was in the slot"
        );
        assert_eq!((re.ts, re.pid, re.tl0), (orig.ts, orig.pid, orig.tl0));
    }
    assert_eq!(resent[0].1.frame[1], 0);
    assert_eq!(resent[1].1.frame[1], 2);
}

#[test]
fn join_and_leave_change_no_slot_layout() {
    let mut r = SlotRoom::new(RoomPolicy::meeting(), 3);
    let (first, first_layout) = r.join(10_000);
    let (second, second_layout) = r.join(20_000);
    r.run(200);
    let layouts = |r: &SlotRoom| {
        (
            r.sim.sfu.slot_layout(first).cloned(),
            r.sim.sfu.slot_layout(second).cloned(),
        )
    };
    let expected = (Some(first_layout.clone()), Some(second_layout.clone()));
    assert_eq!(layouts(&r), expected);

    // A join: nothing changes for anyone, not even the slot map.
    let mark = r.mark();
    let joiner = r
        .sim
        .sfu
        .add_participant(r.room, Role::Caller, EXT)
        .unwrap();
    r.collect();
    assert_eq!(layouts(&r), expected);
    assert!(r.slot_maps(mark, first).is_empty());
    assert!(r.slot_maps(mark, second).is_empty());

    // It publishes: the others' slot maps change (a `slots` message), their layouts do not.
    let audio = r
        .sim
        .sfu
        .publish(r.sim.now, joiner, audio_spec(150))
        .unwrap();
    let camera = r
        .sim
        .sfu
        .publish(r.sim.now, joiner, camera_spec(250))
        .unwrap();
    r.collect();
    assert_eq!(layouts(&r), expected);
    assert_eq!(r.assigned(first, slot(SlotKind::Audio, 3)), Some(audio));
    assert_eq!(r.assigned(first, slot(SlotKind::Video, 3)), Some(camera));
    assert!(!r.slot_maps(mark, first).is_empty());

    // The second subscriber leaves, then the joiner: the first's layout stays as it was.
    r.sim.sfu.remove_participant(r.sim.now, second).unwrap();
    r.sim.sfu.remove_participant(r.sim.now, joiner).unwrap();
    r.collect();
    assert_eq!(r.sim.sfu.slot_layout(first), Some(&first_layout));
    assert_eq!(r.assigned(first, slot(SlotKind::Audio, 3)), None);
    assert_eq!(r.assigned(first, slot(SlotKind::Video, 3)), None);
    let g = r.sim.sfu.gauges();
    assert_eq!(
        g.slots.total(),
        first_layout.len() as u64,
        "the leaver's slots are gone"
    );

    // Everything the first subscriber ever received came on its layout's SSRCs.
    r.run(200);
    let ssrcs: Vec<u32> = first_layout
        .slots()
        .flat_map(|(_, d)| std::iter::once(d.ssrc).chain(d.rtx.map(|x| x.ssrc)))
        .collect();
    let received: Vec<u32> = r
        .log
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Transmit(t) if t.to() == first => parse_transmit(t, Some(RTX_PT)),
            _ => None,
        })
        .map(|p| p.ssrc)
        .collect();
    assert!(!received.is_empty());
    assert!(received.iter().all(|s| ssrcs.contains(s)));
}
