//! The client protocol on `/v1/rtc`: JSON messages tagged by `type`, version [`PROTOCOL_VERSION`].
//!
//! `docs/protocol.md` is the normative description with an example of every message. Everything
//! here is parsed from untrusted input, so each type carries its own shape checks
//! ([`DeviceBundle::validate`], [`KeyEnvelope::validate`]) and refuses what does not fit instead of
//! panicking. Key material stays opaque: the service checks lengths and routing fields only.
//!
//! Client → server messages are in `client`, server → client messages in `server`, error codes
//! in `error_code`; bundles and envelopes (`keys`) and SDP and track descriptions (`media`)
//! travel both ways; `sdp_send_check` judges whether an SDP lets a device send media (a viewer's
//! must not). Every item is re-exported here, so paths stay `protocol::Name`.

mod client;
mod error_code;
mod keys;
mod media;
mod sdp_send_check;
mod server;

pub use client::*;
pub use error_code::*;
pub use keys::*;
pub use media::*;
pub use sdp_send_check::*;
pub use server::*;

/// The protocol version a client states in `join.v` and the server echoes in `joined.v`.
pub const PROTOCOL_VERSION: u32 = 1;
