//! The AEAD algorithms of RFC 9605 §4.5: AES-GCM for suites 0x0004/0x0005 and the AES-CTR +
//! HMAC-SHA256 construction of §4.5.1 for suites 0x0001–0x0003.
//!
//! A [`SframeAead`] holds the expanded cipher state (AES key schedule, GHASH key, keyed HMAC)
//! so that per-frame work is only the encryption itself.

use aes::Aes128;
use aes_gcm::aead::{AeadInOut, KeyInit as _};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce, Tag};
use ctr::CtrCore;
use ctr::cipher::{InnerIvInit as _, StreamCipher as _, StreamCipherCoreWrapper};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use thiserror::Error;

use crate::suite::CipherSuite;

/// Nonce length of every SFrame suite (`Nn`).
pub const NONCE_LEN: usize = 12;

/// Longest tag of any suite (`Nt` of the GCM suites).
pub const MAX_TAG_LEN: usize = 16;

/// AAD of at most this many bytes is gathered on the stack for AES-GCM; longer AAD (large
/// application metadata) takes one heap buffer.
const STACK_AAD: usize = 96;

/// AEAD failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AeadError {
    /// The key has the wrong length for the suite (expected `Nk`).
    #[error("SFrame key must be {expected} bytes, got {actual}")]
    KeyLength {
        /// `Nk` of the suite.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// The tag buffer has the wrong length for the suite (expected `Nt`).
    #[error("tag must be {expected} bytes, got {actual}")]
    TagLength {
        /// `Nt` of the suite.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// The ciphertext is shorter than a tag.
    #[error("ciphertext shorter than the tag")]
    TooShort,
    /// Tag verification failed: wrong key, or the frame or its AAD was altered.
    #[error("authentication failed")]
    Authentication,
    /// The message exceeds the AEAD's length limit.
    #[error("message too long for the AEAD")]
    TooLong,
}

/// An SFrame AEAD keyed with an SFrame key (`Nk` bytes), ready to seal and open many frames.
#[derive(Clone)]
pub struct SframeAead {
    suite: CipherSuite,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Gcm128(Aes128Gcm),
    Gcm256(Aes256Gcm),
    CtrHmac { enc: Aes128, auth: Hmac<Sha256> },
}

impl std::fmt::Debug for SframeAead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SframeAead")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SframeAead {
    /// Keys the suite's AEAD with `key` (`Nk` bytes; for CTR+HMAC suites the first 16 bytes
    /// are the AES key and the remaining 32 the HMAC key, RFC 9605 §4.5.1).
    pub fn new(suite: CipherSuite, key: &[u8]) -> Result<Self, AeadError> {
        if key.len() != suite.key_len() {
            return Err(AeadError::KeyLength {
                expected: suite.key_len(),
                actual: key.len(),
            });
        }
        let length_checked = "key length checked against Nk above";
        let inner = match suite {
            CipherSuite::Aes128GcmSha256_128 => {
                Inner::Gcm128(Aes128Gcm::new_from_slice(key).expect(length_checked))
            }
            CipherSuite::Aes256GcmSha512_128 => {
                Inner::Gcm256(Aes256Gcm::new_from_slice(key).expect(length_checked))
            }
            CipherSuite::Aes128CtrHmacSha256_80
            | CipherSuite::Aes128CtrHmacSha256_64
            | CipherSuite::Aes128CtrHmacSha256_32 => {
                let (enc_key, auth_key) = key.split_at(16);
                Inner::CtrHmac {
                    enc: Aes128::new_from_slice(enc_key).expect(length_checked),
                    // HMAC accepts keys of any length.
                    auth: Hmac::<Sha256>::new_from_slice(auth_key).expect("HMAC takes any key"),
                }
            }
        };
        Ok(SframeAead { suite, inner })
    }

    /// The suite this AEAD implements.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// Encrypts `buf` in place and writes the `Nt`-byte tag to `tag`. The AAD is the
    /// concatenation of `aad_parts` (SFrame: header, then metadata).
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad_parts: &[&[u8]],
        buf: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        self.check_tag_len(tag.len())?;
        match &self.inner {
            Inner::Gcm128(c) => gcm_seal(c, nonce, aad_parts, buf, tag),
            Inner::Gcm256(c) => gcm_seal(c, nonce, aad_parts, buf, tag),
            Inner::CtrHmac { enc, auth } => {
                ctr_apply(enc, nonce, buf);
                let full = hmac_tag(auth, nonce, aad_parts, buf, tag.len());
                tag.copy_from_slice(&full[..tag.len()]);
                Ok(())
            }
        }
    }

    /// Checks `tag` and, only if it verifies, decrypts `buf` in place. On error `buf` is
    /// unchanged.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad_parts: &[&[u8]],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AeadError> {
        self.check_tag_len(tag.len())?;
        match &self.inner {
            Inner::Gcm128(c) => gcm_open(c, nonce, aad_parts, buf, tag),
            Inner::Gcm256(c) => gcm_open(c, nonce, aad_parts, buf, tag),
            Inner::CtrHmac { enc, auth } => {
                let full = hmac_tag(auth, nonce, aad_parts, buf, tag.len());
                if !bool::from(full[..tag.len()].ct_eq(tag)) {
                    return Err(AeadError::Authentication);
                }
                ctr_apply(enc, nonce, buf);
                Ok(())
            }
        }
    }

    /// Convenience form of [`SframeAead::seal_in_place`]: returns `ciphertext || tag`.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nt = self.suite.tag_len();
        let mut out = Vec::with_capacity(plaintext.len() + nt);
        out.extend_from_slice(plaintext);
        out.resize(plaintext.len() + nt, 0);
        let (body, tag) = out.split_at_mut(plaintext.len());
        // The only failures are a wrong tag length (sized from the suite here) and GCM's
        // 64 GiB message limit, which a slice in memory cannot reach in practice.
        self.seal_in_place(nonce, &[aad], body, tag)
            .expect("tag sized from the suite; in-memory plaintext within GCM limits");
        out
    }

    /// Convenience form of [`SframeAead::open_in_place`]: takes `ciphertext || tag`, returns
    /// the plaintext.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, AeadError> {
        let nt = self.suite.tag_len();
        let body_len = ciphertext
            .len()
            .checked_sub(nt)
            .ok_or(AeadError::TooShort)?;
        let (body, tag) = ciphertext.split_at(body_len);
        let mut out = body.to_vec();
        self.open_in_place(nonce, &[aad], &mut out, tag)?;
        Ok(out)
    }

    fn check_tag_len(&self, len: usize) -> Result<(), AeadError> {
        let expected = self.suite.tag_len();
        if len == expected {
            Ok(())
        } else {
            Err(AeadError::TagLength {
                expected,
                actual: len,
            })
        }
    }
}

