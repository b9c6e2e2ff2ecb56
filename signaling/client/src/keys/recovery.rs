//! Recovering a sender's key a receiver can no longer derive (docs/architecture.md §7.24): a
//! frame beyond the look-ahead window (the sender ratcheted more than 16 steps while this device
//! saw none of its frames) or under a generation this device never got asks that sender for its
//! current key with a `key_request`, at most once per [`REQUEST_INTERVAL`] per sender.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{KeyManager, KeyOutput};

/// Least time between two `key_request`s to the same sender.
pub const REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// When this device last asked each sender for its key.
#[derive(Debug, Default)]
pub(super) struct Recovery {
    asked: BTreeMap<String, Instant>,
}

impl Recovery {
    pub(super) fn forget(&mut self, device: &str) {
        self.asked.remove(device);
    }
}

impl KeyManager {
    /// A frame from `slot` could not be opened for want of a key: ask its sender again.
    pub(super) fn on_undecryptable(&mut self, now: Instant, slot: u16, generation: u16) {
        let Some(peer) = self.roster.sender_at(slot) else {
            return;
        };
        let device = peer.device.clone();
        if let Some(at) = self.recovery.asked.get(&device)
            && now < *at + REQUEST_INTERVAL
        {
            return;
        }
        self.recovery.asked.insert(device.clone(), now);
        self.outputs.push_back(KeyOutput::SendRequest {
            to: device,
            generation: Some(generation),
        });
    }
}
