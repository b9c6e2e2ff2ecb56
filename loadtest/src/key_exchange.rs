//! Glue between the load-test client's protocol messages and the key policy of
//! `call_client::keys` (the policy itself, the same rules as the browser's, lives there).

use std::time::Duration;

use call_client::keys::{self, KeyConfig, Membership};
use e2ee_frames::{CipherSuite, DeviceBundle, DeviceKeys};

use crate::client_protocol::{RosterDevice, WireBundle};

/// The suite every load-test sender uses: the project's default, AES_256_GCM_SHA512_128 (a
/// ratcheted base key is 64 bytes, its envelope's `ct` 80 bytes; docs/e2ee.md §3).
pub const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;

/// Joins within this long share one ratchet: a room filling up at once ratchets a few times, not
/// once per joiner (receivers follow at most 16 steps ahead, docs/e2ee.md §1.3).
pub const RATCHET_BATCH: Duration = Duration::from_millis(100);

/// The policy's settings for a load-test participant.
pub fn key_config() -> KeyConfig {
    KeyConfig {
        suite: SUITE,
        ratchet_batch: RATCHET_BATCH,
        ..KeyConfig::default()
    }
}

/// The bundle in the wire form of `join` and the roster.
pub fn wire_bundle(keys: &DeviceKeys) -> WireBundle {
    let bundle = keys.bundle();
    // The e2ee-frames bundle serializes to exactly the documented wire form.
    serde_json::from_str(&bundle.to_json()).expect("bundle JSON has the wire shape")
}

/// A roster entry as the key policy takes it (its bundle is verified when it is added).
pub fn roster_device(entry: &RosterDevice) -> Result<keys::RosterDevice, String> {
    let json = serde_json::to_string(&entry.bundle).map_err(|e| e.to_string())?;
    let bundle =
        DeviceBundle::from_json(&json).map_err(|e| format!("bundle of {}: {e}", entry.device))?;
    Ok(keys::RosterDevice {
        device: entry.device.clone(),
        slot: entry.slot,
        can_publish: entry.can_publish,
        bundle,
        wrap_keys: true,
    })
}

/// A `membership` message as the key policy takes it (`None` for an unknown action).
pub fn membership(action: &str, joined: Vec<String>, left: Vec<String>) -> Option<Membership> {
    match action {
        "ratchet" => Some(Membership::Ratchet { joined }),
        "rekey" => Some(Membership::Rekey { left }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use call_client::keys::{KeyInput, KeyManager};
    use e2ee_frames::DeviceId;

    #[test]
    fn a_wire_roster_entry_reaches_the_key_policy_verified() {
        let keys = DeviceKeys::generate(DeviceId::new("dev-a").unwrap(), &mut rand::rng());
        let mut entry = RosterDevice {
            device: "dev-a".into(),
            role: "caller".into(),
            slot: 3,
            can_publish: true,
            bundle: wire_bundle(&keys),
        };
        let me = DeviceKeys::generate(DeviceId::new("dev-b").unwrap(), &mut rand::rng());
        let mut policy = KeyManager::new(me, "room", "call", 1, true, key_config());
        let device = roster_device(&entry).unwrap();
        policy
            .handle_input(std::time::Instant::now(), KeyInput::RosterAdded(device))
            .unwrap();
        assert_eq!(policy.recipients().collect::<Vec<_>>(), ["dev-a"]);
        // A bundle moved to another device id is refused by the policy.
        entry.device = "dev-z".into();
        let forged = roster_device(&entry).unwrap();
        assert!(
            policy
                .handle_input(std::time::Instant::now(), KeyInput::RosterAdded(forged))
                .is_err()
        );
        assert_eq!(
            membership("rekey", vec![], vec!["x".into()]),
            Some(Membership::Rekey {
                left: vec!["x".into()]
            })
        );
        assert_eq!(membership("other", vec![], vec![]), None);
    }
}
