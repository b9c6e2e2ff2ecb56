//! End-to-end encrypted chat for native clients (docs/e2ee.md §6), the twin of the web client's
//! `chat.js`: a message is sealed under this device's current sender key (through a key derived
//! from it with the chat label, never the media key itself); a received one is opened with the
//! sender's key of its generation, ratcheted forward from the nearest step held (at most
//! [`MAX_LOOK_AHEAD`] steps, as for frames).
//!
//! [`ChatKeyring`] is sans-IO: it is fed the receiver keys the key manager installs
//! ([`KeyOutput::InstallReceiverKey`](crate::keys::KeyOutput)) and forgets a device when the
//! key manager does.

use std::collections::{BTreeMap, HashMap};

use e2ee_frames::chat::{ChatContext, ChatError, SealedChat};
use e2ee_frames::{BaseKey, CipherSuite};
use rand::CryptoRng;

use crate::keys::{ReceiverKey, SenderKey};

/// Steps a received key is ratcheted forward at most.
pub const MAX_LOOK_AHEAD: u8 = 16;
/// Generations kept per sender (the newest), as the media receiver does.
const GENERATIONS_KEPT: usize = 3;
/// Steps kept per generation (the newest).
const STEPS_KEPT: usize = 4;

/// Why a received chat message was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatOpenError {
    /// No key of the sender's for the message's generation at or below its step (within the
    /// look-ahead): its key has not arrived, or the sender is unknown.
    #[error("no key of {device}'s for generation {generation} step {step}")]
    NoKey {
        /// The sender.
        device: String,
        /// The message's generation.
        generation: u16,
        /// The message's step.
        step: u8,
    },
    /// The message does not open under the key (altered, or another room, call or sender).
    #[error(transparent)]
    Sealed(#[from] ChatError),
}

/// Where a chat message was sent: the room, the call, and the sender with its slot.
#[derive(Clone, Copy, Debug)]
pub struct ChatScope<'a> {
    /// Room name.
    pub room: &'a str,
    /// Call id (`joined.call`).
    pub call: &'a str,
}

struct HeldKey {
    step: u8,
    suite: CipherSuite,
    key: BaseKey,
    slot: u16,
}

/// The received keys chat is opened with: per sender, its newest generations and steps.
#[derive(Default)]
pub struct ChatKeyring {
    /// device → generation → keys held, by step ascending.
    keys: HashMap<String, BTreeMap<u16, Vec<HeldKey>>>,
}

impl ChatKeyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a key the key manager installed.
    pub fn add_key(&mut self, key: &ReceiverKey) {
        let generations = self.keys.entry(key.device.clone()).or_default();
        let steps = generations.entry(key.generation).or_default();
        steps.retain(|k| k.step != key.step);
        steps.push(HeldKey {
            step: key.step,
            suite: key.suite,
            key: key.key.clone(),
            slot: key.slot,
        });
        steps.sort_by_key(|k| k.step);
        if steps.len() > STEPS_KEPT {
            steps.drain(..steps.len() - STEPS_KEPT);
        }
        while generations.len() > GENERATIONS_KEPT {
            generations.pop_first();
        }
    }

    /// Forgets a departed device's keys.
    pub fn forget(&mut self, device: &str) {
        self.keys.remove(device);
    }

    /// Opens `chat` from `from` (as the service stamped it): its plaintext.
    pub fn open(
        &self,
        scope: ChatScope<'_>,
        from: &str,
        chat: &SealedChat,
    ) -> Result<Vec<u8>, ChatOpenError> {
        let no_key = || ChatOpenError::NoKey {
            device: from.to_owned(),
            generation: chat.generation,
            step: chat.step,
        };
        let held = self
            .keys
            .get(from)
            .and_then(|g| g.get(&chat.generation))
            .and_then(|steps| {
                steps
                    .iter()
                    .rev()
                    .find(|k| k.step <= chat.step && chat.step - k.step <= MAX_LOOK_AHEAD)
            })
            .ok_or_else(no_key)?;
        let key = held
            .key
            .ratchet_by(held.suite, u32::from(chat.step - held.step));
        let ctx = ChatContext {
            room: scope.room,
            call: scope.call,
            sender: from,
            slot: held.slot,
        };
        Ok(chat.open(&key, &ctx, chat.generation, chat.step)?)
    }
}

