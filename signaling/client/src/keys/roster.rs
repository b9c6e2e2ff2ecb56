//! The devices this device exchanges keys with: roster entries whose bundles verified.

use std::collections::BTreeMap;

use e2ee_frames::VerifiedBundle;

use super::{KeyError, RosterDevice};

/// A roster device whose bundle verified.
#[derive(Debug, Clone)]
pub(super) struct Peer {
    pub(super) device: String,
    pub(super) slot: u16,
    pub(super) wrap_keys: bool,
    pub(super) bundle: VerifiedBundle,
}

/// Every other device of the roster, by device id (ordered, so outputs are deterministic).
#[derive(Debug, Default)]
pub(super) struct Roster {
    peers: BTreeMap<String, Peer>,
}

impl Roster {
    /// Adds or replaces a device after verifying its bundle.
    pub(super) fn add(&mut self, d: RosterDevice) -> Result<(), KeyError> {
        let bad = |reason: String| KeyError::Bundle {
            device: d.device.clone(),
            reason,
        };
        let bundle = d.bundle.verify().map_err(|e| bad(e.to_string()))?;
        if bundle.device().as_str() != d.device {
            return Err(bad("the bundle names another device".into()));
        }
        self.peers.insert(
            d.device.clone(),
            Peer {
                device: d.device,
                slot: d.slot,
                wrap_keys: d.wrap_keys,
                bundle,
            },
        );
        Ok(())
    }

    pub(super) fn remove(&mut self, device: &str) -> Option<Peer> {
        self.peers.remove(device)
    }

    pub(super) fn get(&self, device: &str) -> Option<&Peer> {
        self.peers.get(device)
    }

    /// The device sending in `slot`.
    pub(super) fn sender_at(&self, slot: u16) -> Option<&Peer> {
        self.peers.values().find(|p| p.slot == slot)
    }

    /// The devices keys are wrapped to.
    pub(super) fn recipients(&self) -> impl Iterator<Item = &Peer> {
        self.peers.values().filter(|p| p.wrap_keys)
    }

    /// `device` if keys are wrapped to it.
    pub(super) fn recipient(&self, device: &str) -> Option<&Peer> {
        self.get(device).filter(|p| p.wrap_keys)
    }
}
