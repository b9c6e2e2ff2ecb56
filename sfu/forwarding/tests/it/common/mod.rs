//! Shared test harness: the core on virtual time, real RTP/RTCP packets built byte by byte, and
//! helpers to read back what the core sent.

use std::time::{Duration, Instant};

use bytes::Bytes;
use sfu_forwarding::{
    Codec, Config, DownstreamParams, Event, ExtensionIds, LayerSpec, Output, ParticipantId, Role,
    RoomId, RoomPolicy, RtxParams, Sfu, TrackId, TrackKind, TrackSpec, Transmit, rtp::RtpPacket,
    vp8::Vp8Descriptor,
};

pub(crate) const EXT: ExtensionIds = ExtensionIds {
    mid: Some(1),
    rid: Some(2),
    repaired_rid: Some(3),
    audio_level: Some(4),
    transport_cc: Some(5),
};

pub(crate) const VIDEO_PT: u8 = 96;
pub(crate) const RTX_PT: u8 = 97;
pub(crate) const OPUS_PT: u8 = 111;
/// 30 frames per second.
pub(crate) const FRAME: Duration = Duration::from_nanos(33_333_333);

pub(crate) struct Sim {
    pub(crate) sfu: Sfu,
    pub(crate) now: Instant,
}

impl Sim {
    pub(crate) fn new(config: Config) -> Self {
        let now = Instant::now();
        Self {
            sfu: Sfu::new(config, now, 0xE000_0000_0000_0000),
            now,
        }
    }

    /// Moves virtual time forward and runs due timers.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
            self.sfu.handle_timeout(self.now);
        }
    }

    pub(crate) fn drain(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.sfu.poll_output()).collect()
    }
}

/// An RTP packet with one-byte header extensions.
pub(crate) fn rtp(
    ssrc: u32,
    pt: u8,
    seq: u16,
    ts: u32,
    marker: bool,
    exts: &[(u8, &[u8])],
    payload: &[u8],
) -> Bytes {
    let mut b = vec![
        0x80 | if exts.is_empty() { 0 } else { 0x10 },
        pt | if marker { 0x80 } else { 0 },
    ];
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    if !exts.is_empty() {
        let mut block = Vec::new();
        for (id, v) in exts {
            block.push(id << 4 | (v.len() as u8 - 1));
            block.extend_from_slice(v);
        }
        while !block.len().is_multiple_of(4) {
            block.push(0);
        }
        b.extend_from_slice(&[0xBE, 0xDE]);
        b.extend_from_slice(&((block.len() / 4) as u16).to_be_bytes());
        b.extend_from_slice(&block);
    }
    b.extend_from_slice(payload);
    Bytes::from(b)
}

/// A VP8 payload: descriptor with 15-bit picture id and TL0PICIDX, then the frame bytes whose
/// first byte is the frame tag (clear prefix), then `tag` bytes that identify the packet.
pub(crate) fn vp8_payload(pid: u16, tl0: u8, start: bool, keyframe: bool, body: &[u8]) -> Vec<u8> {
    let mut p = vec![
        0x80 | if start { 0x10 } else { 0 },
        0xC0,
        0x80 | (pid >> 8) as u8,
        pid as u8,
        tl0,
    ];
    p.push(if keyframe { 0x00 } else { 0x01 });
    p.extend_from_slice(body);
    p
}

/// A publisher of a three-layer VP8 camera, each layer on its own SSRC.
pub(crate) struct SimulcastCamera {
    pub(crate) ssrcs: [u32; 3],
    pub(crate) seq: [u16; 3],
    pub(crate) pid: [u16; 3],
    pub(crate) tl0: [u8; 3],
    pub(crate) ts: u32,
    pub(crate) packets_per_frame: usize,
    /// Filler bytes per packet per layer, for realistic bitrates (about 150, 500, 860 kbit/s).
    pub(crate) filler: [usize; 3],
}

impl SimulcastCamera {
    pub(crate) fn new(base_ssrc: u32) -> Self {
        Self {
            ssrcs: [base_ssrc, base_ssrc + 1, base_ssrc + 2],
            // Different starting points per layer, as real encoders have.
            seq: [100, 30_000, 65_500],
            pid: [7, 20_000, 32_760],
            tl0: [0, 100, 250],
            ts: 0xFFFF_0000,
            packets_per_frame: 3,
            filler: [200, 690, 1190],
        }
    }

