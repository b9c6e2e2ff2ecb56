//! What the engine uses from the client library and the load-test client: the protocol types
//! (`call_client::protocol`), the key ring, the SDP filters of the loopback peer.

pub(super) use crate::key_exchange::KeyRing;
pub(super) use call_client::peer::{OPUS_PT, loopback_only_sdp, rewrite_candidates};
pub(super) use call_client::protocol::{
    ClientMessage, ClientOffer, ErrorBody, Join, KeyAck, Leave, LeftNotice, PROTOCOL_VERSION,
    RosterDelta, SdpBody, ServerMessage, TrackInfo, TrackPublished, TrackUnpublished,
};
