//! Compound RTCP: SR, RR, generic NACK, PLI, FIR, transport-cc and everything else's framing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfu_forwarding::{
    rtcp::{RtcpIter, RtcpPacket},
    twcc,
};

fuzz_target!(|data: &[u8]| {
    let valid = RtcpIter::validate(data).is_ok();
    let mut statuses = Vec::new();
    let mut seen = 0;
    for p in RtcpIter::new(data) {
        let Ok(p) = p else {
            assert!(!valid);
            break;
        };
        seen += 1;
        match p {
            RtcpPacket::SenderReport { reports, .. }
            | RtcpPacket::ReceiverReport { reports, .. } => {
                assert!(reports.count() <= 31);
            }
            RtcpPacket::Nack { lost, .. } => {
                // At most 17 sequence numbers per 4-byte item.
                assert!(lost.count() <= data.len() / 4 * 17);
            }
            RtcpPacket::Fir { entries, .. } => {
                let _ = entries.count();
            }
            RtcpPacket::TransportCc { fci, .. } => {
                let _ = twcc::parse_feedback(fci, &mut statuses);
            }
            _ => {}
        }
    }
    if valid {
        assert!(seen > 0);
    }
});
