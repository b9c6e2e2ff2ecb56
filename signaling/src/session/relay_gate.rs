//! The rate bounds on one joined device's `media_state`, `chat` and `hand` messages (each
//! relayed to the whole room, so each gets its own budget below the connection's message rate):
//! at most [`MEDIA_STATE_BURST`] / [`CHAT_BURST`] / [`HAND_BURST`] back to back, then
//! [`MEDIA_STATE_PER_SECOND`] / [`CHAT_PER_SECOND`] / [`HAND_PER_SECOND`]; more are dropped
//! with `rate_limited` and counted.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::protocol::{
    CHAT_BURST, CHAT_PER_SECOND, HAND_BURST, HAND_PER_SECOND, MEDIA_STATE_BURST,
    MEDIA_STATE_PER_SECOND,
};

/// The `media_state`, `chat` and `hand` allowances of one joined device.
#[derive(Debug)]
pub(crate) struct RelayGate {
    media_state: DefaultDirectRateLimiter,
    chat: DefaultDirectRateLimiter,
    hand: DefaultDirectRateLimiter,
}

fn limiter(per_second: u32, burst: u32) -> DefaultDirectRateLimiter {
    let nonzero = |n: u32| NonZeroU32::new(n).expect("the protocol's limits are not zero");
    RateLimiter::direct(Quota::per_second(nonzero(per_second)).allow_burst(nonzero(burst)))
}

impl RelayGate {
    pub(crate) fn new() -> Self {
        RelayGate {
            media_state: limiter(MEDIA_STATE_PER_SECOND, MEDIA_STATE_BURST),
            chat: limiter(CHAT_PER_SECOND, CHAT_BURST),
            hand: limiter(HAND_PER_SECOND, HAND_BURST),
        }
    }

    /// Whether one more `media_state` fits the allowance (and takes it).
    pub(crate) fn admit_media_state(&self) -> bool {
        self.media_state.check().is_ok()
    }

    /// Whether one more `chat` fits the allowance (and takes it).
    pub(crate) fn admit_chat(&self) -> bool {
        self.chat.check().is_ok()
    }

    /// Whether one more `hand` fits the allowance (and takes it).
    pub(crate) fn admit_hand(&self) -> bool {
        self.hand.check().is_ok()
    }
}
