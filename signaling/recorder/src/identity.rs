//! The recorder's device identity: the same Ed25519 + X25519 keys and signed bundle as any
//! device's (e2ee-frames), kept in `identity.json` in the recorder's state directory, readable by
//! its owner only (file 0600 in a 0700 directory). The public half goes into the admin-signed
//! recording policy; the private half never leaves the recorder's host.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2ee_frames::identity::{DeviceId, DeviceKeys};
use serde::{Deserialize, Serialize};

/// The file in the state directory that holds the private keys.
pub const IDENTITY_FILE: &str = "identity.json";

/// Why the identity could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing the state directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The state directory already holds an identity (enrolment never overwrites one).
    #[error("{0} already exists: this recorder is enrolled")]
    Exists(PathBuf),
    /// The identity file is not readable as one.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The identity file can be read by others than its owner.
    #[error("{0} is readable by group or others (mode must be 0600)")]
    TooOpen(PathBuf),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    v: u32,
    device: String,
    identity_secret: String,
    hpke_secret: String,
}

/// Makes a new identity for `device` in `state_dir` (created 0700 if missing; never overwrites).
pub fn enroll(state_dir: &Path, device: DeviceId) -> Result<DeviceKeys, IdentityError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IdentityError::Io { path, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(io(state_dir))?;
    let path = state_dir.join(IDENTITY_FILE);
    if path.exists() {
        return Err(IdentityError::Exists(path));
    }
    let keys = DeviceKeys::generate(device, &mut rand::rng());
    let file = IdentityFile {
        v: 1,
        device: keys.device().as_str().to_owned(),
        identity_secret: URL_SAFE_NO_PAD.encode(keys.identity_secret()),
        hpke_secret: URL_SAFE_NO_PAD.encode(keys.hpke_secret()),
    };
    let json = serde_json::to_vec_pretty(&file).expect("identity file serializes");
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    out.write_all(&json).map_err(io(&path))?;
    out.sync_all().map_err(io(&path))?;
    Ok(keys)
}

/// Reads the identity from `state_dir`; refuses a file others can read.
pub fn load(state_dir: &Path) -> Result<DeviceKeys, IdentityError> {
    let path = state_dir.join(IDENTITY_FILE);
    let io = |source| IdentityError::Io {
        path: path.clone(),
        source,
    };
    let meta = fs::metadata(&path).map_err(io)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(IdentityError::TooOpen(path));
    }
    let bytes = fs::read(&path).map_err(io)?;
    let invalid = |reason: String| IdentityError::Invalid {
        path: path.clone(),
        reason,
    };
    let file: IdentityFile = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if file.v != 1 {
        return Err(invalid(format!("unsupported version {}", file.v)));
    }
    let secret = |name: &str, value: &str| -> Result<[u8; 32], IdentityError> {
        URL_SAFE_NO_PAD
            .decode(value)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| invalid(format!("{name} is not 32 base64url bytes")))
    };
    let device = DeviceId::new(file.device).map_err(|e| invalid(e.to_string()))?;
    let identity = secret("identity_secret", &file.identity_secret)?;
    let hpke = secret("hpke_secret", &file.hpke_secret)?;
    DeviceKeys::from_secrets(device, &identity, &hpke).map_err(|e| invalid(e.to_string()))
}
