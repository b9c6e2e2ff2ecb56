//! The transport-cc feedback to a publisher reports when its packets arrived, not when the core
//! handled them: a burst that arrived 2 ms apart and was handled late, at one instant (a busy
//! host reads its socket late), is reported 2 ms apart. Chromium keeps a bandwidth probe only
//! when the reported receive rate matches the rate it sent at.

use std::time::Duration;

use crate::common::*;
use sfu_forwarding::{
    Config,
    rtcp::{RtcpIter, RtcpPacket},
    twcc,
};

#[test]
fn transport_cc_feedback_reports_arrival_times_not_handling_times() {
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
    // Five packets arrive 2 ms apart; all are handled 30 ms after the first arrived.
    let first = r.sim.now;
    let handled = first + Duration::from_millis(30);
    for seq in 0u16..5 {
        let arrival = first + Duration::from_millis(2) * u32::from(seq);
        r.sim
            .sfu
            .handle_rtp_arrived(handled, arrival, r.publisher, media(seq))
            .expect("packet accepted");
    }
    r.sim.now = handled;
    r.sim.advance(Duration::from_millis(100));
    let mut statuses = Vec::new();
    let mut reported = Vec::new();
    for p in rtcp_to(&r.sim.drain(), r.publisher) {
        for packet in RtcpIter::new(&p).flatten() {
            if let RtcpPacket::TransportCc { fci, .. } = packet {
                twcc::parse_feedback(fci, &mut statuses).expect("valid feedback");
                reported.extend(statuses.iter().filter_map(|s| s.received_at_us));
            }
        }
    }
    assert_eq!(
        reported.len(),
        5,
        "every packet reported received: {reported:?}"
    );
    let spacing: Vec<i64> = reported.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(spacing, vec![2_000; 4], "arrivals 2 ms apart (µs)");
}
