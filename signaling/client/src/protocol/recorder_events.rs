//! The recorder event stream (`GET /v1/recorder/events`, docs/protocol.md): how a compliance
//! recorder learns that a room whose signed recording policy names it has become active, without
//! polling rooms. One JSON object per line (NDJSON), in order.

use serde::{Deserialize, Serialize};

use super::RecordingPolicy;

/// One line of the recorder event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecorderEvent {
    /// A room whose policy names this recorder has a participant other than a recorder (sent for
    /// every such room when the stream opens, then whenever one becomes active).
    RoomActive {
        /// The room's name.
        room: String,
        /// The room's signed recording policy (as in `joined.recording`).
        recording: RecordingPolicy,
        /// Participants in the room other than recorders.
        participants: u32,
    },
    /// The room has no participant other than recorders any more (or was closed).
    RoomIdle {
        /// The room's name.
        room: String,
    },
    /// Sent every few seconds so the recorder can tell a silent stream from a dead one.
    Ping,
}
