//! NACKs from a subscriber are answered from the bounded retransmission buffer: on the RTX
//! stream when negotiated (original sequence number first, same payload), otherwise on the
//! media stream; never for packets older than the age limit, evicted by newer ones, or already
//! resent too often.

use std::time::Duration;

use crate::common::*;
use sfu_forwarding::{Config, rtcp};

fn nack(media_ssrc: u32, lost: &[u16]) -> Vec<u8> {
    let mut b = Vec::new();
    rtcp::write_nack(&mut b, 4242, media_ssrc, lost);
    b
}

#[test]
fn nack_is_answered_on_rtx_with_the_original_packet() {
    let mut r = CameraRoom::new(Config::default(), 2, true);
    let (sub, other) = (r.subscribers[0], r.subscribers[1]);
    r.sim
        .sfu
        .set_max_layer(r.sim.now, sub, r.track, Some(0))
        .unwrap();
    let mut rx = received_by(&r.send_frame([true; 3]), sub);
    for _ in 0..5 {
        rx.extend(received_by(&r.send_frame([false; 3]), sub));
    }
    let lost = [rx[4].clone(), rx[9].clone()];
    r.sim
        .sfu
        .handle_rtcp(r.sim.now, sub, &nack(10_000, &[lost[0].seq, lost[1].seq]))
        .unwrap();
    let out = r.sim.drain();
    let resent = received_by(&out, sub);
    assert_eq!(resent.len(), 2);
    assert!(
        received_by(&out, other).is_empty(),
        "only the NACKing subscriber gets them"
    );
    for (orig, re) in lost.iter().zip(&resent) {
        assert!(re.retransmit);
        assert_eq!(re.ssrc, 10_001, "sent on the RTX SSRC");
        assert_eq!(re.pt, RTX_PT);
        assert_eq!(
            re.osn,
            Some(orig.seq),
            "RTX payload starts with the original seq"
        );
        assert_eq!(re.ts, orig.ts);
        assert_eq!(re.pid, orig.pid);
        assert_eq!(re.frame, orig.frame);
        assert_eq!(re.frame_len, orig.frame_len);
        assert_eq!(re.marker, orig.marker);
    }
    // RTX sequence numbers are their own continuous sequence.
    assert_eq!(resent[1].seq, resent[0].seq.wrapping_add(1));
    assert_eq!(r.sim.sfu.metrics().packets_retransmitted.video, 2);
    assert_eq!(r.sim.sfu.metrics().feedback.nack_received, 1);
}

#[test]
fn nack_without_rtx_resends_on_the_media_ssrc() {
    let mut r = CameraRoom::new(Config::default(), 1, false);
    let sub = r.subscribers[0];
    let mut rx = received_by(&r.send_frame([true; 3]), sub);
    rx.extend(received_by(&r.send_frame([false; 3]), sub));
    let target = rx.last().unwrap().clone();
    r.sim
        .sfu
        .handle_rtcp(r.sim.now, sub, &nack(10_000, &[target.seq]))
        .unwrap();
    let resent = received_by(&r.sim.drain(), sub);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].ssrc, 10_000);
    assert_eq!(resent[0].seq, target.seq);
    assert_eq!(resent[0].osn, None);
    assert_eq!(resent[0].frame, target.frame);
}

#[test]
fn retransmission_is_bounded_by_age() {
    let mut r = CameraRoom::new(Config::default(), 1, true);
    let sub = r.subscribers[0];
    let rx = received_by(&r.send_frame([true; 3]), sub);
    let seq = rx[0].seq;
    // Still within the 1 s age limit.
    r.sim.advance(Duration::from_millis(900));
    r.sim.drain();
    r.sim
        .sfu
        .handle_rtcp(r.sim.now, sub, &nack(10_000, &[seq]))
        .unwrap();
    assert_eq!(received_by(&r.sim.drain(), sub).len(), 1);
    // Past it.
    r.sim.advance(Duration::from_millis(200));
    r.sim.drain();
    let misses = r.sim.sfu.metrics().dropped.nack_miss;
    r.sim
        .sfu
        .handle_rtcp(r.sim.now, sub, &nack(10_000, &[seq]))
        .unwrap();
    assert!(received_by(&r.sim.drain(), sub).is_empty());
    assert_eq!(r.sim.sfu.metrics().dropped.nack_miss, misses + 1);
}

