//! Key envelopes (docs/e2ee.md §3): a sender's base key for (slot, generation, step) sealed
//! with HPKE to one recipient device and signed with the sender's identity key. The key is 32
//! bytes at step 0 and the suite's `Nh` bytes once ratcheted, so `ct` is 48 or 80 bytes.

use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hpke_base::{AesGcm256, HpkeError, open_with, seal_to};
use crate::identity::{DeviceKeys, VerifiedBundle};
use crate::key::{BASE_KEY_LEN, BaseKey};
use crate::kid::{KidError, MAX_SLOT};
use crate::suite::{CipherSuite, UnknownSuite};
use crate::wire::{FieldTooLong, b64_array, b64_vec, put_lp};

const INFO_LABEL: &[u8] = b"e2ee-sfu/hpke-info/v1";
const AAD_LABEL: &[u8] = b"e2ee-sfu/hpke-aad/v1";
const SIG_LABEL: &[u8] = b"e2ee-sfu/envelope/v1";
/// AES-256-GCM tag added to the wrapped key.
const HPKE_TAG_LEN: usize = 16;

/// Length of the base key an envelope carries (docs/e2ee.md §3): 32 bytes at step 0 (freshly
/// drawn), the suite's `Nh` once ratcheted (RFC 9605 §5.1).
pub fn envelope_key_len(suite: CipherSuite, step: u8) -> usize {
    if step == 0 {
        BASE_KEY_LEN
    } else {
        suite.hash_len()
    }
}

