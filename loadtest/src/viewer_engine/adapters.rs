//! What the engine uses from the client library and the load-test client: the protocol types
//! (`call_client::protocol`), the key policy (`call_client::keys`) and the participants' mapping
//! of messages to it, the SDP filters of the loopback peer.

pub(super) use call_client::keys::{KeyConfig, KeyInput, KeyManager, KeyOutput, RosterDevice};
pub(super) use call_client::keys::{key_inputs, key_message};
pub(super) use call_client::peer::{OPUS_PT, loopback_only_sdp, rewrite_candidates};
pub(super) use call_client::protocol::{
    ClientMessage, ClientOffer, ErrorBody, Join, Leave, LeftNotice, PROTOCOL_VERSION, SdpBody,
    ServerMessage, TrackInfo, TrackPublished, TrackUnpublished,
};
