//! Joins are coalesced into one `membership` `ratchet` notice per window (docs/architecture.md
//! §7.24): the first join of a burst opens a window of [`RekeyTiming::join_window`]; every join in
//! it is named by the one notice sent when it closes (or at once when
//! [`RekeyTiming::join_batch_max`] joiners are waiting), so a burst of joins moves each sender's
//! key one ratchet step, not one per joiner, and stays inside the receivers' look-ahead.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{ConnId, Output, Room};
use crate::protocol::{MembershipAction, MembershipNotice, ServerMessage};

/// Joiners waiting for their ratchet notice.
#[derive(Debug, Default)]
pub(super) struct PendingRatchet {
    joined: Vec<String>,
    first: Option<Instant>,
}

impl Room {
    /// Counts `device` into the current join window (opening one at `now` if none is open);
    /// returns the notice at once when the window is full.
    pub(super) fn schedule_ratchet(&mut self, device: String, now: Instant) -> Vec<Output> {
        let p = &mut self.pending_ratchet;
        p.joined.push(device);
        p.first.get_or_insert(now);
        if p.joined.len() >= self.timing.join_batch_max.max(1) {
            return self.flush_ratchet();
        }
        Vec::new()
    }

    /// A joiner left before its notice: it is not named.
    pub(super) fn unschedule_ratchet(&mut self, device: &str) {
        self.pending_ratchet.joined.retain(|d| d != device);
        if self.pending_ratchet.joined.is_empty() {
            self.pending_ratchet = PendingRatchet::default();
        }
    }

    /// When the open join window closes.
    pub(super) fn ratchet_due(&self) -> Option<Instant> {
        Some(self.pending_ratchet.first? + self.timing.join_window)
    }

    /// The notice for the joiners waiting, if their window is closed at `now`.
    pub(super) fn ratchet_if_due(&mut self, now: Instant) -> Vec<Output> {
        match self.ratchet_due() {
            Some(due) if due <= now => self.flush_ratchet(),
            _ => Vec::new(),
        }
    }

    /// One notice per group of senders that see the same joiners. A sender is told only of
    /// those who joined after it: its own first key went to everyone already in (and nobody is
    /// told of its own join).
    fn flush_ratchet(&mut self) -> Vec<Output> {
        let pending = std::mem::take(&mut self.pending_ratchet);
        let mut groups: BTreeMap<Vec<String>, Vec<ConnId>> = BTreeMap::new();
        for sender in self.members.values().filter(|m| m.entry.can_publish) {
            let after = pending
                .joined
                .iter()
                .position(|d| *d == sender.entry.device)
                .map_or(0, |i| i + 1);
            let joined: Vec<String> = pending.joined[after..]
                .iter()
                .filter(|d| {
                    self.members
                        .get(d.as_str())
                        .is_some_and(|j| self.sees(&sender.entry, &j.entry))
                })
                .cloned()
                .collect();
            if !joined.is_empty() {
                groups.entry(joined).or_default().push(sender.conn);
            }
        }
        groups
            .into_iter()
            .map(|(joined, to)| Output::Send {
                to,
                message: ServerMessage::Membership(MembershipNotice {
                    action: MembershipAction::Ratchet,
                    joined,
                    left: vec![],
                    roster_version: self.roster_version,
                }),
            })
            .collect()
    }
}
