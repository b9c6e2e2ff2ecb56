//! The participant's sender keys: first generation to the roster, a new generation after a
//! departure (used once acknowledged or after a timeout), envelopes wrapped, opened and
//! installed in the receiving key store.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use e2ee_frames::{KeyEnvelope, Sender};

use super::session::{Session, send};
use super::{ParticipantError, ParticipantOutcome, keep_error, lock};
use crate::key_exchange::next_generation;
use call_client::protocol::{ClientMessage, EnvelopeBody, KeyAck};

/// How long a new generation waits for acknowledgements before it is used anyway.
const REKEY_SWITCH_TIMEOUT: Duration = Duration::from_millis(1500);

/// A pending new generation: used once every recipient acknowledged it, or after a timeout.
pub(super) struct PendingGeneration {
    pub(super) sender: Sender,
    pub(super) awaiting: HashSet<String>,
    pub(super) deadline: Instant,
}

impl Session<'_> {
    pub(super) async fn start_rekey(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let Some(sealer) = self.sealer.clone() else {
            return Ok(());
        };
        let base = match &self.pending_generation {
            Some(p) => next_generation(&p.sender, &mut rand::rng()),
            None => next_generation(lock(&sealer).sender_mut(), &mut rand::rng()),
        }
        .map_err(|e| ParticipantError::Key(e.to_string()))?;
        let everyone: Vec<String> = self.ring.peer_ids().map(str::to_owned).collect();
        self.send_keys(&base, &everyone, outcome).await?;
        self.pending_generation = Some(PendingGeneration {
            sender: base,
            awaiting: everyone.into_iter().collect(),
            deadline: Instant::now() + REKEY_SWITCH_TIMEOUT,
        });
        Ok(())
    }

    pub(super) async fn send_keys(
        &mut self,
        sender: &Sender,
        to: &[String],
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let envelopes: Vec<_> = {
            let mut rng = rand::rng();
            to.iter()
                .map(|device| self.ring.wrap(sender, device, &mut rng))
                .collect()
        };
        for env in envelopes {
            match env {
                Ok(env) => self.send_envelope(&env).await?,
                Err(e) => keep_error(outcome, e.to_string()),
            }
        }
        Ok(())
    }

    pub(super) async fn send_envelope(
        &mut self,
        env: &KeyEnvelope,
    ) -> Result<(), ParticipantError> {
        let body = EnvelopeBody {
            envelope: env.clone(),
        };
        send(&mut self.ws, &ClientMessage::KeyEnvelope(body)).await
    }

    pub(super) async fn install_envelope(
        &mut self,
        env: KeyEnvelope,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        if self.ring.peer(&env.sender).is_none() {
            // The roster delta naming the sender has not arrived yet.
            self.pending_envelopes.push(env);
            return Ok(());
        }
        match self.ring.open(&env) {
            Ok((grant, key)) => {
                let installed = lock(self.opener).keys_mut().install(
                    Instant::now(),
                    grant.slot,
                    grant.generation,
                    grant.step,
                    grant.suite,
                    key,
                );
                if let Err(e) = installed {
                    keep_error(outcome, e.to_string());
                } else if grant.step == 0 {
                    let ack = ClientMessage::KeyAck(KeyAck {
                        to: env.sender.clone(),
                        generation: grant.generation,
                        step: grant.step,
                    });
                    send(&mut self.ws, &ack).await?;
                }
            }
            Err(e) => {
                outcome.envelope_failures += 1;
                keep_error(outcome, e.to_string());
            }
        }
        Ok(())
    }

    pub(super) async fn retry_pending_envelopes(
        &mut self,
        outcome: &mut ParticipantOutcome,
    ) -> Result<(), ParticipantError> {
        let pending = std::mem::take(&mut self.pending_envelopes);
        for env in pending {
            self.install_envelope(env, outcome).await?;
        }
        Ok(())
    }
}
