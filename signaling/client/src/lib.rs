//! `call-client`: the one native client of the call protocol.
//!
//! The signaling service, the load generator, the integration tests of the SFU and of signaling,
//! and the compliance recorder all speak the protocol of `docs/protocol.md` through this crate, so
//! the protocol has one definition in Rust. Modules (each added as it moves here):
//!
//! | module | what it is |
//! |---|---|
//! | `protocol` | every client↔server message as two-way serde types (typed enums); the service re-exports it |
//! | `access_token` | the claims of an access token and their HS256 signing (protocol §7) |
//! | `chat` | end-to-end encrypted chat: sealing under the sender key, opening with received keys ratcheted forward |
//! | `keys` | the key policy as a sans-IO state machine (ratchet on join, rekey, acks, rotation) |
//! | `media` | SFrame seal/open with the codec-aware clear prefix, RTP (de)packetization |
//! | `peer` | a loopback-only WebRTC peer (feature `peer`) |
//! | `session` | a WebSocket client: join, request ids, refusals matched to requests, reconnect (feature `session`) |
//!
//! Guide, tests and where to change what: `signaling/client/README.md`.

pub mod access_token;
pub mod chat;
pub mod keys;
pub mod media;
pub mod protocol;

#[cfg(feature = "peer")]
pub mod peer;

#[cfg(feature = "session")]
pub mod session;
