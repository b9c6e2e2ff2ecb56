//! Detached Ed25519 signatures over labelled documents (recording policies, docs/protocol.md §3):
//! an admin signing key and the strict verification every client applies.
//!
//! The label is part of the signed bytes (`label || document`), so a signature made for one kind
//! of document never verifies as another.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::CryptoRng;
use thiserror::Error;

/// Why a detached signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The public key is not a valid Ed25519 point.
    #[error("invalid Ed25519 public key")]
    PublicKey,
    /// The signature does not verify under the public key.
    #[error("bad signature")]
    BadSignature,
}

/// Checks `sig` over `label || document` under `public_key` (strict verification: no malleable
/// or small-order forms).
pub fn verify_labelled(
    public_key: &[u8; 32],
    label: &[u8],
    document: &[u8],
    sig: &[u8; 64],
) -> Result<(), SignatureError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| SignatureError::PublicKey)?;
    key.verify_strict(&labelled(label, document), &Signature::from_bytes(sig))
        .map_err(|_| SignatureError::BadSignature)
}

fn labelled(label: &[u8], document: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(label.len() + document.len());
    msg.extend_from_slice(label);
    msg.extend_from_slice(document);
    msg
}

/// An Ed25519 signing key that signs labelled documents (an admin's recording-policy key).
/// Its `Debug` shows the public key only.
#[derive(Clone)]
pub struct DocumentSigner {
    key: SigningKey,
}

impl std::fmt::Debug for DocumentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentSigner")
            .field("public_key", &crate::wire::b64_encode(&self.public_key()))
            .finish_non_exhaustive()
    }
}

impl DocumentSigner {
    /// A fresh random key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        zeroize::Zeroize::zeroize(&mut seed);
        DocumentSigner { key }
    }

    /// The key from its 32-byte secret seed.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        DocumentSigner {
            key: SigningKey::from_bytes(secret),
        }
    }

    /// The 32-byte secret seed (to store it; never log it).
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `label || document`.
    pub fn sign_labelled(&self, label: &[u8], document: &[u8]) -> [u8; 64] {
        self.key.sign(&labelled(label, document)).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_only_the_same_label_document_and_key() {
        let signer = DocumentSigner::from_secret(&[7u8; 32]);
        let other = DocumentSigner::from_secret(&[8u8; 32]);
        let sig = signer.sign_labelled(b"label/v1", b"doc");
        let pk = signer.public_key();
        assert_eq!(verify_labelled(&pk, b"label/v1", b"doc", &sig), Ok(()));
        assert_eq!(
            verify_labelled(&pk, b"label/v2", b"doc", &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify_labelled(&pk, b"label/v1", b"dod", &sig),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            verify_labelled(&other.public_key(), b"label/v1", b"doc", &sig),
            Err(SignatureError::BadSignature)
        );
        let round = DocumentSigner::from_secret(&signer.secret());
        assert_eq!(round.public_key(), pk);
    }
}
