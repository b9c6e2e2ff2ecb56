//! JSON wire forms from the network: device bundles and key envelopes. Parsing and verifying
//! arbitrary input never panics.
#![no_main]

use e2ee_frames::{DeviceBundle, KeyEnvelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bundle) = DeviceBundle::from_json(text) {
        let _ = bundle.verify();
        assert_eq!(
            DeviceBundle::from_json(&bundle.to_json()).ok(),
            Some(bundle)
        );
    }
    if let Ok(envelope) = KeyEnvelope::from_json(text) {
        assert_eq!(
            KeyEnvelope::from_json(&envelope.to_json()).ok(),
            Some(envelope)
        );
    }
});
