//! Shape checks shared by the client protocol ([`crate::protocol`]) and room policies
//! ([`crate::policy`]): device id syntax and base64url fields of a fixed length.
//!
//! Everything checked here comes from untrusted input (client messages, admin requests, signed
//! recording policies); a value that does not fit is refused with a [`ShapeError`], never a
//! panic. Nothing here opens key material: only syntax and lengths are looked at.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A shape problem in a bundle, envelope or policy: the message is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShapeError {
    /// The format version is not 1.
    #[error("unsupported format version {0}")]
    Version(u32),
    /// A device id is empty, longer than 64 characters or has a character outside `[A-Za-z0-9_-]`.
    #[error("device id must be 1-64 characters of [A-Za-z0-9_-]")]
    DeviceId,
    /// A field is not base64url without padding.
    #[error("{0} is not base64url without padding")]
    Base64(&'static str),
    /// A field decodes to the wrong number of bytes.
    #[error("{field} must be {expected} bytes, got {got}")]
    Length {
        /// Which field.
        field: &'static str,
        /// Bytes required.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// A numeric field is out of its range.
    #[error("{0} out of range")]
    Range(&'static str),
    /// A field is missing or of the wrong JSON type inside an embedded document.
    #[error("{0}")]
    Document(String),
}

/// Checks the device id syntax of docs/e2ee.md §2.
pub fn validate_device_id(id: &str) -> Result<(), ShapeError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ShapeError::DeviceId)
    }
}

/// Decodes base64url without padding; returns the bytes.
pub(crate) fn decode_b64(field: &'static str, value: &str) -> Result<Vec<u8>, ShapeError> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| ShapeError::Base64(field))
}

/// Checks that `value` is base64url without padding of exactly `expected` bytes.
pub(crate) fn check_b64_len(
    field: &'static str,
    value: &str,
    expected: usize,
) -> Result<(), ShapeError> {
    // A base64 string much longer than needed is refused before decoding anything.
    if value.len() > expected * 2 {
        return Err(ShapeError::Length {
            field,
            expected,
            got: value.len() * 3 / 4,
        });
    }
    let got = decode_b64(field, value)?.len();
    if got == expected {
        Ok(())
    } else {
        Err(ShapeError::Length {
            field,
            expected,
            got,
        })
    }
}
