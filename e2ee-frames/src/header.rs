//! The SFrame header (RFC 9605 §4.3): a config byte, then the KID and CTR in big-endian form,
//! each inline in three bits when below 8 or in 1–8 extra bytes otherwise.

use thiserror::Error;

/// The longest possible header: config byte, 8-byte KID, 8-byte CTR.
pub const MAX_HEADER_LEN: usize = 17;

/// A decoded SFrame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Key id: selects the key (RFC 9605 §4.3); see [`crate::Kid`] for this project's layout.
    pub kid: u64,
    /// Counter: makes the nonce unique per frame under one key.
    pub ctr: u64,
}

/// Why a header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The input was empty: not even a config byte.
    #[error("empty SFrame header")]
    Empty,
    /// The config byte announces more KID/CTR bytes than the input holds.
    #[error("truncated SFrame header: needs {needed} bytes, {available} available")]
    Truncated {
        /// Header length announced by the config byte.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
}

/// A header in wire form, kept on the stack (at most [`MAX_HEADER_LEN`] bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedHeader {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl EncodedHeader {
    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length of the encoded header in bytes (1–17).
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a header has at least its config byte. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Number of big-endian bytes needed for `v` (1–8; 0 needs one byte).
fn min_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(8).max(1)
}

impl Header {
    /// Makes a header from a KID and a counter.
    pub const fn new(kid: u64, ctr: u64) -> Self {
        Header { kid, ctr }
    }

    /// Length of this header's shortest encoding (the one [`Header::encode`] writes).
    pub fn encoded_len(&self) -> usize {
        let field = |v: u64| if v < 8 { 0 } else { min_len(v) };
        1 + field(self.kid) + field(self.ctr)
    }

    /// Encodes the header in its shortest form (RFC 9605 §4.3).
    pub fn encode(&self) -> EncodedHeader {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let mut len = 1;
        let mut config = 0u8;
        if self.kid < 8 {
            config |= (self.kid as u8) << 4;
        } else {
            let n = min_len(self.kid);
            config |= 0x80 | (((n - 1) as u8) << 4);
            bytes[len..len + n].copy_from_slice(&self.kid.to_be_bytes()[8 - n..]);
            len += n;
        }
        if self.ctr < 8 {
            config |= self.ctr as u8;
        } else {
            let n = min_len(self.ctr);
            config |= 0x08 | ((n - 1) as u8);
            bytes[len..len + n].copy_from_slice(&self.ctr.to_be_bytes()[8 - n..]);
            len += n;
        }
        bytes[0] = config;
        EncodedHeader {
            bytes,
            // At most 17, fits a u8.
            len: len as u8,
        }
    }

    /// Parses a header from the start of `input`, returning it and its length in bytes.
    ///
    /// Non-minimal encodings are accepted (RFC 9605 does not forbid them); they cannot be used to
    /// alter a frame, because the header bytes as received are part of the AAD.
    pub fn parse(input: &[u8]) -> Result<(Header, usize), HeaderError> {
        let (&config, _) = input.split_first().ok_or(HeaderError::Empty)?;
        let kid_len = if config & 0x80 != 0 {
            usize::from((config >> 4) & 0x07) + 1
        } else {
            0
        };
        let ctr_len = if config & 0x08 != 0 {
            usize::from(config & 0x07) + 1
        } else {
            0
        };
        let needed = 1 + kid_len + ctr_len;
        let Some(rest) = input.get(1..needed) else {
            return Err(HeaderError::Truncated {
                needed,
                available: input.len(),
            });
        };
        let (kid_bytes, ctr_bytes) = rest.split_at(kid_len);
        let kid = if kid_len == 0 {
            u64::from((config >> 4) & 0x07)
        } else {
            be_u64(kid_bytes)
        };
        let ctr = if ctr_len == 0 {
            u64::from(config & 0x07)
        } else {
            be_u64(ctr_bytes)
        };
        Ok((Header { kid, ctr }, needed))
    }
}

/// Big-endian value of 1–8 bytes.
fn be_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_round_trip() {
        for kid in [0, 7, 8, 255, 256, u64::MAX] {
            for ctr in [0, 7, 8, 0xffff, 0x1_0000, u64::MAX] {
                let h = Header::new(kid, ctr);
                let enc = h.encode();
                assert_eq!(enc.len(), h.encoded_len());
                assert_eq!(Header::parse(enc.as_bytes()), Ok((h, enc.len())));
            }
        }
        assert_eq!(
            Header::new(u64::MAX, u64::MAX).encoded_len(),
            MAX_HEADER_LEN
        );
    }

    #[test]
    fn truncation_is_reported_with_lengths() {
        let enc = Header::new(u64::MAX, u64::MAX).encode();
        assert_eq!(Header::parse(&[]), Err(HeaderError::Empty));
        for cut in 1..enc.len() {
            assert_eq!(
                Header::parse(&enc.as_bytes()[..cut]),
                Err(HeaderError::Truncated {
                    needed: MAX_HEADER_LEN,
                    available: cut
                })
            );
        }
    }
}
