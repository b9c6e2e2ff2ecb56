//! Sending keys: generation 0 at start, a ratchet for joiners, a new generation on rekey,
//! rotation and step exhaustion, switched on all acks or the ack timeout.

use std::collections::BTreeSet;
use std::time::Instant;

use e2ee_frames::{BaseKey, KeyEnvelope, KeyGrant};

use super::{
    GenerationCause, KeyChange, KeyConfig, KeyError, KeyManager, KeyOutput, SenderKey, Switch,
};

/// The key frames are sent under.
#[derive(Debug)]
struct Current {
    generation: u16,
    step: u8,
    key: BaseKey,
    /// When its generation started being used (the rotation counts from here).
    since: Instant,
}

/// A generation wrapped but not yet used.
#[derive(Debug)]
struct Pending {
    generation: u16,
    key: BaseKey,
    cause: GenerationCause,
    waiting: BTreeSet<String>,
    deadline: Instant,
}

/// The sending half of the policy (only for a device that may publish).
#[derive(Debug, Default)]
pub(super) struct Sending {
    current: Option<Current>,
    pending: Option<Pending>,
    next_generation: u32,
    /// Joiners waiting for the batched ratchet, and when it is due.
    joiners: BTreeSet<String>,
    ratchet_due: Option<Instant>,
}

impl Sending {
    pub(super) fn current(&self) -> Option<(u16, u8)> {
        self.current.as_ref().map(|c| (c.generation, c.step))
    }

    pub(super) fn pending_generation(&self) -> Option<u16> {
        self.pending.as_ref().map(|p| p.generation)
    }

    pub(super) fn next_deadline(&self, config: &KeyConfig) -> Option<Instant> {
        let current = self.current.as_ref()?;
        let next = match &self.pending {
            Some(p) => p.deadline,
            None => current.since + config.rotation_interval,
        };
        Some(self.ratchet_due.map_or(next, |due| due.min(next)))
    }

    /// A device left: its ack is no longer awaited and it gets no ratchet.
    pub(super) fn forget(&mut self, device: &str) {
        if let Some(p) = &mut self.pending {
            p.waiting.remove(device);
        }
        self.joiners.remove(device);
    }

    fn take_generation(&mut self) -> Result<u16, KeyError> {
        let generation =
            u16::try_from(self.next_generation).map_err(|_| KeyError::GenerationsExhausted)?;
        self.next_generation += 1;
        Ok(generation)
    }
}

impl KeyManager {
    pub(super) fn start(&mut self, now: Instant) -> Result<(), KeyError> {
        let Some(s) = &mut self.sending else {
            return Ok(());
        };
        if s.current.is_some() {
            return Ok(());
        }
        let generation = s.take_generation()?;
        let key = BaseKey::random(&mut rand::rng());
        self.use_key(now, generation, 0, key.clone(), KeyChange::Start);
        let everyone = self.recipient_ids();
        self.wrap_to(&everyone, generation, 0, &key)
    }

    pub(super) fn on_join(&mut self, now: Instant, joined: Vec<String>) -> Result<(), KeyError> {
        let me = self.device().to_owned();
        let batch = self.config.ratchet_batch;
        let Some(s) = &mut self.sending else {
            return Ok(());
        };
        if s.current.is_none() {
            return Ok(());
        }
        s.joiners.extend(joined.into_iter().filter(|d| *d != me));
        let due = *s.ratchet_due.get_or_insert(now + batch);
        if due <= now {
            return self.ratchet_for_joiners(now);
        }
        Ok(())
    }

    /// One ratchet for every joiner since the last: the ratcheted key to the joiners only (and
    /// a pending generation too, which was wrapped before they were there).
    fn ratchet_for_joiners(&mut self, now: Instant) -> Result<(), KeyError> {
        let suite = self.config.suite;
        let Some(s) = &mut self.sending else {
            return Ok(());
        };
        s.ratchet_due = None;
        let joiners = std::mem::take(&mut s.joiners);
        let Some(cur) = &s.current else {
            return Ok(());
        };
        let Some(step) = cur.step.checked_add(1) else {
            // The KID has no room for another step: a new generation for everyone instead.
            return self.new_generation(now, GenerationCause::StepExhausted);
        };
        let (generation, key) = (cur.generation, cur.key.ratchet(suite));
        let joiners: Vec<String> = joiners
            .into_iter()
            .filter(|d| self.roster.recipient(d).is_some())
            .collect();
        self.use_key(now, generation, step, key.clone(), KeyChange::Ratchet);
        let mut result = self.wrap_to(&joiners, generation, step, &key);
        if let Some(p) = self.sending.as_mut().and_then(|s| s.pending.as_mut()) {
            p.waiting.extend(joiners.iter().cloned());
            let (generation, key) = (p.generation, p.key.clone());
            result = result.and(self.wrap_to(&joiners, generation, 0, &key));
        }
        result
    }