/// Runs `f` with the AAD parts as one contiguous slice (on the stack when short).
fn with_aad<R>(parts: &[&[u8]], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut non_empty = parts.iter().filter(|p| !p.is_empty());
    match (non_empty.next(), non_empty.next()) {
        (None, _) => return f(&[]),
        (Some(single), None) => return f(single),
        _ => {}
    }
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total <= STACK_AAD {
        let mut stack = [0u8; STACK_AAD];
        let mut at = 0;
        for p in parts {
            stack[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        f(&stack[..total])
    } else {
        f(&parts.concat())
    }
}

fn gcm_seal<C: AeadInOut<NonceSize = aes_gcm::aead::consts::U12>>(
    cipher: &C,
    nonce: &[u8; NONCE_LEN],
    aad_parts: &[&[u8]],
    buf: &mut [u8],
    tag: &mut [u8],
) -> Result<(), AeadError> {
    let nonce = Nonce::from(*nonce);
    let t = with_aad(aad_parts, |aad| {
        cipher.encrypt_inout_detached(&nonce, aad, buf.into())
    })
    .map_err(|_| AeadError::TooLong)?;
    tag.copy_from_slice(&t);
    Ok(())
}

fn gcm_open<
    C: AeadInOut<NonceSize = aes_gcm::aead::consts::U12, TagSize = aes_gcm::aead::consts::U16>,
>(
    cipher: &C,
    nonce: &[u8; NONCE_LEN],
    aad_parts: &[&[u8]],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), AeadError> {
    let nonce = Nonce::from(*nonce);
    let tag: Tag = Tag::try_from(tag).map_err(|_| AeadError::TagLength {
        expected: MAX_TAG_LEN,
        actual: tag.len(),
    })?;
    with_aad(aad_parts, |aad| {
        cipher.decrypt_inout_detached(&nonce, aad, buf.into(), &tag)
    })
    .map_err(|_| AeadError::Authentication)
}

/// AES-128-CTR with initial counter block `nonce || 0x00000000` (RFC 9605 §4.5.1).
fn ctr_apply(enc: &Aes128, nonce: &[u8; NONCE_LEN], buf: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..NONCE_LEN].copy_from_slice(nonce);
    let core = CtrCore::<&Aes128, ctr::flavors::Ctr32BE>::inner_iv_init(enc, &iv.into());
    let mut ctr = StreamCipherCoreWrapper::from_core(core);
    ctr.apply_keystream(buf);
}

/// `HMAC(auth_key, u64(len(aad)) || u64(len(ct)) || u64(Nt) || nonce || aad || ct)`
/// (RFC 9605 §4.5.1), untruncated.
fn hmac_tag(
    auth: &Hmac<Sha256>,
    nonce: &[u8; NONCE_LEN],
    aad_parts: &[&[u8]],
    ct: &[u8],
    tag_len: usize,
) -> [u8; 32] {
    let aad_len: usize = aad_parts.iter().map(|p| p.len()).sum();
    let mut mac = auth.clone();
    mac.update(&(aad_len as u64).to_be_bytes());
    mac.update(&(ct.len() as u64).to_be_bytes());
    mac.update(&(tag_len as u64).to_be_bytes());
    mac.update(nonce);
    for p in aad_parts {
        mac.update(p);
    }
    mac.update(ct);
    mac.finalize().into_bytes().into()
}
