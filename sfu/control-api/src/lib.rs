//! The wire types of the SFU's control API: the JSON that signaling sends to an `sfu` process
//! and the JSON it gets back, defined once for both ends (the server in `sfu/src/control/`, the
//! client in `signaling/src/media_node/remote.rs`).
//!
//! The API itself (paths, methods, status codes) is described in `sfu/src/control/mod.rs`. This
//! crate holds only the shapes: [`requests`] (bodies signaling sends), [`responses`] (bodies the
//! node answers with, including the [`ErrorBody`] of every refusal), [`relay`] (the SFU-to-SFU relay's
//! export, import and track list), [`events`] (what the node
//! reports) and [`stream`] (the newline-delimited framing of `GET /control/events`: sequence
//! numbers, the node's instance id, heartbeats and resets, and the resume query). It depends on serde alone and does no I/O,
//! so a client can use it without pulling in the SFU.

pub mod events;
pub mod relay;
pub mod requests;
pub mod responses;
pub mod stream;

pub use events::{ActiveSpeaker, MediaClass, NodeEvent, QualityDirection, SlotEntry, TrackClass};
pub use relay::{
    ImportedTrack, RelayExport, RelayExportRequest, RelayImported, RelayKey, RelayKeys,
    RelayProfile, RelayTrack, RelayTracks,
};
pub use requests::{
    AddParticipant, CreateRoom, MAX_LAST_N, PublishBody, PublishSource, RoleBody, RoomKindBody,
    SdpBody, SdpKind, SessionQuery, SubscriptionBody,
};
pub use responses::{AnswerBody, ErrorBody, NodeStatus, ReceiveSlotCounts, RoomCreated};
pub use stream::{EventsQuery, ResetReason, StreamLine};
