//! SFrame header parsing: never panics; whatever parses re-encodes to a header that parses to
//! the same KID and counter; KID layout decoding never panics.
#![no_main]

use e2ee_frames::{Header, Kid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, len)) = Header::parse(data) {
        assert!((1..=e2ee_frames::MAX_HEADER_LEN).contains(&len));
        assert!(len <= data.len());
        let enc = header.encode();
        assert!(enc.len() <= len, "shortest encoding is never longer");
        assert_eq!(Header::parse(enc.as_bytes()), Ok((header, enc.len())));
        if let Ok(kid) = Kid::from_u64(header.kid) {
            assert_eq!(kid.to_u64(), header.kid);
        }
    }
});
