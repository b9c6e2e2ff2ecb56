//! The key policy (`call_client::keys`) in virtual time: several devices' policies wired
//! together through the envelopes' JSON wire form, real HPKE and real SFrame frames.

mod join;
mod leave;
mod pending;
mod receiving;
mod recovery;
mod rotation;
mod suite5;
mod switch;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use call_client::keys::{
    KeyConfig, KeyInput, KeyManager, KeyOutput, Membership, RosterDevice, SenderKey,
};
use e2ee_frames::{
    CipherSuite, Codec, DeviceId, DeviceKeys, KeyEnvelope, KeyStore, ReceiveError, Sender, Stream,
};

pub(crate) const ROOM: &str = "standup";
pub(crate) const CALL: &str = "c-1";

/// One envelope as it went over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) generation: u16,
    pub(crate) step: u8,
    pub(crate) ct_len: usize,
}

/// One device: its policy, the keys it sends with, the keys it installed.
pub(crate) struct Device {
    pub(crate) keys: DeviceKeys,
    pub(crate) slot: u16,
    pub(crate) policy: KeyManager,
    pub(crate) sender_keys: Vec<SenderKey>,
    pub(crate) sender: Option<Sender>,
    pub(crate) store: KeyStore,
    /// (from device, generation, step, key length) of every key installed.
    pub(crate) received: Vec<(String, u16, u8, usize)>,
}

/// Devices in one call, their messages routed in order; time is virtual.
pub(crate) struct Call {
    pub(crate) devices: BTreeMap<String, Device>,
    pub(crate) t0: Instant,
    /// Every envelope sent so far.
    pub(crate) sent: Vec<Sent>,
    /// Every ack delivered so far: (from, to, generation, step).
    pub(crate) acks: Vec<(String, String, u16, u8)>,
    /// Whether acks are delivered (false: they are lost).
    pub(crate) deliver_acks: bool,
    /// Every `key_request` delivered so far: (from, to).
    pub(crate) requests: Vec<(String, String)>,
}

impl Call {
    /// Devices `names` (slots 1, 2, ...), all publishers, with `config`; nobody in any roster yet.
    pub(crate) fn new(names: &[&str], config: KeyConfig) -> Self {
        let mut rng = rand::rng();
        let devices = names
            .iter()
            .zip(1u16..)
            .map(|(name, slot)| {
                let keys = DeviceKeys::generate(DeviceId::new(*name).unwrap(), &mut rng);
                let policy = KeyManager::new(keys.clone(), ROOM, CALL, slot, true, config);
                let device = Device {
                    keys,
                    slot,
                    policy,
                    sender_keys: Vec::new(),
                    sender: None,
                    store: KeyStore::new(),
                    received: Vec::new(),
                };
                ((*name).to_owned(), device)
            })
            .collect();
        Call {
            devices,
            t0: Instant::now(),
            sent: Vec::new(),
            acks: Vec::new(),
            deliver_acks: true,
            requests: Vec::new(),
        }
    }

    pub(crate) fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    pub(crate) fn get(&self, name: &str) -> &Device {
        &self.devices[name]
    }

    fn roster_device(&self, name: &str) -> RosterDevice {
        let d = &self.devices[name];
        RosterDevice {
            device: name.to_owned(),
            slot: d.slot,
            can_publish: true,
            bundle: d.keys.bundle(),
            wrap_keys: true,
        }
    }

    /// Adds `who` to the roster of `of`.
    pub(crate) fn add_to_roster(&mut self, of: &str, who: &[&str], now: Instant) {
        for w in who {
            let entry = self.roster_device(w);
            self.input(of, now, KeyInput::RosterAdded(entry));
        }
    }

    /// Makes every named device see every other named device.
    pub(crate) fn rosters(&mut self, names: &[&str], now: Instant) {
        for of in names {
            self.add_to_roster(of, names, now);
        }
    }

    /// Feeds one input to `name` and routes everything that follows.
    pub(crate) fn input(&mut self, name: &str, now: Instant, input: KeyInput) {
        let device = self.devices.get_mut(name).unwrap();
        device
            .policy
            .handle_input(now, input)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        self.flush(now);
    }

    /// Runs `name`'s timeout at `now` and routes what follows.
    pub(crate) fn timeout(&mut self, name: &str, now: Instant) {
        let device = self.devices.get_mut(name).unwrap();
        device.policy.handle_timeout(now).unwrap();
        self.flush(now);
    }

    /// A membership notice to every named device.
    pub(crate) fn membership(&mut self, to: &[&str], m: Membership, now: Instant) {
        for name in to {
            self.input(name, now, KeyInput::Membership(m.clone()));
        }
    }

