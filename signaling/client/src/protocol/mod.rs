//! The client protocol on `/v1/rtc`: JSON messages tagged by `type`, version [`PROTOCOL_VERSION`].
//!
//! `docs/protocol.md` is the normative description with an example of every message; the test
//! `every_protocol_doc_example_round_trips` parses each example into these types and writes it
//! back, so the document and the code cannot drift apart. Every message type is two-way
//! (`Serialize` and `Deserialize`): the signaling service reads [`ClientMessage`] and writes
//! [`ServerMessage`] with them, a native client (the load generator, tests) the other way round.
//!
//! Everything here is parsed from untrusted input: bundles and envelopes are `e2ee_frames`' own
//! wire types (their base64url fields decode to fixed-length bytes as they are parsed), and
//! [`Validate`] adds the shape checks the types cannot express. Key material stays opaque.
//!
//! | module | what it holds |
//! |---|---|
//! | `chat` | the sealed [`SealedChat`] (from `e2ee_frames`) of `chat` in both directions |
//! | `client` | client → server messages ([`ClientMessage`]) and the limits they are held to |
//! | `server` | server → client messages ([`ServerMessage`]), [`ServerMessage::parse`] for clients |
//! | `error_code` | the stable [`ErrorCode`]s of `error` |
//! | `hand` | raised hands: the client's [`Hand`], the server's [`DeviceHand`], `joined`'s [`RaisedHand`]s |
//! | `keys` | [`DeviceBundle`], [`KeyEnvelope`] (from `e2ee_frames`), [`EnvelopeBody`], [`Validate`] |
//! | `media_state` | [`MediaState`]: microphone, camera and screen share of a device |
//! | `media` | SDP bodies, announced and published tracks, subscriptions, speakers |
//! | `moderation` | moderator actions ([`ModerationAction`]), the lobby and `mute_requested` |
//! | `room` | [`Role`] and [`RoomKind`] |
//! | `recording` | the signed [`RecordingPolicy`] of a recorded room |
//! | `recorder_events` | [`RecorderEvent`]: the lines of the recorder event stream |
//! | `shape` | [`ShapeError`] and the device id rule |
//!
//! Every item is re-exported here, so paths stay `protocol::Name`.

mod chat;
mod client;
mod error_code;
mod hand;
mod keys;
mod media;
mod media_state;
mod moderation;
mod recorder_events;
mod recording;
mod room;
mod server;
mod shape;

pub use chat::*;
pub use client::*;
pub use error_code::*;
pub use hand::*;
pub use keys::*;
pub use media::*;
pub use media_state::*;
pub use moderation::*;
pub use recorder_events::*;
pub use recording::*;
pub use room::*;
pub use server::*;
pub use shape::*;

/// The protocol version a client states in `join.v` and the server echoes in `joined.v`.
pub const PROTOCOL_VERSION: u32 = 1;
