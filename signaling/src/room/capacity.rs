//! Which roles a room admits, how many places each role has, and the slot each member gets.

use super::Room;
use crate::auth::Grants;
use crate::policy::{Role, RoomKind};
use e2ee_frames::wire::b64_encode;

use crate::protocol::{DeviceBundle, ErrorCode};

/// Number of slots (KID bits 12–23).
const SLOTS: u32 = 4096;

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
    /// No slot is free (cannot happen below 4096 members).
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

    pub(super) fn allocate_slot(&mut self) -> Option<u16> {
        for _ in 0..SLOTS {
            let candidate = self.next_slot % SLOTS;
            self.next_slot = (self.next_slot + 1) % SLOTS;
            // `candidate` < 4096, so it fits in u16.
            let slot = candidate as u16;
            if self.members.values().all(|m| m.entry.slot != slot) {
                return Some(slot);
            }
        }
        None
    }
}
