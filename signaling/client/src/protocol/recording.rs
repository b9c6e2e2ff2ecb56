//! The signed recording policy (`joined.recording`, protocol §3): an admin-signed document
//! naming the recorder devices of a recorded room. The service checks its shape and admits the
//! recorders it names; clients verify its signature against the admin key they trust.

use serde::{Deserialize, Serialize};

use super::shape::{ShapeError, decode_b64, validate_device_id};

/// Most recorder devices a recording policy may name.
pub const MAX_RECORDERS: usize = 4;

/// The label signed before the document bytes: `sig` covers `RECORDING_POLICY_LABEL || document`.
pub const RECORDING_POLICY_LABEL: &[u8] = b"e2ee-sfu/recording-policy/v1";

/// Shortest retention a recording document may state, days.
pub const MIN_RETENTION_DAYS: u32 = 1;
/// Longest retention a recording document may state, days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The signed recording policy blob, carried to clients untouched.
///
/// `document` is base64url (no padding) of a UTF-8 JSON [`RecordingDocument`]; `sig` is an Ed25519
/// signature by `admin_key` over `"e2ee-sfu/recording-policy/v1" || document bytes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingPolicy {
    /// Format version (1).
    pub v: u32,
    /// base64url of the JSON document bytes that were signed.
    pub document: String,
    /// The admin's Ed25519 public key, base64url of 32 bytes.
    pub admin_key: String,
    /// Ed25519 signature, base64url of 64 bytes.
    pub sig: String,
}

/// The signed document inside a [`RecordingPolicy`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingDocument {
    /// Format version (1).
    pub v: u32,
    /// The room it applies to.
    pub room: String,
    /// The enrolled recorder devices.
    pub recorders: Vec<RecorderDevice>,
    /// Issue time, Unix seconds.
    pub issued_at: u64,
    /// How long recordings of the room are kept, days ([`MIN_RETENTION_DAYS`]..=
    /// [`MAX_RETENTION_DAYS`]). Required: a document signed before retention existed does not
    /// parse and is refused like any malformed policy (docs/protocol.md §3).
    pub retention_days: u32,
}

impl RecordingDocument {
    /// Whether this document applies to `room` (an exact name match: no patterns).
    pub fn applies_to(&self, room: &str) -> bool {
        self.room == room
    }

    /// Whether it names `device` with `identity_key` (base64url) as a recorder.
    pub fn names_recorder(&self, device: &str, identity_key: &str) -> bool {
        self.recorders
            .iter()
            .any(|r| r.device == device && r.identity_key == identity_key)
    }

    /// Whether it names a recorder device `device` (whatever its identity key).
    pub fn names_device(&self, device: &str) -> bool {
        self.recorders.iter().any(|r| r.device == device)
    }
}

/// Why a native client refuses a recording policy ([`RecordingPolicy::verify`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyVerifyError {
    /// The blob or its document has the wrong shape.
    #[error("recording policy: {0}")]
    Shape(#[from] ShapeError),
    /// The admin key is not one this client trusts (or it trusts none).
    #[error("recording policy signed by an admin key this client does not trust")]
    UntrustedAdminKey,
    /// The signature does not verify under the admin key.
    #[error("recording policy: bad signature")]
    BadSignature,
}

/// One enrolled recorder device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecorderDevice {
    /// Its device id.
    pub device: String,
    /// Its Ed25519 identity key, base64url of 32 bytes.
    pub identity_key: String,
}

/// Largest encoded recording document accepted, in bytes.
const MAX_RECORDING_DOCUMENT: usize = 8 * 1024;

