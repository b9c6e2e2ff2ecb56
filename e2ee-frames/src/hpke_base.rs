//! HPKE base mode (RFC 9180), single shot, with DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256,
//! generic over the AEAD so that the RFC 9180 A.1.1 vector (AES-128-GCM) runs through the same
//! code as key envelopes (AES-256-GCM).

use hpke::{Deserializable as _, OpModeR, OpModeS, Serializable as _};
use rand::CryptoRng;
use thiserror::Error;

use crate::identity::{HpkeKem, HpkePrivateKey, HpkePublicKey};

pub use hpke::aead::{Aead as HpkeAead, AesGcm128, AesGcm256};

/// HPKE failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HpkeError {
    /// A key or `enc` is not a valid X25519 value.
    #[error("invalid X25519 key or encapsulation")]
    InvalidKey,
    /// Encapsulation or sealing failed.
    #[error("HPKE seal failed")]
    Seal,
    /// Decapsulation or tag verification failed: wrong recipient, or altered input.
    #[error("HPKE open failed")]
    Open,
}

/// Derives an X25519 key pair from input keying material (RFC 9180 §7.1.3 `DeriveKeyPair`):
/// returns (private, public).
pub fn derive_keypair(ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    use hpke::Kem as _;
    let (sk, pk) = HpkeKem::derive_keypair(ikm);
    (sk.to_bytes().into(), pk.to_bytes().into())
}

/// `SealBase(pkR, info, aad, pt)`: returns `(enc, ciphertext || tag)`.
///
/// The ephemeral key is `DeriveKeyPair` of 32 bytes drawn from `rng`, so an RNG that yields a
/// vector's `ikmE` reproduces the vector.
pub fn seal<A: HpkeAead>(
    recipient_public: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<([u8; 32], Vec<u8>), HpkeError> {
    let pk = HpkePublicKey::from_bytes(recipient_public).map_err(|_| HpkeError::InvalidKey)?;
    seal_to::<A>(&pk, info, aad, plaintext, rng)
}

pub(crate) fn seal_to<A: HpkeAead>(
    pk: &HpkePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<([u8; 32], Vec<u8>), HpkeError> {
    let (enc, ct) = hpke::single_shot_seal_with_rng::<A, hpke::kdf::HkdfSha256, HpkeKem>(
        &OpModeS::Base,
        pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| HpkeError::Seal)?;
    Ok((enc.to_bytes().into(), ct))
}

/// `OpenBase(enc, skR, info, aad, ct)`: returns the plaintext.
pub fn open<A: HpkeAead>(
    recipient_private: &[u8; 32],
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, HpkeError> {
    let sk = HpkePrivateKey::from_bytes(recipient_private).map_err(|_| HpkeError::InvalidKey)?;
    open_with::<A>(&sk, enc, info, aad, ciphertext)
}

pub(crate) fn open_with<A: HpkeAead>(
    sk: &HpkePrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, HpkeError> {
    let enc =
        <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| HpkeError::InvalidKey)?;
    hpke::single_shot_open::<A, hpke::kdf::HkdfSha256, HpkeKem>(
        &OpModeR::Base,
        sk,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .map_err(|_| HpkeError::Open)
}
