//! Encryption to the organization's archive key (age, X25519 recipients) and the hashes the
//! manifest and the chain carry.

use std::io::{Read as _, Write as _};
use std::str::FromStr as _;

use sha2::{Digest as _, Sha256};

/// The organization's archive public key: every blob but the chain is encrypted to it.
#[derive(Clone)]
pub struct OrgRecipient(age::x25519::Recipient);

impl std::fmt::Debug for OrgRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OrgRecipient({})", self.0)
    }
}

/// Why a blob could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The recipient is not an `age1…` X25519 public key.
    #[error("not an age X25519 recipient (age1…): {0}")]
    Recipient(String),
    /// The identity file holds no age X25519 identity (`AGE-SECRET-KEY-1…`).
    #[error("no age X25519 identity (AGE-SECRET-KEY-1…) in the identity file")]
    Identity,
    /// The blob is not an age file, or not for this identity, or was altered.
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
}

impl OrgRecipient {
    /// Parses an `age1…` recipient.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        age::x25519::Recipient::from_str(text.trim())
            .map(Self)
            .map_err(|e| SealError::Recipient(e.to_string()))
    }

    /// Encrypts `plaintext` to the recipient (an age v1 file).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&self.0 as &dyn age::Recipient))
                .expect("one X25519 recipient is a valid recipient set");
        let mut out = Vec::with_capacity(plaintext.len() + plaintext.len() / 4096 + 256);
        // Writing into a Vec cannot fail.
        let mut writer = encryptor.wrap_output(&mut out).expect("writes to a Vec");
        writer.write_all(plaintext).expect("writes to a Vec");
        writer.finish().expect("writes to a Vec");
        out
    }
}

/// The organization's private archive key, on the custody machine only.
pub struct OrgIdentity(age::x25519::Identity);

impl OrgIdentity {
    /// Makes a new key.
    pub fn generate() -> Self {
        Self(age::x25519::Identity::generate())
    }

    /// Reads the first `AGE-SECRET-KEY-1…` line of an identity file (`#` comments allowed).
    pub fn parse_file(text: &str) -> Result<Self, SealError> {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .find_map(|line| age::x25519::Identity::from_str(line).ok())
            .map(Self)
            .ok_or(SealError::Identity)
    }

    /// The identity file's text (the secret key line; keep it 0600).
    pub fn to_file_text(&self) -> String {
        use age::secrecy::ExposeSecret as _;
        format!(
            "# recorder archive key: decrypts every recorded session\n# public key: {}\n{}\n",
            self.0.to_public(),
            self.0.to_string().expose_secret()
        )
    }

    /// The public key (`age1…`) to give the recorder.
    pub fn recipient(&self) -> String {
        self.0.to_public().to_string()
    }

    /// Decrypts an age file made for this key.
    pub fn open(&self, ciphertext: &[u8]) -> Result<Vec<u8>, SealError> {
        let decryptor = age::Decryptor::new_buffered(ciphertext)
            .map_err(|e| SealError::Decrypt(e.to_string()))?;
        let mut reader = decryptor
            .decrypt(std::iter::once(&self.0 as &dyn age::Identity))
            .map_err(|e| SealError::Decrypt(e.to_string()))?;
        let mut plaintext = Vec::with_capacity(ciphertext.len());
        reader
            .read_to_end(&mut plaintext)
            .map_err(|e| SealError::Decrypt(e.to_string()))?;
        Ok(plaintext)
    }
}

/// SHA-256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}
