//! The recorder's live side against the real service: signaling with its SFU embedded in the
//! test process (loopback only), real native callers, a policy signed with a real admin key, and
//! an in-memory archive that keeps what the live side handed it.

mod common;
mod live_recording;
mod serve_rooms;
