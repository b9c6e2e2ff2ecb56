//! Sender keys exchanged through signaling (docs/e2ee.md §3, protocol §4), without I/O.
//!
//! A [`KeyRing`] holds this device's identity and the verified bundles of the devices in its
//! roster. A publisher wraps its current SFrame base key to each recipient with HPKE in a
//! signed [`KeyEnvelope`]; a receiver verifies the sender's signature against the roster's
//! bundle, opens the envelope and installs the key. On a `ratchet` notice the sender ratchets
//! once for a batch of joiners and wraps the new step to the joiners only (the others ratchet
//! by themselves when frames of the new step arrive); when the step is exhausted, or on a
//! `rekey` notice, it starts a new generation and wraps it to everyone.

use std::collections::HashMap;

use e2ee_frames::{
    BaseKey, CipherSuite, DeviceKeys, EnvelopeError, KeyEnvelope, KeyGrant, Sender, VerifiedBundle,
};
use rand::CryptoRng;
use thiserror::Error;

use call_client::protocol::RosterEntry;

/// The suite every load-test sender uses: the project's default, AES_256_GCM_SHA512_128 (a
/// ratcheted base key is 64 bytes, its envelope's `ct` 80 bytes; docs/e2ee.md §3).
pub const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;

/// Why a key operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A roster bundle is malformed or its signature fails.
    #[error("bundle of {device}: {reason}")]
    Bundle {
        /// The device.
        device: String,
        /// What was wrong.
        reason: String,
    },
    /// An envelope names a sender that is not in the roster.
    #[error("envelope from {0}, not in the roster")]
    UnknownSender(String),
    /// An envelope was refused (shape, signature, room/call/recipient, HPKE).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The sender could not ratchet or start a generation.
    #[error(transparent)]
    Send(#[from] e2ee_frames::SendError),
    /// The generation counter is exhausted (docs/e2ee.md §1.3).
    #[error("key generations exhausted")]
    GenerationsExhausted,
}

/// A roster device whose bundle verified.
#[derive(Debug, Clone)]
pub struct PeerDevice {
    /// Its KID slot.
    pub slot: u16,
    /// Whether it may publish (it will send keys).
    pub can_publish: bool,
    bundle: VerifiedBundle,
}

/// This device's identity and the devices it exchanges keys with.
#[derive(Debug)]
pub struct KeyRing {
    me: DeviceKeys,
    room: String,
    call: String,
    peers: HashMap<String, PeerDevice>,
}

/// How a sender moved to a new key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// Ratcheted to the next step of the same generation: wrap to the joiners only.
    Ratcheted,
    /// Started a new generation: wrap to every recipient.
    NewGeneration,
}

/// Ratchets `sender` one step, or starts a new generation when the step is exhausted.
pub fn ratchet_or_rotate(
    sender: &mut Sender,
    rng: &mut impl CryptoRng,
) -> Result<KeyChange, KeyError> {
    if sender.step() < u8::MAX {
        sender.ratchet()?;
        return Ok(KeyChange::Ratcheted);
    }
    *sender = next_generation(sender, rng)?;
    Ok(KeyChange::NewGeneration)
}

/// A sender for the next generation of `sender` with a fresh random key.
pub fn next_generation(sender: &Sender, rng: &mut impl CryptoRng) -> Result<Sender, KeyError> {
    let generation = sender
        .generation()
        .checked_add(1)
        .ok_or(KeyError::GenerationsExhausted)?;
    Ok(Sender::new(
        sender.suite(),
        sender.slot(),
        generation,
        BaseKey::random(rng),
    )?)
}

impl KeyRing {
    /// A ring for device `me` in `room`/`call` with an empty roster.
    pub fn new(me: DeviceKeys, room: &str, call: &str) -> Self {
        KeyRing {
            me,
            room: room.to_owned(),
            call: call.to_owned(),
            peers: HashMap::new(),
        }
    }

    /// This device's id.
    pub fn device(&self) -> &str {
        self.me.device().as_str()
    }

    /// Adds a roster device after verifying its bundle; this device itself is skipped.
    pub fn add_peer(&mut self, entry: &RosterEntry) -> Result<(), KeyError> {
        if entry.device == self.device() {
            return Ok(());
        }
        let bad = |reason: String| KeyError::Bundle {
            device: entry.device.clone(),
            reason,
        };
        let bundle = entry.bundle.verify().map_err(|e| bad(e.to_string()))?;
        if bundle.device().as_str() != entry.device {
            return Err(bad("bundle names another device".into()));
        }
        self.peers.insert(
            entry.device.clone(),
            PeerDevice {
                slot: entry.slot,
                can_publish: entry.can_publish,
                bundle,
            },
        );
        Ok(())
    }

    /// Removes a device that left; returns it.
    pub fn remove_peer(&mut self, device: &str) -> Option<PeerDevice> {
        self.peers.remove(device)
    }

    /// A roster device.
    pub fn peer(&self, device: &str) -> Option<&PeerDevice> {
        self.peers.get(device)
    }

    /// Every other device in the roster.
    pub fn peer_ids(&self) -> impl Iterator<Item = &str> {
        self.peers.keys().map(String::as_str)
    }

