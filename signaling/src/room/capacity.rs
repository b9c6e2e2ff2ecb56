//! Which roles a room admits, how many places each role has, and the slot each member gets.
//!
//! Slots come from two spaces (docs/protocol.md §3): a device that may publish takes one of the
//! KID's 4,096 sender slots (0–4095, e2ee.md §1.1); a device that never sends media (a
//! broadcast viewer, a recorder, a caller without the publish grant) takes a receive-only slot
//! (4096–65535), which no frame and no key envelope ever names. So the senders of a call are
//! never crowded out by its audience, and a broadcast's audience is not capped by the KID.

use std::collections::HashSet;
use std::ops::Range;

use super::Room;
use crate::auth::Grants;
use crate::policy::{Role, RoomKind};
use e2ee_frames::wire::b64_encode;

use crate::protocol::{DeviceBundle, ErrorCode};

/// Slots of devices that may publish: the KID's sender field (bits 12–23).
const SENDER_SLOTS: Range<u32> = 0..4096;
/// Slots of devices that never send media: the rest of the `u16` range, outside any KID.
const RECEIVE_ONLY_SLOTS: Range<u32> = 4096..65536;

/// The slots a device takes: sender slots when it may publish, else receive-only ones.
pub(super) fn slot_space(can_publish: bool) -> Range<u32> {
    if can_publish {
        SENDER_SLOTS
    } else {
        RECEIVE_ONLY_SLOTS
    }
}

/// Why a join is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// No capacity left for the role.
    #[error("room is full: {capacity} {role} places taken")]
    Full {
        /// Role asked for.
        role: &'static str,
        /// Its capacity.
        capacity: u32,
    },
    /// The role cannot join this room.
    #[error("{0}")]
    RoleNotAllowed(String),
    /// The device id is held by a connection of another identity.
    #[error("device id is in use by another identity")]
    DuplicateDevice,
    /// No slot of the device's space is free (cannot happen below 4,096 senders or 61,440
    /// receive-only devices).
    #[error("no free slot")]
    NoSlot,
    /// The room is closed.
    #[error("room is closed")]
    Closed,
    /// The room is locked and the device is not a moderator.
    #[error("room is locked: only moderators may join")]
    Locked,
}

impl JoinError {
    /// The code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            JoinError::Full { .. } | JoinError::NoSlot => ErrorCode::RoomFull,
            JoinError::RoleNotAllowed(_) => ErrorCode::RoleNotAllowed,
            JoinError::DuplicateDevice => ErrorCode::DuplicateDevice,
            JoinError::Closed => ErrorCode::RoomNotFound,
            JoinError::Locked => ErrorCode::RoomLocked,
        }
    }
}

impl Room {
    pub(super) fn check_role(
        &self,
        grants: &Grants,
        bundle: &DeviceBundle,
    ) -> Result<(), JoinError> {
        let allowed = match (self.policy.kind, grants.role) {
            (RoomKind::Meeting, Role::Caller) => true,
            (RoomKind::Broadcast, Role::Presenter | Role::Viewer) => true,
            (_, Role::Recorder) => {
                let named = self
                    .policy
                    .recording
                    .as_ref()
                    .and_then(|r| r.document().ok())
                    .is_some_and(|doc| {
                        doc.names_recorder(&bundle.device, &b64_encode(&bundle.identity_key))
                    });
                if !named {
                    return Err(JoinError::RoleNotAllowed(
                        "this device is not a recorder named by the room's recording policy".into(),
                    ));
                }
                true
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            let kind = match self.policy.kind {
                RoomKind::Meeting => "meeting",
                RoomKind::Broadcast => "broadcast",
            };
            Err(JoinError::RoleNotAllowed(format!(
                "role {} cannot join a {kind} room",
                grants.role.as_str()
            )))
        }
    }

    /// Refuses a join of `role` when its places are all taken (a device `replacing` its own
    /// earlier connection in the same role does not count twice).
    pub(super) fn check_capacity(
        &self,
        role: Role,
        replacing: Option<Role>,
    ) -> Result<(), JoinError> {
        let capacity = self.policy.capacity(role);
        let taken =
            self.counts().get(&role).copied().unwrap_or(0) - u32::from(replacing == Some(role));
        if taken >= capacity {
            return Err(JoinError::Full {
                role: role.as_str(),
                capacity,
            });
        }
        Ok(())
    }

    /// A free slot of the space a device that may (`can_publish`) or may not publish takes,
    /// searched from where the previous search of that space stopped (a slot just given up is
    /// not handed out again at once).
    pub(super) fn allocate_slot(&mut self, can_publish: bool) -> Option<u16> {
        let space = slot_space(can_publish);
        let size = space.end - space.start;
        let used: HashSet<u16> = self.members.values().map(|m| m.entry.slot).collect();
        let cursor = if can_publish {
            &mut self.next_slot
        } else {
            &mut self.next_receive_slot
        };
        for _ in 0..size {
            let candidate = space.start + *cursor % size;
            *cursor = (*cursor + 1) % size;
            // Both spaces end at 65536, so `candidate` fits in u16.
            let slot = candidate as u16;
            if !used.contains(&slot) {
                return Some(slot);
            }
        }
        None
    }
}
