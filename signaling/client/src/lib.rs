//! `call-client`: the one native client of the call protocol.
//!
//! The signaling service, the load generator, the integration tests of the SFU and of signaling,
//! and the compliance recorder all speak the protocol of `docs/protocol.md` through this crate, so
//! the protocol has one definition in Rust. Modules (each added as it moves here):
//!
//! | module | what it is |
//! |---|---|
//! | `protocol` | every client↔server message as two-way serde types (typed enums) |
//! | `keys` | the key policy as a sans-IO state machine (ratchet on join, rekey, acks, rotation) |
//! | `media` | SFrame seal/open with the codec-aware clear prefix, RTP (de)packetization |
//! | `peer` | a loopback-only WebRTC peer (feature `peer`) |

pub mod keys;