    pub(crate) fn spec(&self, mid: &str) -> TrackSpec {
        TrackSpec {
            kind: TrackKind::Camera,
            codec: Codec::Vp8,
            mid: mid.into(),
            payload_type: VIDEO_PT,
            rtx_payload_type: Some(RTX_PT),
            layers: (0..3)
                .map(|i| LayerSpec {
                    rid: Some(["q", "h", "f"][i].into()),
                    ssrc: Some(self.ssrcs[i]),
                    rtx_ssrc: None,
                    width: [320, 640, 1280][i],
                    height: [180, 360, 720][i],
                    max_bitrate_bps: [150_000, 500_000, 1_500_000][i],
                })
                .collect(),
        }
    }

    /// One frame on every layer; `keyframe[i]` makes layer i's frame a keyframe.
    pub(crate) fn frame(&mut self, keyframe: [bool; 3]) -> Vec<(usize, Bytes)> {
        let mut out = Vec::new();
        for (layer, &key) in keyframe.iter().enumerate() {
            for i in 0..self.packets_per_frame {
                let seq = self.seq[layer];
                let mut body = vec![layer as u8, (seq >> 8) as u8, seq as u8];
                body.resize(3 + self.filler[layer], 0xAB);
                let payload = vp8_payload(self.pid[layer], self.tl0[layer], i == 0, key, &body);
                out.push((
                    layer,
                    rtp(
                        self.ssrcs[layer],
                        VIDEO_PT,
                        seq,
                        self.ts,
                        i + 1 == self.packets_per_frame,
                        &[],
                        &payload,
                    ),
                ));
                self.seq[layer] = seq.wrapping_add(1);
            }
            self.pid[layer] = (self.pid[layer] + 1) % 32768;
            self.tl0[layer] = self.tl0[layer].wrapping_add(1);
        }
        self.ts = self.ts.wrapping_add(3000);
        out
    }
}

/// What a subscriber received in one RTP transmit, parsed back from the bytes.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) retransmit: bool,
    pub(crate) ssrc: u32,
    pub(crate) pt: u8,
    pub(crate) seq: u16,
    pub(crate) ts: u32,
    pub(crate) marker: bool,
    pub(crate) transport_seq: Option<u16>,
    pub(crate) pid: Option<u16>,
    pub(crate) tl0: Option<u8>,
    pub(crate) start: bool,
    /// The first bytes of the frame after the VP8 descriptor (or of the audio payload).
    pub(crate) frame: [u8; 3],
    /// The whole payload after the descriptor.
    pub(crate) frame_len: usize,
    /// For RTX: the original sequence number.
    pub(crate) osn: Option<u16>,
}

impl Received {
    /// Source layer recorded in the test frame body.
    pub(crate) fn layer(&self) -> u8 {
        self.frame[1]
    }

    pub(crate) fn keyframe_start(&self) -> bool {
        self.start && self.frame[0] & 1 == 0
    }
}

pub(crate) fn parse_transmit(t: &Transmit, rtx_pt: Option<u8>) -> Option<Received> {
    let Transmit::Rtp { retransmit, .. } = t else {
        return None;
    };
    let mut bytes = Vec::new();
    t.write_to(&mut bytes);
    let p = RtpPacket::parse(&bytes).expect("the core writes valid RTP");
    let ext = sfu_forwarding::rtp::Extensions::parse(p.extension, &EXT).expect("valid extensions");
    let mut payload = p.payload();
    let mut osn = None;
    if Some(p.payload_type) == rtx_pt {
        osn = Some(u16::from_be_bytes([payload[0], payload[1]]));
        payload = &payload[2..];
    }
    let (pid, tl0, start, frame) = if p.payload_type == OPUS_PT {
        (None, None, true, payload)
    } else {
        let d = Vp8Descriptor::parse(payload).expect("the core writes valid descriptors");
        (
            d.picture_id.map(|p| p.value),
            d.tl0_pic_idx,
            d.start_of_partition,
            &payload[usize::from(d.len)..],
        )
    };
    Some(Received {
        retransmit: *retransmit,
        ssrc: p.ssrc,
        pt: p.payload_type,
        seq: p.sequence_number,
        ts: p.timestamp,
        marker: p.marker,
        transport_seq: ext.transport_cc,
        pid,
        tl0,
        start,
        frame: [0, 1, 2].map(|i| frame.get(i).copied().unwrap_or(0)),
        frame_len: frame.len(),
        osn,
    })
}

