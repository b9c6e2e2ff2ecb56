//! End-to-end encrypted chat messages (docs/e2ee.md §6): a chat message is sealed under a key
//! derived from the sender's current SFrame base key with its own label (never the media key
//! itself), with AES-256-GCM, a random 96-bit nonce and the generation and step in the clear so
//! a receiver knows which of the sender's keys opens it. The signaling service relays the
//! sealed form untouched and checks only its shape and size.

use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroize as _;

use crate::aead::{NONCE_LEN, SframeAead};
use crate::key::BaseKey;
use crate::suite::CipherSuite;
use crate::wire::{FieldTooLong, b64_array, b64_vec, put_lp};

/// The HKDF `info` of the chat key.
pub const CHAT_KEY_LABEL: &[u8] = b"e2ee-sfu chat v1";
/// The first bytes of the AAD of every chat message.
const AAD_LABEL: &[u8] = b"e2ee-sfu/chat-aad/v1";
/// The AEAD: AES-256-GCM with a 16-byte tag (the AEAD of SFrame suite 5).
const CHAT_AEAD: CipherSuite = CipherSuite::Aes256GcmSha512_128;
/// Length of the chat key.
const CHAT_KEY_LEN: usize = 32;
/// Length of the GCM tag at the end of `ct`.
pub const CHAT_TAG_LEN: usize = 16;
/// Largest `ct` (ciphertext and tag) a chat message may have.
pub const MAX_CHAT_CIPHERTEXT_BYTES: usize = 4096;
/// Largest plaintext that fits [`MAX_CHAT_CIPHERTEXT_BYTES`].
pub const MAX_CHAT_PLAINTEXT_BYTES: usize = MAX_CHAT_CIPHERTEXT_BYTES - CHAT_TAG_LEN;

/// A sealed chat message, the JSON wire form the service relays (docs/e2ee.md §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedChat {
    /// Format version, 1.
    pub v: u32,
    /// The generation of the sender's base key it was sealed under.
    pub generation: u16,
    /// The ratchet step of that base key.
    pub step: u8,
    /// The random AES-GCM nonce.
    #[serde(with = "b64_array")]
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    #[serde(with = "b64_vec")]
    pub ct: Vec<u8>,
}

/// Who sent a chat message, where: bound into the AAD, so a message cannot be replayed as
/// another device's or into another room or call.
#[derive(Clone, Copy, Debug)]
pub struct ChatContext<'a> {
    /// Room name.
    pub room: &'a str,
    /// Call id.
    pub call: &'a str,
    /// Sending device id.
    pub sender: &'a str,
    /// The sender's slot.
    pub slot: u16,
}

/// Why a chat message was not sealed or not opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChatError {
    /// Only version 1 is defined.
    #[error("unsupported chat version {0}")]
    Version(u32),
    /// The plaintext or ciphertext is over the size bound.
    #[error("chat message of {0} bytes is over the {MAX_CHAT_CIPHERTEXT_BYTES}-byte bound")]
    TooLong(usize),
    /// The message is not for the key given (another generation or step).
    #[error("chat message sealed under generation {generation} step {step}, not this key")]
    WrongKey {
        /// The message's generation.
        generation: u16,
        /// The message's step.
        step: u8,
    },
    /// Authentication failed: another key, context, or an altered message.
    #[error("chat message does not authenticate")]
    Authentication,
    /// A text field of the context is too long to length-prefix.
    #[error(transparent)]
    FieldTooLong(#[from] FieldTooLong),
}

/// The chat key of a base key: `HKDF-SHA256(salt = "", ikm = base_key, info = "e2ee-sfu chat
/// v1", 32)`.
fn chat_aead(base_key: &BaseKey) -> SframeAead {
    let mut key = [0u8; CHAT_KEY_LEN];
    hkdf::Hkdf::<sha2::Sha256>::new(None, base_key.as_bytes())
        .expand(CHAT_KEY_LABEL, &mut key)
        .expect("32 bytes is within HKDF-SHA256's output limit");
    let aead = SframeAead::new(CHAT_AEAD, &key).expect("a 32-byte key for AES-256-GCM");
    key.zeroize();
    aead
}

