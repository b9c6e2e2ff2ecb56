//! PLI/FIR from subscribers are forwarded to the publisher of the layer the subscriber receives,
//! throttled per source: a flood reaches the publisher at most 5 times a second.

use std::time::Duration;

use crate::common::*;
use sfu_forwarding::{
    Config, Event,
    rtcp::{self, RtcpIter, RtcpPacket},
};

fn pli(media_ssrc: u32) -> Vec<u8> {
    let mut b = Vec::new();
    rtcp::write_pli(&mut b, 4242, media_ssrc);
    b
}

/// (PLI media SSRCs, FIR media SSRCs) in RTCP sent to the publisher.
fn requests(r: &mut CameraRoom) -> (Vec<u32>, Vec<u32>) {
    let out = r.sim.drain();
    let (mut plis, mut firs) = (Vec::new(), Vec::new());
    for p in rtcp_to(&out, r.publisher) {
        for packet in RtcpIter::new(&p) {
            match packet.expect("the core writes valid RTCP") {
                RtcpPacket::Pli { media_ssrc, .. } => plis.push(media_ssrc),
                RtcpPacket::Fir { entries, .. } => firs.extend(entries.map(|e| e.0)),
                _ => {}
            }
        }
    }
    (plis, firs)
}

#[test]
fn pli_flood_reaches_the_publisher_at_most_five_times_a_second() {
    let mut r = CameraRoom::new(Config::default(), 3, false);
    r.send_frame([true; 3]);
    r.send_frame([false; 3]);
    requests(&mut r);
    let sub = r.subscribers[0];
    let mut plis = Vec::new();
    let sent_before = r.sim.sfu.metrics().feedback.pli_sent;
    // 1000 PLIs over one second (one per millisecond), from one subscriber.
    let start = r.sim.now;
    for _ in 0..1000 {
        r.sim.now += Duration::from_millis(1);
        r.sim.sfu.handle_rtcp(r.sim.now, sub, &pli(10_000)).unwrap();
        plis.extend(requests(&mut r).0);
    }
    assert!(r.sim.now - start <= Duration::from_secs(1));
    assert_eq!(plis.len(), 5, "one per 200 ms");
    // Every PLI names the SSRC of the layer the subscriber receives (the top layer).
    assert!(plis.iter().all(|s| *s == r.camera.ssrcs[2]));
    assert_eq!(r.sim.sfu.metrics().feedback.pli_received, 1000);
    assert_eq!(r.sim.sfu.metrics().feedback.pli_sent - sent_before, 5);
}

#[test]
fn throttle_is_per_source_not_per_subscriber() {
    let mut r = CameraRoom::new(Config::default(), 3, false);
    let (a, b, c) = (r.subscribers[0], r.subscribers[1], r.subscribers[2]);
    r.sim
        .sfu
        .set_max_layer(r.sim.now, b, r.track, Some(0))
        .unwrap();
    r.send_frame([true; 3]);
    r.sim.advance(Duration::from_millis(300));
    requests(&mut r);
    // a and c receive layer 2, b layer 0: two sources, so two PLIs however many subscribers ask.
    for s in [(a, 10_000), (c, 10_020), (b, 10_010), (a, 10_000)] {
        r.sim.sfu.handle_rtcp(r.sim.now, s.0, &pli(s.1)).unwrap();
    }
    let (mut plis, _) = requests(&mut r);
    plis.sort_unstable();
    assert_eq!(plis, vec![r.camera.ssrcs[0], r.camera.ssrcs[2]]);
}

#[test]
fn fir_is_forwarded_as_fir_with_its_own_sequence() {
    let mut r = CameraRoom::new(Config::default(), 1, false);
    let sub = r.subscribers[0];
    r.send_frame([true; 3]);
    r.sim.advance(Duration::from_millis(300));
    requests(&mut r);
    let mut fir = Vec::new();
    rtcp::write_fir(&mut fir, 4242, 10_000, 9);
    r.sim.sfu.handle_rtcp(r.sim.now, sub, &fir).unwrap();
    let out = r.sim.drain();
    assert!(out.iter().any(|o| matches!(
        o,
        sfu_forwarding::Output::Event(Event::KeyframeRequested { layer: 2, .. })
    )));
    let mut firs = Vec::new();
    for p in rtcp_to(&out, r.publisher) {
        for packet in RtcpIter::new(&p).flatten() {
            if let RtcpPacket::Fir { entries, .. } = packet {
                firs.extend(entries);
            }
        }
    }
    assert_eq!(firs, vec![(r.camera.ssrcs[2], 1)]);
    assert_eq!(r.sim.sfu.metrics().feedback.fir_sent, 1);
}

#[test]
fn a_new_subscriber_triggers_a_keyframe_request() {
    let mut r = CameraRoom::new(Config::default(), 0, false);
    r.send_frame([true; 3]);
    r.sim.advance(Duration::from_millis(300));
    requests(&mut r);
    let s = r
        .sim
        .sfu
        .add_participant(r.room, sfu_forwarding::Role::Caller, EXT)
        .unwrap();
    r.sim
        .sfu
        .subscribe(r.sim.now, s, r.track, downstream(20_000, false))
        .unwrap();
    // The default 1 Mbit/s starting estimate affords layer 1 at the declared 150/500/1500
    // kbit/s layer rates, so the keyframe is asked on layer 1.
    let (plis, _) = requests(&mut r);
    assert_eq!(plis, vec![r.camera.ssrcs[1]]);
}
