//! A native client that joins with `call_client::session` and runs `call_client::keys` (real
//! HPKE envelopes, real SFrame keys) without a media peer: what the key-exchange tests drive.

use std::time::{Duration, Instant};

use call_client::keys::{
    KeyConfig, KeyInput, KeyManager, KeyOutput, RosterDevice, SenderKey, key_inputs, key_message,
};
use call_client::protocol::{DeviceBundle, ServerMessage};
use call_client::session::{Session, SessionConfig};
use e2ee_frames::{DeviceId, DeviceKeys, KeyStore};
use signaling::policy::Role;
use tokio::sync::watch;

use crate::common::token;

/// One client: its session, key policy, the keys it installed and the key it sends with.
pub(crate) struct KeyPeer {
    pub(crate) session: Session,
    pub(crate) policy: KeyManager,
    pub(crate) store: KeyStore,
    pub(crate) sending: Option<SenderKey>,
    /// Ratchet steps of its own sending key.
    pub(crate) ratchets: u32,
    /// Every server message it received (after `joined`), in order.
    pub(crate) seen: Vec<ServerMessage>,
    /// Each receiver key it installed: the sender's slot, the generation, when.
    pub(crate) installed: Vec<(u16, u16, Instant)>,
}

impl KeyPeer {
    /// Joins `room` at `url` as device `name` (a caller; `publishes`: it sends a key).
    pub(crate) async fn join(url: &str, room: &str, name: &str, publishes: bool) -> KeyPeer {
        Self::join_as(url, room, name, Role::Caller, publishes).await
    }

    /// [`Self::join`] with `role`.
    pub(crate) async fn join_as(
        url: &str,
        room: &str,
        name: &str,
        role: Role,
        publishes: bool,
    ) -> KeyPeer {
        let keys = DeviceKeys::generate(DeviceId::new(name).expect("valid id"), &mut rand::rng());
        let bundle: DeviceBundle =
            serde_json::from_str(&keys.bundle().to_json()).expect("bundle parses");
        let mut cfg = SessionConfig::new(url, room, token(room, name, role), bundle);
        // A presenter's rekey of a large audience queues one envelope per viewer at once.
        cfg.outgoing_capacity = 8192;
        let session = Session::connect(cfg)
            .await
            .unwrap_or_else(|e| panic!("{name} joins: {e}"));
        let joined = session.joined().clone();
        let mut policy = KeyManager::new(
            keys,
            room,
            &joined.call,
            joined.slot,
            publishes,
            KeyConfig::default(),
        );
        let now = Instant::now();
        for entry in &joined.roster.devices {
            policy
                .handle_input(now, KeyInput::RosterAdded(RosterDevice::from(entry)))
                .expect("roster bundle verifies");
        }
        policy.handle_input(now, KeyInput::Start).expect("starts");
        let mut peer = KeyPeer {
            session,
            policy,
            store: KeyStore::new(),
            sending: None,
            ratchets: 0,
            seen: Vec::new(),
            installed: Vec::new(),
        };
        peer.drain(now);
        peer
    }

    /// Its slot in the call.
    pub(crate) fn slot(&self) -> u16 {
        self.session.joined().slot
    }

    /// Its device id.
    pub(crate) fn name(&self) -> String {
        self.session.device().to_owned()
    }

    /// Carries out the policy's outputs.
    pub(crate) fn drain(&mut self, now: Instant) {
        while let Some(out) = self.policy.poll_output() {
            if let Some(message) = key_message(&out) {
                // A session whose connection is gone drops it; the test's checks say so.
                let _ = self.session.send(message);
                continue;
            }
            match out {
                KeyOutput::UseSenderKey(key) => {
                    self.ratchets += u32::from(key.step > 0);
                    self.sending = Some(key);
                }
                KeyOutput::InstallReceiverKey(k) => {
                    self.installed.push((k.slot, k.generation, now));
                    self.store
                        .install(now, k.slot, k.generation, k.step, k.suite, k.key)
                        .expect("key installs");
                }
                KeyOutput::ForgetSender { slot, .. } => {
                    self.store.remove_sender(slot);
                }
                _ => {}
            }
        }
    }

    /// Serves key traffic for `how_long` (or until the connection ends).
    pub(crate) async fn serve(self, how_long: Duration) -> KeyPeer {
        let (_keep, never) = watch::channel(false);
        self.serve_until(tokio::time::Instant::now() + how_long, never)
            .await
    }

    /// Serves key traffic until `end`, until `stop` turns true, or until the connection ends.
    pub(crate) async fn serve_until(
        mut self,
        end: tokio::time::Instant,
        mut stop: watch::Receiver<bool>,
    ) -> KeyPeer {
        let mut stoppable = true;
        loop {
            if *stop.borrow() {
                return self;
            }
            let next = match self.policy.poll_timeout() {
                Some(t) => tokio::time::Instant::from_std(t).min(end),
                None => end,
            };
            tokio::select! {
                msg = self.session.recv() => {
                    let Some(msg) = msg else { return self };
                    let now = Instant::now();
                    for input in key_inputs(&msg) {
                        let _refused = self.policy.handle_input(now, input);
                    }
                    self.seen.push(msg);
                    self.drain(now);
                }
                changed = stop.changed(), if stoppable => {
                    // Nobody can stop it any more: it serves until `end`.
                    stoppable = changed.is_ok();
                }
                () = tokio::time::sleep_until(next) => {
                    if tokio::time::Instant::now() >= end {
                        return self;
                    }
                    let now = Instant::now();
                    self.policy.handle_timeout(now).expect("timeout runs");
                    self.drain(now);
                }
            }
        }
    }
}
