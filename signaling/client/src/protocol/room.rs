//! Roles and room kinds as the protocol names them (`joined`, the roster, token grants).

use serde::{Deserialize, Serialize};

/// A participant's role, granted by its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Meeting participant: publishes and subscribes.
    Caller,
    /// Broadcast presenter: publishes to viewers.
    Presenter,
    /// Broadcast viewer: subscribes only.
    Viewer,
    /// Compliance recorder named by the room's signed recording policy: subscribes only.
    Recorder,
}

impl Role {
    /// Every role, in label order.
    pub const ALL: [Role; 4] = [Role::Caller, Role::Presenter, Role::Viewer, Role::Recorder];

    /// The role as written on the wire and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caller => "caller",
            Role::Presenter => "presenter",
            Role::Viewer => "viewer",
            Role::Recorder => "recorder",
        }
    }

    /// Whether a token of this role may carry `can_publish`.
    pub fn may_publish(self) -> bool {
        matches!(self, Role::Caller | Role::Presenter)
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?} (caller, presenter, viewer, recorder)"))
    }
}

/// The kind of room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Everyone is a caller (up to 100 by default).
    Meeting,
    /// Presenters publish to viewers (up to 500 viewers by default).
    Broadcast,
}
