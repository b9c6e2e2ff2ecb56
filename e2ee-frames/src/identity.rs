//! Device identities (docs/e2ee.md §2): an Ed25519 identity key, an X25519 HPKE key, and the
//! signed device bundle that travels in the roster.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use hpke::{Deserializable as _, Kem as _, Serializable as _};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::wire::{b64_array, b64_encode, put_lp};

/// The HPKE KEM: DHKEM(X25519, HKDF-SHA256).
pub(crate) type HpkeKem = hpke::kem::X25519HkdfSha256;
pub(crate) type HpkePrivateKey = <HpkeKem as hpke::Kem>::PrivateKey;
pub(crate) type HpkePublicKey = <HpkeKem as hpke::Kem>::PublicKey;

const BUNDLE_LABEL: &[u8] = b"e2ee-sfu/bundle/v1";

/// A device id that is not 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid device id (1-64 characters of A-Z a-z 0-9 _ -)")]
pub struct InvalidDeviceId;

/// A device id: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Checks and wraps a device id.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidDeviceId> {
        let id = id.into();
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(DeviceId(id))
        } else {
            Err(InvalidDeviceId)
        }
    }

    /// A random id: 128 random bits in base64url (22 characters), the default.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        DeviceId(b64_encode(&bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a device bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Only version 1 is defined.
    #[error("unsupported bundle version {0}")]
    Version(u32),
    /// The device id is malformed.
    #[error(transparent)]
    DeviceId(#[from] InvalidDeviceId),
    /// The identity key is not a valid Ed25519 point.
    #[error("invalid identity key")]
    IdentityKey,
    /// The HPKE key is not a valid X25519 public key.
    #[error("invalid HPKE key")]
    HpkeKey,
    /// The signature does not verify under the identity key.
    #[error("bad bundle signature")]
    BadSignature,
    /// The JSON form is malformed.
    #[error("malformed bundle JSON: {0}")]
    Json(String),
}

/// A device bundle as it travels (docs/e2ee.md §2). Unverified: call
/// [`DeviceBundle::verify`] before using any key in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBundle {
    /// Format version, 1.
    pub v: u32,
    /// The device id.
    pub device: String,
    /// Ed25519 public identity key.
    #[serde(with = "b64_array")]
    pub identity_key: [u8; 32],
    /// X25519 HPKE public key.
    #[serde(with = "b64_array")]
    pub hpke_key: [u8; 32],
    /// Ed25519 signature over `"e2ee-sfu/bundle/v1" || lp(device) || hpke_key`.
    #[serde(with = "b64_array")]
    pub sig: [u8; 64],
}

fn bundle_message(device: &str, hpke_key: &[u8; 32]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(BUNDLE_LABEL.len() + 2 + device.len() + 32);
    msg.extend_from_slice(BUNDLE_LABEL);
    // Device ids are at most 64 bytes once validated; an unvalidated longer one only fails.
    let _ = put_lp(&mut msg, device.as_bytes());
    msg.extend_from_slice(hpke_key);
    msg
}

impl DeviceBundle {
    /// Checks version, device id, keys and signature.
    pub fn verify(&self) -> Result<VerifiedBundle, BundleError> {
        if self.v != 1 {
            return Err(BundleError::Version(self.v));
        }
        let device = DeviceId::new(self.device.clone())?;
        let identity =
            VerifyingKey::from_bytes(&self.identity_key).map_err(|_| BundleError::IdentityKey)?;
        let hpke_key =
            HpkePublicKey::from_bytes(&self.hpke_key).map_err(|_| BundleError::HpkeKey)?;
        let sig = Signature::from_bytes(&self.sig);
        identity
            .verify_strict(&bundle_message(&self.device, &self.hpke_key), &sig)
            .map_err(|_| BundleError::BadSignature)?;
        Ok(VerifiedBundle {
            device,
            identity,
            hpke_key,
            bundle: self.clone(),
        })
    }

    /// The JSON wire form.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).expect("bundle serializes")
    }

    /// Parses the JSON wire form (unverified).
    pub fn from_json(json: &str) -> Result<Self, BundleError> {
        serde_json::from_str(json).map_err(|e| BundleError::Json(e.to_string()))
    }
}

/// A bundle whose signature verified: the only way to reach a peer's keys.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    device: DeviceId,
    identity: VerifyingKey,
    hpke_key: HpkePublicKey,
    bundle: DeviceBundle,
}

impl VerifiedBundle {
    /// The device id.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The Ed25519 identity key bytes.
    pub fn identity_key(&self) -> [u8; 32] {
        self.identity.to_bytes()
    }

    /// The bundle as received.
    pub fn bundle(&self) -> &DeviceBundle {
        &self.bundle
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.identity
    }

    pub(crate) fn hpke_key(&self) -> &HpkePublicKey {
        &self.hpke_key
    }
}

/// A device's own keys: identity (Ed25519) and HPKE (X25519) private keys. Never leaves the
/// device.
#[derive(Clone)]
pub struct DeviceKeys {
    device: DeviceId,
    identity: SigningKey,
    hpke_private: HpkePrivateKey,
    hpke_public: HpkePublicKey,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl DeviceKeys {
    /// Fresh random keys for `device`.
    pub fn generate(device: DeviceId, rng: &mut impl CryptoRng) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let identity = SigningKey::from_bytes(&seed);
        zeroize::Zeroize::zeroize(&mut seed);
        let (hpke_private, hpke_public) = HpkeKem::gen_keypair_with_rng(rng);
        DeviceKeys {
            device,
            identity,
            hpke_private,
            hpke_public,
        }
    }

    /// Restores keys from their secret bytes (Ed25519 seed, X25519 scalar).
    pub fn from_secrets(
        device: DeviceId,
        identity_secret: &[u8; 32],
        hpke_secret: &[u8; 32],
    ) -> Result<Self, BundleError> {
        let identity = SigningKey::from_bytes(identity_secret);
        let hpke_private =
            HpkePrivateKey::from_bytes(hpke_secret).map_err(|_| BundleError::HpkeKey)?;
        let hpke_public = HpkeKem::sk_to_pk(&hpke_private);
        Ok(DeviceKeys {
            device,
            identity,
            hpke_private,
            hpke_public,
        })
    }

    /// The device id.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The public identity key.
    pub fn identity_key(&self) -> [u8; 32] {
        self.identity.verifying_key().to_bytes()
    }

    /// The public HPKE key.
    pub fn hpke_public_key(&self) -> [u8; 32] {
        self.hpke_public.to_bytes().into()
    }

    /// The Ed25519 secret seed, for storing the device's keys.
    pub fn identity_secret(&self) -> [u8; 32] {
        self.identity.to_bytes()
    }

    /// The X25519 secret scalar, for storing the device's keys.
    pub fn hpke_secret(&self) -> [u8; 32] {
        self.hpke_private.to_bytes().into()
    }

    /// The signed bundle to publish in the roster.
    pub fn bundle(&self) -> DeviceBundle {
        let hpke_key = self.hpke_public_key();
        let sig = self
            .identity
            .sign(&bundle_message(self.device.as_str(), &hpke_key));
        DeviceBundle {
            v: 1,
            device: self.device.0.clone(),
            identity_key: self.identity_key(),
            hpke_key,
            sig: sig.to_bytes(),
        }
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.identity.sign(msg).to_bytes()
    }

    pub(crate) fn hpke_private(&self) -> &HpkePrivateKey {
        &self.hpke_private
    }
}
