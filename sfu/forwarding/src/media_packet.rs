//! One incoming media packet after parsing: the fields forwarding needs, copied once, and the
//! payload as a shared `Bytes` slice that every subscriber's transmit refers to.

use std::time::Instant;

use bytes::Bytes;

use crate::{rtp::AudioLevel, vp8::Vp8Descriptor};

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct MediaPacket {
    /// Source sequence number (for RTX input: the original sequence number).
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    pub(crate) marker: bool,
    /// The payload ends with RTP padding (its last byte counts it).
    pub(crate) padding: bool,
    /// The VP8 descriptor, rewritten per subscriber.
    pub(crate) vp8: Option<Vp8Descriptor>,
    /// A subscriber may start (or switch to this layer) at this packet.
    pub(crate) switch_point: bool,
    pub(crate) audio_level: Option<AudioLevel>,
    /// Payload after the VP8 descriptor, to the end of the packet (padding included).
    pub(crate) payload: Bytes,
    pub(crate) arrival: Instant,
}
