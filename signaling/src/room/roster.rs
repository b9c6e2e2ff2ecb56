//! Who is in the room and who sees whom: joins, leaves, kicks and the roster notices they cause.

use std::time::Instant;

use super::capacity::slot_space;
use super::{ConnId, Departure, JoinError, Member, Output, ResumeOutcome, Room};
use crate::auth::Grants;
use crate::media_node::MediaSessionId;
use crate::policy::{Role, RoomKind};
use crate::protocol::{
    DeviceBundle, Joined, LeaveReason, PROTOCOL_VERSION, ResumeCall, Roster, RosterDelta,
    RosterEntry, ServerMessage, TrackInfo,
};

/// A join as the room sees it: verified grants plus the device's bundle.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// The joining connection.
    pub conn: ConnId,
    /// Verified token grants.
    pub grants: Grants,
    /// Shape-checked device bundle.
    pub bundle: DeviceBundle,
    /// Display name.
    pub name: Option<String>,
    /// Wall-clock join time, Unix seconds (admin API only).
    pub now_unix: u64,
    /// The call and slot of a lost session this join asks to resume (`join.resume`).
    pub resume: Option<ResumeCall>,
}

impl Room {
    pub(super) fn sees(&self, viewer: &RosterEntry, subject: &RosterEntry) -> bool {
        self.policy.kind == RoomKind::Meeting
            || viewer.role != Role::Viewer
            || subject.role != Role::Viewer
            || viewer.device == subject.device
    }

    /// Connections of members (other than `subject`) that see `subject`, filtered by `keep`.
    pub(super) fn watchers(
        &self,
        subject: &RosterEntry,
        keep: impl Fn(&Member) -> bool,
    ) -> Vec<ConnId> {
        self.members
            .values()
            .filter(|m| m.entry.device != subject.device)
            .filter(|m| self.sees(&m.entry, subject) && keep(m))
            .map(|m| m.conn)
            .collect()
    }