    /// Routes every output of every device until nothing is left.
    pub(crate) fn flush(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            let names: Vec<String> = self.devices.keys().cloned().collect();
            for name in names {
                while let Some(out) = self.devices.get_mut(&name).unwrap().policy.poll_output() {
                    moved = true;
                    self.route(&name, out, now);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn route(&mut self, from: &str, out: KeyOutput, now: Instant) {
        match out {
            KeyOutput::SendEnvelope { to, envelope } => {
                assert_eq!(envelope.recipient, to);
                // Through the JSON wire form, as signaling relays it.
                let json = envelope.to_json();
                let envelope = KeyEnvelope::from_json(&json).unwrap();
                let ct_len = envelope.ct.len();
                self.sent.push(Sent {
                    from: from.to_owned(),
                    to: to.clone(),
                    generation: envelope.generation,
                    step: envelope.step,
                    ct_len,
                });
                if let Some(d) = self.devices.get_mut(&to) {
                    d.policy
                        .handle_input(now, KeyInput::Envelope(envelope))
                        .unwrap_or_else(|e| panic!("{to} opening {from}'s envelope: {e}"));
                }
            }
            KeyOutput::SendAck {
                to,
                generation,
                step,
            } => {
                self.acks
                    .push((from.to_owned(), to.clone(), generation, step));
                if self.deliver_acks
                    && let Some(d) = self.devices.get_mut(&to)
                {
                    let ack = KeyInput::Ack {
                        from: from.to_owned(),
                        generation,
                        step,
                    };
                    d.policy.handle_input(now, ack).unwrap();
                }
            }
            KeyOutput::UseSenderKey(key) => {
                let d = self.devices.get_mut(from).unwrap();
                d.sender = Some(key.sender(d.slot).unwrap());
                d.sender_keys.push(key);
            }
            KeyOutput::InstallReceiverKey(k) => {
                let d = self.devices.get_mut(from).unwrap();
                d.received.push((
                    k.device.clone(),
                    k.generation,
                    k.step,
                    k.key.as_bytes().len(),
                ));
                d.store
                    .install(now, k.slot, k.generation, k.step, k.suite, k.key)
                    .unwrap();
            }
            KeyOutput::SendRequest { to, .. } => {
                self.requests.push((from.to_owned(), to.clone()));
                if let Some(d) = self.devices.get_mut(&to) {
                    let request = KeyInput::Request {
                        from: from.to_owned(),
                    };
                    d.policy.handle_input(now, request).unwrap();
                }
            }
            KeyOutput::ForgetSender { slot, .. } => {
                self.devices
                    .get_mut(from)
                    .unwrap()
                    .store
                    .remove_sender(slot);
            }
        }
    }

    /// Envelopes sent since index `since`, as `from->to:gGsS`, sorted.
    pub(crate) fn envelopes_since(&self, since: usize) -> Vec<String> {
        let mut v: Vec<String> = self.sent[since..]
            .iter()
            .map(|s| format!("{}->{}:g{}s{}", s.from, s.to, s.generation, s.step))
            .collect();
        v.sort();
        v
    }

    /// `from` encrypts an Opus frame with its current key; `to` must decrypt it.
    pub(crate) fn frame_decrypts(&mut self, from: &str, to: &str, now: Instant) -> bool {
        self.open_frame(from, to, now).is_ok()
    }

    /// `from` encrypts an Opus frame with its current key; `to` opens it (an error if it could
    /// not, or opened something else).
    pub(crate) fn open_frame(
        &mut self,
        from: &str,
        to: &str,
        now: Instant,
    ) -> Result<(), Option<ReceiveError>> {
        let frame = [0xfcu8, 1, 2, 3, 4, 5, 6, 7];
        let mut wire = Vec::new();
        self.devices
            .get_mut(from)
            .unwrap()
            .sender
            .as_mut()
            .expect("a sender key")
            .encrypt_media(Stream::Audio, Codec::Opus, &frame, &mut wire)
            .unwrap();
        let mut out = Vec::new();
        let store = &mut self.devices.get_mut(to).unwrap().store;
        store
            .decrypt_media(now, Codec::Opus, &wire, &mut out)
            .map_err(Some)?;
        if out == frame { Ok(()) } else { Err(None) }
    }
}

/// The default policy (suite 0x0005, 3 s ack timeout, 5 min rotation, no ratchet batching).
pub(crate) fn config() -> KeyConfig {
    KeyConfig::default()
}

/// The default policy with another suite.
pub(crate) fn config_with(suite: CipherSuite) -> KeyConfig {
    KeyConfig {
        suite,
        ..KeyConfig::default()
    }
}

/// Starts `names` (all in each other's rosters) and routes generation 0.
pub(crate) fn started(names: &[&str], config: KeyConfig) -> Call {
    started_among(names, names, config)
}

/// Devices `all`, of which `in_call` are in each other's rosters and started at `t0`.
pub(crate) fn started_among(all: &[&str], in_call: &[&str], config: KeyConfig) -> Call {
    let mut call = Call::new(all, config);
    let t = call.t0;
    call.rosters(in_call, t);
    for name in in_call {
        call.input(name, t, KeyInput::Start);
    }
    call
}
