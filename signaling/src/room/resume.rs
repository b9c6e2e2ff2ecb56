//! Resuming a device whose connection was lost: the member is suspended for the grace window
//! (`RekeyTiming::resume_grace`) instead of departing, and a `join` of the same device with
//! `resume` re-attaches it to its new connection with nobody else told anything (no roster delta,
//! no membership notice). A member that does not come back in time departs as a dropped one
//! (roster removal, tracks unpublished, rekey). See docs/architecture.md §7.42.

use std::time::Instant;

use super::roster::JoinRequest;
use super::{ConnId, Departure, Output, Room};
use crate::protocol::{Joined, LeaveReason, ResumeCall};

/// What became of a `join` that asked to resume, or of a suspension
/// (`signaling_resumes_total{outcome}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeOutcome {
    /// The device was re-attached to its new connection: same slot, nobody told anything.
    Resumed,
    /// The join came to the same call with its old slot free, but there was no membership to
    /// resume (after the grace window, or into a room recreated after a restart): a fresh join
    /// (roster delta, ratchet) that keeps the slot.
    Restored,
    /// The join could not resume (another call, another bundle or grants, its slot taken): a
    /// fresh join.
    Refused,
    /// A suspended member did not come back within the grace window: it departed.
    Expired,
}

impl ResumeOutcome {
    /// Every outcome, for the metric's labels.
    pub const ALL: [ResumeOutcome; 4] = [
        ResumeOutcome::Resumed,
        ResumeOutcome::Restored,
        ResumeOutcome::Refused,
        ResumeOutcome::Expired,
    ];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            ResumeOutcome::Resumed => "resumed",
            ResumeOutcome::Restored => "restored",
            ResumeOutcome::Refused => "refused",
            ResumeOutcome::Expired => "expired",
        }
    }
}

/// The call id of a room that a join creates: the one the join resumes when it asks to resume
/// one of the service's call ids (a client can only name the call id of a room its own join
/// creates: docs/architecture.md §7.42), else `None` (a fresh random one).
pub fn call_for_new_room(resume: Option<&ResumeCall>) -> Option<String> {
    resume
        .filter(|r| r.has_call_id_shape())
        .map(|r| r.call.clone())
}

impl Room {
    /// Suspends `device` (its connection was lost) until the grace window ends; false when the
    /// room has no grace window (the member departs at once).
    pub(super) fn suspend(&mut self, device: &str, now: Instant) -> bool {
        let grace = self.timing.resume_grace;
        if grace.is_zero() {
            return false;
        }
        match self.members.get_mut(device) {
            Some(m) => {
                m.suspended_until = Some(now + grace);
                true
            }
            None => false,
        }
    }

    /// Whether `conn` is the lost connection of a suspended member (what is sent to it is
    /// dropped, and counted by the room's owner).
    pub fn is_suspended_conn(&self, conn: ConnId) -> bool {
        self.members
            .values()
            .any(|m| m.conn == conn && m.suspended_until.is_some())
    }

    /// Whether no member holds `slot`.
    pub(super) fn slot_is_free(&self, slot: u16) -> bool {
        self.members.values().all(|m| m.entry.slot != slot)
    }

    /// Re-attaches the member `req` names to `req.conn` when `req` resumes it: `resume` names
    /// this room's call and the member's slot, and the device comes back with the same bundle
    /// and the same grants. The member may be suspended, or still held by a connection the
    /// server has not yet seen drop (the client noticed first): that connection is told
    /// `left replaced` and closed, and its own leave later finds the device moved on. `None`:
    /// not a resume (the caller goes on with a fresh join).
    pub(super) fn resume(
        &mut self,
        req: &JoinRequest,
        media: bool,
    ) -> Option<(Joined, Vec<Output>)> {
        let asked = req.resume.as_ref()?;
        let member = self.members.get(&req.bundle.device)?;
        let same = asked.call == self.call
            && asked.slot == member.entry.slot
            && member.entry.identity == req.grants.identity
            && member.entry.bundle == req.bundle
            && member.entry.role == req.grants.role
            && member.entry.can_publish == req.grants.can_publish
            && member.can_subscribe == req.grants.can_subscribe
            && member.moderator == req.grants.moderator;
        if !same {
            return None;
        }
        let entry = member.entry.clone();
        let old_conn = member.conn;
        let was_suspended = member.suspended_until.is_some();
        let mut joined = self.joined_body(&entry, &req.grants, media, self.roster_version);
        joined.resumed = true;
        let m = self
            .members
            .get_mut(&req.bundle.device)
            // Looked up just above, and nothing removed it since.
            .expect("the resumed member is in the room");
        m.conn = req.conn;
        m.suspended_until = None;
        let mut out = vec![Output::Resume(ResumeOutcome::Resumed)];
        if !was_suspended && old_conn != req.conn {
            out.push(Output::Close {
                conn: old_conn,
                reason: LeaveReason::Replaced,
            });
        }
        // The media node still holds the device's media session (its peer connection does not
        // depend on the WebSocket); the tracks it publishes were never unpublished. Its offers
        // and slot maps resume on the new connection from here on.
        Some((joined, out))
    }

    /// When the earliest suspension ends.
    pub(super) fn suspension_due(&self) -> Option<Instant> {
        self.members
            .values()
            .filter_map(|m| m.suspended_until)
            .min()
    }

    /// Members suspended past their grace window depart, as dropped ones.
    pub(super) fn expire_suspended(&mut self, now: Instant) -> Vec<Output> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.suspended_until.is_some_and(|until| until <= now))
            .map(|m| m.entry.device.clone())
            .collect();
        let mut out = Vec::new();
        for device in expired {
            out.push(Output::Resume(ResumeOutcome::Expired));
            out.extend(self.remove(&device, Departure::Dropped, now));
        }
        out
    }
}
