//! Media states: the latest `media_state` of each member (kept for `joined.media_states`) and
//! its relay, stamped with the sender's device, to the members that see the sender.

use super::{ConnId, Output, Room};
use crate::protocol::{DeviceMediaState, MediaState, RosterEntry, ServerMessage};

impl Room {
    /// Records `device`'s new media state and tells every member that sees it. Nothing happens
    /// when `conn` does not hold `device` (a stale connection).
    pub fn set_media_state(
        &mut self,
        conn: ConnId,
        device: &str,
        state: MediaState,
    ) -> Vec<Output> {
        let Some(member) = self.members.get_mut(device).filter(|m| m.conn == conn) else {
            return Vec::new();
        };
        member.media_state = Some(state);
        let entry = member.entry.clone();
        let to = self.watchers(&entry, |_| true);
        if to.is_empty() {
            return Vec::new();
        }
        vec![Output::Send {
            to,
            message: ServerMessage::MediaState(DeviceMediaState {
                device: entry.device,
                state,
            }),
        }]
    }

    /// The media states `viewer` sees: of every member it sees that has sent one.
    pub(super) fn media_states_seen_by(&self, viewer: &RosterEntry) -> Vec<DeviceMediaState> {
        self.members
            .values()
            .filter(|m| self.sees(viewer, &m.entry))
            .filter_map(|m| {
                m.media_state.map(|state| DeviceMediaState {
                    device: m.entry.device.clone(),
                    state,
                })
            })
            .collect()
    }
}
