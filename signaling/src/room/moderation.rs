//! Moderation: the room's lock and lobby, and what its moderators (tokens granting `moderator`)
//! may do: ask a device to mute, lower its raised hand, remove it, lock and unlock the room, turn the lobby on and off,
//! admit or deny a waiting join, end the call for everyone (docs/protocol.md §10).
//!
//! Every action is checked here, by the service: one from a device that is not a moderator is
//! refused ([`ModerationError::NotModerator`]), whatever its client shows. Moderators, a device
//! already in the room joining again (a reconnect), and recorders (only one the room's signed
//! recording policy names gets in at all) pass the lock and the lobby: a locked room stays
//! recorded.

use std::time::Instant;

use super::{ConnId, Departure, JoinError, JoinRequest, Output, Room};
use crate::policy::Role;
use crate::protocol::{
    ErrorCode, Joined, LeaveReason, ModerationAction, ModerationState, MuteRequested,
    ServerMessage, WaitingEntry, WaitingNotice,
};

/// The room's controls and its lobby.
#[derive(Debug, Default)]
pub(super) struct Controls {
    locked: bool,
    lobby: bool,
    /// Joins waiting for a moderator, in the order they came (one per device).
    waiting: Vec<JoinRequest>,
}

impl Controls {
    /// Whether the room is locked.
    pub(super) fn locked(&self) -> bool {
        self.locked
    }

    /// Whether the lobby is on.
    pub(super) fn lobby(&self) -> bool {
        self.lobby
    }

    /// Sets the lock and the lobby (a room restored from its record).
    pub(super) fn set(&mut self, locked: bool, lobby: bool) {
        self.locked = locked;
        self.lobby = lobby;
    }

    /// The joins still waiting (the room closes).
    pub(super) fn into_waiting(self) -> Vec<JoinRequest> {
        self.waiting
    }
}

/// What became of a join.
#[derive(Debug)]
pub enum JoinAnswer {
    /// The device is in: its `joined` and the notices for the others.
    Joined(Box<Joined>, Vec<Output>),
    /// The room's lobby is on: the device waits (its `waiting` and the moderators' new list
    /// are in the outputs).
    Waiting(Vec<Output>),
}

/// Why a moderator action was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModerationError {
    /// The sender's token does not grant `moderator`.
    #[error("only a moderator may {0} (the token does not grant moderator)")]
    NotModerator(&'static str),
    /// The device named is not in the room.
    #[error("device {0:?} is not in the room")]
    NotInRoom(String),
    /// The device named is not waiting in the lobby.
    #[error("device {0:?} is not waiting in the lobby")]
    NotWaiting(String),
}

impl ModerationError {
    /// The code the sender is refused with.
    pub fn code(&self) -> ErrorCode {
        match self {
            ModerationError::NotModerator(_) => ErrorCode::Forbidden,
            ModerationError::NotInRoom(_) | ModerationError::NotWaiting(_) => {
                ErrorCode::NotInRoster
            }
        }
    }

    /// The `outcome` label of `signaling_moderation_actions_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ModerationError::NotModerator(_) => "forbidden",
            ModerationError::NotInRoom(_) | ModerationError::NotWaiting(_) => "not_found",
        }
    }
}

/// Every `outcome` label of `signaling_moderation_actions_total`.
pub const MODERATION_OUTCOMES: &[&str] = &["ok", "forbidden", "not_found"];

