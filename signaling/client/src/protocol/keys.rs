//! Key material as the protocol carries it: device bundles and key envelopes (docs/e2ee.md
//! §2–3). The types are `e2ee_frames`' own (one definition of the wire form: base64url fields
//! decode to fixed-length bytes as they are parsed); [`Validate`] adds the checks of what the
//! types cannot say (version, device ids, ranges, the ciphertext length for the suite and step).
//! The service runs them on everything it relays and never opens anything.

use serde::{Deserialize, Serialize};

use e2ee_frames::{CipherSuite, envelope_key_len};
pub use e2ee_frames::{DeviceBundle, KeyEnvelope};

use super::shape::{ShapeError, validate_device_id};

/// Length of the AES-256-GCM tag an HPKE envelope ciphertext ends with.
const HPKE_TAG_LEN: usize = 16;

/// Most slots a room has (KID bits 12–23).
const MAX_SLOT: u16 = 4095;

/// The shape checks of a protocol value beyond what parsing it already checked.
pub trait Validate {
    /// Checks the value's shape; never verifies a signature or opens a key.
    fn validate(&self) -> Result<(), ShapeError>;
}

impl Validate for DeviceBundle {
    /// Version 1 and a valid device id (the key and signature lengths are fixed by the type).
    fn validate(&self) -> Result<(), ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        validate_device_id(&self.device)
    }
}

impl Validate for KeyEnvelope {
    /// Version 1, valid sender and recipient ids, a slot within 0–4095, a known suite and a
    /// ciphertext as long as the base key of that suite and step plus the tag (48 or 80 bytes).
    fn validate(&self) -> Result<(), ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        validate_device_id(&self.sender)?;
        validate_device_id(&self.recipient)?;
        if self.slot > MAX_SLOT {
            return Err(ShapeError::Range("slot"));
        }
        let suite = CipherSuite::try_from(self.suite).map_err(|_| ShapeError::Range("suite"))?;
        // The same rule the clients seal and open by (docs/e2ee.md §3).
        let expected = envelope_key_len(suite, self.step) + HPKE_TAG_LEN;
        if self.ct.len() != expected {
            return Err(ShapeError::Length {
                field: "ct",
                expected,
                got: self.ct.len(),
            });
        }
        Ok(())
    }
}

/// Body of `key_envelope` in both directions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeBody {
    /// The envelope, untouched.
    pub envelope: KeyEnvelope,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(device: &str) -> DeviceBundle {
        DeviceBundle {
            v: 1,
            device: device.into(),
            identity_key: [7; 32],
            hpke_key: [7; 32],
            sig: [7; 64],
        }
    }

    #[test]
    fn bundle_shape_is_checked() {
        assert_eq!(bundle("dev-A_1").validate(), Ok(()));
        assert_eq!(bundle("").validate(), Err(ShapeError::DeviceId));
        assert_eq!(
            bundle(&"a".repeat(65)).validate(),
            Err(ShapeError::DeviceId)
        );
        assert_eq!(bundle("dev A").validate(), Err(ShapeError::DeviceId));
        let mut v2 = bundle("d");
        v2.v = 2;
        assert_eq!(v2.validate(), Err(ShapeError::Version(2)));
        let json = bundle("d").to_json();
        let short = json.replace(&e2ee_frames::wire::b64_encode(&[7; 32]), "AAAA");
        assert!(
            DeviceBundle::from_json(&short).is_err(),
            "a short key does not parse"
        );
    }

    #[test]
    fn envelope_shape_is_checked() {
        let env = KeyEnvelope {
            v: 1,
            room: "r".into(),
            call: "c".into(),
            sender: "a".into(),
            recipient: "b".into(),
            slot: 3,
            generation: 7,
            step: 0,
            suite: 5,
            enc: [7; 32],
            ct: vec![7; 48],
            sig: [7; 64],
        };
        assert_eq!(env.validate(), Ok(()));
        let mut bad = env.clone();
        bad.slot = 4096;
        assert_eq!(bad.validate(), Err(ShapeError::Range("slot")));
        let mut bad = env.clone();
        bad.suite = 6;
        assert_eq!(bad.validate(), Err(ShapeError::Range("suite")));
        let mut bad = env.clone();
        bad.recipient = "b c".into();
        assert_eq!(bad.validate(), Err(ShapeError::DeviceId));
        let mut ratcheted = env.clone();
        ratcheted.step = 1;
        assert!(
            ratcheted.validate().is_err(),
            "a ratcheted suite-5 key is 64 bytes"
        );
        ratcheted.ct = vec![7; 80];
        assert_eq!(ratcheted.validate(), Ok(()));
        ratcheted.suite = 4;
        assert!(
            ratcheted.validate().is_err(),
            "a ratcheted suite-4 key is 32 bytes"
        );
        let mut bad = env;
        bad.ct = vec![7; 47];
        assert!(bad.validate().is_err());
    }
}
