//! Media sources of the simulated participants: real Opus audio and VP8-shaped simulcast video.
//!
//! Both produce *frames* (what SFrame encrypts); packetization into RTP happens later, in the
//! WebRTC stack for the scenarios and in [`crate::baseline`] for the plain relay.

pub mod opus_tone;
pub mod vp8_frames;
