//! The gate in front of every peer connection: reads just enough of a STUN binding request to
//! find whose it is (USERNAME) and to check its MESSAGE-INTEGRITY, without allocating.
//!
//! A request that fails here is refused before any per-peer state exists or is touched.

use ring::hmac;

/// STUN magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: u32 = 0x2112_A442;
const HEADER_LEN: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const MESSAGE_INTEGRITY_LEN: usize = 20;

/// Why a datagram that looked like STUN could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StunParseError {
    /// Shorter than a STUN header, or its length field disagrees with the datagram.
    #[error("truncated or inconsistent STUN message")]
    Truncated,
    /// The magic cookie is missing: not RFC 5389/8489 STUN.
    #[error("missing STUN magic cookie")]
    NoMagicCookie,
    /// An attribute runs past the end of the message.
    #[error("STUN attribute overruns the message")]
    AttributeOverrun,
    /// A binding request without USERNAME or MESSAGE-INTEGRITY (ICE requires both).
    #[error("binding request lacks USERNAME or MESSAGE-INTEGRITY")]
    MissingCredentials,
    /// USERNAME is not `ufrag:ufrag` in UTF-8.
    #[error("malformed USERNAME")]
    BadUsername,
}

/// What the gate found in a STUN datagram.
#[derive(Debug)]
pub(crate) enum StunMessage<'a> {
    /// A binding request carrying ICE short-term credentials.
    BindingRequest(BindingRequest<'a>),
    /// Any other well-formed STUN message (responses, indications).
    Other,
}

/// A binding request whose credentials have been located but not yet checked.
#[derive(Debug)]
pub(crate) struct BindingRequest<'a> {
    raw: &'a [u8],
    /// The receiver's ufrag: the part of USERNAME before the colon. The SFU generated it, so it
    /// names the peer connection.
    pub(crate) local_ufrag: &'a str,
    /// Offset of the MESSAGE-INTEGRITY attribute header in `raw`.
    integrity_offset: usize,
}

impl BindingRequest<'_> {
    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1 keyed with the receiver's ICE password, RFC 8489
    /// §14.5) in constant time.
    pub(crate) fn verify(&self, local_password: &[u8]) -> bool {
        let value_start = self.integrity_offset + 4;
        let Some(expected) = self
            .raw
            .get(value_start..value_start + MESSAGE_INTEGRITY_LEN)
        else {
            return false;
        };
        // The HMAC covers the message up to the attribute, with the header length adjusted to end
        // right after MESSAGE-INTEGRITY (attributes after it, such as FINGERPRINT, are excluded).
        let adjusted_len = (value_start + MESSAGE_INTEGRITY_LEN - HEADER_LEN) as u16;
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, local_password);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&self.raw[..2]);
        ctx.update(&adjusted_len.to_be_bytes());
        ctx.update(&self.raw[4..self.integrity_offset]);
        let tag = ctx.sign();
        constant_time_eq(tag.as_ref(), expected)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 7983 demultiplexing: STUN messages start with a byte in 0..=3.
pub(crate) fn looks_like_stun(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] <= 3
}

/// Reads a STUN message's header and attributes without allocating.
pub(crate) fn parse(raw: &[u8]) -> Result<StunMessage<'_>, StunParseError> {
    if raw.len() < HEADER_LEN {
        return Err(StunParseError::Truncated);
    }
    let message_type = u16::from_be_bytes([raw[0], raw[1]]);
    let length = usize::from(u16::from_be_bytes([raw[2], raw[3]]));
    let cookie = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
    if cookie != MAGIC_COOKIE {
        return Err(StunParseError::NoMagicCookie);
    }
    if HEADER_LEN + length != raw.len() || length % 4 != 0 {
        return Err(StunParseError::Truncated);
    }
    if message_type != BINDING_REQUEST {
        return Ok(StunMessage::Other);
    }

    let mut username: Option<&[u8]> = None;
    let mut integrity_offset = None;
    let mut offset = HEADER_LEN;
    while offset + 4 <= raw.len() {
        let attr_type = u16::from_be_bytes([raw[offset], raw[offset + 1]]);
        let attr_len = usize::from(u16::from_be_bytes([raw[offset + 2], raw[offset + 3]]));
        let value = raw
            .get(offset + 4..offset + 4 + attr_len)
            .ok_or(StunParseError::AttributeOverrun)?;
        match attr_type {
            ATTR_USERNAME if username.is_none() => username = Some(value),
            ATTR_MESSAGE_INTEGRITY => {
                if attr_len != MESSAGE_INTEGRITY_LEN {
                    return Err(StunParseError::MissingCredentials);
                }
                integrity_offset = Some(offset);
                // Attributes after MESSAGE-INTEGRITY are not covered by it; ignore them.
                break;
            }
            _ => {}
        }
        offset += 4 + attr_len.div_ceil(4) * 4;
    }

    let (Some(username), Some(integrity_offset)) = (username, integrity_offset) else {
        return Err(StunParseError::MissingCredentials);
    };
    let username = std::str::from_utf8(username).map_err(|_| StunParseError::BadUsername)?;
    let (local_ufrag, _remote_ufrag) = username
        .split_once(':')
        .ok_or(StunParseError::BadUsername)?;
    if local_ufrag.is_empty() {
        return Err(StunParseError::BadUsername);
    }
    Ok(StunMessage::BindingRequest(BindingRequest {
        raw,
        local_ufrag,
        integrity_offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::integrity::MessageIntegrity;
    use rtc::stun::message::TransactionId;
    use rtc::stun::message::{BINDING_REQUEST as RTC_BINDING_REQUEST, Message, Setter};
    use rtc::stun::textattrs::Username;

    fn request(username: &str, password: &str) -> Vec<u8> {
        let provider = rtc::crypto::default_provider().unwrap();
        let mut msg = Message::new();
        let setters: Vec<Box<dyn Setter>> = vec![
            Box::new(RTC_BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(Username::new(
                rtc::stun::attributes::ATTR_USERNAME,
                username.to_owned(),
            )),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                password.to_owned(),
                provider.crypto(),
            )),
            Box::new(rtc::stun::fingerprint::FINGERPRINT),
        ];
        msg.build(&setters).unwrap();
        msg.raw.clone()
    }

    #[test]
    fn verifies_a_request_built_by_the_rtc_stun_crate() {
        let raw = request("sfuufrag:clientufrag", "a-password-of-24-chars!!");
        let StunMessage::BindingRequest(req) = parse(&raw).unwrap() else {
            panic!("expected a binding request");
        };
        assert_eq!(req.local_ufrag, "sfuufrag");
        assert!(req.verify(b"a-password-of-24-chars!!"));
        assert!(!req.verify(b"another-password-entirely"));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_fails_integrity() {
        let raw = request("sfuufrag:clientufrag", "pw");
        for len in 0..raw.len() {
            if let Ok(StunMessage::BindingRequest(req)) = parse(&raw[..len]) {
                assert!(!req.verify(b"pw"), "truncated to {len} still verified");
            }
        }
        for i in 0..raw.len() {
            let mut flipped = raw.clone();
            flipped[i] ^= 0x01;
            if let Ok(StunMessage::BindingRequest(req)) = parse(&flipped) {
                // Only bits after MESSAGE-INTEGRITY (the FINGERPRINT) are not covered.
                if req.verify(b"pw") {
                    assert!(i >= raw.len() - 8, "flip at {i} still verified");
                }
            }
        }
    }

    #[test]
    fn arbitrary_lengths_never_panic() {
        let mut data = vec![0u8; 1500];
        data[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        for len in 0..data.len() {
            let _ = parse(&data[..len]);
        }
    }
}