#[test]
fn retransmission_is_bounded_by_count() {
    let mut r = CameraRoom::new(
        Config {
            retransmit_buffer_packets: 64,
            retransmit_max_age: Duration::from_secs(60),
            ..Config::default()
        },
        1,
        true,
    );
    let sub = r.subscribers[0];
    r.sim
        .sfu
        .set_max_layer(r.sim.now, sub, r.track, Some(0))
        .unwrap();
    let mut rx = received_by(&r.send_frame([true; 3]), sub);
    // 3 packets per frame: 30 frames push 90 packets through a 64-packet buffer.
    for _ in 0..30 {
        rx.extend(received_by(&r.send_frame([false; 3]), sub));
    }
    let oldest = rx[0].seq;
    let newest = rx.last().unwrap().seq;
    let kept = rx[rx.len() - 64].seq;
    let evicted = rx[rx.len() - 65].seq;
    r.sim
        .sfu
        .handle_rtcp(
            r.sim.now,
            sub,
            &nack(10_000, &[oldest, evicted, kept, newest]),
        )
        .unwrap();
    let resent: Vec<u16> = received_by(&r.sim.drain(), sub)
        .iter()
        .filter_map(|p| p.osn)
        .collect();
    assert_eq!(resent, vec![kept, newest]);
    assert_eq!(r.sim.sfu.metrics().dropped.nack_miss, 2);
}

#[test]
fn one_packet_is_resent_at_most_three_times() {
    let mut r = CameraRoom::new(Config::default(), 1, true);
    let sub = r.subscribers[0];
    let seq = received_by(&r.send_frame([true; 3]), sub)[0].seq;
    let mut total = 0;
    for _ in 0..10 {
        r.sim
            .sfu
            .handle_rtcp(r.sim.now, sub, &nack(10_000, &[seq]))
            .unwrap();
        total += received_by(&r.sim.drain(), sub).len();
    }
    assert_eq!(total, 3);
}

#[test]
fn nack_for_a_stream_the_participant_does_not_receive_is_ignored() {
    let mut r = CameraRoom::new(Config::default(), 2, true);
    let (a, b) = (r.subscribers[0], r.subscribers[1]);
    let seq = received_by(&r.send_frame([true; 3]), a)[0].seq;
    // b names a's downstream SSRC: nothing is sent to anyone.
    r.sim
        .sfu
        .handle_rtcp(r.sim.now, b, &nack(10_000, &[seq]))
        .unwrap();
    let out = r.sim.drain();
    assert!(received_by(&out, a).is_empty());
    assert!(received_by(&out, b).is_empty());
}

#[test]
fn loss_on_the_publisher_uplink_is_nacked_upstream() {
    let mut r = CameraRoom::new(Config::default(), 1, true);
    r.send_frame([true; 3]);
    r.sim.advance(FRAME);
    // Layer 1 loses its second and third packets of this frame on the way in.
    let frame = r.camera.frame([false; 3]);
    let mut lost = Vec::new();
    for (i, (layer, p)) in frame.into_iter().enumerate() {
        if layer == 1 && (i == 4 || i == 5) {
            lost.push(u16::from_be_bytes([p[2], p[3]]));
            continue;
        }
        r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p).unwrap();
    }
    // The gap shows when layer 1's next packet arrives.
    let out = r.send_frame([false; 3]);
    let mut nacked = Vec::new();
    for packet in rtcp_to(&out, r.publisher) {
        for p in rtcp::RtcpIter::new(&packet).flatten() {
            if let rtcp::RtcpPacket::Nack {
                media_ssrc, lost, ..
            } = p
            {
                assert_eq!(media_ssrc, r.camera.ssrcs[1]);
                nacked.extend(lost);
            }
        }
    }
    assert_eq!(nacked, lost);
    assert_eq!(r.sim.sfu.metrics().feedback.nack_sent, 1);
}
