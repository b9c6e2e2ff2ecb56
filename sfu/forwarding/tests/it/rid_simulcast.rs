//! RID-based simulcast as browsers send it: SSRCs not in the SDP are bound from the mid and rid
//! header extensions of their first packets; RTX from the publisher (repaired-rid) is unwrapped
//! and fills the gap it repairs.

use crate::common::*;
use sfu_forwarding::{
    Codec, Config, LayerSpec, PacketError, Role, RoomPolicy, TrackKind, TrackSpec,
};

#[test]
fn ssrcs_are_learned_from_mid_and_rid_and_rtx_is_unwrapped() {
    let mut sim = Sim::new(Config::default());
    let room = sim.sfu.create_room(RoomPolicy::meeting()).unwrap();
    let publisher = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
    let sub = sim.sfu.add_participant(room, Role::Caller, EXT).unwrap();
    let spec = TrackSpec {
        kind: TrackKind::Camera,
        codec: Codec::Vp8,
        mid: "1".into(),
        payload_type: VIDEO_PT,
        rtx_payload_type: Some(RTX_PT),
        layers: ["q", "h", "f"]
            .iter()
            .map(|rid| LayerSpec {
                rid: Some((*rid).into()),
                height: 720,
                ..LayerSpec::default()
            })
            .collect(),
    };
    let track = sim.sfu.publish(sim.now, publisher, spec).unwrap();
    sim.sfu
        .subscribe(sim.now, sub, track, downstream(10_000, false))
        .unwrap();
    sim.sfu.set_max_layer(sim.now, sub, track, Some(0)).unwrap();
    // Without mid/rid an unknown SSRC cannot be placed.
    let stray = rtp(
        0xABC,
        VIDEO_PT,
        1,
        1,
        true,
        &[],
        &vp8_payload(1, 1, true, true, &[0, 0, 0]),
    );
    assert_eq!(
        sim.sfu.handle_rtp(sim.now, publisher, stray),
        Err(PacketError::UnknownSsrc)
    );
    // First packet with mid "1" and rid "q" binds SSRC 0xAAA to layer 0.
    let exts: &[(u8, &[u8])] = &[(1, b"1"), (2, b"q")];
    let kf = rtp(
        0xAAA,
        VIDEO_PT,
        100,
        9000,
        true,
        exts,
        &vp8_payload(1, 1, true, true, &[0, 0, 0]),
    );
    assert_eq!(sim.sfu.handle_rtp(sim.now, publisher, kf), Ok(1));
    // Later packets without extensions are recognised by SSRC. Packet 101 is lost upstream.
    sim.advance(FRAME);
    for seq in [102u16, 103] {
        let p = rtp(
            0xAAA,
            VIDEO_PT,
            seq,
            12000,
            seq == 103,
            &[],
            &vp8_payload(2, 2, seq == 102, false, &[0, 0, 0]),
        );
        assert_eq!(sim.sfu.handle_rtp(sim.now, publisher, p), Ok(1));
    }
    // The publisher repairs 101 on its RTX stream (repaired-rid "q", original seq in front).
    let mut rtx_payload = 101u16.to_be_bytes().to_vec();
    rtx_payload.extend(vp8_payload(1, 1, false, true, &[7, 7, 7]));
    let rtx = rtp(
        0xBBB,
        RTX_PT,
        5,
        9000,
        false,
        &[(1, b"1"), (3, b"q")],
        &rtx_payload,
    );
    assert_eq!(sim.sfu.handle_rtp(sim.now, publisher, rtx), Ok(1));
    let rx = received_by(&sim.drain(), sub);
    let seqs: Vec<u16> = rx.iter().map(|p| p.seq).collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        vec![first, first + 2, first + 3, first + 1],
        "the repaired packet fills its gap"
    );
    assert_eq!(rx[3].frame, [0, 7, 7]);
    assert_eq!(rx[3].ts, rx[0].ts);
    // Padding-only RTX (a browser's bandwidth probe) is accepted and goes nowhere.
    let mut probe = rtp(0xBBB, RTX_PT, 6, 9000, false, &[], &[0; 255]).to_vec();
    probe[0] |= 0x20;
    *probe.last_mut().unwrap() = 255;
    let malformed = sim.sfu.metrics().dropped.malformed;
    assert_eq!(sim.sfu.handle_rtp(sim.now, publisher, probe.into()), Ok(0));
    assert_eq!(sim.sfu.metrics().dropped.malformed, malformed);
    // A second SSRC claiming an already bound rid is refused.
    let dup = rtp(
        0xCCC,
        VIDEO_PT,
        1,
        1,
        true,
        exts,
        &vp8_payload(1, 1, true, true, &[0, 0, 0]),
    );
    assert_eq!(
        sim.sfu.handle_rtp(sim.now, publisher, dup),
        Err(PacketError::UnknownSsrc)
    );
}
