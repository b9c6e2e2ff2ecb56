//! The participant's keys through the client library's key policy
//! ([`call_client::keys::KeyManager`], the browser's rules): server messages become
//! [`KeyInput`]s (`call_client::keys::key_inputs`, as in the sans-IO viewer engine), and the policy's
//! outputs become `key_envelope`/`key_ack` messages, the sealer's sending key and the opener's
//! receiving keys.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use call_client::keys::{KeyError, KeyInput, KeyOutput, key_message};

use super::session::Session;
use super::{ParticipantError, ParticipantOutcome, keep_error, lock};
use crate::secure_media::{FrameSealer, MissingKey};

/// Counts a refused key input: a bad bundle or envelope is an envelope failure.
pub(crate) fn count_key_error(outcome: &mut ParticipantOutcome, e: &KeyError) {
    outcome.envelope_failures += 1;
    keep_error(outcome, e.to_string());
}

impl Session<'_> {
    /// Feeds `input` to the policy and carries out what it asks.
    pub(super) fn key_input(
        &mut self,
        input: KeyInput,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        if let Err(e) = self.keys.handle_input(Instant::now(), input) {
            count_key_error(outcome, &e);
        }
        self.apply_key_outputs(outcome)
    }

    /// Runs the policy's due timers (batched ratchet, ack-timeout switch, rotation).
    pub(super) fn key_timers(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let now = Instant::now();
        if self.keys.poll_timeout().is_some_and(|due| due <= now)
            && let Err(e) = self.keys.handle_timeout(now)
        {
            keep_error(outcome, e.to_string());
        }
        self.apply_key_outputs(outcome)
    }

    /// Feeds the frames the receiver could not open for want of a key to the policy, which
    /// asks their senders with a `key_request` (rate-limited, as the browser does).
    pub(super) fn report_missing_keys(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let missing: Vec<MissingKey> = {
            let mut opener = lock(self.opener);
            if !opener.has_missing_keys() {
                return Ok(());
            }
            opener.take_missing_keys().collect()
        };
        for MissingKey { slot, generation } in missing {
            self.key_input(KeyInput::Undecryptable { slot, generation }, outcome)?;
        }
        Ok(())
    }

    /// Sends the envelopes and acks the policy asks for, switches the sealer to its sending key
    /// and installs (or forgets) receiving keys in the opener.
    fn apply_key_outputs(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        while let Some(output) = self.keys.poll_output() {
            if let Some(message) = key_message(&output) {
                if matches!(output, KeyOutput::SendRequest { .. }) {
                    outcome.key_requests_sent += 1;
                }
                self.send(message, outcome)?;
                continue;
            }
            match output {
                KeyOutput::UseSenderKey(key) => {
                    let sender = key
                        .sender(self.joined.slot)
                        .map_err(|e| ParticipantError::Key(e.to_string()))?;
                    match &self.sealer {
                        Some(sealer) => *lock(sealer).sender_mut() = sender,
                        None => {
                            self.sealer = Some(Arc::new(Mutex::new(FrameSealer::new(
                                sender,
                                self.spec.index,
                            ))));
                        }
                    }
                }
                KeyOutput::InstallReceiverKey(key) => {
                    let installed = lock(self.opener).keys_mut().install(
                        Instant::now(),
                        key.slot,
                        key.generation,
                        key.step,
                        key.suite,
                        key.key,
                    );
                    if let Err(e) = installed {
                        keep_error(outcome, e.to_string());
                    }
                }
                KeyOutput::ForgetSender { slot, .. } => {
                    lock(self.opener).keys_mut().remove_sender(slot);
                }
                KeyOutput::SendEnvelope { .. }
                | KeyOutput::SendAck { .. }
                | KeyOutput::SendRequest { .. } => {}
            }
        }
        Ok(())
    }
}
