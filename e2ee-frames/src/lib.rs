//! End-to-end media encryption: SFrame (RFC 9605), HPKE key envelopes (RFC 9180) and identity
//! verification. Pure logic, no I/O: time is passed in, randomness comes from the caller's RNG.
//!
//! The byte-level rules are in `docs/e2ee.md`; the browser twin in `signaling/web/e2ee/`
//! implements the same rules and the cross-implementation tests check both agree.
//!
//! Layers, bottom up:
//! - [`suite`], [`header`], [`aead`], [`key`]: RFC 9605 proper (header, AEADs, derivation,
//!   ratchet) — [`SframeKey`] caches one KID's cipher state.
//! - [`kid`], [`media`]: the project's KID layout and codec-aware clear prefixes.
//! - [`sender`], [`receiver`]: counters, look-ahead ratchet, replay window, eviction.
//! - [`identity`], [`hpke_base`], [`envelope`]: device bundles and HPKE key envelopes.
//! - [`verification`]: safety numbers and call security codes.
//! - [`emoji_sequence`]: the emoji (and word) form of a pair's safety number.
//! - [`signature`]: detached Ed25519 signatures over labelled documents (recording policies).
//! - [`chat`]: chat messages sealed under a key derived from the sender's current base key.

pub mod aead;
pub mod chat;
pub mod emoji_sequence;
pub mod envelope;
pub mod header;
pub mod hpke_base;
pub mod identity;
pub mod key;
pub mod kid;
pub mod media;
pub mod receiver;
pub mod sender;
pub mod signature;
pub mod suite;
pub mod verification;
pub mod wire;

pub use chat::{ChatContext, ChatError, SealedChat};
pub use emoji_sequence::{EMOJI_TABLE, EmojiSequence, EmojiSymbol, emoji_sequence};
pub use envelope::{EnvelopeError, KeyEnvelope, KeyGrant, envelope_key_len};
pub use header::{Header, HeaderError, MAX_HEADER_LEN};
pub use identity::{BundleError, DeviceBundle, DeviceId, DeviceKeys, VerifiedBundle};
pub use key::{BaseKey, SframeError, SframeKey};
pub use kid::{Kid, KidError, Stream};
pub use media::{Codec, FrameKind, clear_prefix_len};
pub use receiver::{InstallError, KeyStore, ReceiveError, Received};
pub use sender::{SendError, Sender};
pub use signature::{DocumentSigner, SignatureError, verify_labelled};
pub use suite::{CipherSuite, UnknownSuite};
pub use verification::{
    DeviceIdentity, RosterEntry, SafetyNumber, SecurityCode, safety_number, security_code,
};
