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
/// the bundle's own signature. The text may hold several JSON values (enrolment prints the
/// bundle and the policy entry `{"device", "identity_key"}`): the bundle is the value (or a
/// value's `bundle` field) that parses as one, and a policy entry next to it must agree with it.
pub fn recorder_from_bundle(json: &str) -> Result<RecorderDevice, PolicySigningError> {
    let bad = |m: String| PolicySigningError::BadBundle(m);
    let values = serde_json::Deserializer::from_str(json)
        .into_iter::<serde_json::Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let as_bundle = |v: &serde_json::Value| -> Option<DeviceBundle> {
        serde_json::from_value(v.clone())
            .ok()
            .or_else(|| serde_json::from_value(v.get("bundle")?.clone()).ok())
    };
    let bundle = values.iter().find_map(as_bundle).ok_or_else(|| {
        bad("no device bundle (v, device, identity_key, hpke_key, sig) found".into())
    })?;
    let verified = bundle.verify().map_err(|e| bad(e.to_string()))?;
    let recorder = RecorderDevice {
        device: verified.device().as_str().to_string(),
        identity_key: b64_encode(&verified.identity_key()),
    };
    for entry in values
        .iter()
        .filter_map(|v| serde_json::from_value::<RecorderDevice>(v.clone()).ok())
    {
        if entry != recorder {
            return Err(bad(format!(
                "the policy entry for {:?} does not match the bundle",
                entry.device
            )));
        }
    }
    Ok(recorder)
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
    validate_room_name(room).map_err(|_| {
        PolicySigningError::Document(format!("room {room:?}: 1-64 characters of [A-Za-z0-9_-]"))
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use e2ee_frames::{DeviceId, DeviceKeys};

    fn keys(id: &str) -> DeviceKeys {
        DeviceKeys::generate(DeviceId::new(id).expect("valid id"), &mut rand::rng())
    }

    #[test]
    fn recorder_bundle_as_enrolment_prints_it() {
        let rec = keys("rec-1");
        let bundle = rec.bundle().to_json();
        let want = RecorderDevice {
            device: "rec-1".into(),
            identity_key: b64_encode(&rec.identity_key()),
        };
        assert_eq!(recorder_from_bundle(&bundle).expect("bare bundle"), want);
        let entry = serde_json::to_string(&want).expect("json");
        assert_eq!(
            recorder_from_bundle(&format!("{bundle}\n{entry}\n")).expect("bundle and entry"),
            want
        );
        let wrapped = format!(r#"{{"bundle": {bundle}, "device": "rec-1"}}"#);
        assert_eq!(recorder_from_bundle(&wrapped).expect("wrapped"), want);
        // An entry naming another key, a bundle whose signature fails, no bundle at all.
        let other = RecorderDevice {
            identity_key: b64_encode(&keys("rec-1").identity_key()),
            ..want.clone()
        };
        let mismatch = format!("{bundle}\n{}", serde_json::to_string(&other).expect("json"));
        assert!(matches!(
            recorder_from_bundle(&mismatch),
            Err(PolicySigningError::BadBundle(_))
        ));
        let mut forged = rec.bundle();
        forged.identity_key = keys("rec-2").identity_key();
        assert!(matches!(
            recorder_from_bundle(&forged.to_json()),
            Err(PolicySigningError::BadBundle(_))
        ));
        assert!(recorder_from_bundle(&entry).is_err());
        assert!(recorder_from_bundle("").is_err());
    }

    #[test]
    fn sign_refuses_what_the_service_would_refuse() {
        let admin = DocumentSigner::from_secret(&[4u8; 32]);
        let rec = parse_recorder(&format!("rec-1={}", b64_encode(&[1u8; 32]))).expect("ok");
        assert!(sign(&admin, "audit", vec![rec.clone()], 90, 1).is_ok());
        assert!(sign(&admin, "bad room", vec![rec.clone()], 90, 1).is_err());
        assert!(sign(&admin, "audit", vec![], 90, 1).is_err());
        assert!(sign(&admin, "audit", vec![rec.clone(); 5], 90, 1).is_err());
        assert!(sign(&admin, "audit", vec![rec], 0, 1).is_err());
        assert!(parse_recorder("rec-1").is_err());
        assert!(parse_recorder("rec-1=AAAA").is_err());
    }
}
