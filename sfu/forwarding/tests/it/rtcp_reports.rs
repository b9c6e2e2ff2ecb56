//! RTCP sender and receiver reports: RRs to publishers from the SFU's own reception statistics,
//! SRs to subscribers (translated from the publisher's SR when there is one), and RTT and loss
//! from the subscribers' RRs.

use std::time::Duration;

use crate::common::*;
use sfu_forwarding::{
    Config, Direction, Event, MediaKind,
    rtcp::{self, ReportBlock, RtcpIter, RtcpPacket, SenderInfo},
};

fn packets(bytes: &[bytes::Bytes]) -> Vec<RtcpPacket<'_>> {
    bytes
        .iter()
        .flat_map(|b| RtcpIter::new(b).map(|p| p.expect("the core writes valid RTCP")))
        .collect()
}

#[test]
fn publisher_gets_receiver_reports_with_its_loss() {
    let mut r = CameraRoom::new(Config::default(), 1, false);
    let mut out = Vec::new();
    // 1.2 s of frames, with every 10th packet of layer 0 lost on the way.
    let mut n = 0u32;
    for _ in 0..36 {
        r.sim.advance(FRAME);
        for (layer, p) in r.camera.frame([false; 3]) {
            n += 1;
            if layer == 0 && n.is_multiple_of(10) {
                continue;
            }
            r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p).unwrap();
        }
        out.extend(r.sim.drain());
    }
    let rtcp = rtcp_to(&out, r.publisher);
    let blocks: Vec<ReportBlock> = packets(&rtcp)
        .into_iter()
        .filter_map(|p| match p {
            RtcpPacket::ReceiverReport { reports, .. } => Some(reports.collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(
        blocks.len(),
        3,
        "one block per layer after one report interval"
    );
    let l0 = blocks.iter().find(|b| b.ssrc == r.camera.ssrcs[0]).unwrap();
    let l2 = blocks.iter().find(|b| b.ssrc == r.camera.ssrcs[2]).unwrap();
    assert!(l0.cumulative_lost > 0 && l0.fraction_lost > 0, "{l0:?}");
    assert_eq!(l2.cumulative_lost, 0);
    assert_eq!(l2.fraction_lost, 0);
    let loss_events: Vec<f64> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            Event::QualityReport {
                direction: Direction::Publisher,
                kind: MediaKind::Video,
                fraction_lost,
                ..
            } => Some(fraction_lost),
            _ => None,
        })
        .collect();
    assert_eq!(loss_events.len(), 3);
    assert!(
        loss_events.iter().any(|f| (0.05..0.2).contains(f)),
        "{loss_events:?}"
    );
}

#[test]
fn subscriber_gets_sender_reports_and_its_rr_gives_rtt() {
    let mut r = CameraRoom::new(Config::default(), 1, false);
    let sub = r.subscribers[0];
    let mut out = Vec::new();
    let mut sent = 0u32;
    let mut last_ts = 0;
    for i in 0..40 {
        let o = r.send_frame([i == 0; 3]);
        for p in received_by(&o, sub) {
            sent += 1;
            last_ts = p.ts;
        }
        let got_sr = !rtcp_to(&o, sub).is_empty();
        out.extend(o);
        if got_sr {
            break;
        }
    }
    let srs: Vec<(u32, u64, u32, u32)> = packets(&rtcp_to(&out, sub))
        .into_iter()
        .filter_map(|p| match p {
            RtcpPacket::SenderReport {
                ssrc,
                ntp,
                rtp_timestamp,
                packet_count,
                ..
            } => Some((ssrc, ntp, rtp_timestamp, packet_count)),
            _ => None,
        })
        .collect();
    assert_eq!(srs.len(), 1);
    let (ssrc, ntp, rtp_ts, count) = srs[0];
    assert_eq!(ssrc, 10_000);
    assert!(count > 0 && count <= sent);
    // The SR's RTP time is the stream's clock at the time of the report.
    assert!(last_ts.wrapping_sub(rtp_ts) < 9000, "{last_ts} vs {rtp_ts}");
    // The subscriber answers 80 ms later, having held the SR for 50 ms: RTT 30 ms.
    r.sim.advance(Duration::from_millis(80));
    r.sim.drain();
    let mut rr = Vec::new();
    rtcp::write_rr(
        &mut rr,
        4242,
        &[ReportBlock {
            ssrc: 10_000,
            fraction_lost: 64,
            jitter: 900,
            last_sr: (ntp >> 16) as u32,
            delay_since_last_sr: 65536 / 20,
            ..Default::default()
        }],
    );
    r.sim.sfu.handle_rtcp(r.sim.now, sub, &rr).unwrap();
    let evs = events(&r.sim.drain());
    let Some(Event::QualityReport {
        direction: Direction::Subscriber,
        fraction_lost,
        jitter_seconds,
        rtt_seconds: Some(rtt),
        ..
    }) = evs.first()
    else {
        panic!("expected a subscriber quality report, got {evs:?}");
    };
    assert_eq!(*fraction_lost, 0.25);
    assert!((jitter_seconds - 0.01).abs() < 1e-9);
    assert!((rtt - 0.030).abs() < 0.001, "{rtt}");
    let stats = r.sim.sfu.participant_stats(sub).unwrap();
    assert!(stats.rtt.is_some());
}

