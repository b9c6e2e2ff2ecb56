//! Simulcast layer switching: a subscriber changes layer only at a keyframe of the new layer,
//! and across switches its stream stays one continuous stream (sequence numbers, timestamps,
//! picture ids, TL0PICIDX). Layer choice follows the requested size and the bandwidth estimate
//! from transport-wide CC feedback.

use std::time::Duration;

use crate::common::*;
use proptest::prelude::*;
use sfu_forwarding::{Config, Event, Output, twcc};

fn config() -> Config {
    Config {
        initial_estimate_bps: 10_000_000,
        ..Config::default()
    }
}

/// Checks that a subscriber's received stream is continuous and switches only at keyframes.
fn assert_continuous(rx: &[Received], ssrc: u32) {
    for w in rx.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(b.ssrc, ssrc);
        assert_eq!(
            b.seq,
            a.seq.wrapping_add(1),
            "sequence gap between {a:?} and {b:?}"
        );
        let pid_step = b.pid.unwrap().wrapping_sub(a.pid.unwrap()) % 32768;
        let ts_step = b.ts.wrapping_sub(a.ts) as i32;
        if b.start {
            assert_eq!(pid_step, 1, "picture id must advance by one per frame");
            assert_eq!(
                b.tl0.unwrap(),
                a.tl0.unwrap().wrapping_add(1),
                "TL0PICIDX must advance by one per frame"
            );
            assert!(
                (1..=3000).contains(&ts_step),
                "timestamp step {ts_step} outside one frame interval"
            );
        } else {
            assert_eq!(pid_step, 0);
            assert_eq!(ts_step, 0);
            assert_eq!(b.layer(), a.layer(), "layer changed inside a frame");
        }
        if b.layer() != a.layer() {
            assert!(
                b.keyframe_start(),
                "switched to layer {} on a delta frame",
                b.layer()
            );
        }
        if b.layer() == a.layer() && b.start {
            assert_eq!(ts_step, 3000, "within a layer the source's spacing is kept");
        }
    }
}

#[test]
fn switches_only_at_keyframes_and_stream_stays_continuous() {
    let mut r = CameraRoom::new(config(), 1, false);
    let sub = r.subscribers[0];
    let mut rx = Vec::new();
    // Delta frames only: nothing is forwarded, the subscriber waits for a keyframe.
    for _ in 0..5 {
        let out = r.send_frame([false; 3]);
        assert!(received_by(&out, sub).is_empty());
    }
    // A keyframe on the top layer starts the stream there.
    let out = r.send_frame([false, false, true]);
    let got = received_by(&out, sub);
    assert_eq!(got.len(), 3);
    assert!(got[0].keyframe_start());
    assert!(got.iter().all(|p| p.layer() == 2));
    assert!(events(&out).contains(&Event::LayerChanged {
        subscriber: sub,
        track: r.track,
        from: None,
        to: 2
    }));
    rx.extend(got);

    // Ask for the lowest layer: a keyframe is requested from the publisher, and the subscriber
    // stays on layer 2 until layer 0's keyframe arrives.
    r.sim
        .sfu
        .set_max_layer(r.sim.now, sub, r.track, Some(0))
        .unwrap();
    let out = r.sim.drain();
    assert_eq!(rtcp_to(&out, r.publisher).len(), 1, "one PLI for layer 0");
    for _ in 0..4 {
        let got = received_by(&r.send_frame([false, true, false]), sub);
        assert!(
            got.iter().all(|p| p.layer() == 2),
            "no switch before layer 0's keyframe"
        );
        rx.extend(got);
    }
    let got = received_by(&r.send_frame([true, false, false]), sub);
    assert!(got.iter().all(|p| p.layer() == 0));
    assert!(got[0].keyframe_start());
    rx.extend(got);

    // Back up: layer 1's keyframe does not count, layer 2's does.
    r.sim
        .sfu
        .set_max_layer(r.sim.now, sub, r.track, None)
        .unwrap();
    for _ in 0..3 {
        rx.extend(received_by(&r.send_frame([false, true, false]), sub));
    }
    assert!(rx.last().unwrap().layer() == 0);
    let got = received_by(&r.send_frame([false, false, true]), sub);
    assert_eq!(got.last().unwrap().layer(), 2);
    rx.extend(got);
    for _ in 0..3 {
        rx.extend(received_by(&r.send_frame([false; 3]), sub));
    }
    assert_continuous(&rx, 10_000);
    assert_eq!(r.sim.sfu.metrics().layer_switches_down, 1);
    assert_eq!(r.sim.sfu.metrics().layer_switches_up, 1);
}

#[test]
fn requested_size_picks_the_smallest_layer_that_covers_it() {
    let mut r = CameraRoom::new(config(), 1, false);
    let sub = r.subscribers[0];
    r.sim
        .sfu
        .set_requested_size(r.sim.now, sub, r.track, 640, 300)
        .unwrap();
    r.send_frame([true; 3]);
    for _ in 0..20 {
        r.send_frame([false; 3]);
    }
    r.send_frame([true; 3]);
    assert_eq!(
        r.sim.sfu.subscription_layers(sub, r.track),
        Some((Some(1), Some(1)))
    );
    // Height 0 stops video.
    r.sim
        .sfu
        .set_requested_size(r.sim.now, sub, r.track, 0, 0)
        .unwrap();
    let got = received_by(&r.send_frame([true; 3]), sub);
    assert!(got.is_empty());
}

