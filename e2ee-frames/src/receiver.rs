//! The receiving side (docs/e2ee.md §1.3): keys looked up by KID, the RFC 9605 §5.1 ratchet
//! with bounded look-ahead, a per-KID replay window that moves only after authentication, and
//! eviction of old steps and generations. Time is passed in; nothing here reads a clock.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::MAX_HEADER_LEN;
use crate::header::{Header, HeaderError};
use crate::key::{BaseKey, SframeError, SframeKey};
use crate::kid::{Kid, KidError, MAX_SLOT};
use crate::media::{Codec, frame_kind, nominal_prefix_len};
use crate::suite::CipherSuite;

/// How many ratchet steps past the newest held step a frame may ask for.
pub const RATCHET_LOOKAHEAD: u8 = 16;
/// How long the previous step's key stays usable after a ratchet.
pub const PREVIOUS_STEP_GRACE: Duration = Duration::from_secs(2);
/// Generations kept per sender.
pub const MAX_GENERATIONS: usize = 3;
/// How long an older generation lives after a newer one authenticated its first frame.
pub const OLD_GENERATION_GRACE: Duration = Duration::from_secs(10);
/// Counters below the highest authenticated one that the replay window tracks.
pub const REPLAY_WINDOW: u64 = 128;

/// Why a received frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The SFrame header is malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The KID does not follow the project's layout.
    #[error(transparent)]
    Kid(#[from] KidError),
    /// No key is held for this sender slot and generation.
    #[error("no key for KID {0}")]
    UnknownKid(u64),
    /// The KID's step is beyond the look-ahead bound from the newest held step.
    #[error("ratchet step {requested} is beyond the bound (held {held}, look-ahead 16)")]
    RatchetBeyondBound {
        /// Newest step held.
        held: u8,
        /// Step in the frame.
        requested: u8,
    },
    /// The KID's step is older than the keys held (forward secrecy on join).
    #[error("ratchet step {requested} is older than the held step {held}")]
    StepTooOld {
        /// Newest step held.
        held: u8,
        /// Step in the frame.
        requested: u8,
    },
    /// The counter was already seen or is below the replay window.
    #[error("replayed or too old SFrame counter {0}")]
    Replay(u64),
    /// The frame ends before a complete tag.
    #[error("SFrame ciphertext shorter than the tag")]
    TooShort,
    /// The tag did not verify.
    #[error("SFrame authentication failed")]
    Authentication,
}

impl From<SframeError> for ReceiveError {
    fn from(e: SframeError) -> Self {
        match e {
            SframeError::Header(h) => ReceiveError::Header(h),
            SframeError::TooShort { .. } => ReceiveError::TooShort,
            // KID mismatch cannot happen (the key is chosen by KID); too-long cannot be
            // produced by a received frame. Both mean the frame is not authentic.
            _ => ReceiveError::Authentication,
        }
    }
}

/// Why a key was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Slots are 12 bits.
    #[error(transparent)]
    Kid(#[from] KidError),
    /// A newer step of this generation is already held (keys never go back).
    #[error("step {offered} is not newer than held step {held}")]
    StaleStep {
        /// Step held.
        held: u8,
        /// Step offered.
        offered: u8,
    },
    /// The generation is already held under another suite.
    #[error("generation already held with suite 0x{held:04x}")]
    SuiteMismatch {
        /// Suite held.
        held: u16,
    },
    /// The sender already holds three newer generations.
    #[error("generation {0} is older than every kept generation")]
    GenerationTooOld(u16),
}

/// A frame that decrypted: which KID and counter it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The decoded KID (sender slot, stream, generation, step).
    pub kid: Kid,
    /// The frame counter.
    pub ctr: u64,
}

/// Replay window: the highest authenticated counter and a bitmap of the 128 below it.
#[derive(Debug, Clone, Default)]
struct ReplayWindow {
    /// Highest authenticated counter, `None` before the first frame.
    highest: Option<u64>,
    /// Bit `i` set: counter `highest - 1 - i` was seen.
    seen: u128,
}