    /// A new generation wrapped to every recipient, used once all acked or at the timeout.
    pub(super) fn new_generation(
        &mut self,
        now: Instant,
        cause: GenerationCause,
    ) -> Result<(), KeyError> {
        let everyone = self.recipient_ids();
        let deadline = now + self.config.ack_timeout;
        let Some(s) = &mut self.sending else {
            return Ok(());
        };
        if s.current.is_none() {
            return Ok(());
        }
        let generation = s.take_generation()?;
        let key = BaseKey::random(&mut rand::rng());
        s.pending = Some(Pending {
            generation,
            key: key.clone(),
            cause,
            waiting: everyone.iter().cloned().collect(),
            deadline,
        });
        let result = self.wrap_to(&everyone, generation, 0, &key);
        self.maybe_switch(now);
        result
    }

    pub(super) fn on_ack(&mut self, now: Instant, from: &str, generation: u16, step: u8) {
        if let Some(p) = self.sending.as_mut().and_then(|s| s.pending.as_mut())
            && p.generation == generation
            && step == 0
        {
            p.waiting.remove(from);
        }
        self.maybe_switch(now);
    }

    /// Sends the current (and a pending) key to `from` again.
    pub(super) fn on_request(&mut self, from: &str) -> Result<(), KeyError> {
        let Some(s) = &self.sending else {
            return Ok(());
        };
        if self.roster.recipient(from).is_none() {
            return Ok(());
        }
        let to = [from.to_owned()];
        let current = s
            .current
            .as_ref()
            .map(|c| (c.generation, c.step, c.key.clone()));
        let pending = s.pending.as_ref().map(|p| (p.generation, p.key.clone()));
        let mut result = Ok(());
        if let Some((generation, step, key)) = current {
            result = self.wrap_to(&to, generation, step, &key);
        }
        if let Some((generation, key)) = pending {
            result = result.and(self.wrap_to(&to, generation, 0, &key));
        }
        result
    }

    pub(super) fn on_timeout(&mut self, now: Instant) -> Result<(), KeyError> {
        let Some(s) = &mut self.sending else {
            return Ok(());
        };
        let mut result = Ok(());
        if s.ratchet_due.is_some_and(|due| due <= now) {
            result = self.ratchet_for_joiners(now);
        }
        let Some(s) = &mut self.sending else {
            return result;
        };
        if let Some(p) = &s.pending
            && now >= p.deadline
        {
            self.switch_to_pending(now, Switch::AckTimeout);
        }
        let Some(s) = &self.sending else {
            return result;
        };
        if s.pending.is_none()
            && let Some(cur) = &s.current
            && now >= cur.since + self.config.rotation_interval
        {
            result = result.and(self.new_generation(now, GenerationCause::Rotation));
        }
        result
    }

    pub(super) fn maybe_switch(&mut self, now: Instant) {
        if self
            .sending
            .as_ref()
            .and_then(|s| s.pending.as_ref())
            .is_some_and(|p| p.waiting.is_empty())
        {
            self.switch_to_pending(now, Switch::Acked);
        }
    }

    fn switch_to_pending(&mut self, now: Instant, switch: Switch) {
        let Some(p) = self.sending.as_mut().and_then(|s| s.pending.take()) else {
            return;
        };
        let change = KeyChange::NewGeneration {
            cause: p.cause,
            switch,
        };
        self.use_key(now, p.generation, 0, p.key, change);
    }

    fn use_key(
        &mut self,
        now: Instant,
        generation: u16,
        step: u8,
        key: BaseKey,
        change: KeyChange,
    ) {
        let Some(s) = &mut self.sending else {
            return;
        };
        let since = match &s.current {
            Some(c) if step > 0 => c.since,
            _ => now,
        };
        s.current = Some(Current {
            generation,
            step,
            key: key.clone(),
            since,
        });
        self.outputs.push_back(KeyOutput::UseSenderKey(SenderKey {
            generation,
            step,
            suite: self.config.suite,
            key,
            change,
        }));
    }

    fn recipient_ids(&self) -> Vec<String> {
        self.roster.recipients().map(|p| p.device.clone()).collect()
    }

    /// Seals (generation, step, key) to each device; a device that fails is skipped and the
    /// first error returned.
    fn wrap_to(
        &mut self,
        devices: &[String],
        generation: u16,
        step: u8,
        key: &BaseKey,
    ) -> Result<(), KeyError> {
        let grant = KeyGrant {
            slot: self.slot,
            generation,
            step,
            suite: self.config.suite,
        };
        let mut rng = rand::rng();
        let mut result = Ok(());
        for device in devices {
            let Some(peer) = self.roster.recipient(device) else {
                continue;
            };
            match KeyEnvelope::seal(
                &self.me,
                &peer.bundle,
                &self.room,
                &self.call,
                grant,
                key,
                &mut rng,
            ) {
                Ok(envelope) => self.outputs.push_back(KeyOutput::SendEnvelope {
                    to: device.clone(),
                    envelope,
                }),
                Err(e) => {
                    if result.is_ok() {
                        result = Err(e.into());
                    }
                }
            }
        }
        result
    }
}