impl RecordingPolicy {
    /// Checks the blob's shape and returns the document it carries (signature not verified:
    /// that is the clients' job, against the admin key they trust).
    pub fn document(&self) -> Result<RecordingDocument, ShapeError> {
        if self.v != 1 {
            return Err(ShapeError::Version(self.v));
        }
        if self.document.len() > MAX_RECORDING_DOCUMENT {
            return Err(ShapeError::Document("document too large".into()));
        }
        let admin_key = decode_b64("admin_key", &self.admin_key)?;
        if admin_key.len() != 32 {
            return Err(ShapeError::Length {
                field: "admin_key",
                expected: 32,
                got: admin_key.len(),
            });
        }
        let sig = decode_b64("sig", &self.sig)?;
        if sig.len() != 64 {
            return Err(ShapeError::Length {
                field: "sig",
                expected: 64,
                got: sig.len(),
            });
        }
        let bytes = decode_b64("document", &self.document)?;
        let doc: RecordingDocument = serde_json::from_slice(&bytes)
            .map_err(|e| ShapeError::Document(format!("document: {e}")))?;
        if doc.v != 1 {
            return Err(ShapeError::Version(doc.v));
        }
        if doc.recorders.is_empty() || doc.recorders.len() > MAX_RECORDERS {
            return Err(ShapeError::Document(format!(
                "document must name 1-{MAX_RECORDERS} recorders"
            )));
        }
        if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&doc.retention_days) {
            return Err(ShapeError::Range("retention_days"));
        }
        for r in &doc.recorders {
            validate_device_id(&r.device)?;
            let ik = decode_b64("identity_key", &r.identity_key)?;
            if ik.len() != 32 {
                return Err(ShapeError::Length {
                    field: "identity_key",
                    expected: 32,
                    got: ik.len(),
                });
            }
        }
        Ok(doc)
    }

    /// Checks the shape, that `admin_key` is one of `trusted_admin_keys` and that `sig` verifies
    /// over [`RECORDING_POLICY_LABEL`] `|| document bytes` under it (as the web client does), and
    /// returns the document. A client that trusts no admin key refuses every policy: it then
    /// sends keys to no recorder.
    pub fn verify(
        &self,
        trusted_admin_keys: &[[u8; 32]],
    ) -> Result<RecordingDocument, PolicyVerifyError> {
        let doc = self.document()?;
        // `document()` checked both decode and have these lengths.
        let admin_key: [u8; 32] = decode_b64("admin_key", &self.admin_key)?
            .try_into()
            .map_err(|_| ShapeError::Range("admin_key"))?;
        let sig: [u8; 64] = decode_b64("sig", &self.sig)?
            .try_into()
            .map_err(|_| ShapeError::Range("sig"))?;
        if !trusted_admin_keys.contains(&admin_key) {
            return Err(PolicyVerifyError::UntrustedAdminKey);
        }
        let bytes = decode_b64("document", &self.document)?;
        e2ee_frames::verify_labelled(&admin_key, RECORDING_POLICY_LABEL, &bytes, &sig)
            .map_err(|_| PolicyVerifyError::BadSignature)?;
        Ok(doc)
    }

    /// Signs `doc` with the admin's `signer`: the policy an admin hands to the admin API
    /// (`signaling policy sign`, tests).
    pub fn sign(doc: &RecordingDocument, signer: &e2ee_frames::DocumentSigner) -> Self {
        // Strings and integers only: serializing cannot fail.
        let bytes = serde_json::to_vec(doc).expect("recording document serializes");
        let sig = signer.sign_labelled(RECORDING_POLICY_LABEL, &bytes);
        RecordingPolicy {
            v: 1,
            document: e2ee_frames::wire::b64_encode(&bytes),
            admin_key: e2ee_frames::wire::b64_encode(&signer.public_key()),
            sig: e2ee_frames::wire::b64_encode(&sig),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e2ee_frames::DocumentSigner;
    use e2ee_frames::wire::b64_encode;

    fn doc() -> RecordingDocument {
        RecordingDocument {
            v: 1,
            room: "standup".into(),
            recorders: vec![RecorderDevice {
                device: "rec-1".into(),
                identity_key: b64_encode(&[1u8; 32]),
            }],
            issued_at: 1_700_000_000,
            retention_days: 90,
        }
    }

    #[test]
    fn verify_accepts_a_policy_signed_by_a_trusted_key() {
        let admin = DocumentSigner::from_secret(&[5u8; 32]);
        let policy = RecordingPolicy::sign(&doc(), &admin);
        assert_eq!(policy.verify(&[admin.public_key()]), Ok(doc()));
    }

    #[test]
    fn verify_refuses_a_policy_signed_by_another_key() {
        let admin = DocumentSigner::from_secret(&[5u8; 32]);
        let other = DocumentSigner::from_secret(&[6u8; 32]);
        let policy = RecordingPolicy::sign(&doc(), &other);
        assert_eq!(
            policy.verify(&[admin.public_key()]),
            Err(PolicyVerifyError::UntrustedAdminKey)
        );
        assert_eq!(
            policy.verify(&[]),
            Err(PolicyVerifyError::UntrustedAdminKey)
        );
        // Signed by someone else but presenting the trusted admin key.
        let forged = RecordingPolicy {
            admin_key: b64_encode(&admin.public_key()),
            ..policy
        };
        assert_eq!(
            forged.verify(&[admin.public_key()]),
            Err(PolicyVerifyError::BadSignature)
        );
    }

    #[test]
    fn verify_refuses_an_altered_document() {
        let admin = DocumentSigner::from_secret(&[5u8; 32]);
        let policy = RecordingPolicy::sign(&doc(), &admin);
        let mut longer = doc();
        longer.retention_days = 36_500;
        let altered = RecordingPolicy {
            document: b64_encode(&serde_json::to_vec(&longer).unwrap()),
            ..policy
        };
        assert_eq!(
            altered.verify(&[admin.public_key()]),
            Err(PolicyVerifyError::BadSignature)
        );
    }

    #[test]
    fn retention_is_required_and_bounded() {
        let admin = DocumentSigner::from_secret(&[5u8; 32]);
        for days in [0, 36_501] {
            let mut d = doc();
            d.retention_days = days;
            assert_eq!(
                RecordingPolicy::sign(&d, &admin).document(),
                Err(ShapeError::Range("retention_days"))
            );
        }
        let mut old = serde_json::to_value(doc()).unwrap();
        old.as_object_mut().unwrap().remove("retention_days");
        let bytes = serde_json::to_vec(&old).unwrap();
        let sig = admin.sign_labelled(RECORDING_POLICY_LABEL, &bytes);
        let without = RecordingPolicy {
            v: 1,
            document: b64_encode(&bytes),
            admin_key: b64_encode(&admin.public_key()),
            sig: b64_encode(&sig),
        };
        assert!(
            matches!(without.document(), Err(ShapeError::Document(m)) if m.contains("retention_days"))
        );
    }
}
