//! The SFU shell: sockets, timers, the control API and metrics around the forwarding core.
//!
//! [`transport`] holds the media transport: one tokio task per shard owns one UDP socket and
//! many `rtc` peer connections (ICE-lite, DTLS-SRTP, consent freshness), demultiplexed by ICE
//! username then by remote address.

pub mod control;
pub mod node;
pub mod ops;
pub mod transport;
