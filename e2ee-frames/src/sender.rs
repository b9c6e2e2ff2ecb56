//! The sending side: one base key per (slot, generation), a cached SFrame key and a counter per
//! stream, counters that never repeat.

use thiserror::Error;

use crate::Header;
use crate::key::{BaseKey, SframeError, SframeKey};
use crate::kid::{Kid, KidError, Stream};
use crate::media::{Codec, clear_prefix_len};
use crate::suite::CipherSuite;

/// Why a frame was not encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// The stream's counter is used up: encrypting again would reuse a nonce. Start a new
    /// generation (or ratchet step).
    #[error("SFrame counter exhausted for this KID; start a new generation")]
    CounterExhausted,
    /// The ratchet step is 255: the next key must be a new generation (docs/e2ee.md §1.1).
    #[error("ratchet step 255 reached; start a new generation")]
    StepExhausted,
    /// A counter may only move forward.
    #[error("counter may only move forward (next is {next}, asked {requested})")]
    CounterBackwards {
        /// The counter the stream would use next.
        next: u64,
        /// The counter asked for.
        requested: u64,
    },
    /// The KID fields are out of range.
    #[error(transparent)]
    Kid(#[from] KidError),
    /// The AEAD refused the frame (only for frames beyond its length limit).
    #[error(transparent)]
    Sframe(#[from] SframeError),
}

#[derive(Debug)]
struct StreamState {
    key: SframeKey,
    /// Counter for the next frame; `None` once `u64::MAX` was used.
    next_ctr: Option<u64>,
}

/// A sender's keys for one generation: encrypts frames of every stream under per-stream KIDs.
///
/// Each stream's SFrame key is derived on first use and cached. Counters start at 0 per KID and
/// grow by one per frame; a stream whose counter would wrap refuses to encrypt.
#[derive(Debug)]
pub struct Sender {
    suite: CipherSuite,
    slot: u16,
    generation: u16,
    step: u8,
    base_key: BaseKey,
    streams: [Option<StreamState>; 4],
}

impl Sender {
    /// A sender at ratchet step 0 of `generation`.
    pub fn new(
        suite: CipherSuite,
        slot: u16,
        generation: u16,
        base_key: BaseKey,
    ) -> Result<Self, SendError> {
        // Validates the slot once, so that `kid()` cannot fail later.
        Kid::new(slot, Stream::Audio, generation, 0)?;
        Ok(Sender {
            suite,
            slot,
            generation,
            step: 0,
            base_key,
            streams: Default::default(),
        })
    }

    /// A sender at ratchet `step` of `generation`, `base_key` being that step's key (the
    /// suite's `Nh` bytes once ratcheted): what a key policy that ratcheted the key itself
    /// hands to the media path. Counters start at 0, as after [`Sender::ratchet`].
    pub fn at_step(
        suite: CipherSuite,
        slot: u16,
        generation: u16,
        step: u8,
        base_key: BaseKey,
    ) -> Result<Self, SendError> {
        Kid::new(slot, Stream::Audio, generation, step)?;
        Ok(Sender {
            suite,
            slot,
            generation,
            step,
            base_key,
            streams: Default::default(),
        })
    }

    /// The suite frames are encrypted with.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The sender's slot.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// The key generation.
    pub fn generation(&self) -> u16 {
        self.generation
    }

    /// The current ratchet step.
    pub fn step(&self) -> u8 {
        self.step
    }

    /// The base key of the current step: what is wrapped to recipients (to a joiner after
    /// [`Sender::ratchet`]).
    pub fn base_key(&self) -> &BaseKey {
        &self.base_key
    }

    /// The KID a stream's frames carry now.
    pub fn kid(&self, stream: Stream) -> Kid {
        // Slot validated in `new`; the other fields are in range by type.
        Kid::new(self.slot, stream, self.generation, self.step).expect("slot checked in new")
    }

    /// The counter the stream's next frame will carry, or `None` once exhausted.
    pub fn next_counter(&self, stream: Stream) -> Option<u64> {
        match &self.streams[stream.index()] {
            Some(s) => s.next_ctr,
            None => Some(0),
        }
    }

    /// Moves a stream's counter forward to `next` (for a sender resuming after a restart).
    /// Moving it backwards is refused: that would reuse nonces.
    pub fn advance_counter(&mut self, stream: Stream, next: u64) -> Result<(), SendError> {
        let state = self.stream_state(stream);
        match state.next_ctr {
            Some(cur) if next >= cur => {
                state.next_ctr = Some(next);
                Ok(())
            }
            Some(cur) => Err(SendError::CounterBackwards {
                next: cur,
                requested: next,
            }),
            None => Err(SendError::CounterExhausted),
        }
    }

    /// Ratchets to the next step (RFC 9605 §5.1), e.g. when someone joins: new KIDs, new keys,
    /// counters back to 0. Refused at step 255.
    pub fn ratchet(&mut self) -> Result<(), SendError> {
        let next = self.step.checked_add(1).ok_or(SendError::StepExhausted)?;
        self.base_key = self.base_key.ratchet(self.suite);
        self.step = next;
        self.streams = Default::default();
        Ok(())
    }

    /// Encrypts `plaintext` with `metadata` as SFrame metadata and **appends**
    /// `header || ciphertext || tag` to `out`.
    pub fn encrypt(
        &mut self,
        stream: Stream,
        metadata: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Header, SendError> {
        let state = self.stream_state(stream);
        let ctr = state.next_ctr.ok_or(SendError::CounterExhausted)?;
        let header = state.key.encrypt_into(ctr, metadata, plaintext, out)?;
        state.next_ctr = ctr.checked_add(1);
        Ok(header)
    }

    /// Encrypts an encoded media frame: clears `out`, then writes
    /// `clear_prefix || header || ciphertext || tag` with the codec's clear prefix
    /// ([`clear_prefix_len`]) as metadata.
    pub fn encrypt_media(
        &mut self,
        stream: Stream,
        codec: Codec,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Header, SendError> {
        let (prefix, payload) = frame.split_at(clear_prefix_len(codec, frame));
        out.clear();
        out.extend_from_slice(prefix);
        let result = self.encrypt(stream, prefix, payload, out);
        if result.is_err() {
            out.clear();
        }
        result
    }

    fn stream_state(&mut self, stream: Stream) -> &mut StreamState {
        let kid = self.kid(stream).to_u64();
        let (suite, base_key) = (self.suite, &self.base_key);
        self.streams[stream.index()].get_or_insert_with(|| StreamState {
            key: SframeKey::derive(suite, base_key, kid),
            next_ctr: Some(0),
        })
    }
}