    /// Admits a device. On success returns the `joined` body for it and the notices for others.
    pub fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        media: bool,
    ) -> Result<(Joined, Vec<Output>), JoinError> {
        if self.closed {
            return Err(JoinError::Closed);
        }
        self.check_role(&req.grants, &req.bundle)?;
        if let Some((joined, mut out)) = self.resume(&req, media) {
            out.extend(self.resend_offer_on_resume(&req.bundle.device, now));
            return Ok((joined, out));
        }
        let replacing = match self.members.get(&req.bundle.device) {
            Some(old) if old.entry.identity == req.grants.identity => Some(old.entry.role),
            Some(_) => return Err(JoinError::DuplicateDevice),
            None => None,
        };
        let role = req.grants.role;
        self.check_capacity(role, replacing)?;
        // A device coming back to the same call (after the grace window, or into the room a
        // resuming join recreated after a restart) gets its old slot when no one holds it, so
        // the call's security code comes out the same when the roster did. (One replacing a
        // connection of its device that it could not resume holds it still: a fresh slot.)
        let old_slot = req
            .resume
            .as_ref()
            .filter(|r| {
                r.call == self.call
                    && slot_space(req.grants.can_publish).contains(&u32::from(r.slot))
                    && self.slot_is_free(r.slot)
            })
            .map(|r| r.slot);
        let mut out = Vec::new();
        if replacing.is_some() {
            out.extend(self.remove(&req.bundle.device, Departure::Replaced, now));
        }
        if req.resume.is_some() {
            out.push(Output::Resume(if old_slot.is_some() {
                ResumeOutcome::Restored
            } else {
                ResumeOutcome::Refused
            }));
        }
        let slot = match old_slot {
            Some(slot) => slot,
            None => self
                .allocate_slot(req.grants.can_publish)
                .ok_or(JoinError::NoSlot)?,
        };
        let entry = RosterEntry {
            device: req.bundle.device.clone(),
            identity: req.grants.identity.clone(),
            name: req.name,
            role,
            slot,
            can_publish: req.grants.can_publish,
            bundle: req.bundle,
        };
        self.roster_version += 1;
        let version = self.roster_version;
        let roster_watchers = self.watchers(&entry, |_| true);
        if !roster_watchers.is_empty() {
            out.push(Output::Send {
                to: roster_watchers,
                message: ServerMessage::Roster(RosterDelta {
                    version,
                    added: vec![entry.clone()],
                    removed: vec![],
                }),
            });
        }
        let joined = self.joined_body(&entry, &req.grants, media, version);
        self.members.insert(
            entry.device.clone(),
            Member {
                entry,
                conn: req.conn,
                can_subscribe: req.grants.can_subscribe,
                joined_at_unix: req.now_unix,
                client_stats: None,
                media_quality: None,
                subscriptions: Vec::new(),
                media_state: None,
                hand: None,
                moderator: req.grants.moderator,
                suspended_until: None,
                node_offer: None,
                media_session: MediaSessionId::random(),
            },
        );
        out.extend(self.schedule_ratchet(joined.device.clone(), now));
        if self.test_hooks.lies() {
            let tracks: Vec<TrackInfo> = self.tracks.values().cloned().collect();
            out.extend(self.tell_tracks(&tracks, Some(&joined.device)));
        }
        Ok((joined, out))
    }

    /// The `joined` body for `entry` (a member, or one about to be) at roster `version`: the
    /// roster, tracks, media states and hands it sees.
    pub(super) fn joined_body(
        &self,
        entry: &RosterEntry,
        grants: &Grants,
        media: bool,
        version: u64,
    ) -> Joined {
        let devices: Vec<RosterEntry> = self
            .members
            .values()
            .filter(|m| m.entry.device != entry.device && self.sees(entry, &m.entry))
            .map(|m| m.entry.clone())
            .chain(std::iter::once(entry.clone()))
            .collect();
        Joined {
            v: PROTOCOL_VERSION,
            room: self.name.clone(),
            call: self.call.clone(),
            kind: self.policy.kind,
            device: entry.device.clone(),
            slot: entry.slot,
            role: entry.role,
            can_publish: entry.can_publish,
            can_subscribe: grants.can_subscribe,
            moderator: grants.moderator,
            media,
            recording: self.policy.recording.clone(),
            roster: Roster { version, devices },
            tracks: self
                .tracks
                .values()
                .map(|t| {
                    let members = self.members.keys().map(String::as_str);
                    self.test_hooks.track_as_told(t, &entry.device, members)
                })
                .collect(),
            media_states: self.media_states_seen_by(entry),
            hands: self.hands_seen_by(entry),
            ice_servers: Vec::new(),
            receive_slots: self.receive_slots,
            resumed: false,
        }
    }

    /// Removes `device` if `conn` still holds it (a stale connection cannot remove its
    /// replacement), or takes its join out of the lobby when it is waiting there. A lost
    /// connection (`Dropped`) suspends the member for the resume grace window instead.
    pub fn leave(
        &mut self,
        conn: ConnId,
        device: &str,
        how: Departure,
        now: Instant,
    ) -> Vec<Output> {
        if let Some(out) = self.leave_lobby(conn, device, how) {
            return out;
        }
        match self.members.get(device) {
            Some(m) if m.conn == conn => {
                if how == Departure::Dropped && self.suspend(device, now) {
                    return Vec::new();
                }
                self.remove(device, how, now)
            }
            _ => Vec::new(),
        }
    }

    /// Removes `device` (an admin's or a moderator's kick).
    pub fn kick(&mut self, device: &str, now: Instant) -> Option<Vec<Output>> {
        self.members
            .contains_key(device)
            .then(|| self.remove(device, Departure::Kicked, now))
    }

    pub(super) fn remove(&mut self, device: &str, how: Departure, now: Instant) -> Vec<Output> {
        let Some(gone) = self.members.remove(device) else {
            return Vec::new();
        };
        self.unschedule_ratchet(device);
        if how == Departure::ServerShutdown {
            self.roster_version += 1;
            self.tracks.retain(|_, t| t.publisher != gone.entry.device);
            return vec![Output::MediaRemove {
                device: gone.entry.device.clone(),
                session: gone.media_session,
            }];
        }
        self.roster_version += 1;
        let mut out = Vec::new();
        let watchers = self.watchers(&gone.entry, |_| true);
        if !watchers.is_empty() {
            out.push(Output::Send {
                to: watchers,
                message: ServerMessage::Roster(RosterDelta {
                    version: self.roster_version,
                    added: vec![],
                    removed: vec![gone.entry.device.clone()],
                }),
            });
        }
        let reason = match how {
            Departure::Left => Some(LeaveReason::Leave),
            Departure::Kicked => Some(LeaveReason::Kicked),
            Departure::Replaced => Some(LeaveReason::Replaced),
            Departure::CallEnded => Some(LeaveReason::CallEnded),
            Departure::Dropped
            | Departure::Closed
            | Departure::SlowConsumer
            | Departure::ServerShutdown => None,
        };
        if let Some(reason) = reason {
            out.push(Output::Close {
                conn: gone.conn,
                reason,
            });
        }
        out.push(Output::MediaRemove {
            device: gone.entry.device.clone(),
            session: gone.media_session,
        });
        let stale: Vec<String> = self
            .tracks
            .values()
            .filter(|t| t.publisher == gone.entry.device)
            .map(|t| t.id.clone())
            .collect();
        for id in stale {
            out.extend(self.unpublish(&id));
        }
        self.schedule_rekey(gone.entry, now);
        out
    }
}
