//! The recorder's archive, end to end with real parts: real Opus and VP8 through the sink API,
//! real age encryption, real files, ffmpeg/ffprobe on what export writes.

mod common;
mod confidentiality;
mod enrolment;
mod export;
mod integrity;
mod retention;
