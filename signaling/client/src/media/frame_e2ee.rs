//! One encoded frame sealed and opened with SFrame (crate `e2ee-frames`, docs/e2ee.md §1.2):
//! on the wire `clear_prefix ‖ sframe_header ‖ ciphertext ‖ tag`, where the clear prefix is the
//! codec's header bytes ([`e2ee_frames::clear_prefix_len`]: VP8 keyframe 10, VP8 delta 3, Opus
//! 1), readable by the SFU and authenticated as SFrame metadata. The browser applies the same
//! rule (`signaling/web/e2ee/media.mjs`).
//!
//! A refused frame is sorted into what a receiver counts apart: a frame it holds no key for
//! (it came before its key, or from a step it ratcheted past), a replay, and a frame that did
//! not authenticate or parse (forged, damaged, truncated).

use std::time::Instant;

use e2ee_frames::{Codec, Header, KeyStore, ReceiveError, Received, SendError, Sender, Stream};
use thiserror::Error;

/// Why a received frame was not opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No key for the frame's KID: an unknown sender or generation, a ratchet step older than
    /// the held one or beyond the look-ahead. Not a forgery: the key may still come.
    #[error("no key for this frame: {0}")]
    KeyMissing(#[source] ReceiveError),
    /// A counter already seen or below the replay window.
    #[error("replayed frame: {0}")]
    Replay(#[source] ReceiveError),
    /// The frame did not parse or authenticate (bad header or KID, truncated, forged).
    #[error("frame refused: {0}")]
    Refused(#[source] ReceiveError),
}

impl From<ReceiveError> for OpenError {
    fn from(e: ReceiveError) -> Self {
        match e {
            ReceiveError::Replay(_) => OpenError::Replay(e),
            ReceiveError::UnknownKid(_)
            | ReceiveError::StepTooOld { .. }
            | ReceiveError::RatchetBeyondBound { .. } => OpenError::KeyMissing(e),
            _ => OpenError::Refused(e),
        }
    }
}

/// Seals the encoded `frame` of `codec` on SFrame stream `stream` with `sender`'s current key:
/// clears `out` and writes the wire form into it. Returns the SFrame header used.
pub fn seal_frame(
    sender: &mut Sender,
    stream: Stream,
    codec: Codec,
    frame: &[u8],
    out: &mut Vec<u8>,
) -> Result<Header, SendError> {
    sender.encrypt_media(stream, codec, frame, out)
}

/// Opens the wire form `wire` of a frame of `codec` with the keys of `keys` (`now` drives the
/// key store's timers): clears `out` and writes the encoded frame into it (clear prefix
/// included, so `out` is what the sender sealed). Returns who sent it and its counter.
pub fn open_frame(
    keys: &mut KeyStore,
    now: Instant,
    codec: Codec,
    wire: &[u8],
    out: &mut Vec<u8>,
) -> Result<Received, OpenError> {
    Ok(keys.decrypt_media(now, codec, wire, out)?)
}
