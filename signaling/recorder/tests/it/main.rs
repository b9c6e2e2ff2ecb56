//! The recorder with real parts.
//! - The archive: real Opus and VP8 through the sink API, real age encryption, real files,
//!   ffmpeg/ffprobe on what export writes (`common`, `confidentiality`, `enrolment`, `export`,
//!   `integrity`, `retention`); the chat transcript (`chat_archive`).
//! - The live side against the real service: signaling with its SFU embedded in the test process
//!   (loopback only), real native callers, a policy signed with a real admin key, and an
//!   in-memory archive that keeps what the live side handed it (`live_service`,
//!   `live_recording`, `serve_rooms`).
//! - End to end, every part its own process: `signaling dev`, `recorder serve`, `verify`,
//!   `export`, ffprobe on the exported files (`meeting_e2e`); a policy signed by an admin key the
//!   recorder does not trust, and a recorder trusting none (`untrusted_admin_key`).

mod chat_archive;
mod common;
mod confidentiality;
mod enrolment;
mod export;
mod integrity;
mod live_recording;
mod live_service;
mod meeting_e2e;
mod retention;
mod serve_rooms;
mod untrusted_admin_key;
