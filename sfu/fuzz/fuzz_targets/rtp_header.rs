//! RTP fixed header, CSRCs, padding and RFC 8285 extensions (one- and two-byte forms).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfu_forwarding::rtp::{ExtensionIds, Extensions, RtpPacket};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    assert!(p.payload_offset <= p.payload_end && p.payload_end <= data.len());
    let _ = p.payload();
    // Small ids (one-byte form) and large ids (two-byte form only).
    for ids in [
        ExtensionIds {
            mid: Some(1),
            rid: Some(2),
            repaired_rid: Some(3),
            audio_level: Some(4),
            transport_cc: Some(5),
        },
        ExtensionIds {
            mid: Some(200),
            rid: Some(14),
            repaired_rid: Some(255),
            audio_level: Some(15),
            transport_cc: Some(16),
        },
    ] {
        if let Ok(e) = Extensions::parse(p.extension, &ids) {
            if let Some(level) = e.audio_level {
                assert!(level.level <= 127);
            }
        }
    }
});
