//! A room as another replica needs it to take the room over without anyone noticing
//! (docs/architecture.md §7.56): its call, policy, controls, tracks and each member's roster
//! entry, grants, slot and media session. Written by the room's owner to Redis whenever one of
//! them changes; a replica that takes the room over restores it with every member *suspended*
//! for the resume grace window, so each device that comes back resumes (§7.42) and nobody is
//! told anything. What a member does meanwhile (stats, quality, hands, pending offers) is not
//! kept.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Member, RekeyTiming, Room};
use crate::media_node::MediaSessionId;
use crate::policy::RoomPolicy;
use crate::protocol::{MediaState, ReceiveSlotCounts, RosterEntry, Subscription, TrackInfo};

/// A member as its room's record keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Its roster entry (device, identity, bundle, role, slot, grants to publish).
    pub entry: RosterEntry,
    /// May subscribe.
    pub can_subscribe: bool,
    /// Its token grants `moderator`.
    pub moderator: bool,
    /// Join time, Unix seconds.
    pub joined_at_unix: u64,
    /// Its media session on the media node.
    pub media_session: u64,
    /// Its current subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Its latest `media_state`.
    pub media_state: Option<MediaState>,
}

/// A room's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomRecord {
    /// The room's name.
    pub name: String,
    /// Its call id.
    pub call: String,
    /// Its policy.
    pub policy: RoomPolicy,
    /// Whether it closes when its last device leaves.
    pub ephemeral: bool,
    /// Creation time, Unix seconds.
    pub created_at_unix: u64,
    /// Roster version.
    pub roster_version: u64,
    /// Where the next search of the sender slots starts.
    pub next_slot: u32,
    /// Where the next search of the receive-only slots starts (absent in records written
    /// before there were two spaces).
    #[serde(default)]
    pub next_receive_slot: u32,
    /// Locked.
    pub locked: bool,
    /// Lobby on.
    pub lobby: bool,
    /// Published tracks.
    pub tracks: Vec<TrackInfo>,
    /// The receive slots the media node gives each device (a room with receive slots).
    pub receive_slots: Option<ReceiveSlotCounts>,
    /// The media node holding the room (its control URL), when known.
    pub media_node: Option<String>,
    /// Members.
    pub members: Vec<MemberRecord>,
}

impl Room {
    /// What changes the record: a cheap stamp the owner compares after each command, so the
    /// record is written only when it changed (roster, tracks, controls, media sessions).
    pub fn record_stamp(&self) -> (u64, usize, bool, bool, u64) {
        let sessions = self
            .members
            .values()
            .fold(0u64, |acc, m| acc.wrapping_add(m.media_session.0));
        (
            self.roster_version,
            self.tracks.len(),
            self.controls.locked(),
            self.controls.lobby(),
            sessions,
        )
    }

    /// The room's record (`ephemeral` and `media_node` are the owner's, not the room's).
    pub fn record(&self, ephemeral: bool, media_node: Option<String>) -> RoomRecord {
        RoomRecord {
            name: self.name.clone(),
            call: self.call.clone(),
            policy: self.policy.clone(),
            ephemeral,
            created_at_unix: self.created_at_unix,
            roster_version: self.roster_version,
            next_slot: self.next_slot,
            next_receive_slot: self.next_receive_slot,
            locked: self.controls.locked(),
            lobby: self.controls.lobby(),
            tracks: self.tracks.values().cloned().collect(),
            receive_slots: self.receive_slots,
            media_node,
            members: self
                .members
                .values()
                .map(|m| MemberRecord {
                    entry: m.entry.clone(),
                    can_subscribe: m.can_subscribe,
                    moderator: m.moderator,
                    joined_at_unix: m.joined_at_unix,
                    media_session: m.media_session.0,
                    subscriptions: m.subscriptions.clone(),
                    media_state: m.media_state,
                })
                .collect(),
        }
    }

    /// The room a record describes, every member suspended until the resume grace window
    /// after `now` (on no connection: what is sent to it is dropped until it resumes). A room
    /// without a grace window gets its members back for one instant: they depart at the next
    /// timeout, as dropped ones.
    pub fn restore(record: RoomRecord, timing: RekeyTiming, now: Instant) -> Room {
        let mut room = Room::new(
            record.name,
            record.call,
            record.policy,
            timing,
            record.created_at_unix,
        );
        room.roster_version = record.roster_version;
        room.next_slot = record.next_slot;
        room.next_receive_slot = record.next_receive_slot;
        room.controls.set(record.locked, record.lobby);
        room.receive_slots = record.receive_slots;
        room.tracks = record
            .tracks
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let until = now + timing.resume_grace;
        for m in record.members {
            room.members.insert(
                m.entry.device.clone(),
                Member {
                    entry: m.entry,
                    conn: NO_CONNECTION,
                    can_subscribe: m.can_subscribe,
                    joined_at_unix: m.joined_at_unix,
                    client_stats: None,
                    media_quality: None,
                    subscriptions: m.subscriptions,
                    media_state: m.media_state,
                    hand: None,
                    moderator: m.moderator,
                    suspended_until: Some(until),
                    node_offer: None,
                    media_session: MediaSessionId(m.media_session),
                },
            );
        }
        room
    }
}

/// The connection of a restored member until it resumes (connection ids start at 1).
pub const NO_CONNECTION: super::ConnId = 0;
