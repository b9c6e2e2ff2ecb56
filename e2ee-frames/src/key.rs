//! Base keys, the RFC 9605 §5.1 ratchet, and per-KID SFrame keys (RFC 9605 §4.4.2) with their
//! cached cipher state.

use hkdf::Hkdf;
use rand::CryptoRng;
use sha2::{Sha256, Sha512};
use thiserror::Error;
use zeroize::Zeroize;

use crate::aead::{AeadError, MAX_TAG_LEN, NONCE_LEN, SframeAead};
use crate::header::{Header, HeaderError};
use crate::suite::{CipherSuite, SuiteHash};

/// Longest base key held: a ratcheted key is `Nh` bytes, at most 64 (SHA-512).
pub const MAX_BASE_KEY_LEN: usize = 64;

/// Length of a freshly drawn base key (what key envelopes carry).
pub const BASE_KEY_LEN: usize = 32;

/// A base key (RFC 9605 §4.4.1): the secret from which each KID's SFrame key and salt derive.
/// Zeroed when dropped; never printed.
#[derive(Clone)]
pub struct BaseKey {
    bytes: [u8; MAX_BASE_KEY_LEN],
    len: u8,
}

/// A base key of unusable length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("base key must be 1..=64 bytes, got {0}")]
pub struct BaseKeyLength(pub usize);

impl BaseKey {
    /// Wraps existing key bytes (1–64 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BaseKeyLength> {
        if bytes.is_empty() || bytes.len() > MAX_BASE_KEY_LEN {
            return Err(BaseKeyLength(bytes.len()));
        }
        let mut key = BaseKey {
            bytes: [0; MAX_BASE_KEY_LEN],
            // At most 64, fits a u8.
            len: bytes.len() as u8,
        };
        key.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(key)
    }

    /// Draws a fresh 32-byte base key (one per sender and generation).
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut key = BaseKey {
            bytes: [0; MAX_BASE_KEY_LEN],
            len: BASE_KEY_LEN as u8,
        };
        rng.fill_bytes(&mut key.bytes[..BASE_KEY_LEN]);
        key
    }

    /// The key bytes (to wrap in an envelope or to write a test fixture).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// One ratchet step (RFC 9605 §5.1): `HKDF-Expand(HKDF-Extract("", key), "SFrame 1.0
    /// Ratchet", Nh)` with the suite's hash; the result is `Nh` bytes long.
    pub fn ratchet(&self, suite: CipherSuite) -> BaseKey {
        let nh = suite.hash_len();
        let mut next = BaseKey {
            bytes: [0; MAX_BASE_KEY_LEN],
            len: nh as u8,
        };
        expand(
            suite,
            self.as_bytes(),
            &[b"SFrame 1.0 Ratchet"],
            &mut next.bytes[..nh],
        );
        next
    }

    /// `steps` ratchet steps.
    pub fn ratchet_by(&self, suite: CipherSuite, steps: u32) -> BaseKey {
        let mut key = self.clone();
        for _ in 0..steps {
            key = key.ratchet(suite);
        }
        key
    }
}

impl PartialEq for BaseKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Eq for BaseKey {}

impl Drop for BaseKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl std::fmt::Debug for BaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BaseKey({} bytes, redacted)", self.len)
    }
}

/// `HKDF-Expand(HKDF-Extract("", ikm), info_parts…, okm.len())` with the suite's hash.
fn expand(suite: CipherSuite, ikm: &[u8], info: &[&[u8]], okm: &mut [u8]) {
    // okm is at most 64 bytes here, far below HKDF's 255 * Nh limit.
    let fits = "output length far below 255 * Nh";
    match suite.hash() {
        SuiteHash::Sha256 => Hkdf::<Sha256>::new(None, ikm)
            .expand_multi_info(info, okm)
            .expect(fits),
        SuiteHash::Sha512 => Hkdf::<Sha512>::new(None, ikm)
            .expand_multi_info(info, okm)
            .expect(fits),
    }
}

/// Errors of the SFrame encrypt/decrypt layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SframeError {
    /// The SFrame header is malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The frame's KID is not the one this key belongs to.
    #[error("frame KID {found} does not match key KID {expected}")]
    KidMismatch {
        /// KID of the key.
        expected: u64,
        /// KID in the frame header.
        found: u64,
    },
    /// The frame ends before a complete tag.
    #[error("SFrame ciphertext shorter than the {tag_len}-byte tag")]
    TooShort {
        /// `Nt` of the suite.
        tag_len: usize,
    },
    /// The tag did not verify.
    #[error("SFrame authentication failed")]
    Authentication,
    /// The frame is too long for the AEAD.
    #[error("SFrame plaintext too long")]
    TooLong,
}

