//! The signed recording policy (`joined.recording`, protocol §3): an admin-signed document
//! naming the recorder devices of a recorded room. The service checks its shape and admits the
//! recorders it names; clients verify its signature against the admin key they trust.

use serde::{Deserialize, Serialize};

use super::shape::{ShapeError, decode_b64, validate_device_id};

/// Most recorder devices a recording policy may name.
pub const MAX_RECORDERS: usize = 4;

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
}