impl Room {
    /// A join as the lock and the lobby see it: refused while locked, waiting while the lobby is
    /// on (except for moderators and a device of the same identity already in the room), else
    /// [`Room::join`].
    pub fn request_join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        media: bool,
    ) -> Result<JoinAnswer, JoinError> {
        if self.closed {
            return Err(JoinError::Closed);
        }
        let rejoin = self
            .members
            .get(&req.bundle.device)
            .is_some_and(|m| m.entry.identity == req.grants.identity);
        // A recorder not named by the policy is refused by `join` below whatever the controls.
        let passes = req.grants.moderator || rejoin || req.grants.role == Role::Recorder;
        if self.controls.locked && !passes {
            return Err(JoinError::Locked);
        }
        if self.controls.lobby && !passes {
            return self.wait(req).map(JoinAnswer::Waiting);
        }
        let moderator = req.grants.moderator;
        let conn = req.conn;
        let (joined, mut out) = self.join(req, now, media)?;
        if moderator {
            out.push(Output::Send {
                to: vec![conn],
                message: ServerMessage::Moderation(self.moderation_state()),
            });
        }
        Ok(JoinAnswer::Joined(Box::new(joined), out))
    }

    /// Puts a join in the lobby. What could never join (a role the room does not admit) is
    /// refused at once; a device already waiting on another connection is replaced.
    fn wait(&mut self, req: JoinRequest) -> Result<Vec<Output>, JoinError> {
        self.check_role(&req.grants, &req.bundle)?;
        let device = req.bundle.device.clone();
        if self
            .members
            .get(&device)
            .is_some_and(|m| m.entry.identity != req.grants.identity)
        {
            return Err(JoinError::DuplicateDevice);
        }
        let mut out = Vec::new();
        if let Some(pos) = self
            .controls
            .waiting
            .iter()
            .position(|w| w.bundle.device == device)
        {
            if self.controls.waiting[pos].grants.identity != req.grants.identity {
                return Err(JoinError::DuplicateDevice);
            }
            let old = self.controls.waiting.remove(pos);
            out.push(Output::Close {
                conn: old.conn,
                reason: LeaveReason::Replaced,
            });
        }
        out.push(Output::Send {
            to: vec![req.conn],
            message: ServerMessage::Waiting(WaitingNotice {
                room: self.name.clone(),
            }),
        });
        self.controls.waiting.push(req);
        out.extend(self.tell_moderators());
        Ok(out)
    }

    /// Takes `conn`'s join out of the lobby when it is waiting there (it left or its
    /// connection ended); `None` when it is not.
    pub(super) fn leave_lobby(
        &mut self,
        conn: ConnId,
        device: &str,
        how: Departure,
    ) -> Option<Vec<Output>> {
        let pos = self
            .controls
            .waiting
            .iter()
            .position(|w| w.conn == conn && w.bundle.device == device)?;
        self.controls.waiting.remove(pos);
        let mut out = Vec::new();
        if how == Departure::Left {
            out.push(Output::Close {
                conn,
                reason: LeaveReason::Leave,
            });
        }
        out.extend(self.tell_moderators());
        Some(out)
    }

    /// Whether the member `device` on `conn` is a moderator.
    fn is_moderator(&self, conn: ConnId, device: &str) -> bool {
        self.members
            .get(device)
            .is_some_and(|m| m.conn == conn && m.moderator)
    }

    /// A moderator action from the member `device` on `conn`. `media` says whether a media
    /// node is attached (for the `joined` of an admitted device).
    pub fn moderate(
        &mut self,
        conn: ConnId,
        device: &str,
        action: ModerationAction,
        now: Instant,
        media: bool,
    ) -> Result<Vec<Output>, ModerationError> {
        if !self.is_moderator(conn, device) {
            return Err(ModerationError::NotModerator(action.name()));
        }
        match action {
            ModerationAction::AskMute { device: target } => {
                let Some(member) = self.members.get(&target) else {
                    return Err(ModerationError::NotInRoom(target));
                };
                Ok(vec![Output::Send {
                    to: vec![member.conn],
                    message: ServerMessage::MuteRequested(MuteRequested {
                        by: device.to_owned(),
                    }),
                }])
            }
            ModerationAction::Remove { device: target } => {
                let out = self.kick(&target, now);
                out.ok_or(ModerationError::NotInRoom(target))
            }
            ModerationAction::Lock => Ok(self.set_controls(Some(true), None)),
            ModerationAction::Unlock => Ok(self.set_controls(Some(false), None)),
            ModerationAction::LobbyOn => Ok(self.set_controls(None, Some(true))),
            ModerationAction::LobbyOff => Ok(self.set_controls(None, Some(false))),
            ModerationAction::Admit { device: target } => self.admit(&target, now, media),
            ModerationAction::Deny { device: target } => self.deny(&target),
            ModerationAction::EndCall => Ok(self.end_call(now)),
            ModerationAction::LowerHand { device: target } => {
                let out = self.lower_hand_of(&target, device);
                out.ok_or(ModerationError::NotInRoom(target))
            }
        }
    }

    /// Sets the lock and the lobby (`None`: unchanged); the moderators hear of it.
    pub fn set_controls(&mut self, locked: Option<bool>, lobby: Option<bool>) -> Vec<Output> {
        if let Some(locked) = locked {
            self.controls.locked = locked;
        }
        if let Some(lobby) = lobby {
            self.controls.lobby = lobby;
        }
        self.tell_moderators()
    }

    /// Lets the waiting `device` in. A join the room refuses now (it filled up meanwhile) is
    /// turned away with that refusal; the action itself succeeded.
    fn admit(
        &mut self,
        device: &str,
        now: Instant,
        media: bool,
    ) -> Result<Vec<Output>, ModerationError> {
        let req = self.take_waiting(device)?;
        let conn = req.conn;
        let mut out = match self.join(req, now, media) {
            Ok((joined, notices)) => {
                let mut out = vec![Output::Admitted {
                    conn,
                    joined: Box::new(joined),
                }];
                out.extend(notices);
                out
            }
            Err(e) => vec![Output::Refused {
                conn,
                code: e.code(),
                message: e.to_string(),
            }],
        };
        out.extend(self.tell_moderators());
        Ok(out)
    }

    /// Turns the waiting `device` away.
    fn deny(&mut self, device: &str) -> Result<Vec<Output>, ModerationError> {
        let req = self.take_waiting(device)?;
        let mut out = vec![Output::Refused {
            conn: req.conn,
            code: ErrorCode::JoinDenied,
            message: "a moderator did not let this device in".into(),
        }];
        out.extend(self.tell_moderators());
        Ok(out)
    }

    fn take_waiting(&mut self, device: &str) -> Result<JoinRequest, ModerationError> {
        let pos = self
            .controls
            .waiting
            .iter()
            .position(|w| w.bundle.device == device)
            .ok_or_else(|| ModerationError::NotWaiting(device.to_owned()))?;
        Ok(self.controls.waiting.remove(pos))
    }

    /// Ends the call for everyone: every member gets `left` `call_ended`, every waiting join
    /// `join_denied`. The room itself stays (an ephemeral one closes as it is now empty).
    pub fn end_call(&mut self, now: Instant) -> Vec<Output> {
        let mut out: Vec<Output> = std::mem::take(&mut self.controls.waiting)
            .into_iter()
            .map(|w| Output::Refused {
                conn: w.conn,
                code: ErrorCode::JoinDenied,
                message: "the call ended".into(),
            })
            .collect();
        let devices: Vec<String> = self.members.keys().cloned().collect();
        for device in devices {
            out.extend(self.remove(&device, Departure::CallEnded, now));
        }
        out
    }

    /// The controls and the lobby as moderators see them.
    pub fn moderation_state(&self) -> ModerationState {
        ModerationState {
            locked: self.controls.locked,
            lobby: self.controls.lobby,
            waiting: self
                .controls
                .waiting
                .iter()
                .map(|w| WaitingEntry {
                    device: w.bundle.device.clone(),
                    identity: w.grants.identity.clone(),
                    name: w.name.clone(),
                })
                .collect(),
        }
    }

    /// The moderators' `moderation` message, when the room has moderators in it.
    fn tell_moderators(&self) -> Vec<Output> {
        let to: Vec<ConnId> = self
            .members
            .values()
            .filter(|m| m.moderator)
            .map(|m| m.conn)
            .collect();
        if to.is_empty() {
            return Vec::new();
        }
        vec![Output::Send {
            to,
            message: ServerMessage::Moderation(self.moderation_state()),
        }]
    }
}
