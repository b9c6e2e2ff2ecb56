//! Key material as the protocol carries it: device bundles and key envelopes (docs/e2ee.md
//! §2–3). The service checks their shape and routing fields only; it never opens anything.

use serde::{Deserialize, Serialize};

use e2ee_frames::suite::CipherSuite;

use crate::shape::{ShapeError, check_b64_len, validate_device_id};

/// Length of the AES-256-GCM tag an HPKE envelope ciphertext ends with.
const HPKE_TAG_LEN: usize = 16;

/// A device's public bundle (docs/e2ee.md §2). The service checks its shape only; clients verify
/// the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBundle {
    /// Bundle format version (1).
    pub v: u32,
    /// Device id: 1–64 characters `[A-Za-z0-9_-]`.
    pub device: String,
    /// Ed25519 identity key, base64url of 32 bytes.
    pub identity_key: String,
    /// X25519 HPKE key, base64url of 32 bytes.
    pub hpke_key: String,
    /// Ed25519 signature by the identity key, base64url of 64 bytes.
    pub sig: String,
}

impl DeviceBundle {
    /// Checks version, device id syntax and key/signature lengths.
    pub fn validate(&self) -> Result<(), ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        validate_device_id(&self.device)?;
        check_b64_len("identity_key", &self.identity_key, 32)?;
        check_b64_len("hpke_key", &self.hpke_key, 32)?;
        check_b64_len("sig", &self.sig, 64)
    }
}

/// A key envelope in its JSON wire form (docs/e2ee.md §3), relayed untouched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnvelope {
    /// Format version (1).
    pub v: u32,
    /// Room name; must be the sender's room.
    pub room: String,
    /// Call id; must be the room's current call.
    pub call: String,
    /// Sending device; must be the sending connection's own device.
    pub sender: String,
    /// Recipient device; must be in the sender's roster.
    pub recipient: String,
    /// Sender slot (0–4095).
    pub slot: u16,
    /// Key generation.
    pub generation: u16,
    /// Ratchet step.
    pub step: u8,
    /// SFrame cipher suite (1–5).
    pub suite: u16,
    /// HPKE encapsulated key, base64url of 32 bytes.
    pub enc: String,
    /// HPKE ciphertext, base64url: the base key (32 bytes at step 0, the suite's hash length
    /// once ratcheted) plus the 16-byte tag, so 48 or 80 bytes.
    pub ct: String,
    /// Ed25519 signature, base64url of 64 bytes.
    pub sig: String,
}

impl KeyEnvelope {
    /// Checks version, ids, ranges and lengths; never opens anything.
    pub fn validate(&self) -> Result<(), ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        validate_device_id(&self.sender)?;
        validate_device_id(&self.recipient)?;
        if self.slot > 4095 {
            return Err(ShapeError::Range("slot"));
        }
        let suite = CipherSuite::try_from(self.suite).map_err(|_| ShapeError::Range("suite"))?;
        check_b64_len("enc", &self.enc, 32)?;
        // The same rule the clients seal and open by (docs/e2ee.md §3).
        let key_len = e2ee_frames::envelope::envelope_key_len(suite, self.step);
        check_b64_len("ct", &self.ct, key_len + HPKE_TAG_LEN)?;
        check_b64_len("sig", &self.sig, 64)
    }
}

/// Body of `key_envelope` in both directions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnvelopeBody {
    /// The envelope, untouched.
    pub envelope: KeyEnvelope,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(n: usize) -> String {
        URL_SAFE_NO_PAD.encode(vec![7u8; n])
    }

    fn bundle(device: &str) -> DeviceBundle {
        DeviceBundle {
            v: 1,
            device: device.into(),
            identity_key: b64(32),
            hpke_key: b64(32),
            sig: b64(64),
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
        let mut short = bundle("d");
        short.hpke_key = b64(31);
        assert!(matches!(
            short.validate(),
            Err(ShapeError::Length {
                field: "hpke_key",
                expected: 32,
                got: 31
            })
        ));
        let mut padded = bundle("d");
        padded.sig.push('=');
        assert!(padded.validate().is_err());
        let mut huge = bundle("d");
        huge.sig = "A".repeat(10_000);
        assert!(matches!(huge.validate(), Err(ShapeError::Length { .. })));
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
            enc: b64(32),
            ct: b64(48),
            sig: b64(64),
        };
        assert_eq!(env.validate(), Ok(()));
        let mut bad = env.clone();
        bad.slot = 4096;
        assert_eq!(bad.validate(), Err(ShapeError::Range("slot")));
        let mut bad = env.clone();
        bad.suite = 6;
        assert_eq!(bad.validate(), Err(ShapeError::Range("suite")));
        let mut ratcheted = env.clone();
        ratcheted.step = 1;
        assert!(
            ratcheted.validate().is_err(),
            "a ratcheted suite-5 key is 64 bytes"
        );
        ratcheted.ct = b64(80);
        assert_eq!(ratcheted.validate(), Ok(()));
        ratcheted.suite = 4;
        assert!(
            ratcheted.validate().is_err(),
            "a ratcheted suite-4 key is 32 bytes"
        );
        let mut bad = env;
        bad.ct = b64(47);
        assert!(bad.validate().is_err());
    }
}
