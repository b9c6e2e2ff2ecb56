//! The room as the admin API shows it: a summary for listings and the detail of one room.

use serde::Serialize;

use super::Room;
use crate::media_node::MediaQuality;
use crate::policy::{Role, RoomKind, RoomPolicy};
use crate::protocol::{ClientStats, ModerationState, TrackInfo};

/// A room as listed by the admin API.
#[derive(Clone, Debug, Serialize)]
pub struct RoomSummary {
    /// Room name.
    pub name: String,
    /// Current call id.
    pub call: String,
    /// Meeting or broadcast.
    pub kind: RoomKind,
    /// Joined devices.
    pub participants: u32,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Whether a recording policy applies.
    pub recorded: bool,
    /// The media node holding the room (a remote SFU's control URL); left out when there is
    /// none or it is in this process. Filled in by the hub, which knows the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_node: Option<String>,
}

/// A room in detail, for the admin API.
#[derive(Clone, Debug, Serialize)]
pub struct RoomDetail {
    /// Room name.
    pub name: String,
    /// Current call id.
    pub call: String,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// The policy.
    pub policy: RoomPolicy,
    /// Current roster version.
    pub roster_version: u64,
    /// Joined devices.
    pub participants: Vec<ParticipantDetail>,
    /// Published tracks.
    pub tracks: Vec<TrackInfo>,
    /// The lock, the lobby and who waits in it.
    pub moderation: ModerationState,
    /// The media node holding the room (a remote SFU's control URL); left out when there is
    /// none or it is in this process. Filled in by the hub, which knows the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_node: Option<String>,
}

/// One participant in detail.
#[derive(Clone, Debug, Serialize)]
pub struct ParticipantDetail {
    /// Device id.
    pub device: String,
    /// Token identity.
    pub identity: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Role.
    pub role: Role,
    /// Slot.
    pub slot: u16,
    /// May publish.
    pub can_publish: bool,
    /// May subscribe.
    pub can_subscribe: bool,
    /// May moderate the room.
    pub moderator: bool,
    /// Join time, Unix seconds.
    pub joined_at: u64,
    /// Latest client stats, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_stats: Option<ClientStats>,
    /// Latest media node measurements, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<MediaQuality>,
}

impl Room {
    /// The admin API's summary.
    pub fn summary(&self) -> RoomSummary {
        RoomSummary {
            name: self.name.clone(),
            call: self.call.clone(),
            kind: self.policy.kind,
            // At most a few hundred members by policy caps.
            participants: self.members.len() as u32,
            created_at: self.created_at_unix,
            recorded: self.policy.recording.is_some(),
            media_node: None,
        }
    }

    /// The admin API's detail.
    pub fn detail(&self) -> RoomDetail {
        RoomDetail {
            name: self.name.clone(),
            call: self.call.clone(),
            created_at: self.created_at_unix,
            policy: self.policy.clone(),
            roster_version: self.roster_version,
            participants: self
                .members
                .values()
                .map(|m| ParticipantDetail {
                    device: m.entry.device.clone(),
                    identity: m.entry.identity.clone(),
                    name: m.entry.name.clone(),
                    role: m.entry.role,
                    slot: m.entry.slot,
                    can_publish: m.entry.can_publish,
                    can_subscribe: m.can_subscribe,
                    moderator: m.moderator,
                    joined_at: m.joined_at_unix,
                    client_stats: m.client_stats.clone(),
                    quality: m.media_quality.clone(),
                })
                .collect(),
            tracks: self.tracks.values().cloned().collect(),
            moderation: self.moderation_state(),
            media_node: None,
        }
    }
}