/// `"e2ee-sfu/chat-aad/v1" || lp(room) || lp(call) || lp(sender) || u16(slot) ||
/// u16(generation) || u8(step)`.
fn aad(ctx: &ChatContext<'_>, generation: u16, step: u8) -> Result<Vec<u8>, FieldTooLong> {
    let mut out = Vec::with_capacity(64 + ctx.room.len() + ctx.call.len() + ctx.sender.len());
    out.extend_from_slice(AAD_LABEL);
    put_lp(&mut out, ctx.room.as_bytes())?;
    put_lp(&mut out, ctx.call.as_bytes())?;
    put_lp(&mut out, ctx.sender.as_bytes())?;
    out.extend_from_slice(&ctx.slot.to_be_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    out.push(step);
    Ok(out)
}

/// Seals `plaintext` under the base key of (`generation`, `step`) with the given nonce (use
/// [`seal`] for a random one; a fixed nonce is for test vectors only).
pub fn seal_with_nonce(
    base_key: &BaseKey,
    ctx: &ChatContext<'_>,
    generation: u16,
    step: u8,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<SealedChat, ChatError> {
    if plaintext.len() > MAX_CHAT_PLAINTEXT_BYTES {
        return Err(ChatError::TooLong(plaintext.len() + CHAT_TAG_LEN));
    }
    let aad = aad(ctx, generation, step)?;
    let ct = chat_aead(base_key).seal(&nonce, &aad, plaintext);
    Ok(SealedChat {
        v: 1,
        generation,
        step,
        nonce,
        ct,
    })
}

/// Seals `plaintext` with a fresh random nonce.
pub fn seal(
    base_key: &BaseKey,
    ctx: &ChatContext<'_>,
    generation: u16,
    step: u8,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<SealedChat, ChatError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with_nonce(base_key, ctx, generation, step, nonce, plaintext)
}

impl SealedChat {
    /// The shape checks the service runs before relaying: version 1, and a ciphertext of at
    /// least a tag and at most [`MAX_CHAT_CIPHERTEXT_BYTES`].
    pub fn check_shape(&self) -> Result<(), ChatError> {
        if self.v != 1 {
            return Err(ChatError::Version(self.v));
        }
        if self.ct.len() > MAX_CHAT_CIPHERTEXT_BYTES {
            return Err(ChatError::TooLong(self.ct.len()));
        }
        if self.ct.len() < CHAT_TAG_LEN {
            return Err(ChatError::Authentication);
        }
        Ok(())
    }

    /// Opens the message with the sender's base key of (`generation`, `step`); refuses a
    /// message sealed under another generation or step before trying.
    pub fn open(
        &self,
        base_key: &BaseKey,
        ctx: &ChatContext<'_>,
        generation: u16,
        step: u8,
    ) -> Result<Vec<u8>, ChatError> {
        self.check_shape()?;
        if (self.generation, self.step) != (generation, step) {
            return Err(ChatError::WrongKey {
                generation: self.generation,
                step: self.step,
            });
        }
        let aad = aad(ctx, self.generation, self.step)?;
        chat_aead(base_key)
            .open(&self.nonce, &aad, &self.ct)
            .map_err(|_| ChatError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: ChatContext<'static> = ChatContext {
        room: "standup",
        call: "c-1",
        sender: "dev-A",
        slot: 3,
    };

    #[test]
    fn chat_seals_and_opens() {
        let key = BaseKey::from_bytes(&[9; 32]).unwrap();
        let sealed = seal(&key, &CTX, 7, 2, b"hello", &mut rand::rng()).unwrap();
        assert_eq!(sealed.ct.len(), 5 + CHAT_TAG_LEN);
        assert_eq!(sealed.open(&key, &CTX, 7, 2).unwrap(), b"hello");
        let other = ChatContext {
            sender: "dev-B",
            ..CTX
        };
        assert_eq!(
            sealed.open(&key, &other, 7, 2),
            Err(ChatError::Authentication)
        );
    }

    #[test]
    fn chat_over_the_bound_is_refused() {
        let key = BaseKey::from_bytes(&[9; 32]).unwrap();
        let big = vec![b'x'; MAX_CHAT_PLAINTEXT_BYTES + 1];
        assert!(matches!(
            seal(&key, &CTX, 0, 0, &big, &mut rand::rng()),
            Err(ChatError::TooLong(_))
        ));
        let fits = vec![b'x'; MAX_CHAT_PLAINTEXT_BYTES];
        let sealed = seal(&key, &CTX, 0, 0, &fits, &mut rand::rng()).unwrap();
        assert_eq!(sealed.ct.len(), MAX_CHAT_CIPHERTEXT_BYTES);
        assert_eq!(sealed.check_shape(), Ok(()));
    }
}
