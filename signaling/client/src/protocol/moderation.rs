//! Moderation (docs/protocol.md §10): what a moderator (a token with `moderator: true`) may do in
//! a room, and what the server tells about it. The service enforces every action: a `moderate`
//! from a device that is not a moderator is refused `forbidden` and counted, whatever its client
//! shows.

use serde::{Deserialize, Serialize};

/// Body of the client's `moderate`: one moderator action, tagged by `action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ModerationAction {
    /// Ask `device` to mute its microphone: the server relays `mute_requested` to it. The
    /// service cannot mute an end-to-end encrypted client itself; the client mutes and says so
    /// with its `media_state`.
    AskMute {
        /// The device asked.
        device: String,
    },
    /// Remove `device` from the room (as the admin API's kick: it gets `left` `kicked`).
    Remove {
        /// The device removed.
        device: String,
    },
    /// Lock the room: joins of devices that are not moderators are refused `room_locked`.
    Lock,
    /// Unlock the room.
    Unlock,
    /// Turn the lobby on: joins of devices that are not moderators wait (`waiting`) until a
    /// moderator admits or denies them.
    LobbyOn,
    /// Turn the lobby off (devices already waiting stay waiting until admitted or denied).
    LobbyOff,
    /// Let a waiting device in: it gets its `joined`.
    Admit {
        /// The waiting device.
        device: String,
    },
    /// Turn a waiting device away: it gets `error` `join_denied` and the connection closes.
    Deny {
        /// The waiting device.
        device: String,
    },
    /// End the call for everyone: every device gets `left` `call_ended`, every waiting device
    /// `join_denied`.
    EndCall,
    /// Lower `device`'s raised hand: everyone who sees it (and the device) gets `hand` with
    /// `raised: false` and `lowered_by`. A hand that is not up stays down (no message).
    LowerHand {
        /// The device whose hand is lowered.
        device: String,
    },
}

impl ModerationAction {
    /// Every action's name, as in `action` and the `action` label of
    /// `signaling_moderation_actions_total`.
    pub const NAMES: &'static [&'static str] = &[
        "ask_mute",
        "remove",
        "lock",
        "unlock",
        "lobby_on",
        "lobby_off",
        "admit",
        "deny",
        "end_call",
        "lower_hand",
    ];

    /// The action's name as written in `action`.
    pub fn name(&self) -> &'static str {
        match self {
            ModerationAction::AskMute { .. } => "ask_mute",
            ModerationAction::Remove { .. } => "remove",
            ModerationAction::Lock => "lock",
            ModerationAction::Unlock => "unlock",
            ModerationAction::LobbyOn => "lobby_on",
            ModerationAction::LobbyOff => "lobby_off",
            ModerationAction::Admit { .. } => "admit",
            ModerationAction::Deny { .. } => "deny",
            ModerationAction::EndCall => "end_call",
            ModerationAction::LowerHand { .. } => "lower_hand",
        }
    }
}

/// Body of `mute_requested`: a moderator asks this device to mute its microphone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MuteRequested {
    /// The moderator's device (stamped by the service).
    pub by: String,
}

/// Body of `waiting`: the room has its lobby on; this join waits until a moderator admits it
/// (then `joined` follows on the same connection) or denies it (`error` `join_denied`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingNotice {
    /// The room waited for.
    pub room: String,
}

/// Body of `moderation`, sent to the room's moderators after their `joined` and on every
/// change: the room's controls and who waits in the lobby.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerationState {
    /// Joins of non-moderators are refused `room_locked`.
    pub locked: bool,
    /// Joins of non-moderators wait in the lobby.
    pub lobby: bool,
    /// The devices waiting, in the order they came.
    pub waiting: Vec<WaitingEntry>,
}

/// One device waiting in the lobby.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingEntry {
    /// Its device id.
    pub device: String,
    /// The identity its token grants.
    pub identity: String,
    /// The display name it gave, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_sent_under_its_name() {
        let actions = [
            ModerationAction::AskMute { device: "d".into() },
            ModerationAction::Remove { device: "d".into() },
            ModerationAction::Lock,
            ModerationAction::Unlock,
            ModerationAction::LobbyOn,
            ModerationAction::LobbyOff,
            ModerationAction::Admit { device: "d".into() },
            ModerationAction::Deny { device: "d".into() },
            ModerationAction::EndCall,
            ModerationAction::LowerHand { device: "d".into() },
        ];
        assert_eq!(actions.len(), ModerationAction::NAMES.len());
        for (action, name) in actions.iter().zip(ModerationAction::NAMES) {
            let json = serde_json::to_value(action).unwrap();
            assert_eq!(json["action"], *name);
            assert_eq!(action.name(), *name);
            let back: ModerationAction = serde_json::from_value(json).unwrap();
            assert_eq!(&back, action);
        }
    }
}
