//! Receiving keys: envelopes verified against the sender's roster bundle, opened, installed and
//! acknowledged; envelopes from devices the roster does not name yet are held.

use std::collections::VecDeque;

use e2ee_frames::KeyEnvelope;

use super::{HELD_ENVELOPES, KeyError, KeyManager, KeyOutput, ReceiverKey};

/// Envelopes waiting for their sender to appear in the roster (the roster delta and the
/// envelope travel separately).
#[derive(Debug, Default)]
pub(super) struct Receiving {
    held: VecDeque<KeyEnvelope>,
    /// Envelopes refused so far (returned as errors, or dropped when a held one failed).
    pub(super) refused: u64,
}

impl Receiving {
    pub(super) fn drop_held_from(&mut self, device: &str) {
        self.held.retain(|e| e.sender != device);
    }
}

impl KeyManager {
    pub(super) fn on_envelope(&mut self, envelope: KeyEnvelope) -> Result<(), KeyError> {
        let opened = self.open_envelope(envelope);
        if opened.is_err() {
            self.receiving.refused += 1;
        }
        opened
    }

    fn open_envelope(&mut self, envelope: KeyEnvelope) -> Result<(), KeyError> {
        let Some(peer) = self.roster.get(&envelope.sender) else {
            if self.receiving.held.len() == HELD_ENVELOPES {
                self.receiving.held.pop_front();
            }
            self.receiving.held.push_back(envelope);
            return Ok(());
        };
        let (grant, key) = envelope.open(&self.me, &peer.bundle, &self.room, &self.call)?;
        if grant.slot != peer.slot {
            return Err(KeyError::SlotMismatch {
                envelope: grant.slot,
                roster: peer.slot,
            });
        }
        self.outputs
            .push_back(KeyOutput::InstallReceiverKey(ReceiverKey {
                device: peer.device.clone(),
                slot: grant.slot,
                generation: grant.generation,
                step: grant.step,
                suite: grant.suite,
                key,
            }));
        self.outputs.push_back(KeyOutput::SendAck {
            to: peer.device.clone(),
            generation: grant.generation,
            step: grant.step,
        });
        Ok(())
    }

    /// Opens the held envelopes of a device the roster now names (a refused one is counted in
    /// [`KeyManager::refused_envelopes`], as it would have been on arrival).
    pub(super) fn retry_held(&mut self, device: &str) {
        let (mine, others): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.receiving.held)
            .into_iter()
            .partition(|e| e.sender == device);
        self.receiving.held = others;
        for envelope in mine {
            let _refused = self.on_envelope(envelope);
        }
    }
}
