//! The five SFrame cipher suites of RFC 9605 §4.5 and their sizes.

use thiserror::Error;

/// An SFrame cipher suite (RFC 9605 §4.5, IANA "SFrame Cipher Suites").
///
/// Every suite decrypts; [`CipherSuite::DEFAULT`] (0x0005) is the one senders use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CipherSuite {
    /// 0x0001 `AES_128_CTR_HMAC_SHA256_80`: AES-128-CTR with an 80-bit HMAC-SHA256 tag.
    Aes128CtrHmacSha256_80,
    /// 0x0002 `AES_128_CTR_HMAC_SHA256_64`: AES-128-CTR with a 64-bit HMAC-SHA256 tag.
    Aes128CtrHmacSha256_64,
    /// 0x0003 `AES_128_CTR_HMAC_SHA256_32`: AES-128-CTR with a 32-bit HMAC-SHA256 tag.
    Aes128CtrHmacSha256_32,
    /// 0x0004 `AES_128_GCM_SHA256_128`.
    Aes128GcmSha256_128,
    /// 0x0005 `AES_256_GCM_SHA512_128`, the project's default for sending.
    Aes256GcmSha512_128,
}

/// A cipher suite number that RFC 9605 does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("unknown SFrame cipher suite 0x{0:04x}")]
pub struct UnknownSuite(pub u16);

/// The hash function a suite uses for HKDF and the ratchet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SuiteHash {
    Sha256,
    Sha512,
}

impl CipherSuite {
    /// The suite senders use unless told otherwise (`AES_256_GCM_SHA512_128`).
    pub const DEFAULT: CipherSuite = CipherSuite::Aes256GcmSha512_128;

    /// Every suite, in IANA order.
    pub const ALL: [CipherSuite; 5] = [
        CipherSuite::Aes128CtrHmacSha256_80,
        CipherSuite::Aes128CtrHmacSha256_64,
        CipherSuite::Aes128CtrHmacSha256_32,
        CipherSuite::Aes128GcmSha256_128,
        CipherSuite::Aes256GcmSha512_128,
    ];

    /// The IANA number of the suite (what travels in key envelopes).
    pub const fn id(self) -> u16 {
        match self {
            CipherSuite::Aes128CtrHmacSha256_80 => 0x0001,
            CipherSuite::Aes128CtrHmacSha256_64 => 0x0002,
            CipherSuite::Aes128CtrHmacSha256_32 => 0x0003,
            CipherSuite::Aes128GcmSha256_128 => 0x0004,
            CipherSuite::Aes256GcmSha512_128 => 0x0005,
        }
    }

    /// `Nh`: output size of the suite's hash in bytes (length of a ratcheted base key).
    pub const fn hash_len(self) -> usize {
        match self.hash() {
            SuiteHash::Sha256 => 32,
            SuiteHash::Sha512 => 64,
        }
    }

    /// `Nk`: size of the SFrame key in bytes (for CTR+HMAC suites, encryption key plus
    /// authentication key).
    pub const fn key_len(self) -> usize {
        match self {
            CipherSuite::Aes128CtrHmacSha256_80
            | CipherSuite::Aes128CtrHmacSha256_64
            | CipherSuite::Aes128CtrHmacSha256_32 => 48,
            CipherSuite::Aes128GcmSha256_128 => 16,
            CipherSuite::Aes256GcmSha512_128 => 32,
        }
    }

    /// `Nn`: size of the nonce (and of the salt) in bytes.
    pub const fn nonce_len(self) -> usize {
        12
    }

    /// `Nt`: size of the authentication tag in bytes.
    pub const fn tag_len(self) -> usize {
        match self {
            CipherSuite::Aes128CtrHmacSha256_80 => 10,
            CipherSuite::Aes128CtrHmacSha256_64 => 8,
            CipherSuite::Aes128CtrHmacSha256_32 => 4,
            CipherSuite::Aes128GcmSha256_128 | CipherSuite::Aes256GcmSha512_128 => 16,
        }
    }

    pub(crate) const fn hash(self) -> SuiteHash {
        match self {
            CipherSuite::Aes256GcmSha512_128 => SuiteHash::Sha512,
            _ => SuiteHash::Sha256,
        }
    }
}

impl TryFrom<u16> for CipherSuite {
    type Error = UnknownSuite;

    fn try_from(id: u16) -> Result<Self, UnknownSuite> {
        CipherSuite::ALL
            .into_iter()
            .find(|s| s.id() == id)
            .ok_or(UnknownSuite(id))
    }
}

impl From<CipherSuite> for u16 {
    fn from(suite: CipherSuite) -> u16 {
        suite.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_refused() {
        for suite in CipherSuite::ALL {
            assert_eq!(CipherSuite::try_from(suite.id()), Ok(suite));
        }
        for id in [0u16, 6, 0xffff] {
            assert_eq!(CipherSuite::try_from(id), Err(UnknownSuite(id)));
        }
    }
}