/// RTP transmits to `to`, parsed.
pub(crate) fn received_by(outputs: &[Output], to: ParticipantId) -> Vec<Received> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(t) if t.to() == to => parse_transmit(t, Some(RTX_PT)),
            _ => None,
        })
        .collect()
}

/// RTCP transmits to `to`.
pub(crate) fn rtcp_to(outputs: &[Output], to: ParticipantId) -> Vec<Bytes> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(Transmit::Rtcp { to: t, packet }) if *t == to => Some(packet.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn events(outputs: &[Output]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

pub(crate) fn downstream(ssrc: u32, rtx: bool) -> DownstreamParams {
    DownstreamParams {
        ssrc,
        payload_type: VIDEO_PT,
        rtx: rtx.then_some(RtxParams {
            ssrc: ssrc + 1,
            payload_type: RTX_PT,
        }),
        mid: Some("v0".into()),
    }
}

pub(crate) fn audio_downstream(ssrc: u32) -> DownstreamParams {
    DownstreamParams {
        ssrc,
        payload_type: OPUS_PT,
        rtx: None,
        mid: None,
    }
}

pub(crate) fn audio_spec(ssrc: u32) -> TrackSpec {
    TrackSpec {
        kind: TrackKind::Audio,
        codec: Codec::Opus,
        mid: "a0".into(),
        payload_type: OPUS_PT,
        rtx_payload_type: None,
        layers: vec![LayerSpec {
            ssrc: Some(ssrc),
            ..LayerSpec::default()
        }],
    }
}

/// An Opus packet with an audio level (-dBov) and the voice flag.
pub(crate) fn opus(ssrc: u32, seq: u16, ts: u32, level: u8, voice: bool) -> Bytes {
    let v = [u8::from(voice) << 7 | level];
    rtp(
        ssrc,
        OPUS_PT,
        seq,
        ts,
        false,
        &[(4, &v)],
        &[0xFC, 1, 2, 3, 4, 5],
    )
}

/// A meeting with one camera publisher and `n` subscribers subscribed to its camera.
pub(crate) struct CameraRoom {
    pub(crate) sim: Sim,
    pub(crate) room: RoomId,
    pub(crate) publisher: ParticipantId,
    pub(crate) track: TrackId,
    pub(crate) camera: SimulcastCamera,
    pub(crate) subscribers: Vec<ParticipantId>,
}

impl CameraRoom {
    pub(crate) fn new(config: Config, n: usize, rtx: bool) -> Self {
        let mut sim = Sim::new(config);
        let room = sim
            .sfu
            .create_room(RoomPolicy::meeting())
            .expect("valid policy");
        let publisher = sim
            .sfu
            .add_participant(room, Role::Caller, EXT)
            .expect("room has space");
        let camera = SimulcastCamera::new(5000);
        let track = sim
            .sfu
            .publish(sim.now, publisher, camera.spec("v0"))
            .expect("valid camera");
        let mut subscribers = Vec::new();
        for i in 0..n {
            let s = sim
                .sfu
                .add_participant(room, Role::Caller, EXT)
                .expect("room has space");
            sim.sfu
                .subscribe(sim.now, s, track, downstream(10_000 + 10 * i as u32, rtx))
                .expect("can subscribe");
            subscribers.push(s);
        }
        sim.drain();
        Self {
            sim,
            room,
            publisher,
            track,
            camera,
            subscribers,
        }
    }

    /// Sends one frame on every layer (after advancing one frame interval) and returns the
    /// outputs it caused.
    pub(crate) fn send_frame(&mut self, keyframe: [bool; 3]) -> Vec<Output> {
        self.sim.advance(FRAME);
        for (_, p) in self.camera.frame(keyframe) {
            self.sim
                .sfu
                .handle_rtp(self.sim.now, self.publisher, p)
                .expect("valid media");
        }
        self.sim.drain()
    }
}