    /// Wraps `sender`'s current key (generation, step) to `recipient`.
    pub fn wrap(
        &self,
        sender: &Sender,
        recipient: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<KeyEnvelope, KeyError> {
        let peer = self
            .peers
            .get(recipient)
            .ok_or_else(|| KeyError::UnknownSender(recipient.to_owned()))?;
        let grant = KeyGrant {
            slot: sender.slot(),
            generation: sender.generation(),
            step: sender.step(),
            suite: sender.suite(),
        };
        Ok(KeyEnvelope::seal(
            &self.me,
            &peer.bundle,
            &self.room,
            &self.call,
            grant,
            sender.base_key(),
            rng,
        )?)
    }

    /// Verifies and opens an envelope addressed to this device.
    pub fn open(&self, envelope: &KeyEnvelope) -> Result<(KeyGrant, BaseKey), KeyError> {
        let peer = self
            .peers
            .get(&envelope.sender)
            .ok_or_else(|| KeyError::UnknownSender(envelope.sender.clone()))?;
        let (grant, key) = envelope.open(&self.me, &peer.bundle, &self.room, &self.call)?;
        if grant.slot != peer.slot {
            return Err(EnvelopeError::SenderMismatch.into());
        }
        Ok((grant, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e2ee_frames::{Codec, DeviceId, KeyStore, Stream};
    use std::time::Instant;

    fn device(name: &str) -> DeviceKeys {
        DeviceKeys::generate(DeviceId::new(name).unwrap(), &mut rand::rng())
    }

    fn roster_entry(keys: &DeviceKeys, slot: u16) -> RosterEntry {
        RosterEntry {
            device: keys.device().as_str().to_owned(),
            identity: keys.device().as_str().to_owned(),
            name: None,
            role: call_client::protocol::Role::Caller,
            slot,
            can_publish: true,
            bundle: keys.bundle(),
        }
    }

    #[test]
    fn a_wrapped_key_decrypts_the_senders_frames_through_ratchets_and_generations() {
        let mut rng = rand::rng();
        let (a, b) = (device("dev-a"), device("dev-b"));
        let mut ring_a = KeyRing::new(a.clone(), "room", "call-1");
        let mut ring_b = KeyRing::new(b.clone(), "room", "call-1");
        ring_a.add_peer(&roster_entry(&b, 2)).unwrap();
        ring_b.add_peer(&roster_entry(&a, 1)).unwrap();
        ring_b.add_peer(&roster_entry(&b, 2)).unwrap(); // itself: skipped
        assert_eq!(ring_b.peer_ids().count(), 1);

        let mut sender = Sender::new(SUITE, 1, 0, BaseKey::random(&mut rng)).unwrap();
        let mut store = KeyStore::new();
        let install = |env: &KeyEnvelope, store: &mut KeyStore| {
            // Through the JSON wire form, as signaling relays it.
            let env = KeyEnvelope::from_json(&env.to_json()).unwrap();
            let (g, key) = ring_b.open(&env).unwrap();
            store
                .install(Instant::now(), g.slot, g.generation, g.step, g.suite, key)
                .unwrap();
        };
        install(
            &ring_a.wrap(&sender, "dev-b", &mut rng).unwrap(),
            &mut store,
        );
        let (mut wire, mut out) = (Vec::new(), Vec::new());
        let frame = [0xfcu8, 9, 8, 7, 6, 5];
        for round in 0..300 {
            sender
                .encrypt_media(Stream::Audio, Codec::Opus, &frame, &mut wire)
                .unwrap();
            store
                .decrypt_media(Instant::now(), Codec::Opus, &wire, &mut out)
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(out, frame);
            // Existing receivers follow ratchets by themselves; a new generation is wrapped.
            if ratchet_or_rotate(&mut sender, &mut rng).unwrap() == KeyChange::NewGeneration {
                assert_eq!((sender.generation(), sender.step()), (1, 0));
                install(
                    &ring_a.wrap(&sender, "dev-b", &mut rng).unwrap(),
                    &mut store,
                );
            }
        }
        assert_eq!(sender.generation(), 1);
    }

    #[test]
    fn envelopes_from_strangers_or_for_others_are_refused() {
        let mut rng = rand::rng();
        let (a, b, c) = (device("dev-a"), device("dev-b"), device("dev-c"));
        let mut ring_a = KeyRing::new(a.clone(), "room", "call-1");
        ring_a.add_peer(&roster_entry(&b, 2)).unwrap();
        ring_a.add_peer(&roster_entry(&c, 3)).unwrap();
        let sender = Sender::new(SUITE, 1, 0, BaseKey::random(&mut rng)).unwrap();
        let to_c = ring_a.wrap(&sender, "dev-c", &mut rng).unwrap();

        // b does not know a yet.
        let mut ring_b = KeyRing::new(b.clone(), "room", "call-1");
        assert!(matches!(
            ring_b.open(&to_c),
            Err(KeyError::UnknownSender(_))
        ));
        ring_b.add_peer(&roster_entry(&a, 1)).unwrap();
        assert!(ring_b.open(&to_c).is_err(), "addressed to c");
        // A roster slot that does not match the envelope's slot is refused.
        let mut ring_c = KeyRing::new(c.clone(), "room", "call-1");
        ring_c.add_peer(&roster_entry(&a, 7)).unwrap();
        assert!(ring_c.open(&to_c).is_err());
        // A forged bundle is refused at the roster.
        let mut forged = roster_entry(&a, 1);
        forged.bundle.device = "dev-z".into();
        forged.device = "dev-z".into();
        assert!(matches!(
            ring_c.add_peer(&forged),
            Err(KeyError::Bundle { .. })
        ));
    }
}