/// Why an envelope was not made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Only version 1 is defined.
    #[error("unsupported envelope version {0}")]
    Version(u32),
    /// The envelope is addressed to another device.
    #[error("envelope addressed to another device")]
    WrongRecipient,
    /// The envelope is for another room.
    #[error("envelope for another room")]
    WrongRoom,
    /// The envelope is for another call.
    #[error("envelope for another call")]
    WrongCall,
    /// The sender named in the envelope is not the bundle given to check it.
    #[error("envelope sender does not match the sender's bundle")]
    SenderMismatch,
    /// The signature does not verify under the sender's identity key.
    #[error("bad envelope signature")]
    BadSignature,
    /// The suite number is not an SFrame suite.
    #[error(transparent)]
    UnknownSuite(#[from] UnknownSuite),
    /// The slot is out of range.
    #[error(transparent)]
    Kid(#[from] KidError),
    /// A text field is too long to length-prefix.
    #[error(transparent)]
    FieldTooLong(#[from] FieldTooLong),
    /// The base key (or the ciphertext wrapping it) has the wrong length for its suite and
    /// step: 32 bytes at step 0, the suite's `Nh` once ratcheted.
    #[error("base key must be {expected} bytes for this suite and step, got {actual}")]
    BaseKeyLength {
        /// Length the suite and step call for.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// HPKE failed (for a recipient: not for this device's key, or altered).
    #[error(transparent)]
    Hpke(#[from] HpkeError),
    /// The JSON form is malformed.
    #[error("malformed envelope JSON: {0}")]
    Json(String),
}

/// Which key an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGrant {
    /// The sender's slot.
    pub slot: u16,
    /// The sender's key generation.
    pub generation: u16,
    /// The ratchet step of the wrapped base key.
    pub step: u8,
    /// The SFrame suite the key is for.
    pub suite: CipherSuite,
}

/// A key envelope in its JSON wire form (docs/e2ee.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEnvelope {
    /// Format version, 1.
    pub v: u32,
    /// Room name.
    pub room: String,
    /// Call id.
    pub call: String,
    /// Sender device id.
    pub sender: String,
    /// Recipient device id.
    pub recipient: String,
    /// Sender slot.
    pub slot: u16,
    /// Key generation.
    pub generation: u16,
    /// Ratchet step.
    pub step: u8,
    /// SFrame suite number.
    pub suite: u16,
    /// HPKE encapsulated key.
    #[serde(with = "b64_array")]
    pub enc: [u8; 32],
    /// HPKE ciphertext (base key and tag).
    #[serde(with = "b64_vec")]
    pub ct: Vec<u8>,
    /// Ed25519 signature by the sender.
    #[serde(with = "b64_array")]
    pub sig: [u8; 64],
}

struct Names<'a> {
    room: &'a str,
    call: &'a str,
    sender: &'a str,
    recipient: &'a str,
}

fn info(n: &Names<'_>) -> Result<Vec<u8>, FieldTooLong> {
    let mut out = Vec::with_capacity(INFO_LABEL.len() + 8 + n.room.len() + n.call.len() + 128);
    out.extend_from_slice(INFO_LABEL);
    for field in [n.room, n.call, n.sender, n.recipient] {
        put_lp(&mut out, field.as_bytes())?;
    }
    Ok(out)
}

fn grant_bytes(out: &mut Vec<u8>, slot: u16, generation: u16, step: u8, suite: u16) {
    out.extend_from_slice(&slot.to_be_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    out.push(step);
    out.extend_from_slice(&suite.to_be_bytes());
}

fn aad(slot: u16, generation: u16, step: u8, suite: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_LABEL.len() + 7);
    out.extend_from_slice(AAD_LABEL);
    grant_bytes(&mut out, slot, generation, step, suite);
    out
}

impl KeyEnvelope {
    fn names(&self) -> Names<'_> {
        Names {
            room: &self.room,
            call: &self.call,
            sender: &self.sender,
            recipient: &self.recipient,
        }
    }

    /// The signed bytes: `"e2ee-sfu/envelope/v1" || lp(room) || lp(call) || lp(sender) ||
    /// lp(recipient) || u16(slot) || u16(generation) || u8(step) || u16(suite) || lp(enc) ||
    /// lp(ct)`.
    fn signed_message(&self) -> Result<Vec<u8>, FieldTooLong> {
        let mut out = Vec::with_capacity(256 + self.ct.len());
        out.extend_from_slice(SIG_LABEL);
        let n = self.names();
        for field in [n.room, n.call, n.sender, n.recipient] {
            put_lp(&mut out, field.as_bytes())?;
        }
        grant_bytes(&mut out, self.slot, self.generation, self.step, self.suite);
        put_lp(&mut out, &self.enc)?;
        put_lp(&mut out, &self.ct)?;
        Ok(out)
    }

    /// Wraps `base_key` for `recipient`, signed by `sender`. The key must have the length
    /// [`envelope_key_len`] gives for the grant's suite and step.
    pub fn seal(
        sender: &DeviceKeys,
        recipient: &VerifiedBundle,
        room: &str,
        call: &str,
        grant: KeyGrant,
        base_key: &BaseKey,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyEnvelope, EnvelopeError> {
        if grant.slot > MAX_SLOT {
            return Err(KidError::SlotOutOfRange(grant.slot).into());
        }
        let expected = envelope_key_len(grant.suite, grant.step);
        if base_key.as_bytes().len() != expected {
            return Err(EnvelopeError::BaseKeyLength {
                expected,
                actual: base_key.as_bytes().len(),
            });
        }
        let names = Names {
            room,
            call,
            sender: sender.device().as_str(),
            recipient: recipient.device().as_str(),
        };
        let suite = grant.suite.id();
        let (enc, ct) = seal_to::<AesGcm256>(
            recipient.hpke_key(),
            &info(&names)?,
            &aad(grant.slot, grant.generation, grant.step, suite),
            base_key.as_bytes(),
            rng,
        )?;
        let mut env = KeyEnvelope {
            v: 1,
            room: room.to_owned(),
            call: call.to_owned(),
            sender: names.sender.to_owned(),
            recipient: names.recipient.to_owned(),
            slot: grant.slot,
            generation: grant.generation,
            step: grant.step,
            suite,
            enc,
            ct,
            sig: [0; 64],
        };
        env.sig = sender.sign(&env.signed_message()?);
        Ok(env)
    }

    /// Checks and opens an envelope addressed to `me`: version, room and call, recipient,
    /// sender identity, then the signature (before any decryption), suite and slot, and finally
    /// HPKE. Returns what key it is and the base key.
    pub fn open(
        &self,
        me: &DeviceKeys,
        sender: &VerifiedBundle,
        room: &str,
        call: &str,
    ) -> Result<(KeyGrant, BaseKey), EnvelopeError> {
        if self.v != 1 {
            return Err(EnvelopeError::Version(self.v));
        }
        if self.room != room {
            return Err(EnvelopeError::WrongRoom);
        }
        if self.call != call {
            return Err(EnvelopeError::WrongCall);
        }
        if self.recipient != me.device().as_str() {
            return Err(EnvelopeError::WrongRecipient);
        }
        if self.sender != sender.device().as_str() {
            return Err(EnvelopeError::SenderMismatch);
        }
        let sig = ed25519_dalek::Signature::from_bytes(&self.sig);
        sender
            .verifying_key()
            .verify_strict(&self.signed_message()?, &sig)
            .map_err(|_| EnvelopeError::BadSignature)?;
        let suite = CipherSuite::try_from(self.suite)?;
        if self.slot > MAX_SLOT {
            return Err(KidError::SlotOutOfRange(self.slot).into());
        }
        let expected = envelope_key_len(suite, self.step);
        if self.ct.len() != expected + HPKE_TAG_LEN {
            return Err(EnvelopeError::BaseKeyLength {
                expected,
                actual: self.ct.len().saturating_sub(HPKE_TAG_LEN),
            });
        }
        let mut plain = open_with::<AesGcm256>(
            me.hpke_private(),
            &self.enc,
            &info(&self.names())?,
            &aad(self.slot, self.generation, self.step, self.suite),
            &self.ct,
        )?;
        let key = if plain.len() == expected {
            // 32 or Nh (at most 64) bytes: within BaseKey's 1..=64.
            Ok(BaseKey::from_bytes(&plain).expect("32- or Nh-byte key"))
        } else {
            Err(EnvelopeError::BaseKeyLength {
                expected,
                actual: plain.len(),
            })
        };
        zeroize::Zeroize::zeroize(&mut plain);
        let grant = KeyGrant {
            slot: self.slot,
            generation: self.generation,
            step: self.step,
            suite,
        };
        Ok((grant, key?))
    }

    /// The JSON wire form.
    pub fn to_json(&self) -> String {
        // Plain strings and numbers: serializing cannot fail.
        serde_json::to_string(self).expect("envelope serializes")
    }

    /// Parses the JSON wire form (unverified until [`KeyEnvelope::open`]).
    pub fn from_json(json: &str) -> Result<Self, EnvelopeError> {
        serde_json::from_str(json).map_err(|e| EnvelopeError::Json(e.to_string()))
    }
}