impl ReplayWindow {
    fn check(&self, ctr: u64) -> Result<(), ReceiveError> {
        let Some(h) = self.highest else { return Ok(()) };
        if ctr > h {
            return Ok(());
        }
        let below = h - ctr;
        if below == 0 || below > REPLAY_WINDOW || self.seen & (1u128 << (below - 1)) != 0 {
            return Err(ReceiveError::Replay(ctr));
        }
        Ok(())
    }

    /// Records an authenticated counter (after [`ReplayWindow::check`] passed).
    fn accept(&mut self, ctr: u64) {
        match self.highest {
            None => self.highest = Some(ctr),
            Some(h) if ctr > h => {
                let shift = ctr - h;
                // The old highest becomes bit `shift - 1`.
                self.seen = if shift > REPLAY_WINDOW {
                    0
                } else if shift == REPLAY_WINDOW {
                    1u128 << 127
                } else {
                    (self.seen << shift) | (1u128 << (shift - 1))
                };
                self.highest = Some(ctr);
            }
            Some(h) => self.seen |= 1u128 << (h - ctr - 1),
        }
    }
}

#[derive(Debug)]
struct KidState {
    key: SframeKey,
    window: ReplayWindow,
}

/// Keys of one ratchet step: the step's base key and, per stream, the derived key and window.
#[derive(Debug)]
struct StepKeys {
    step: u8,
    base_key: BaseKey,
    streams: [Option<KidState>; 4],
}

impl StepKeys {
    fn new(step: u8, base_key: BaseKey) -> Self {
        StepKeys {
            step,
            base_key,
            streams: Default::default(),
        }
    }

    fn state(&mut self, suite: CipherSuite, kid: Kid) -> &mut KidState {
        let base_key = &self.base_key;
        self.streams[kid.stream().index()].get_or_insert_with(|| KidState {
            key: SframeKey::derive(suite, base_key, kid.to_u64()),
            window: ReplayWindow::default(),
        })
    }
}

#[derive(Debug)]
struct GenerationKeys {
    generation: u16,
    suite: CipherSuite,
    current: StepKeys,
    /// The step held before the last ratchet, usable until the instant given.
    previous: Option<(StepKeys, Instant)>,
    /// Whether any frame of this generation authenticated.
    authenticated: bool,
    /// When this generation is dropped (a newer one authenticated a frame).
    evict_at: Option<Instant>,
}

impl GenerationKeys {
    fn ratchet_to(&mut self, now: Instant, next: StepKeys) {
        let old = std::mem::replace(&mut self.current, next);
        self.previous = Some((old, now + PREVIOUS_STEP_GRACE));
    }
}

/// Receiver key store: every sender's generations, keyed by slot.
#[derive(Debug, Default)]
pub struct KeyStore {
    /// Generations per sender slot, oldest first (at most [`MAX_GENERATIONS`]).
    senders: FxHashMap<u16, Vec<GenerationKeys>>,
}

impl KeyStore {
    /// An empty store.
    pub fn new() -> Self {
        KeyStore::default()
    }

    /// Installs the base key of (slot, generation) at `step`, e.g. from an opened envelope.
    ///
    /// A newer step of a held generation replaces the held one (the old step stays usable for
    /// [`PREVIOUS_STEP_GRACE`]); re-installing the held step with the same key is a no-op; a
    /// fourth generation evicts the oldest.
    pub fn install(
        &mut self,
        now: Instant,
        slot: u16,
        generation: u16,
        step: u8,
        suite: CipherSuite,
        base_key: BaseKey,
    ) -> Result<(), InstallError> {
        if slot > MAX_SLOT {
            return Err(KidError::SlotOutOfRange(slot).into());
        }
        let gens = self.senders.entry(slot).or_default();
        if let Some(g) = gens.iter_mut().find(|g| g.generation == generation) {
            if g.suite != suite {
                return Err(InstallError::SuiteMismatch { held: g.suite.id() });
            }
            let held = g.current.step;
            return if step > held {
                g.ratchet_to(now, StepKeys::new(step, base_key));
                Ok(())
            } else if step == held && g.current.base_key == base_key {
                Ok(())
            } else {
                Err(InstallError::StaleStep {
                    held,
                    offered: step,
                })
            };
        }
        if gens.len() >= MAX_GENERATIONS && gens.iter().all(|g| g.generation > generation) {
            return Err(InstallError::GenerationTooOld(generation));
        }
        gens.push(GenerationKeys {
            generation,
            suite,
            current: StepKeys::new(step, base_key),
            previous: None,
            authenticated: false,
            evict_at: None,
        });
        gens.sort_by_key(|g| g.generation);
        while gens.len() > MAX_GENERATIONS {
            gens.remove(0);
        }
        Ok(())
    }

