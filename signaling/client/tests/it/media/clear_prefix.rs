//! The clear prefix is the browser's: the vector file made from `clearPrefixLength` of
//! `signaling/web/e2ee/media.mjs` (its JS test `clear-prefix-vectors.test.mjs` reads the same
//! file) gives each frame's prefix, and `seal_frame` leaves exactly those bytes in clear.

use std::path::Path;
use std::time::Instant;

use call_client::media::{Codec, clear_prefix_len, open_frame, seal_frame};
use e2ee_frames::{BaseKey, CipherSuite, Header, KeyStore, Sender, Stream};

/// The vector file, relative to this crate.
const VECTORS: &str = "../web/e2ee/test/data/clear-prefix-vectors.json";

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn clear_prefix_matches_the_browser_rule() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(VECTORS);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let suite = CipherSuite::Aes128GcmSha256_128;
    let key = [7u8; 32];
    let mut sender = Sender::new(suite, 5, 0, BaseKey::from_bytes(&key).unwrap()).unwrap();
    let mut keys = KeyStore::default();
    keys.install(
        Instant::now(),
        5,
        0,
        0,
        suite,
        BaseKey::from_bytes(&key).unwrap(),
    )
    .unwrap();
    let (mut wire, mut opened) = (Vec::new(), Vec::new());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let codec = Codec::from_name(case["codec"].as_str().unwrap()).unwrap();
        let frame = from_hex(case["frame"].as_str().unwrap());
        let n = usize::try_from(case["clear_prefix_len"].as_u64().unwrap()).unwrap();
        assert_eq!(clear_prefix_len(codec, &frame), n, "{name}");
        let stream = if codec == Codec::Opus {
            Stream::Audio
        } else {
            Stream::Camera
        };
        seal_frame(&mut sender, stream, codec, &frame, &mut wire).unwrap();
        assert_eq!(&wire[..n], &frame[..n], "{name}: the prefix is in clear");
        let (header, _) = Header::parse(&wire[n..]).unwrap();
        assert_eq!(
            header.kid,
            sender.kid(stream).to_u64(),
            "{name}: the SFrame header follows"
        );
        open_frame(&mut keys, Instant::now(), codec, &wire, &mut opened).unwrap();
        assert_eq!(opened, frame, "{name}");
    }
}