#[test]
fn publisher_sender_report_is_translated_for_subscribers() {
    let mut r = CameraRoom::new(Config::default(), 1, false);
    let sub = r.subscribers[0];
    let rx = received_by(&r.send_frame([true; 3]), sub);
    let first = rx.last().unwrap().clone();
    // The publisher says: source timestamp of that frame was at NTP 1000.5 s.
    let ntp = (1000u64 << 32) | (1 << 31);
    let source_ts = r.camera.ts.wrapping_sub(3000);
    let mut sr = Vec::new();
    rtcp::write_sr(
        &mut sr,
        r.camera.ssrcs[2],
        &SenderInfo {
            ntp,
            rtp_timestamp: source_ts,
            packet_count: 0,
            octet_count: 0,
        },
        &[],
    );
    r.sim.sfu.handle_rtcp(r.sim.now, r.publisher, &sr).unwrap();
    let sr_at = r.sim.now;
    let mut out = Vec::new();
    for _ in 0..31 {
        out.extend(r.send_frame([false; 3]));
    }
    let (sr_ntp, sr_rtp) = packets(&rtcp_to(&out, sub))
        .into_iter()
        .find_map(|p| match p {
            RtcpPacket::SenderReport {
                ntp, rtp_timestamp, ..
            } => Some((ntp, rtp_timestamp)),
            _ => None,
        })
        .expect("an SR within a second");
    // Both clocks advanced by the same time since the publisher's SR.
    let ntp_elapsed = (sr_ntp - ntp) as f64 / 4_294_967_296.0;
    let rtp_elapsed = f64::from(sr_rtp.wrapping_sub(first.ts)) / 90_000.0;
    assert!(
        (ntp_elapsed - rtp_elapsed).abs() < 0.001,
        "{ntp_elapsed} vs {rtp_elapsed}"
    );
    assert!(ntp_elapsed > 0.9 && ntp_elapsed <= (r.sim.now - sr_at).as_secs_f64() + 0.001);
}

#[test]
fn publisher_gets_transport_cc_feedback_for_its_packets() {
    use sfu_forwarding::twcc;
    let mut r = CameraRoom::new(Config::default(), 1, false);
    // Drain the timers up to a feedback boundary first.
    r.sim.advance(Duration::from_millis(100));
    r.sim.drain();
    let send = |r: &mut CameraRoom, seq: u16| {
        let ext = seq.to_be_bytes();
        let p = rtp(
            5000,
            VIDEO_PT,
            100 + seq,
            1,
            false,
            &[(5, &ext)],
            &vp8_payload(1, 1, false, false, &[0, 0, 0]),
        );
        r.sim.sfu.handle_rtp(r.sim.now, r.publisher, p).unwrap();
    };
    for seq in 0u16..10 {
        r.sim.now += Duration::from_millis(5);
        if seq != 4 {
            send(&mut r, seq);
        }
    }
    r.sim.advance(Duration::from_millis(60));
    let feedback = |out: &[sfu_forwarding::Output], to| {
        let mut all = Vec::new();
        for p in rtcp_to(out, to) {
            for packet in RtcpIter::new(&p).flatten() {
                if let RtcpPacket::TransportCc { fci, .. } = packet {
                    let mut statuses = Vec::new();
                    let h = twcc::parse_feedback(fci, &mut statuses).expect("valid feedback");
                    all.push((h, statuses));
                }
            }
        }
        all
    };
    let fb = feedback(&r.sim.drain(), r.publisher);
    assert_eq!(fb.len(), 1);
    let (h, statuses) = &fb[0];
    assert_eq!((h.base_seq, h.status_count, h.feedback_count), (0, 10, 0));
    for s in statuses {
        assert_eq!(s.received_at_us.is_some(), s.seq != 4);
    }
    let times: Vec<i64> = statuses.iter().filter_map(|s| s.received_at_us).collect();
    assert!(
        times
            .windows(2)
            .all(|w| matches!(w[1] - w[0], 4750..=5250 | 9750..=10250))
    );
    // The late packet 4 is not reported again; the next feedback starts after 9.
    send(&mut r, 4);
    send(&mut r, 10);
    send(&mut r, 12);
    r.sim.advance(Duration::from_millis(100));
    let fb = feedback(&r.sim.drain(), r.publisher);
    assert_eq!(fb.len(), 1);
    let (h, statuses) = &fb[0];
    assert_eq!((h.base_seq, h.status_count, h.feedback_count), (10, 3, 1));
    assert_eq!(
        statuses
            .iter()
            .map(|s| s.received_at_us.is_some())
            .collect::<Vec<_>>(),
        vec![true, false, true]
    );
}
