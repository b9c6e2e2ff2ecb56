//! A bandwidth-limited simulcast publisher as Chromium is at the start of a call: it encodes
//! only its lowest layer, sends nothing but padding-only probe packets on its highest layer's
//! media SSRC, and answers a keyframe request only for a layer it encodes (libvpx ignores
//! requests for inactive streams). A subscriber joining after the first keyframe, or whose
//! tile is hidden for a moment, must still get the lowest layer: the SFU must neither target
//! nor request a keyframe on a layer that only carries padding.

use std::time::Duration;

use crate::common::*;
use bytes::Bytes;
use sfu_forwarding::{
    Config, Output, ParticipantId, Role, RoomPolicy, TrackId,
    rtcp::{RtcpIter, RtcpPacket},
};

/// Chromium limited by its start estimate: `low` only, probes on `high`.
struct LimitedCamera {
    camera: SimulcastCamera,
    /// The next `low` frame is a keyframe (the first one, or a request for `low` arrived).
    keyframe_due: bool,
    /// Sequence number of `high`'s padding-only packets.
    high_seq: u16,
    /// Keyframe requests that named `high`, which this encoder ignores.
    high_requests: usize,
}

impl LimitedCamera {
    fn new() -> Self {
        Self {
            camera: SimulcastCamera::new(5000),
            keyframe_due: true,
            high_seq: 9000,
            high_requests: 0,
        }
    }

    /// One `low` frame (plus, every 15th frame, a padding-only probe on `high`).
    fn frame(&mut self, n: usize) -> Vec<Bytes> {
        let key = std::mem::take(&mut self.keyframe_due);
        let mut out: Vec<Bytes> = self
            .camera
            .frame([key, false, false])
            .into_iter()
            .filter(|(layer, _)| *layer == 0)
            .map(|(_, p)| p)
            .collect();
        // The other layers' sequence numbers stay where they were: nothing was sent on them.
        if n.is_multiple_of(15) {
            out.push(padding_only(
                self.camera.ssrcs[2],
                self.high_seq,
                self.camera.ts,
            ));
            self.high_seq = self.high_seq.wrapping_add(1);
        }
        out
    }

    /// Reads the RTCP the SFU sent to the publisher: a PLI or FIR for `low` makes the next frame
    /// a keyframe, one for any other layer is ignored.
    fn on_rtcp(&mut self, outputs: &[Output], publisher: ParticipantId) {
        for p in rtcp_to(outputs, publisher) {
            for packet in RtcpIter::new(&p) {
                let ssrc = match packet.expect("the core writes valid RTCP") {
                    RtcpPacket::Pli { media_ssrc, .. } => media_ssrc,
                    RtcpPacket::Fir { mut entries, .. } => match entries.next() {
                        Some((ssrc, _)) => ssrc,
                        None => continue,
                    },
                    _ => continue,
                };
                if ssrc == self.camera.ssrcs[0] {
                    self.keyframe_due = true;
                } else {
                    self.high_requests += 1;
                }
            }
        }
    }
}

/// A padding-only RTP packet (RFC 3550 P bit, no payload), as Chromium probes with on a media
/// SSRC when RTX is not negotiated.
fn padding_only(ssrc: u32, seq: u16, ts: u32) -> Bytes {
    let mut padding = vec![0u8; 224];
    padding[223] = 224;
    let mut p = rtp(ssrc, VIDEO_PT, seq, ts, false, &[], &padding).to_vec();
    p[0] |= 0x20;
    Bytes::from(p)
}

struct Call {
    sim: Sim,
    alice: ParticipantId,
    bob: ParticipantId,
    track: TrackId,
    camera: LimitedCamera,
    frames: usize,
}

impl Call {
    /// Alice publishes alone for a second (her first keyframe goes to nobody), then Bob
    /// subscribes and shows her in a 1280×720 tile.
    fn new() -> Self {
        let mut sim = Sim::new(Config::default());
        let room = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
        let alice = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
        let bob = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
        let camera = LimitedCamera::new();
        let track = sim
            .sfu
            .publish(sim.now, alice, camera.camera.spec("0"))
            .unwrap();
        let mut call = Self {
            sim,
            alice,
            bob,
            track,
            camera,
            frames: 0,
        };
        call.run(Duration::from_secs(1));
        call.sim
            .sfu
            .subscribe(call.sim.now, bob, track, downstream(10_000, false))
            .unwrap();
        call.sim
            .sfu
            .set_requested_size(call.sim.now, bob, track, 1280, 720)
            .unwrap();
        call
    }

