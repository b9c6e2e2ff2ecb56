//! The key policy of one device in one call, as a sans-IO state machine.
//!
//! The rules are those of `docs/architecture.md` §3.3 and `docs/protocol.md` §4, the same as the
//! browser's `signaling/web/keys.js`:
//!
//! - **start** ([`KeyInput::Start`], a device that may publish): generation 0 with a fresh
//!   32-byte base key, wrapped to every recipient in the roster and used at once.
//! - **join** ([`Membership::Ratchet`]): the current base key is ratcheted one step (RFC 9605
//!   §5.1; the suite's `Nh` bytes, 64 for the default suite 0x0005) and used at once; it is
//!   wrapped to the **joiners only** (one envelope per joiner, no new generation): the others
//!   ratchet by themselves within their look-ahead. Joins inside [`KeyConfig::ratchet_batch`]
//!   share one ratchet. Past step 255 a new generation is made instead.
//! - **leave** ([`Membership::Rekey`], sent by signaling after its debounce: 1 s of quiet, at
//!   most 5 s after the first leave), and every [`KeyConfig::rotation_interval`] (5 minutes):
//!   a new generation, wrapped to every remaining recipient and used once all of them acked or
//!   after [`KeyConfig::ack_timeout`]. A rekey while one is pending replaces it.
//! - **receiving**: an envelope is verified against the sender's bundle from the roster, opened
//!   ([`KeyOutput::InstallReceiverKey`]) and acknowledged ([`KeyOutput::SendAck`]). One from a
//!   device the roster does not name yet is held (at most [`HELD_ENVELOPES`]) until it does.
//! - **recovery** ([`KeyInput::Undecryptable`]): a frame the key store refused for want of a key
//!   (its step beyond the look-ahead, or an unknown generation) asks its sender for the current
//!   key ([`KeyOutput::SendRequest`], a `key_request`), at most once per
//!   [`REQUEST_INTERVAL`] per sender (docs/architecture.md §7.24).
//!
//! Sans-IO: the caller feeds [`KeyInput`]s and timeouts with the current [`Instant`], drains
//! [`KeyManager::poll_output`] and calls [`KeyManager::handle_timeout`] at
//! [`KeyManager::poll_timeout`]. Envelopes are `e2ee-frames` [`KeyEnvelope`]s (HPKE, signed); the
//! caller maps inputs and outputs to and from its protocol messages. Randomness is the thread's
//! cryptographic RNG.

mod receiving;
mod recovery;
mod roster;
mod sending;
mod wire;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use e2ee_frames::{
    BaseKey, CipherSuite, DeviceBundle, DeviceKeys, EnvelopeError, KeyEnvelope, SendError, Sender,
};
use thiserror::Error;

use receiving::Receiving;
pub use recovery::REQUEST_INTERVAL;
use recovery::Recovery;
use roster::Roster;
use sending::Sending;
pub use wire::{key_inputs, key_message};

/// Envelopes from devices not (yet) in the roster that are held until the roster names them.
pub const HELD_ENVELOPES: usize = 64;

/// The policy's timings and suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyConfig {
    /// The SFrame suite this device sends with (default 0x0005, AES_256_GCM_SHA512_128).
    pub suite: CipherSuite,
    /// A new generation is used after this long even if some recipients did not ack (3 s).
    pub ack_timeout: Duration,
    /// Periodic rotation: a new generation this long after the current one started (5 min).
    pub rotation_interval: Duration,
    /// Joins within this long of the first share one ratchet (0: each join ratchets at once).
    pub ratchet_batch: Duration,
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig {
            suite: CipherSuite::DEFAULT,
            ack_timeout: Duration::from_secs(3),
            rotation_interval: Duration::from_secs(5 * 60),
            ratchet_batch: Duration::ZERO,
        }
    }
}

/// A device of the roster, as the caller read it from `joined` or a `roster` delta.
#[derive(Debug, Clone)]
pub struct RosterDevice {
    /// Its device id.
    pub device: String,
    /// Its KID slot.
    pub slot: u16,
    /// Whether it may publish (and so sends keys).
    pub can_publish: bool,
    /// Its device bundle (verified when added).
    pub bundle: DeviceBundle,
    /// Whether this device's keys are wrapped to it (false for a recorder the room's signed
    /// policy does not name).
    pub wrap_keys: bool,
}

impl From<&crate::protocol::RosterEntry> for RosterDevice {
    /// A roster entry as read from `joined` or a `roster` delta, keys wrapped to it (a caller
    /// that checks a recording policy clears [`RosterDevice::wrap_keys`] for a recorder it does
    /// not name).
    fn from(entry: &crate::protocol::RosterEntry) -> Self {
        RosterDevice {
            device: entry.device.clone(),
            slot: entry.slot,
            can_publish: entry.can_publish,
            bundle: entry.bundle.clone(),
            wrap_keys: true,
        }
    }
}

