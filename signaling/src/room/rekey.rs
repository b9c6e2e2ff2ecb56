//! When membership notices go out: joins are coalesced into one ratchet per window (see
//! `join_ratchet`); leaves are debounced into one rekey, and broadcast viewer leaves are coalesced.

use std::time::{Duration, Instant};

use super::{ConnId, Output, Room};
use crate::policy::{Role, RoomKind};
use crate::protocol::{MembershipAction, MembershipNotice, RosterEntry, ServerMessage};

/// When membership notices go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RekeyTiming {
    /// Quiet time after a leave before the rekey notice (more leaves in it join the same rekey).
    pub debounce: Duration,
    /// Longest a rekey waits while leaves keep coming.
    pub max_delay: Duration,
    /// In broadcasts, least time between two rekeys caused only by viewer leaves.
    pub broadcast_viewer_interval: Duration,
    /// Joins within this long of the first of a burst share one ratchet notice (100 ms).
    pub join_window: Duration,
    /// A ratchet notice names at most this many joiners; a full window is sent at once (64).
    pub join_batch_max: usize,
    /// How long a member whose connection was lost stays suspended, waiting to resume, before
    /// it departs (10 s; zero: it departs at once).
    pub resume_grace: Duration,
}

impl Default for RekeyTiming {
    fn default() -> Self {
        RekeyTiming {
            debounce: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            broadcast_viewer_interval: Duration::from_secs(30),
            join_window: Duration::from_millis(100),
            join_batch_max: 64,
            resume_grace: Duration::from_secs(10),
        }
    }
}

/// Leaves waiting for their rekey notice.
#[derive(Debug, Default)]
pub(super) struct PendingRekey {
    left: Vec<String>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// A leave that is not a broadcast viewer's: no coalescing window applies.
    urgent: bool,
}

impl Room {
    pub(super) fn schedule_rekey(&mut self, gone: RosterEntry, now: Instant) {
        let p = &mut self.pending;
        p.left.push(gone.device);
        p.first.get_or_insert(now);
        p.last = Some(now);
        p.urgent |= !(self.policy.kind == RoomKind::Broadcast && gone.role == Role::Viewer);
    }

    /// When [`Room::handle_timeout`] next needs calling.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.ratchet_due(),
            self.rekey_due(),
            self.suspension_due(),
            self.node_offer_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn rekey_due(&self) -> Option<Instant> {
        let p = &self.pending;
        let (first, last) = (p.first?, p.last?);
        let t = self.timing;
        Some(if p.urgent {
            (last + t.debounce).min(first + t.max_delay)
        } else {
            let earliest = first + t.debounce;
            match self.last_rekey {
                Some(prev) => earliest.max(prev + t.broadcast_viewer_interval),
                None => earliest,
            }
        })
    }

    /// Ends the suspensions that are due, then sends the ratchet and rekey notices that are due,
    /// then the node offers left unanswered too long.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Output> {
        let mut out = self.expire_suspended(now);
        out.extend(self.ratchet_if_due(now));
        out.extend(self.rekey_if_due(now));
        out.extend(self.resend_node_offers_if_due(now));
        out
    }

    fn rekey_if_due(&mut self, now: Instant) -> Vec<Output> {
        match self.rekey_due() {
            Some(due) if due <= now => {}
            _ => return Vec::new(),
        }
        let pending = std::mem::take(&mut self.pending);
        self.last_rekey = Some(now);
        let senders: Vec<ConnId> = self
            .members
            .values()
            .filter(|m| m.entry.can_publish)
            .map(|m| m.conn)
            .collect();
        if senders.is_empty() {
            return Vec::new();
        }
        vec![Output::Send {
            to: senders,
            message: ServerMessage::Membership(MembershipNotice {
                action: MembershipAction::Rekey,
                joined: vec![],
                left: pending.left,
                roster_version: self.roster_version,
            }),
        }]
    }
}