/// Transport-cc feedback for everything `sub` received in `out`, losing every `lose_every`-th
/// packet (0: none), arriving with `queue` extra delay.
fn feedback_for(rx: &[Received], now_us: i64, lose_every: usize) -> Option<Vec<u8>> {
    let seqs: Vec<u16> = rx.iter().filter_map(|p| p.transport_seq).collect();
    let (&first, &last) = (seqs.first()?, seqs.last()?);
    let n = usize::from(last.wrapping_sub(first)) + 1;
    let arrivals: Vec<Option<i64>> = (0..n)
        .map(|i| {
            (lose_every == 0 || !i.is_multiple_of(lose_every)).then_some(now_us + i as i64 * 100)
        })
        .collect();
    let mut buf = Vec::new();
    twcc::write_feedback(&mut buf, 77, 0, first, 0, &arrivals);
    Some(buf)
}

#[test]
fn congestion_feedback_moves_the_subscriber_down_and_recovery_back_up() {
    let mut r = CameraRoom::new(
        Config {
            initial_estimate_bps: 3_000_000,
            ..Config::default()
        },
        1,
        false,
    );
    let sub = r.subscribers[0];
    let mut all = Vec::new();
    let step = |r: &mut CameraRoom, frame: usize, lose_every: usize, all: &mut Vec<Output>| {
        let out = r.send_frame([frame.is_multiple_of(30); 3]);
        let rx = received_by(&out, sub);
        if let Some(fb) = feedback_for(&rx, frame as i64 * 33_333, lose_every) {
            r.sim.sfu.handle_rtcp(r.sim.now, sub, &fb).unwrap();
        }
        all.extend(out);
        all.extend(r.sim.drain());
    };
    for frame in 0..60 {
        step(&mut r, frame, 0, &mut all);
    }
    assert_eq!(
        r.sim.sfu.subscription_layers(sub, r.track),
        Some((Some(2), Some(2)))
    );
    // A third of the packets lost: the estimate collapses and the layer follows at the next
    // keyframe (every 30 frames here).
    for frame in 60..80 {
        step(&mut r, frame, 3, &mut all);
    }
    for frame in 80..100 {
        step(&mut r, frame, 0, &mut all);
    }
    let stats = r.sim.sfu.participant_stats(sub).unwrap();
    assert!(
        stats.estimate_bps < 500_000,
        "estimate {}",
        stats.estimate_bps
    );
    assert_eq!(
        r.sim.sfu.subscription_layers(sub, r.track),
        Some((Some(0), Some(0)))
    );
    assert!(r.sim.sfu.metrics().layer_switches_down >= 1);
    // Clean feedback: the estimate grows by 8 % per second and the top layer returns.
    for frame in 100..1300 {
        step(&mut r, frame, 0, &mut all);
    }
    assert_eq!(
        r.sim.sfu.subscription_layers(sub, r.track).unwrap().0,
        Some(2)
    );
    assert!(r.sim.sfu.metrics().layer_switches_up >= 1);
    let rx: Vec<Received> = received_by(&all, sub)
        .into_iter()
        .filter(|p| !p.retransmit)
        .collect();
    assert_continuous(&rx, 10_000);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any schedule of keyframes and layer caps gives a continuous stream that switches only at
    /// keyframes, and the subscriber ends up on its cap once that layer sends a keyframe.
    #[test]
    fn any_switch_schedule_keeps_the_stream_continuous(
        schedule in proptest::collection::vec(
            (proptest::array::uniform3(proptest::bool::weighted(0.15)),
             proptest::option::weighted(0.1, proptest::option::of(0u8..3))),
            10..80,
        )
    ) {
        let mut r = CameraRoom::new(config(), 2, false);
        let sub = r.subscribers[0];
        let mut rx = Vec::new();
        let mut cap = None;
        for (keyframes, change) in &schedule {
            if let Some(c) = change {
                cap = *c;
                r.sim.sfu.set_max_layer(r.sim.now, sub, r.track, cap).unwrap();
            }
            rx.extend(received_by(&r.send_frame(*keyframes), sub));
        }
        let want = cap.unwrap_or(2);
        rx.extend(received_by(&r.send_frame([false; 3]), sub));
        let mut keys = [false; 3];
        keys[usize::from(want)] = true;
        rx.extend(received_by(&r.send_frame(keys), sub));
        rx.extend(received_by(&r.send_frame([false; 3]), sub));
        assert_continuous(&rx, 10_000);
        prop_assert_eq!(rx.last().map(|p| p.layer()), Some(want));
    }
}

#[test]
fn late_packets_from_before_a_switch_are_not_forwarded() {
    let mut r = CameraRoom::new(config(), 1, false);
    let sub = r.subscribers[0];
    r.send_frame([false, false, true]);
    r.sim
        .sfu
        .set_max_layer(r.sim.now, sub, r.track, Some(0))
        .unwrap();
    // A layer-0 delta frame, held back, then the keyframe that switches, then the late frame.
    r.sim.advance(FRAME);
    let early = r.camera.frame([false; 3]);
    r.sim.advance(FRAME);
    for (_, p) in r.camera.frame([true, false, false]) {
        r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p).unwrap();
    }
    let switched = received_by(&r.sim.drain(), sub);
    assert!(switched.iter().all(|p| p.layer() == 0) && switched[0].keyframe_start());
    let before = r.sim.sfu.metrics().dropped.stale;
    for (layer, p) in early {
        if layer == 0 {
            r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p).unwrap();
        }
    }
    let out = r.sim.drain();
    assert!(received_by(&out, sub).is_empty());
    assert_eq!(r.sim.sfu.metrics().dropped.stale, before + 3);
    let _ = Duration::ZERO;
}