/// Seals `text` under this device's current sender key (`device` in `slot`).
pub fn seal(
    scope: ChatScope<'_>,
    device: &str,
    slot: u16,
    sender: &SenderKey,
    text: &str,
    rng: &mut impl CryptoRng,
) -> Result<SealedChat, ChatError> {
    let ctx = ChatContext {
        room: scope.room,
        call: scope.call,
        sender: device,
        slot,
    };
    e2ee_frames::chat::seal(
        &sender.key,
        &ctx,
        sender.generation,
        sender.step,
        text.as_bytes(),
        rng,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: ChatScope<'static> = ChatScope {
        room: "standup",
        call: "c-1",
    };
    const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;

    fn receiver_key(device: &str, generation: u16, step: u8, key: &BaseKey) -> ReceiverKey {
        ReceiverKey {
            device: device.into(),
            slot: 3,
            generation,
            step,
            suite: SUITE,
            key: key.clone(),
        }
    }

    fn sealed(generation: u16, step: u8, key: &BaseKey, text: &str) -> SealedChat {
        let ctx = ChatContext {
            room: SCOPE.room,
            call: SCOPE.call,
            sender: "alice",
            slot: 3,
        };
        e2ee_frames::chat::seal(
            key,
            &ctx,
            generation,
            step,
            text.as_bytes(),
            &mut rand::rng(),
        )
        .unwrap()
    }

    #[test]
    fn a_message_opens_with_the_key_ratcheted_forward() {
        let base = BaseKey::from_bytes(&[7; 64]).unwrap();
        let mut ring = ChatKeyring::new();
        ring.add_key(&receiver_key("alice", 2, 1, &base));
        let later = base.ratchet_by(SUITE, 3);
        let msg = sealed(2, 4, &later, "hello");
        assert_eq!(ring.open(SCOPE, "alice", &msg).unwrap(), b"hello");
    }

    #[test]
    fn a_message_without_its_key_or_from_another_sender_is_refused() {
        let base = BaseKey::from_bytes(&[7; 64]).unwrap();
        let mut ring = ChatKeyring::new();
        ring.add_key(&receiver_key("alice", 2, 0, &base));
        let msg = sealed(3, 0, &base, "hi");
        assert!(matches!(
            ring.open(SCOPE, "alice", &msg),
            Err(ChatOpenError::NoKey { generation: 3, .. })
        ));
        let msg = sealed(2, 0, &base, "hi");
        ring.add_key(&receiver_key("bob", 2, 0, &base));
        // Stamped as bob's, sealed as alice's: the AAD names the sender.
        assert!(matches!(
            ring.open(SCOPE, "bob", &msg),
            Err(ChatOpenError::Sealed(ChatError::Authentication))
        ));
        ring.forget("alice");
        assert!(matches!(
            ring.open(SCOPE, "alice", &msg),
            Err(ChatOpenError::NoKey { .. })
        ));
    }

    #[test]
    fn only_the_newest_generations_are_kept() {
        let base = BaseKey::from_bytes(&[7; 64]).unwrap();
        let mut ring = ChatKeyring::new();
        for generation in 0..5 {
            ring.add_key(&receiver_key("alice", generation, 0, &base));
        }
        assert!(
            ring.open(SCOPE, "alice", &sealed(1, 0, &base, "x"))
                .is_err()
        );
        assert_eq!(
            ring.open(SCOPE, "alice", &sealed(4, 0, &base, "x"))
                .unwrap(),
            b"x"
        );
    }
}
