//! What the engine uses from the modules that are moving into the `call-client` crate (the
//! protocol types, the key policy, the SDP filters of the `webrtc` peer): every import from
//! them goes through here, so a merge re-points one file.

pub(super) use crate::client_protocol::{
    ClientMessage, PROTOCOL_VERSION, ServerMessage, Subscription, TrackInfo,
};
pub(super) use crate::key_exchange::{KeyRing, wire_bundle};
pub(super) use crate::rtc_peer::{OPUS_PT, loopback_only_sdp, rewrite_candidates};
