//! Media sources of the simulated participants: real Opus audio and VP8-shaped simulcast video.
//!
//! Both produce *frames* (what SFrame encrypts); packetization into RTP is [`call_client::media::Vp8Packetizer`]'s,
//! for the scenarios and for the plain relay of [`crate::baseline`].

pub mod opus_tone;
pub mod vp8_frames;
