//! Shape checks of what the protocol carries: device bundles, key envelopes, recording
//! policies, and the device id / room name syntax.
//!
//! Everything checked here comes from untrusted input (client messages, admin requests, signed
//! recording policies); a value that does not fit is refused with a [`ShapeError`], never a
//! panic. Nothing here opens key material: only syntax and lengths are looked at.

use e2ee_frames::DeviceId;

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
    /// A variable-length field is longer than its bound.
    #[error("{field} must be at most {max} bytes, got {got}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Most bytes allowed.
        max: usize,
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

/// Checks the device id syntax of docs/e2ee.md §2 (the rule is `e2ee_frames::DeviceId`'s).
pub fn validate_device_id(id: &str) -> Result<(), ShapeError> {
    match DeviceId::new(id) {
        Ok(_) => Ok(()),
        Err(_) => Err(ShapeError::DeviceId),
    }
}

/// Decodes base64url without padding; returns the bytes.
pub(crate) fn decode_b64(field: &'static str, value: &str) -> Result<Vec<u8>, ShapeError> {
    e2ee_frames::wire::b64_decode(value).ok_or(ShapeError::Base64(field))
}