    /// Runs `d` of 30 fps media; returns the frames Bob received (packets ending a frame).
    fn run(&mut self, d: Duration) -> usize {
        let mut frames = 0;
        let end = self.sim.now + d;
        while self.sim.now < end {
            self.sim.advance(FRAME);
            self.frames += 1;
            for p in self.camera.frame(self.frames) {
                self.sim
                    .sfu
                    .handle_rtp(self.sim.now, self.alice, p)
                    .unwrap();
            }
            let out = self.sim.drain();
            self.camera.on_rtcp(&out, self.alice);
            frames += received_by(&out, self.bob)
                .iter()
                .filter(|r| r.marker)
                .count();
        }
        frames
    }
}

#[test]
fn a_late_subscriber_gets_the_only_layer_the_publisher_encodes() {
    let mut call = Call::new();
    // Within the first second the keyframe was asked for on `low` and arrived.
    let first = call.run(Duration::from_secs(1));
    let second = call.run(Duration::from_secs(2));
    assert!(first > 0, "Bob received no frame in the first second");
    assert!(
        second >= 58,
        "Bob received {second} of 60 frames in the next two seconds"
    );
    assert_eq!(
        call.sim.sfu.subscription_layers(call.bob, call.track),
        Some((Some(0), Some(0))),
        "only `low` carries media: it is the current and the target layer"
    );
    assert_eq!(
        call.camera.high_requests, 0,
        "a keyframe was requested on a layer that only sends padding"
    );
}

#[test]
fn video_resumes_after_the_tile_was_hidden() {
    let mut call = Call::new();
    call.run(Duration::from_secs(2));
    let (sfu, now) = (&mut call.sim.sfu, call.sim.now);
    sfu.set_requested_size(now, call.bob, call.track, 0, 0)
        .unwrap();
    assert_eq!(
        call.run(Duration::from_millis(300)),
        0,
        "hidden: nothing sent"
    );
    let (sfu, now) = (&mut call.sim.sfu, call.sim.now);
    sfu.set_requested_size(now, call.bob, call.track, 1280, 720)
        .unwrap();
    call.run(Duration::from_secs(1));
    let after = call.run(Duration::from_secs(1));
    assert!(
        after >= 29,
        "Bob received {after} of 30 frames a second after his tile came back"
    );
    assert_eq!(call.camera.high_requests, 0);
}

/// Chromium probes its uplink with padding-only RTX packets; its congestion controller grows the
/// estimate only if the probes are reported as received in transport-cc feedback. They are not
/// forwarded, but their arrival must be reported like any packet's.
#[test]
fn padding_only_rtx_probes_are_reported_in_transport_cc_feedback() {
    use sfu_forwarding::twcc;
    let mut r = CameraRoom::new(Config::default(), 1, false);
    r.sim.advance(Duration::from_millis(100));
    r.sim.drain();
    let media = |seq: u16| {
        rtp(
            5000,
            VIDEO_PT,
            100 + seq,
            1,
            false,
            &[(5, &seq.to_be_bytes())],
            &vp8_payload(1, 1, false, false, &[0, 0, 0]),
        )
    };
    let probe = |seq: u16| {
        let mut padding = vec![0u8; 200];
        padding[199] = 200;
        let twcc = seq.to_be_bytes();
        let exts: &[(u8, &[u8])] = &[(1, b"v0"), (3, b"q"), (5, &twcc)];
        let mut p = rtp(7000, RTX_PT, seq, 1, false, exts, &padding).to_vec();
        p[0] |= 0x20;
        Bytes::from(p)
    };
    r.sim
        .sfu
        .handle_rtp(r.sim.now, r.publisher, media(0))
        .unwrap();
    for seq in 1u16..=5 {
        r.sim.now += Duration::from_millis(2);
        assert_eq!(
            r.sim.sfu.handle_rtp(r.sim.now, r.publisher, probe(seq)),
            Ok(0),
            "a probe is not forwarded"
        );
    }
    r.sim
        .sfu
        .handle_rtp(r.sim.now, r.publisher, media(6))
        .unwrap();
    r.sim.advance(Duration::from_millis(100));
    let mut statuses = Vec::new();
    let mut reported = Vec::new();
    for p in rtcp_to(&r.sim.drain(), r.publisher) {
        for packet in RtcpIter::new(&p).flatten() {
            if let RtcpPacket::TransportCc { fci, .. } = packet {
                twcc::parse_feedback(fci, &mut statuses).expect("valid feedback");
                reported.extend(statuses.iter().map(|s| (s.seq, s.received_at_us.is_some())));
            }
        }
    }
    let expected: Vec<(u16, bool)> = (0u16..=6).map(|s| (s, true)).collect();
    assert_eq!(
        reported, expected,
        "(transport-wide seq, reported received)"
    );
}