impl From<AeadError> for SframeError {
    fn from(e: AeadError) -> Self {
        match e {
            AeadError::TooLong => SframeError::TooLong,
            // Key and tag lengths are fixed by the suite inside this crate; anything else is a
            // failed verification.
            _ => SframeError::Authentication,
        }
    }
}

/// The SFrame key and salt of one KID (RFC 9605 §4.4.2), with the expanded cipher cached.
///
/// Derive it once per KID and reuse it for every frame: that keeps HKDF and AES key expansion
/// off the per-frame path.
#[derive(Clone, Debug)]
pub struct SframeKey {
    suite: CipherSuite,
    kid: u64,
    aead: SframeAead,
    salt: [u8; NONCE_LEN],
}

impl Drop for SframeKey {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl SframeKey {
    /// Derives `sframe_key` and `sframe_salt` for `kid` from `base_key`:
    /// `HKDF-Expand(HKDF-Extract("", base_key), "SFrame 1.0 Secret key " || u64(kid) ||
    /// u16(suite), Nk)` and likewise with `"SFrame 1.0 Secret salt "` for `Nn` bytes.
    pub fn derive(suite: CipherSuite, base_key: &BaseKey, kid: u64) -> Self {
        let kid_be = kid.to_be_bytes();
        let suite_be = suite.id().to_be_bytes();
        let mut key = [0u8; 48];
        let nk = suite.key_len();
        let mut salt = [0u8; NONCE_LEN];
        let ikm = base_key.as_bytes();
        expand(
            suite,
            ikm,
            &[b"SFrame 1.0 Secret key ", &kid_be, &suite_be],
            &mut key[..nk],
        );
        expand(
            suite,
            ikm,
            &[b"SFrame 1.0 Secret salt ", &kid_be, &suite_be],
            &mut salt,
        );
        // Nk comes from the suite, so the length always matches.
        let aead = SframeAead::new(suite, &key[..nk]).expect("key sized to the suite's Nk");
        key.zeroize();
        SframeKey {
            suite,
            kid,
            aead,
            salt,
        }
    }

    /// The suite of this key.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The KID this key belongs to.
    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// The nonce for counter `ctr`: `sframe_salt XOR u96(ctr)`.
    pub fn nonce(&self, ctr: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.salt;
        for (n, c) in nonce[4..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// Encrypts one frame and **appends** `header || ciphertext || tag` to `out` (so a caller
    /// can put a clear prefix first). AAD = `header || metadata`. Returns the header written.
    ///
    /// The caller is responsible for never using a counter twice under one key
    /// ([`crate::Sender`] does that).
    pub fn encrypt_into(
        &self,
        ctr: u64,
        metadata: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Header, SframeError> {
        let header = Header::new(self.kid, ctr);
        let enc = header.encode();
        let nt = self.suite.tag_len();
        let start = out.len();
        out.reserve(enc.len() + plaintext.len() + nt);
        out.extend_from_slice(enc.as_bytes());
        out.extend_from_slice(plaintext);
        out.resize(out.len() + nt, 0);
        let body_start = start + enc.len();
        let (body, tag) = out[body_start..].split_at_mut(plaintext.len());
        let nonce = self.nonce(ctr);
        if let Err(e) = self
            .aead
            .seal_in_place(&nonce, &[enc.as_bytes(), metadata], body, tag)
        {
            out.truncate(start);
            return Err(e.into());
        }
        Ok(header)
    }

    /// Decrypts `header || ciphertext || tag` with AAD = `header || metadata` and **appends**
    /// the plaintext to `out`. On error `out` is left as it was.
    pub fn decrypt_into(
        &self,
        frame: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Header, SframeError> {
        let (header, header_len) = Header::parse(frame)?;
        if header.kid != self.kid {
            return Err(SframeError::KidMismatch {
                expected: self.kid,
                found: header.kid,
            });
        }
        self.decrypt_parsed(
            header,
            &frame[..header_len],
            &frame[header_len..],
            metadata,
            out,
        )?;
        Ok(header)
    }

    /// Decrypts a frame whose header was already parsed (`header_bytes` as received,
    /// `body` = ciphertext || tag).
    pub(crate) fn decrypt_parsed(
        &self,
        header: Header,
        header_bytes: &[u8],
        body: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SframeError> {
        let nt = self.suite.tag_len();
        let ct_len = body
            .len()
            .checked_sub(nt)
            .ok_or(SframeError::TooShort { tag_len: nt })?;
        let (ct, tag) = body.split_at(ct_len);
        debug_assert!(tag.len() <= MAX_TAG_LEN);
        let start = out.len();
        out.extend_from_slice(ct);
        let nonce = self.nonce(header.ctr);
        if let Err(e) =
            self.aead
                .open_in_place(&nonce, &[header_bytes, metadata], &mut out[start..], tag)
        {
            out.truncate(start);
            return Err(e.into());
        }
        Ok(())
    }
}
