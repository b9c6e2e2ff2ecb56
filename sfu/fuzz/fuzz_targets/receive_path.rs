//! The whole receive path: `handle_rtp` and `handle_rtcp` of a core with a meeting (a simulcast
//! camera, an audio track, subscribers with RTX) fed a sequence of packets cut from the input.
//!
//! Input layout: repeated records of `[selector, len_hi, len_lo, bytes...]`. The selector picks
//! RTP or RTCP, the sending participant, and how far virtual time advances (running timers).
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sfu_forwarding::{
    Codec, Config, DownstreamParams, ExtensionIds, LayerSpec, Role, RoomPolicy, RtxParams, Sfu,
    TrackKind, TrackSpec,
};

const EXT: ExtensionIds = ExtensionIds {
    mid: Some(1),
    rid: Some(2),
    repaired_rid: Some(3),
    audio_level: Some(4),
    transport_cc: Some(5),
};

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut sfu = Sfu::new(Config::default(), now, 0);
    let Ok(room) = sfu.create_room(RoomPolicy::meeting()) else {
        return;
    };
    let mut people = Vec::new();
    for _ in 0..3 {
        match sfu.add_participant(room, Role::Caller, EXT) {
            Ok(p) => people.push(p),
            Err(_) => return,
        }
    }
    let camera = TrackSpec {
        kind: TrackKind::Camera,
        codec: Codec::Vp8,
        mid: "1".into(),
        payload_type: 96,
        rtx_payload_type: Some(97),
        layers: ["q", "h", "f"]
            .iter()
            .enumerate()
            .map(|(i, rid)| LayerSpec {
                rid: Some((*rid).into()),
                ssrc: (i == 0).then_some(0x100),
                height: 180 << i,
                ..LayerSpec::default()
            })
            .collect(),
    };
    let audio = TrackSpec {
        kind: TrackKind::Audio,
        codec: Codec::Opus,
        mid: "0".into(),
        payload_type: 111,
        rtx_payload_type: None,
        layers: vec![LayerSpec {
            ssrc: Some(0x200),
            ..LayerSpec::default()
        }],
    };
    let (Ok(cam), Ok(mic)) = (
        sfu.publish(now, people[0], camera),
        sfu.publish(now, people[0], audio),
    ) else {
        return;
    };
    for (i, sub) in people[1..].iter().enumerate() {
        let base = 0x1000 + 16 * i as u32;
        let rtx = Some(RtxParams {
            ssrc: base + 1,
            payload_type: 97,
        });
        let down = |ssrc, payload_type, rtx| DownstreamParams {
            ssrc,
            payload_type,
            rtx,
            mid: None,
        };
        let _ = sfu.subscribe(now, *sub, cam, down(base, 96, rtx));
        let _ = sfu.subscribe(now, *sub, mic, down(base + 2, 111, None));
    }
    let mut rest = data;
    while let [selector, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let (packet, next) = tail.split_at(len);
        rest = next;
        let from = people[usize::from(selector & 0x03) % people.len()];
        now += Duration::from_millis(u64::from(selector >> 3));
        if sfu.poll_timeout().is_some_and(|t| t <= now) {
            sfu.handle_timeout(now);
        }
        if selector & 0x04 == 0 {
            let _ = sfu.handle_rtp(now, from, Bytes::copy_from_slice(packet));
        } else {
            let _ = sfu.handle_rtcp(now, from, packet);
        }
        while sfu.poll_output().is_some() {}
    }
});
