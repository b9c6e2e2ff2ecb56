//! VP8 payload descriptor (RFC 7741) and keyframe detection on the clear prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfu_forwarding::vp8::Vp8Descriptor;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = Vp8Descriptor::parse(data) else {
        return;
    };
    let len = usize::from(d.len);
    assert!((1..=6).contains(&len) && len <= data.len());
    let _ = d.is_keyframe_start(&data[len..]);
    if let Some(p) = d.picture_id {
        assert!(p.value < p.modulus());
    }
});
