//! What `signaling policy keygen` and `signaling policy sign` do: an admin's Ed25519 signing key
//! in a 0600 file, and signed recording policies ready for the admin API's `recording` field.
//!
//! The key file holds the 32-byte secret seed in base64url on one line. It is written with mode
//! 0600 and never overwritten. Nothing here logs or prints the secret.

use std::io::Write as _;
use std::path::Path;

use e2ee_frames::wire::{b64_decode, b64_encode};
use e2ee_frames::{DeviceBundle, DocumentSigner};

use crate::auth::validate_room_name;
use crate::protocol::{
    MAX_RECORDERS, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, RecorderDevice, RecordingDocument,
    RecordingPolicy, validate_device_id,
};

/// Why a key could not be made or read, or a policy not signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicySigningError {
    /// The key file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file does not hold a base64url 32-byte key.
    #[error("{0}: not an admin signing key (base64url of 32 bytes)")]
    BadKeyFile(String),
    /// A `--recorder DEVICE=IDENTITY_KEY` is malformed.
    #[error("--recorder {0:?}: expected DEVICE=IDENTITY_KEY (base64url of 32 bytes)")]
    BadRecorder(String),
    /// A recorder bundle is malformed or its signature does not verify.
    #[error("recorder bundle: {0}")]
    BadBundle(String),
    /// The document would not pass the service's shape check.
    #[error("{0}")]
    Document(String),
}

/// Makes a fresh admin signing key in `path` (mode 0600; refuses an existing file) and returns
/// it.
pub fn keygen(path: &Path) -> Result<DocumentSigner, PolicySigningError> {
    let io = |source| PolicySigningError::Io {
        path: path.display().to_string(),
        source,
    };
    let signer = DocumentSigner::generate(&mut rand::rng());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    writeln!(file, "{}", b64_encode(&signer.secret())).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(signer)
}

/// Reads an admin signing key written by [`keygen`].
pub fn read_key(path: &Path) -> Result<DocumentSigner, PolicySigningError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicySigningError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let bytes: [u8; 32] = b64_decode(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| PolicySigningError::BadKeyFile(path.display().to_string()))?;
    Ok(DocumentSigner::from_secret(&bytes))
}

/// Parses `DEVICE=IDENTITY_KEY`.
pub fn parse_recorder(arg: &str) -> Result<RecorderDevice, PolicySigningError> {
    let bad = || PolicySigningError::BadRecorder(arg.to_string());
    let (device, key) = arg.split_once('=').ok_or_else(bad)?;
    validate_device_id(device).map_err(|_| bad())?;
    let key_ok = b64_decode(key).is_some_and(|b| b.len() == 32);
    if !key_ok {
        return Err(bad());
    }
    Ok(RecorderDevice {
        device: device.to_string(),
        identity_key: key.to_string(),
    })
}

/// The recorder named by a device bundle (the JSON `recorder enroll` prints), after checking
/// the bundle's own signature.
pub fn recorder_from_bundle(json: &str) -> Result<RecorderDevice, PolicySigningError> {
    let bundle =
        DeviceBundle::from_json(json).map_err(|e| PolicySigningError::BadBundle(e.to_string()))?;
    let verified = bundle
        .verify()
        .map_err(|e| PolicySigningError::BadBundle(e.to_string()))?;
    Ok(RecorderDevice {
        device: verified.device().as_str().to_string(),
        identity_key: b64_encode(&verified.identity_key()),
    })
}

/// Signs a recording policy for `room` naming `recorders`, kept `retention_days`, issued at
/// `issued_at` (Unix seconds). The result passes the service's shape check.
pub fn sign(
    signer: &DocumentSigner,
    room: &str,
    recorders: Vec<RecorderDevice>,
    retention_days: u32,
    issued_at: u64,
) -> Result<RecordingPolicy, PolicySigningError> {
    validate_room_name(room)
        .map_err(|_| PolicySigningError::Document(format!("room {room:?}: {}", "bad name")))?;
    if recorders.is_empty() || recorders.len() > MAX_RECORDERS {
        return Err(PolicySigningError::Document(format!(
            "name 1-{MAX_RECORDERS} recorders (--recorder or --recorder-bundle)"
        )));
    }
    if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&retention_days) {
        return Err(PolicySigningError::Document(format!(
            "--retention-days must be {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}"
        )));
    }
    let doc = RecordingDocument {
        v: 1,
        room: room.to_string(),
        recorders,
        issued_at,
        retention_days,
    };
    let policy = RecordingPolicy::sign(&doc, signer);
    policy
        .document()
        .map_err(|e| PolicySigningError::Document(e.to_string()))?;
    Ok(policy)
}
