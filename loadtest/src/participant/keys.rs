//! The participant's keys: protocol messages fed to the key policy (`call_client::keys`) and its
//! outputs carried out: envelopes and acks sent, the sealer's sender key replaced, received keys
//! installed in (or dropped from) the receiving key store.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use call_client::keys::{KeyInput, KeyOutput};
use e2ee_frames::KeyEnvelope;

use super::session::{Session, send};
use super::{ParticipantError, ParticipantOutcome, keep_error, lock};
use crate::client_protocol::{ClientMessage, RosterDevice};
use crate::key_exchange::roster_device;
use crate::secure_media::FrameSealer;

impl Session<'_> {
    /// Feeds one input to the key policy and carries out what follows.
    pub(super) async fn key_input(
        &mut self,
        input: KeyInput,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        if let Err(e) = self.keys.handle_input(Instant::now(), input) {
            outcome.envelope_failures += 1;
            keep_error(outcome, e.to_string());
        }
        self.apply_key_outputs(outcome).await
    }

    /// Adds a roster device to the key policy (a malformed bundle is counted and skipped).
    pub(super) async fn add_to_roster(
        &mut self,
        entry: &RosterDevice,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        match roster_device(entry) {
            Ok(device) => self.key_input(KeyInput::RosterAdded(device), outcome).await,
            Err(e) => {
                outcome.envelope_failures += 1;
                keep_error(outcome, e);
                Ok(())
            }
        }
    }

    /// Runs the key policy's timers (batched ratchet, ack timeout, rotation) when due.
    pub(super) async fn key_timeout(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let now = Instant::now();
        if self.keys.poll_timeout().is_some_and(|due| due <= now)
            && let Err(e) = self.keys.handle_timeout(now)
        {
            keep_error(outcome, e.to_string());
        }
        self.apply_key_outputs(outcome).await
    }

    async fn apply_key_outputs(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        while let Some(output) = self.keys.poll_output() {
            match output {
                KeyOutput::SendEnvelope { envelope, .. } => self.send_envelope(&envelope).await?,
                KeyOutput::SendAck {
                    to,
                    generation,
                    step,
                } => {
                    let ack = ClientMessage::KeyAck {
                        to,
                        generation,
                        step,
                    };
                    send(&mut self.ws, &ack).await?;
                }
                KeyOutput::UseSenderKey(key) => {
                    let sender = key
                        .sender(self.joined.slot)
                        .map_err(|e| ParticipantError::Key(e.to_string()))?;
                    match &self.sealer {
                        Some(sealer) => *lock(sealer).sender_mut() = sender,
                        None => {
                            let sealer = FrameSealer::new(sender, self.spec.index);
                            self.sealer = Some(Arc::new(Mutex::new(sealer)));
                        }
                    }
                }
                KeyOutput::InstallReceiverKey(k) => {
                    let installed = lock(self.opener).keys_mut().install(
                        Instant::now(),
                        k.slot,
                        k.generation,
                        k.step,
                        k.suite,
                        k.key,
                    );
                    if let Err(e) = installed {
                        keep_error(outcome, e.to_string());
                    }
                }
                KeyOutput::ForgetSender { slot, .. } => {
                    lock(self.opener).keys_mut().remove_sender(slot);
                }
            }
        }
        Ok(())
    }

    async fn send_envelope(&mut self, env: &KeyEnvelope) -> Result<(), ParticipantError> {
        // The e2ee-frames JSON form is the documented wire form.
        let envelope = serde_json::from_str(&env.to_json()).expect("envelope JSON is an object");
        send(&mut self.ws, &ClientMessage::KeyEnvelope { envelope }).await
    }
}