/// A `membership` notice (protocol §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// Devices joined: ratchet and send the ratcheted key to them only.
    Ratchet {
        /// The joiners.
        joined: Vec<String>,
    },
    /// Devices left (debounced by signaling): start a new generation for the remaining ones.
    Rekey {
        /// The devices that left since the previous rekey.
        left: Vec<String>,
    },
}

/// What the caller feeds the policy.
#[derive(Debug, Clone)]
pub enum KeyInput {
    /// This device joined: make generation 0 (devices that may publish only).
    Start,
    /// A device was added to the roster (or replaced).
    RosterAdded(RosterDevice),
    /// Devices left the roster.
    RosterRemoved(Vec<String>),
    /// A membership notice.
    Membership(Membership),
    /// A key envelope addressed to this device.
    Envelope(KeyEnvelope),
    /// A `key_ack` from another device.
    Ack {
        /// The acknowledging device.
        from: String,
        /// The generation it acknowledges.
        generation: u16,
        /// The ratchet step it acknowledges.
        step: u8,
    },
    /// A `key_request`: the device asks for the current key again.
    Request {
        /// The asking device.
        from: String,
    },
    /// A frame from `slot` was refused for want of a key (`e2ee_frames::ReceiveError`
    /// `RatchetBeyondBound` or `UnknownKid`): ask its sender for its current key.
    Undecryptable {
        /// The sender's slot.
        slot: u16,
        /// The frame's generation.
        generation: u16,
    },
}

/// Why the sending key changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// Generation 0 at start.
    Start,
    /// Ratcheted one step for joiners.
    Ratchet,
    /// Switched to a new generation.
    NewGeneration {
        /// Why the generation was made.
        cause: GenerationCause,
        /// Why it is used now.
        switch: Switch,
    },
}

/// Why a new generation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationCause {
    /// A `rekey` notice (devices left).
    Rekey,
    /// The periodic rotation.
    Rotation,
    /// A join found the ratchet step exhausted (255).
    StepExhausted,
}

/// Why a pending generation is used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Every recipient acked it.
    Acked,
    /// The ack timeout passed.
    AckTimeout,
}

/// The key this device sends with from now on.
#[derive(Debug, Clone)]
pub struct SenderKey {
    /// The generation.
    pub generation: u16,
    /// The ratchet step.
    pub step: u8,
    /// The suite.
    pub suite: CipherSuite,
    /// The base key of (generation, step).
    pub key: BaseKey,
    /// Why it changed.
    pub change: KeyChange,
}

impl SenderKey {
    /// An SFrame sender for this key in `slot` (counters from 0).
    pub fn sender(&self, slot: u16) -> Result<Sender, SendError> {
        Sender::at_step(
            self.suite,
            slot,
            self.generation,
            self.step,
            self.key.clone(),
        )
    }
}

/// A key received from another device, to install in the receiving key store.
#[derive(Debug, Clone)]
pub struct ReceiverKey {
    /// The sending device.
    pub device: String,
    /// Its slot.
    pub slot: u16,
    /// The generation.
    pub generation: u16,
    /// The ratchet step.
    pub step: u8,
    /// The suite.
    pub suite: CipherSuite,
    /// The base key.
    pub key: BaseKey,
}

/// What the policy asks the caller to do.
#[derive(Debug, Clone)]
pub enum KeyOutput {
    /// Send this envelope (a `key_envelope` message) to `to`.
    SendEnvelope {
        /// The recipient device.
        to: String,
        /// The sealed, signed envelope.
        envelope: KeyEnvelope,
    },
    /// Send a `key_ack`.
    SendAck {
        /// The device whose key is acknowledged.
        to: String,
        /// Its generation.
        generation: u16,
        /// Its step.
        step: u8,
    },
    /// Encrypt media with this key from now on (and send a keyframe under it).
    UseSenderKey(SenderKey),
    /// Install this key in the receiving key store.
    InstallReceiverKey(ReceiverKey),
    /// Send a `key_request` to `to` (this device lost track of its key).
    SendRequest {
        /// The sender asked.
        to: String,
        /// The generation of the frame that could not be opened.
        generation: Option<u16>,
    },
    /// A device left: drop its keys from the receiving key store.
    ForgetSender {
        /// The device.
        device: String,
        /// Its slot.
        slot: u16,
    },
}

