//! Active-speaker detection from the RFC 6464 audio level, loudest-N audio forwarding in large
//! rooms, last-N plus pinned camera forwarding, and the recorder exempt from both (it keeps every
//! voice and every camera).

use std::{collections::BTreeSet, time::Duration};

use crate::common::*;
use sfu_forwarding::{
    Codec, Config, Event, LayerSpec, ParticipantId, Role, RoomPolicy, TrackId, TrackKind, TrackSpec,
};

struct Caller {
    id: ParticipantId,
    audio: TrackId,
    camera: Option<TrackId>,
    seq: u16,
    /// Level in -dBov sent while "speaking"; `None` sends silence without the voice flag.
    level: Option<u8>,
}

struct Room {
    sim: Sim,
    room: sfu_forwarding::RoomId,
    callers: Vec<Caller>,
    listener: ParticipantId,
    /// Downstream SSRC → publisher index, for what the listener receives.
    ssrc_of: Vec<(u32, usize)>,
    /// Every RTP packet the listener received, with the virtual time it was sent.
    log: Vec<(std::time::Instant, Received)>,
}

impl Room {
    fn new(policy: RoomPolicy, n: usize, cameras: bool) -> Self {
        Self::with_listener(policy, n, cameras, Role::Caller)
    }

    /// `n` callers and a listener of `role` subscribed to every track.
    fn with_listener(policy: RoomPolicy, n: usize, cameras: bool, role: Role) -> Self {
        let mut sim = Sim::new(Config::default());
        let room = sim.sfu.create_room(policy).unwrap();
        let listener = sim.sfu.add_participant(room, role, EXT).unwrap();
        let mut callers = Vec::new();
        for i in 0..n {
            let id = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
            let audio = sim
                .sfu
                .publish(sim.now, id, audio_spec(100 + i as u32))
                .unwrap();
            let camera = cameras.then(|| {
                let spec = TrackSpec {
                    kind: TrackKind::Camera,
                    codec: Codec::Vp8,
                    mid: "v0".into(),
                    payload_type: VIDEO_PT,
                    rtx_payload_type: None,
                    layers: vec![LayerSpec {
                        ssrc: Some(200 + i as u32),
                        height: 360,
                        ..LayerSpec::default()
                    }],
                };
                sim.sfu.publish(sim.now, id, spec).unwrap()
            });
            callers.push(Caller {
                id,
                audio,
                camera,
                seq: 0,
                level: None,
            });
        }
        let mut ssrc_of = Vec::new();
        for (i, c) in callers.iter().enumerate() {
            let ssrc = 1000 + 10 * i as u32;
            sim.sfu
                .subscribe(sim.now, listener, c.audio, audio_downstream(ssrc))
                .unwrap();
            ssrc_of.push((ssrc, i));
            if let Some(cam) = c.camera {
                sim.sfu
                    .subscribe(sim.now, listener, cam, downstream(ssrc + 5, false))
                    .unwrap();
                ssrc_of.push((ssrc + 5, i));
            }
        }
        sim.drain();
        Self {
            sim,
            room,
            callers,
            listener,
            ssrc_of,
            log: Vec::new(),
        }
    }

    /// Runs `ms` milliseconds: every caller sends a 20 ms Opus packet, and a VP8 keyframe every
    /// 100 ms if it has a camera. Returns (publishers heard, publishers seen, events).
    fn run(&mut self, ms: u64) -> (BTreeSet<usize>, BTreeSet<usize>, Vec<Event>) {
        let (mut heard, mut seen, mut evs) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
        for step in 0..ms / 20 {
            self.sim.advance(Duration::from_millis(20));
            for (i, c) in self.callers.iter_mut().enumerate() {
                c.seq = c.seq.wrapping_add(1);
                let pkt = match c.level {
                    Some(l) => opus(100 + i as u32, c.seq, u32::from(c.seq) * 960, l, true),
                    None => opus(100 + i as u32, c.seq, u32::from(c.seq) * 960, 127, false),
                };
                self.sim.sfu.handle_rtp(self.sim.now, c.id, pkt).unwrap();
                if c.camera.is_some() && step.is_multiple_of(5) {
                    let payload = vp8_payload(c.seq, 0, true, true, &[0, 0, 0]);
                    let p = rtp(
                        200 + i as u32,
                        VIDEO_PT,
                        c.seq,
                        u32::from(c.seq) * 1800,
                        true,
                        &[],
                        &payload,
                    );
                    self.sim.sfu.handle_rtp(self.sim.now, c.id, p).unwrap();
                }
            }
            let out = self.sim.drain();
            for o in &out {
                if let sfu_forwarding::Output::Transmit(t) = o
                    && t.to() == self.listener
                    && let Some(p) = parse_transmit(t, None)
                {
                    let &(_, who) = self.ssrc_of.iter().find(|(s, _)| *s == p.ssrc).unwrap();
                    self.log.push((self.sim.now, p.clone()));
                    if p.pt == OPUS_PT {
                        heard.insert(who);
                    } else {
                        seen.insert(who);
                    }
                }
            }
            evs.extend(events(&out));
        }
        (heard, seen, evs)
    }

