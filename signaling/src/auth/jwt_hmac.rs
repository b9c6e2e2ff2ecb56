//! The JWT library's cryptography: HMAC-SHA-2 (HS256, HS384, HS512) with RustCrypto's `hmac` and
//! `sha2`, installed as `jsonwebtoken`'s process-wide [`CryptoProvider`].
//!
//! `jsonwebtoken` is built without a backend feature. Its `rust_crypto` backend pulls in the
//! `rsa` crate (RUSTSEC-2023-0071, a timing side channel with no fixed release) for algorithms
//! this service refuses anyway, and its `aws_lc_rs` backend would compile a C library into every
//! build. Tokens are HS256 only (the verifier in `auth.rs` pins it before anything else); HS384
//! and HS512 are here so tests can sign tokens of a refused algorithm. Any other algorithm is an
//! `InvalidAlgorithm` error, never a panic, and JWK helpers are not provided (nothing uses them).

use hmac::{Hmac, KeyInit as _, Mac as _};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use sha2::{Sha256, Sha384, Sha512};

/// HMAC-SHA-2 for `jsonwebtoken`; nothing else.
static HMAC_ONLY: CryptoProvider = CryptoProvider {
    signer_factory,
    verifier_factory,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes [`HMAC_ONLY`] the process' JWT provider unless one is installed already (by an earlier
/// call, or by a program embedding this crate that chose its own). Cheap after the first call;
/// called before every use of `jsonwebtoken` in this crate.
pub(crate) fn install() {
    // `Err` only says a provider is installed already, which is what this call wants.
    let _ = HMAC_ONLY.install_default();
}

/// A keyed HMAC for one of the three JWT HMAC algorithms.
#[derive(Clone)]
enum HmacKey {
    Hs256(Hmac<Sha256>),
    Hs384(Hmac<Sha384>),
    Hs512(Hmac<Sha512>),
}

impl HmacKey {
    fn new(algorithm: Algorithm, secret: &[u8]) -> Result<Self> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail here; the error is
        // mapped rather than unwrapped all the same.
        let invalid = |_| ErrorKind::InvalidKeyFormat;
        Ok(match algorithm {
            Algorithm::HS256 => HmacKey::Hs256(Hmac::new_from_slice(secret).map_err(invalid)?),
            Algorithm::HS384 => HmacKey::Hs384(Hmac::new_from_slice(secret).map_err(invalid)?),
            Algorithm::HS512 => HmacKey::Hs512(Hmac::new_from_slice(secret).map_err(invalid)?),
            _ => return Err(ErrorKind::InvalidAlgorithm.into()),
        })
    }

    fn tag(&self, message: &[u8]) -> Vec<u8> {
        match self.clone() {
            HmacKey::Hs256(mut m) => {
                m.update(message);
                m.finalize().into_bytes().to_vec()
            }
            HmacKey::Hs384(mut m) => {
                m.update(message);
                m.finalize().into_bytes().to_vec()
            }
            HmacKey::Hs512(mut m) => {
                m.update(message);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Compares in constant time (`verify_slice`).
    fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        match self.clone() {
            HmacKey::Hs256(mut m) => {
                m.update(message);
                m.verify_slice(tag).is_ok()
            }
            HmacKey::Hs384(mut m) => {
                m.update(message);
                m.verify_slice(tag).is_ok()
            }
            HmacKey::Hs512(mut m) => {
                m.update(message);
                m.verify_slice(tag).is_ok()
            }
        }
    }
}

/// Signs and verifies one algorithm with one secret.
struct HmacJwt {
    algorithm: Algorithm,
    key: HmacKey,
}

impl Signer<Vec<u8>> for HmacJwt {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.key.tag(message))
    }
}

impl Verifier<Vec<u8>> for HmacJwt {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        if self.key.verify(message, tag) {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtSigner for HmacJwt {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl JwtVerifier for HmacJwt {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn signer_factory(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(HmacJwt {
        algorithm: *algorithm,
        key: HmacKey::new(*algorithm, key.as_bytes())?,
    }))
}

fn verifier_factory(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(HmacJwt {
        algorithm: *algorithm,
        key: HmacKey::new(*algorithm, key.try_get_as_bytes()?)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (key "Jefe"): the three HMAC-SHA-2 tags, so the provider computes
    /// the standard function and not merely something self-consistent.
    #[test]
    fn tags_match_rfc_4231_and_tampering_fails() {
        let msg = b"what do ya want for nothing?";
        let want = [
            (
                Algorithm::HS256,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                Algorithm::HS384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                Algorithm::HS512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (alg, hex_tag) in want {
            let signer = signer_factory(&alg, &EncodingKey::from_secret(b"Jefe")).unwrap();
            let tag = signer.try_sign(msg).unwrap();
            let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, hex_tag, "{alg:?}");
            let verifier = verifier_factory(&alg, &DecodingKey::from_secret(b"Jefe")).unwrap();
            assert!(verifier.verify(msg, &tag).is_ok());
            let mut bad = tag.clone();
            bad[0] ^= 1;
            assert!(verifier.verify(msg, &bad).is_err());
            assert!(
                verifier
                    .verify(msg, &tag[..tag.len() - 1].to_vec())
                    .is_err()
            );
        }
    }

    #[test]
    fn other_algorithms_are_errors_not_panics() {
        for alg in [
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ] {
            assert!(signer_factory(&alg, &EncodingKey::from_secret(b"k")).is_err());
            assert!(verifier_factory(&alg, &DecodingKey::from_secret(b"k")).is_err());
        }
    }
}
