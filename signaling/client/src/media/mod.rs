//! Media as a client sends and receives it, without I/O: encoded frames sealed with SFrame
//! behind their codec-aware clear prefix, cut into RTP payloads, and put back together on the
//! receiving side. No WebRTC stack is needed (no feature `peer`): the load generator's sans-IO
//! viewer engine and the async peer both use this module.
//!
//! | file | what it holds |
//! |---|---|
//! | `frame_e2ee.rs` | [`seal_frame`]/[`open_frame`]: `clear_prefix ‖ sframe_header ‖ ciphertext ‖ tag` (docs/e2ee.md §1.2), failures sorted into missing key, replay, refused |
//! | `vp8_header.rs` | [`Vp8Header`]: the VP8 frame header (RFC 6386 §9.1) the clear prefix holds, keyframe detection |
//! | `vp8_descriptor.rs` | the VP8 RTP payload descriptor (RFC 7741 §4.2) |
//! | `rtp.rs` | [`Vp8Packetizer`] (frames to RTP payloads), Opus payloads (RFC 7587) |
//! | `vp8_reassembler.rs` | [`Vp8Reassembler`]: RTP payloads back to frames, in order, like a jitter buffer |
//!
//! The clear-prefix rule itself is [`e2ee_frames::clear_prefix_len`] (Rust) and
//! `clearPrefixLength` in `signaling/web/e2ee/media.mjs` (browser); the test
//! `clear_prefix_matches_the_browser_rule` holds both to one vector file.

mod frame_e2ee;
pub mod rtp;
mod vp8_descriptor;
mod vp8_header;
mod vp8_reassembler;

pub use e2ee_frames::{Codec, clear_prefix_len};
pub use frame_e2ee::{OpenError, open_frame, seal_frame};
pub use rtp::{MAX_RTP_PAYLOAD, Vp8Packetizer};
pub use vp8_descriptor::{Vp8Descriptor, Vp8DescriptorError, vp8_descriptor_len, vp8_frame_bytes};
pub use vp8_header::{
    VP8_DELTA_HEADER_LEN, VP8_KEYFRAME_HEADER_LEN, VP8_START_CODE, Vp8Header, Vp8HeaderError,
};
pub use vp8_reassembler::{
    AssembledFrame, DEFAULT_REORDER_WINDOW, PayloadError, ReassemblerCounts, Vp8Reassembler,
};
