//! Twenty callers join one meeting at once, through the real service, each with
//! `call_client::session` and `call_client::keys` (real HPKE envelopes, real SFrame): signaling
//! coalesces the burst into few `membership ratchet` notices (docs/architecture.md §7.24), so the
//! publisher's key moves a few steps, not twenty, and every joiner opens its current frames.

use crate::common;

use std::time::{Duration, Instant};

use call_client::keys::{
    KeyConfig, KeyInput, KeyManager, KeyOutput, RosterDevice, SenderKey, key_inputs, key_message,
};
use call_client::protocol::DeviceBundle;
use call_client::session::{Session, SessionConfig};
use common::{TestServer, config, token};
use e2ee_frames::{Codec, DeviceId, DeviceKeys, KeyStore, Stream};
use signaling::policy::Role;

const ROOM: &str = "burst";
const JOINERS: usize = 20;

/// One client: its session, key policy, the keys it installed and the key it sends with.
struct Peer {
    session: Session,
    policy: KeyManager,
    store: KeyStore,
    sending: Option<SenderKey>,
    ratchets: u32,
}

impl Peer {
    async fn join(s: &TestServer, name: &str, publishes: bool) -> Peer {
        let keys = DeviceKeys::generate(DeviceId::new(name).expect("valid id"), &mut rand::rng());
        let bundle: DeviceBundle =
            serde_json::from_str(&keys.bundle().to_json()).expect("bundle parses");
        let cfg = SessionConfig::new(s.ws_url(), ROOM, token(ROOM, name, Role::Caller), bundle);
        let session = Session::connect(cfg).await.expect("joins");
        let joined = session.joined().clone();
        let mut policy = KeyManager::new(
            keys,
            ROOM,
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
        let mut peer = Peer {
            session,
            policy,
            store: KeyStore::new(),
            sending: None,
            ratchets: 0,
        };
        peer.drain(now);
        peer
    }

    /// Carries out the policy's outputs.
    fn drain(&mut self, now: Instant) {
        while let Some(out) = self.policy.poll_output() {
            if let Some(message) = key_message(&out) {
                self.session.send(message).expect("queued");
                continue;
            }
            match out {
                KeyOutput::UseSenderKey(key) => {
                    self.ratchets += u32::from(key.step > 0);
                    self.sending = Some(key);
                }
                KeyOutput::InstallReceiverKey(k) => {
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

    /// Serves key traffic for `how_long`.
    async fn serve(mut self, how_long: Duration) -> Peer {
        let end = tokio::time::Instant::now() + how_long;
        loop {
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
                    self.drain(now);
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

#[tokio::test]
async fn twenty_simultaneous_joiners_all_get_usable_keys() {
    let s = TestServer::start_without_media(config()).await;
    s.meeting(ROOM).await;
    let publisher = Peer::join(&s, "publisher", true).await;
    let publisher = tokio::spawn(publisher.serve(Duration::from_secs(4)));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Twenty joins at once; the joiners listen only (they send no media).
    let joins = (0..JOINERS).map(|i| {
        let s = &s;
        async move { Peer::join(s, &format!("joiner-{i}"), false).await }
    });
    let joiners = futures_util::future::join_all(joins).await;
    let joiners: Vec<_> = joiners
        .into_iter()
        .map(|p| tokio::spawn(p.serve(Duration::from_secs(3))))
        .collect();

    let publisher = publisher.await.expect("publisher task");
    let key = publisher.sending.clone().expect("publisher sends");
    eprintln!(
        "publisher ratchets for {JOINERS} joins: {}",
        publisher.ratchets
    );
    assert_eq!(key.generation, 0);
    assert!(
        publisher.ratchets <= 4,
        "a burst of {JOINERS} joins ratchets a few times, not once per join: {} ratchets",
        publisher.ratchets
    );
    let mut sender = key.sender(publisher.policy_slot()).expect("sender");
    let frame = [0xfcu8, 1, 2, 3, 4, 5];
    for joiner in joiners {
        let mut joiner = joiner.await.expect("joiner task");
        let mut wire = Vec::new();
        sender
            .encrypt_media(Stream::Audio, Codec::Opus, &frame, &mut wire)
            .expect("encrypts");
        let mut out = Vec::new();
        joiner
            .store
            .decrypt_media(Instant::now(), Codec::Opus, &wire, &mut out)
            .unwrap_or_else(|e| panic!("{} opens the publisher's frame: {e}", joiner.name()));
        assert_eq!(out, frame);
    }
}

impl Peer {
    fn policy_slot(&self) -> u16 {
        self.session.joined().slot
    }

    fn name(&self) -> String {
        self.session.device().to_owned()
    }
}
