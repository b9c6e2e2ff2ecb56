//! Transport-wide CC feedback FCI (draft-holmer-rmcat-transport-wide-cc-extensions-01).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfu_forwarding::twcc::{self, MAX_STATUSES};

fuzz_target!(|data: &[u8]| {
    let mut statuses = Vec::new();
    if let Ok(h) = twcc::parse_feedback(data, &mut statuses) {
        assert_eq!(statuses.len(), usize::from(h.status_count));
        assert!(h.status_count <= MAX_STATUSES);
    }
});