    fn speakers_event(&self, evs: &[Event]) -> Option<Vec<usize>> {
        evs.iter().rev().find_map(|e| match e {
            Event::ActiveSpeakers { speakers, .. } => Some(
                speakers
                    .iter()
                    .map(|p| self.callers.iter().position(|c| c.id == *p).unwrap())
                    .collect(),
            ),
            _ => None,
        })
    }
}

#[test]
fn active_speakers_are_announced_loudest_first() {
    let mut r = Room::new(RoomPolicy::meeting(), 4, false);
    r.callers[2].level = Some(20);
    r.callers[0].level = Some(45);
    let (_, _, evs) = r.run(1000);
    assert_eq!(r.speakers_event(&evs), Some(vec![2, 0]));
    // Caller 2 stops, caller 3 starts loud.
    r.callers[2].level = None;
    r.callers[3].level = Some(10);
    let (_, _, evs) = r.run(1000);
    assert_eq!(r.speakers_event(&evs), Some(vec![3, 0]));
    let ids: Vec<ParticipantId> = [3, 0].iter().map(|i| r.callers[*i].id).collect();
    assert_eq!(r.sim.sfu.active_speakers(r.room), Some(ids.as_slice()));
}

#[test]
fn large_room_forwards_only_the_loudest_three() {
    // 12 callers + the listener: above the threshold of 10.
    let mut r = Room::new(RoomPolicy::meeting(), 12, false);
    for (i, level) in [(1, 20), (4, 30), (7, 40), (9, 50)] {
        r.callers[i].level = Some(level);
    }
    r.run(1000);
    let (heard, _, _) = r.run(500);
    assert_eq!(heard, BTreeSet::from([1, 4, 7]));
    // The quietest speaker becomes the loudest: it replaces caller 7.
    r.callers[9].level = Some(5);
    r.callers[1].level = None;
    r.run(1000);
    let (heard, _, _) = r.run(500);
    assert_eq!(heard, BTreeSet::from([9, 4, 7]));
}

#[test]
fn small_room_forwards_every_audio_stream() {
    let mut r = Room::new(RoomPolicy::meeting(), 6, false);
    r.callers[0].level = Some(30);
    let (heard, _, _) = r.run(1000);
    assert_eq!(heard, (0..6).collect());
}

#[test]
fn resumed_audio_stream_stays_continuous() {
    let mut r = Room::new(RoomPolicy::meeting(), 12, false);
    for (i, level) in [(0, 20), (1, 30), (2, 40)] {
        r.callers[i].level = Some(level);
    }
    // Caller 3 is heard until the first evaluation, then paused by loudest-N.
    r.run(1000);
    let heard_before = r.log.iter().filter(|(_, p)| p.ssrc == 1030).count();
    assert!((1..=12).contains(&heard_before), "{heard_before}");
    // It starts speaking loudest and is resumed.
    r.callers[3].level = Some(5);
    r.callers[2].level = None;
    r.run(2000);
    let got: Vec<_> = r.log.iter().filter(|(_, p)| p.ssrc == 1030).collect();
    assert!(
        got.len() > heard_before + 50,
        "caller 3 is heard after it got loud"
    );
    let mut resumptions = 0;
    for w in got.windows(2) {
        let ((t0, a), (t1, b)) = (w[0], w[1]);
        assert_eq!(
            b.seq,
            a.seq.wrapping_add(1),
            "no sequence gap across the pause"
        );
        let elapsed_ticks = (*t1 - *t0).as_secs_f64() * 48_000.0;
        let step = b.ts.wrapping_sub(a.ts);
        if step != 960 {
            resumptions += 1;
            // Across the pause the timestamp advances by the time that passed.
            assert!(
                (f64::from(step) - elapsed_ticks).abs() <= 1.0,
                "{step} vs {elapsed_ticks}"
            );
        }
    }
    assert_eq!(resumptions, 1);
}