/// Why an input was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A roster bundle is malformed, its signature fails, or it names another device.
    #[error("bundle of {device}: {reason}")]
    Bundle {
        /// The device.
        device: String,
        /// What was wrong.
        reason: String,
    },
    /// An envelope was refused (shape, signature, room/call/recipient, HPKE) or could not be
    /// sealed.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// An envelope's slot is not the sender's slot in the roster.
    #[error("envelope slot {envelope} is not the sender's slot {roster}")]
    SlotMismatch {
        /// The slot in the envelope.
        envelope: u16,
        /// The slot in the roster.
        roster: u16,
    },
    /// The generation counter is exhausted (docs/e2ee.md §1.3): the device must rejoin.
    #[error("sender key generations exhausted")]
    GenerationsExhausted,
}

/// The key policy of one device in one call (see the module docs).
#[derive(Debug)]
pub struct KeyManager {
    me: DeviceKeys,
    room: String,
    call: String,
    slot: u16,
    config: KeyConfig,
    roster: Roster,
    /// `None` for a device that may not publish (it holds no sender key).
    sending: Option<Sending>,
    receiving: Receiving,
    recovery: Recovery,
    outputs: VecDeque<KeyOutput>,
}

impl KeyManager {
    /// The policy of device `me` in `room`/`call`, sending in `slot` when `can_publish`.
    pub fn new(
        me: DeviceKeys,
        room: &str,
        call: &str,
        slot: u16,
        can_publish: bool,
        config: KeyConfig,
    ) -> Self {
        KeyManager {
            me,
            room: room.to_owned(),
            call: call.to_owned(),
            slot,
            config,
            roster: Roster::default(),
            sending: can_publish.then(Sending::default),
            receiving: Receiving::default(),
            recovery: Recovery::default(),
            outputs: VecDeque::new(),
        }
    }

    /// This device's id.
    pub fn device(&self) -> &str {
        self.me.device().as_str()
    }

    /// The devices of the roster this device's keys are wrapped to, by device id.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.roster.recipients().map(|p| p.device.as_str())
    }

    /// The (generation, step) this device sends with now, if it sends.
    pub fn current_key(&self) -> Option<(u16, u8)> {
        self.sending.as_ref()?.current()
    }

    /// The generation wrapped but not yet used, if any.
    pub fn pending_generation(&self) -> Option<u16> {
        self.sending.as_ref()?.pending_generation()
    }

    /// Envelopes refused so far (bad signature, other room or call, slot mismatch...).
    pub fn refused_envelopes(&self) -> u64 {
        self.receiving.refused
    }

    /// Feeds one input at `now`. An error refuses that input only (a bad bundle, a bad
    /// envelope, a failed seal); the state stays consistent and the rest of the input (e.g.
    /// other recipients of a new generation) is processed.
    pub fn handle_input(&mut self, now: Instant, input: KeyInput) -> Result<(), KeyError> {
        match input {
            KeyInput::Start => self.start(now),
            KeyInput::RosterAdded(device) => self.add_device(device),
            KeyInput::RosterRemoved(devices) => {
                self.remove_devices(now, &devices);
                Ok(())
            }
            KeyInput::Membership(Membership::Ratchet { joined }) => self.on_join(now, joined),
            KeyInput::Membership(Membership::Rekey { .. }) => {
                self.new_generation(now, GenerationCause::Rekey)
            }
            KeyInput::Envelope(envelope) => self.on_envelope(envelope),
            KeyInput::Ack {
                from,
                generation,
                step,
            } => {
                self.on_ack(now, &from, generation, step);
                Ok(())
            }
            KeyInput::Request { from } => self.on_request(&from),
            KeyInput::Undecryptable { slot, generation } => {
                self.on_undecryptable(now, slot, generation);
                Ok(())
            }
        }
    }

    /// When [`KeyManager::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sending.as_ref()?.next_deadline(&self.config)
    }

    /// Runs what is due at `now`: a batched ratchet, an ack-timeout switch, the rotation.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), KeyError> {
        self.on_timeout(now)
    }

    /// The next thing the caller must do, in order.
    pub fn poll_output(&mut self) -> Option<KeyOutput> {
        self.outputs.pop_front()
    }

    fn add_device(&mut self, device: RosterDevice) -> Result<(), KeyError> {
        if device.device == self.device() {
            return Ok(());
        }
        let id = device.device.clone();
        self.roster.add(device)?;
        self.retry_held(&id);
        Ok(())
    }

    fn remove_devices(&mut self, now: Instant, devices: &[String]) {
        for id in devices {
            if let Some(peer) = self.roster.remove(id) {
                self.outputs.push_back(KeyOutput::ForgetSender {
                    device: peer.device,
                    slot: peer.slot,
                });
            }
            self.receiving.drop_held_from(id);
            self.recovery.forget(id);
            if let Some(s) = &mut self.sending {
                s.forget(id);
            }
        }
        self.maybe_switch(now);
    }
}
