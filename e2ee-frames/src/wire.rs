//! Byte encodings shared by signatures, HPKE `info`/`aad` and verification codes
//! (docs/e2ee.md notation), and base64url (no padding) for JSON fields.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use thiserror::Error;

/// A length-prefixed field longer than 65,535 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("field of {0} bytes exceeds the 65535-byte length prefix")]
pub struct FieldTooLong(pub usize);

/// Appends `lp(x) = u16(len(x)) || x`.
pub(crate) fn put_lp(out: &mut Vec<u8>, field: &[u8]) -> Result<(), FieldTooLong> {
    let len = u16::try_from(field.len()).map_err(|_| FieldTooLong(field.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
    Ok(())
}

/// base64url without padding (RFC 4648 §5).
pub fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; padded or standard-alphabet input is refused.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// serde adapter: fixed-length byte arrays as base64url strings.
pub(crate) mod b64_array {
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64_encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        let bytes = super::b64_decode(&text)
            .ok_or_else(|| D::Error::custom("invalid base64url (no padding)"))?;
        let len = bytes.len();
        bytes
            .try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes, got {len}")))
    }
}

/// serde adapter: variable-length bytes as base64url strings.
pub(crate) mod b64_vec {
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64_encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        super::b64_decode(&text).ok_or_else(|| D::Error::custom("invalid base64url (no padding)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lp_and_b64() {
        let mut out = Vec::new();
        put_lp(&mut out, b"abc").unwrap();
        assert_eq!(out, [0, 3, b'a', b'b', b'c']);
        assert_eq!(
            put_lp(&mut out, &vec![0; 65_536]),
            Err(FieldTooLong(65_536))
        );
        assert_eq!(b64_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64_decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(b64_decode("-_8="), None);
        assert_eq!(b64_decode("+/8"), None);
    }
}