#[test]
fn cameras_follow_last_n_plus_pinned() {
    let policy = RoomPolicy {
        last_n: 2,
        ..RoomPolicy::meeting()
    };
    let mut r = Room::new(policy, 5, true);
    // Nobody has spoken: the first two joiners' cameras.
    let (_, seen, _) = r.run(500);
    assert_eq!(seen, BTreeSet::from([0, 1]));
    // Caller 4 speaks: it becomes the most recent speaker, caller 1 drops out.
    r.callers[4].level = Some(20);
    r.run(600);
    let (_, seen, _) = r.run(400);
    assert_eq!(seen, BTreeSet::from([4, 0]));
    // Pinning caller 3 adds it on top of last-N.
    let cam3 = r.callers[3].camera.unwrap();
    r.sim
        .sfu
        .set_pinned(r.sim.now, r.listener, cam3, true)
        .unwrap();
    let (_, seen, _) = r.run(400);
    assert_eq!(seen, BTreeSet::from([4, 0, 3]));
    assert_eq!(
        r.sim
            .sfu
            .is_forwarding(r.listener, r.callers[1].camera.unwrap()),
        Some(false)
    );
}

#[test]
fn recorder_hears_every_voice_in_a_large_room() {
    // The room of `large_room_forwards_only_the_loudest_three`, listened to by the recorder.
    let mut r = Room::with_listener(RoomPolicy::meeting(), 12, false, Role::Recorder);
    for (i, level) in [(1, 20), (4, 30), (7, 40), (9, 50)] {
        r.callers[i].level = Some(level);
    }
    r.run(1000);
    let (heard, _, _) = r.run(500);
    assert_eq!(heard, (0..12).collect(), "every voice, silent ones too");
    // Loudest-N re-ranks: still every voice, and no stream was ever paused (no gap).
    r.callers[9].level = Some(5);
    r.callers[1].level = None;
    r.run(1000);
    let (heard, _, _) = r.run(500);
    assert_eq!(heard, (0..12).collect());
    for i in 0..12u32 {
        let seqs: Vec<u16> = r
            .log
            .iter()
            .filter(|(_, p)| p.ssrc == 1000 + 10 * i)
            .map(|(_, p)| p.seq)
            .collect();
        assert_eq!(seqs.len(), 150, "caller {i}: every 20 ms packet of 3 s");
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "caller {i}: no gap"
        );
    }
}

#[test]
fn recorder_sees_every_camera_beyond_last_n() {
    let policy = RoomPolicy {
        last_n: 2,
        ..RoomPolicy::meeting()
    };
    let mut r = Room::with_listener(policy, 5, true, Role::Recorder);
    let (_, seen, _) = r.run(500);
    assert_eq!(seen, (0..5).collect());
    r.callers[4].level = Some(20);
    r.run(600);
    let (_, seen, _) = r.run(400);
    assert_eq!(seen, (0..5).collect(), "a speaker change pauses no camera");
}

#[test]
fn recorder_gets_the_top_layer_whatever_the_estimate() {
    // An estimate far below the top layer's cost: a caller gets the lowest layer, the recorder
    // the layer it asked for.
    let mut r = CameraRoom::new(
        Config {
            initial_estimate_bps: 100_000,
            ..Config::default()
        },
        1,
        false,
    );
    let caller = r.subscribers[0];
    let recorder = r
        .sim
        .sfu
        .add_participant(r.room, Role::Recorder, EXT)
        .unwrap();
    r.sim
        .sfu
        .subscribe(r.sim.now, recorder, r.track, downstream(20_000, false))
        .unwrap();
    r.sim.drain();
    // One keyframe on every layer, then both ask for 720p (which allocates again, now that the
    // layers are live): the layers' costs are still their announced maximum bitrates (no rate
    // measured yet), 150 kbit/s to 1.5 Mbit/s.
    r.send_frame([true; 3]);
    for who in [caller, recorder] {
        r.sim
            .sfu
            .set_requested_size(r.sim.now, who, r.track, 1280, 720)
            .unwrap();
    }
    r.send_frame([true; 3]);
    assert_eq!(
        r.sim.sfu.subscription_layers(caller, r.track),
        Some((Some(0), Some(0)))
    );
    assert_eq!(
        r.sim.sfu.subscription_layers(recorder, r.track),
        Some((Some(2), Some(2)))
    );
}
