//! Benchmarks of the forwarding core (see the doc of `forward`).

//! Core cost per forwarded packet: one 1200-byte VP8 packet from a presenter fanned out to N
//! viewers, including draining the transmits; `forward_per_packet` with per-track
//! subscriptions, `forward_per_packet_slot` with each viewer's receive slot carrying it.
//! Criterion's throughput is set to N elements, so the reported time per element is the cost
//! per forwarded packet.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sfu_forwarding::{
    Codec, Config, DownstreamParams, ExtensionIds, LayerSpec, Output, ParticipantId, Role,
    RoomPolicy, RtxParams, Sfu, SlotLayout, TrackKind, TrackSpec,
};

const EXT: ExtensionIds = ExtensionIds {
    mid: Some(1),
    rid: Some(2),
    repaired_rid: Some(3),
    audio_level: Some(4),
    transport_cc: Some(5),
};

fn packet(seq: u16, ts: u32, pid: u16, keyframe: bool) -> Bytes {
    let mut b = vec![0x90, 96];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&0x1234u32.to_be_bytes());
    // One-byte extensions: transport-cc (id 5).
    b.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x51, (seq >> 8) as u8, seq as u8, 0]);
    // VP8 descriptor: X, S, I+L, 15-bit picture id, TL0PICIDX; then the frame tag.
    b.extend_from_slice(&[0x90, 0xC0, 0x80 | (pid >> 8) as u8, pid as u8, pid as u8]);
    b.push(if keyframe { 0x00 } else { 0x01 });
    b.resize(1200, 0xA5);
    Bytes::from(b)
}

struct Setup {
    sfu: Sfu,
    presenter: ParticipantId,
    now: Instant,
}

/// Makes the presenter's packets (outside the timed part: the shell's receive buffer).
#[derive(Default)]
struct Source {
    seq: u16,
    ts: u32,
    pid: u16,
}

impl Source {
    fn next(&mut self, keyframe: bool) -> Bytes {
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(45);
        self.pid = (self.pid + 1) % 32768;
        packet(self.seq, self.ts, self.pid, keyframe)
    }
}

/// How the viewers receive the presenter's camera.
#[derive(Clone, Copy)]
enum Delivery {
    /// A per-track subscription each (`Sfu::subscribe`).
    Subscription,
    /// A receive slot each (`Sfu::set_slot_layout`, one video slot), filled by the core.
    Slot,
}

fn setup(viewers: usize, source: &mut Source, delivery: Delivery) -> Setup {
    let now = Instant::now();
    let mut sfu = Sfu::new(Config::default(), now, 0);
    let room = sfu
        .create_room(RoomPolicy::broadcast())
        .expect("valid policy");
    let presenter = sfu
        .add_participant(room, Role::Presenter, EXT)
        .expect("room has space");
    let track = sfu
        .publish(
            now,
            presenter,
            TrackSpec {
                kind: TrackKind::Camera,
                codec: Codec::Vp8,
                mid: "v".into(),
                payload_type: 96,
                rtx_payload_type: None,
                layers: vec![LayerSpec {
                    ssrc: Some(0x1234),
                    height: 720,
                    ..LayerSpec::default()
                }],
            },
        )
        .expect("valid track");
    for i in 0..viewers {
        let v = sfu
            .add_participant(room, Role::Viewer, EXT)
            .expect("room has space");
        let ssrc = 10_000 + 2 * i as u32;
        let down = DownstreamParams {
            ssrc,
            payload_type: 96,
            rtx: Some(RtxParams {
                ssrc: ssrc + 1,
                payload_type: 97,
            }),
            mid: None,
        };
        match delivery {
            Delivery::Subscription => {
                sfu.subscribe(now, v, track, down).expect("can subscribe");
            }
            Delivery::Slot => {
                let layout = SlotLayout {
                    video: vec![down],
                    ..SlotLayout::default()
                };
                sfu.set_slot_layout(now, v, layout).expect("valid layout");
            }
        }
    }
    let mut s = Setup {
        sfu,
        presenter,
        now,
    };
    // Start every subscription with a keyframe.
    s.send(source.next(true));
    s
}

impl Setup {
    fn send(&mut self, p: Bytes) -> usize {
        self.now += Duration::from_micros(500);
        let sent = self
            .sfu
            .handle_rtp(self.now, self.presenter, p)
            .expect("valid packet");
        let mut n = 0;
        while let Some(o) = self.sfu.poll_output() {
            if let Output::Transmit(t) = o {
                n += t.len();
            }
        }
        std::hint::black_box(n);
        sent
    }
}

fn forward(c: &mut Criterion) {
    bench_group(
        c,
        "forward_per_packet",
        Delivery::Subscription,
        &[1, 10, 100, 500],
    );
    bench_group(c, "forward_per_packet_slot", Delivery::Slot, &[1, 100]);
}

fn bench_group(c: &mut Criterion, name: &str, delivery: Delivery, fan_outs: &[usize]) {
    let mut g = c.benchmark_group(name);
    for &fan_out in fan_outs {
        let mut source = Source::default();
        let mut s = setup(fan_out, &mut source, delivery);
        assert_eq!(
            s.send(source.next(false)),
            fan_out,
            "every viewer receives the packet"
        );
        g.throughput(Throughput::Elements(fan_out as u64));
        g.bench_with_input(BenchmarkId::from_parameter(fan_out), &fan_out, |b, _| {
            b.iter_batched(|| source.next(false), |p| s.send(p), BatchSize::SmallInput);
        });
    }
    g.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