    /// Forgets every key of a sender (it left the room).
    pub fn remove_sender(&mut self, slot: u16) {
        self.senders.remove(&slot);
    }

    /// The newest step held for (slot, generation), after expiring what `now` expires.
    pub fn held_step(&mut self, now: Instant, slot: u16, generation: u16) -> Option<u8> {
        self.expire(now, slot);
        self.senders
            .get(&slot)?
            .iter()
            .find(|g| g.generation == generation)
            .map(|g| g.current.step)
    }

    /// The generations held for a sender, oldest first, after expiring what `now` expires.
    pub fn generations(&mut self, now: Instant, slot: u16) -> Vec<u16> {
        self.expire(now, slot);
        self.senders
            .get(&slot)
            .map(|gens| gens.iter().map(|g| g.generation).collect())
            .unwrap_or_default()
    }

    /// Decrypts one SFrame (`header || ciphertext || tag`) with AAD `header || metadata` and
    /// **appends** the plaintext to `out`. On error nothing changes (neither `out`, the replay
    /// window nor the ratchet).
    pub fn decrypt(
        &mut self,
        now: Instant,
        frame: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Received, ReceiveError> {
        self.decrypt_frame(now, frame, metadata, out, false)
    }

    /// [`KeyStore::decrypt`]; with `empty_only`, a frame whose ciphertext is not empty (body
    /// longer than a tag) is refused before any decryption.
    fn decrypt_frame(
        &mut self,
        now: Instant,
        frame: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
        empty_only: bool,
    ) -> Result<Received, ReceiveError> {
        let (header, header_len) = Header::parse(frame)?;
        let (header_bytes, body) = frame.split_at(header_len);
        let kid = Kid::from_u64(header.kid)?;
        let gens = self
            .senders
            .get_mut(&kid.slot())
            .ok_or(ReceiveError::UnknownKid(header.kid))?;
        expire_generations(now, gens);
        let g = gens
            .iter_mut()
            .find(|g| g.generation == kid.generation())
            .ok_or(ReceiveError::UnknownKid(header.kid))?;
        let suite = g.suite;
        if empty_only && body.len() != suite.tag_len() {
            return Err(ReceiveError::Authentication);
        }
        let held = g.current.step;
        let requested = kid.step();

        if requested == held {
            open(
                g.current.state(suite, kid),
                header,
                header_bytes,
                body,
                metadata,
                out,
            )?;
        } else if requested < held {
            match &mut g.previous {
                Some((prev, _)) if prev.step == requested => {
                    open(
                        prev.state(suite, kid),
                        header,
                        header_bytes,
                        body,
                        metadata,
                        out,
                    )?;
                }
                _ => return Err(ReceiveError::StepTooOld { held, requested }),
            }
        } else if requested - held <= RATCHET_LOOKAHEAD {
            // Ratchet on a candidate; keep it only if the frame authenticates, so a forged
            // frame cannot push the receiver past keys it still needs.
            let base = g
                .current
                .base_key
                .ratchet_by(suite, u32::from(requested - held));
            let mut next = StepKeys::new(requested, base);
            open(
                next.state(suite, kid),
                header,
                header_bytes,
                body,
                metadata,
                out,
            )?;
            g.ratchet_to(now, next);
        } else {
            return Err(ReceiveError::RatchetBeyondBound { held, requested });
        }

        if !g.authenticated {
            g.authenticated = true;
            let generation = g.generation;
            for older in gens.iter_mut().filter(|o| o.generation < generation) {
                let deadline = now + OLD_GENERATION_GRACE;
                older.evict_at = Some(older.evict_at.map_or(deadline, |t| t.min(deadline)));
            }
        }
        Ok(Received {
            kid,
            ctr: header.ctr,
        })
    }

    /// Decrypts a media frame `clear_prefix || header || ciphertext || tag` and writes the
    /// original encoded frame (`clear_prefix || plaintext`) to `out` (cleared first).
    ///
    /// The prefix length comes from the codec and the frame's first byte. A frame shorter
    /// than its nominal prefix was sent whole as prefix with an empty plaintext (docs/e2ee.md
    /// §1.2): only when the nominal prefix fails are shorter prefixes tried, and only those
    /// whose remainder is exactly an SFrame header plus a tag (at most 10 tries, each of an
    /// empty ciphertext). The first that authenticates wins.
    pub fn decrypt_media(
        &mut self,
        now: Instant,
        codec: Codec,
        wire: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Received, ReceiveError> {
        out.clear();
        let nominal = nominal_prefix_len(codec, frame_kind(codec, wire));
        let first = match wire.get(nominal..) {
            Some(sframe) => {
                let prefix = &wire[..nominal];
                out.extend_from_slice(prefix);
                match self.decrypt(now, sframe, prefix, out) {
                    Ok(r) => return Ok(r),
                    Err(e) => {
                        out.clear();
                        e
                    }
                }
            }
            None => ReceiveError::TooShort,
        };
        // With a short frame the nominal attempt reads the header at the wrong offset and can
        // fail in any way, so every error leads here; the candidates are few and tiny.
        for p in (0..nominal.min(wire.len())).rev() {
            let (prefix, sframe) = wire.split_at(p);
            if sframe.len() > MAX_HEADER_LEN + crate::aead::MAX_TAG_LEN {
                continue;
            }
            out.extend_from_slice(prefix);
            match self.decrypt_frame(now, sframe, prefix, out, true) {
                Ok(r) => return Ok(r),
                Err(_) => out.clear(),
            }
        }
        Err(first)
    }

    fn expire(&mut self, now: Instant, slot: u16) {
        let Some(gens) = self.senders.get_mut(&slot) else {
            return;
        };
        expire_generations(now, gens);
        if gens.is_empty() {
            self.senders.remove(&slot);
        }
    }
}

/// Drops generations and previous steps whose time is up.
fn expire_generations(now: Instant, gens: &mut Vec<GenerationKeys>) {
    if gens.iter().any(|g| g.evict_at.is_some_and(|t| now >= t)) {
        gens.retain(|g| g.evict_at.is_none_or(|t| now < t));
    }
    for g in gens.iter_mut() {
        if g.previous.as_ref().is_some_and(|(_, until)| now >= *until) {
            g.previous = None;
        }
    }
}

/// Replay check, decrypt, and only then move the window.
fn open(
    state: &mut KidState,
    header: Header,
    header_bytes: &[u8],
    body: &[u8],
    metadata: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ReceiveError> {
    state.window.check(header.ctr)?;
    state
        .key
        .decrypt_parsed(header, header_bytes, body, metadata, out)?;
    state.window.accept(header.ctr);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_edges() {
        let mut w = ReplayWindow::default();
        w.check(1000).unwrap();
        w.accept(1000);
        assert_eq!(w.check(1000), Err(ReceiveError::Replay(1000)));
        // 128 counters below the highest are tracked and accepted once.
        for c in (1000 - 128)..1000 {
            w.check(c).unwrap();
            w.accept(c);
            assert_eq!(w.check(c), Err(ReceiveError::Replay(c)));
        }
        assert_eq!(w.check(1000 - 129), Err(ReceiveError::Replay(871)));
        w.accept(1128);
        assert!(
            w.check(1000).is_err(),
            "1000 stays seen after a shift of 128"
        );
        assert!(w.check(1001).is_ok());
        w.accept(5000);
        assert!(w.check(4872).is_ok());
        assert!(w.check(4871).is_err());
    }
}
