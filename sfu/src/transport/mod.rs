//! The transport shell: ICE-lite, DTLS-SRTP and consent freshness for many peer connections on
//! one UDP socket per shard (and, optionally, one ICE-TCP listener beside it), driving the
//! sans-IO `rtc` crate directly.
//!
//! See the crate's README for the demultiplexing rules, the API and what `rtc` does and does not
//! do here.

mod allow_list;
mod codecs;
mod config;
mod datagram_pool;
mod dtls_alert;
mod error;
mod events;
mod ice_tcp;
mod kernel_drops;
mod media;
mod peer;
mod protocol_byte;
mod relay_srtp;
mod rtcp_delivery;
mod sections;
mod send_batch;
mod shard;
#[cfg(test)]
mod srtp_in_place_tests;
mod stats;
mod stun_gate;
mod udp_receive;

pub use allow_list::SourceAllowList;
pub use codecs::{
    ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, DEPENDENCY_DESCRIPTOR_URI, MID_URI, REPAIRED_RID_URI,
    RID_URI, TRANSPORT_CC_URI,
};
pub use config::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONSENT_TIMEOUT, DtlsRole, TransportConfig};
pub use error::{StartError, TransportError};
pub use events::{
    CloseReason, IncomingTrack, MediaKind, NegotiatedCodec, NegotiatedExtension,
    NegotiatedOutgoingTrack, OutgoingTrack, PeerEvent, PeerId, ReceiveSection,
};
pub use ice_tcp::{DEFAULT_ICE_TCP_STUN_TIMEOUT, IceTcpClose, IceTcpCloses, IceTcpConfig};
pub use media::{MediaHandler, Outbox};
pub use relay_srtp::{RelayCrypto, RelayKeyError, RelayKeyMaterial, RelayRefusal, Unprotected};
pub use shard::{PeerAdded, ShardAccess, ShardHandle, start_shard};
pub use stats::{ShardStats, StunRefusal};
pub use stun_gate::StunParseError;
