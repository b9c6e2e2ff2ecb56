//! Room policies: kinds, roles, capacities and the signed recording policy.
//!
//! A policy is fixed when the room is created (admin API, or defaults for auto-created rooms).
//! The recording policy is a document signed by an admin Ed25519 key: clients verify the
//! signature against the admin key they trust; the service only checks its shape and uses the
//! recorder devices it names to admit `recorder` joins.

use serde::{Deserialize, Serialize};

use crate::protocol::ShapeError;
pub use crate::protocol::{
    MAX_RECORDERS, RecorderDevice, RecordingDocument, RecordingPolicy, Role, RoomKind,
};
pub use sfu_control_api::MAX_LAST_N;

/// Most callers in a meeting (docs/architecture.md §4.5).
pub const MAX_MEETING_CALLERS: u32 = 100;
/// Viewers of a broadcast whose policy does not say (docs/architecture.md §4.5): what one SFU
/// node holds in one room.
pub const DEFAULT_BROADCAST_VIEWERS: u32 = 500;
/// Most viewers a broadcast's policy may ask for: above [`DEFAULT_BROADCAST_VIEWERS`] the
/// audience spans several SFU nodes (cascade, docs/architecture.md §7.55), each holding its
/// own 500. Viewers take receive-only slots (4096–65535, `room/capacity.rs`), not the KID's
/// 4,096 sender slots; 10,000 is twice the audience the control plane was measured with
/// (5,000, docs/architecture.md §7.56).
pub const MAX_BROADCAST_VIEWERS: u32 = 10_000;
/// Most presenters in a broadcast.
pub const MAX_BROADCAST_PRESENTERS: u32 = 16;

/// A room's policy as stored and returned by the admin API (and kept in a room's record,
/// `room/record.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomPolicy {
    /// Meeting or broadcast.
    pub kind: RoomKind,
    /// Caller capacity (meetings; 0 for broadcasts).
    pub max_callers: u32,
    /// Presenter capacity (broadcasts; 0 for meetings).
    pub max_presenters: u32,
    /// Viewer capacity (broadcasts; 0 for meetings).
    pub max_viewers: u32,
    /// Always true: the service does not host unencrypted rooms.
    pub e2ee: bool,
    /// The signed recording policy, when the room is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingPolicy>,
    /// Whether every device gets receive slots from the media node (docs/architecture.md
    /// §7.18) instead of subscribing per track; left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receive_slots: bool,
    /// Cameras of this many most recent speakers each device receives (1–[`MAX_LAST_N`]); in a
    /// room with receive slots, its video slots. Left out when not set: the media node's
    /// default, [`MAX_LAST_N`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_n: Option<u32>,
}

/// What an admin asks for when creating a room; missing capacities take the kind's maximum.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomPolicyRequest {
    /// Meeting or broadcast.
    pub kind: RoomKind,
    /// Caller capacity for meetings (1–100).
    #[serde(default)]
    pub max_callers: Option<u32>,
    /// Presenter capacity for broadcasts (1–16).
    #[serde(default)]
    pub max_presenters: Option<u32>,
    /// Viewer capacity for broadcasts (0–500).
    #[serde(default)]
    pub max_viewers: Option<u32>,
    /// Must be true (or absent): end-to-end encryption is required.
    #[serde(default)]
    pub e2ee: Option<bool>,
    /// Signed recording policy, when the room is recorded.
    #[serde(default)]
    pub recording: Option<RecordingPolicy>,
    /// Give every device receive slots (default false).
    #[serde(default)]
    pub receive_slots: Option<bool>,
    /// Cameras of the most recent speakers each device receives, 1–[`MAX_LAST_N`] (default
    /// [`MAX_LAST_N`]); the video slots of a room with receive slots.
    #[serde(default)]
    pub last_n: Option<u32>,
}

/// Why a room policy request is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// `e2ee: false` was asked for.
    #[error("end-to-end encryption is required in every room")]
    E2eeRequired,
    /// A capacity is zero or above the kind's maximum.
    #[error("{field} must be between {min} and {max}")]
    Capacity {
        /// Which capacity.
        field: &'static str,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A capacity was given that does not apply to this kind of room.
    #[error("{field} does not apply to a {kind} room")]
    NotApplicable {
        /// Which capacity.
        field: &'static str,
        /// The room kind.
        kind: &'static str,
    },
    /// The recording policy has the wrong shape.
    #[error("recording policy: {0}")]
    Recording(#[from] ShapeError),
    /// The recording policy names another room.
    #[error("recording policy names room {0:?}, not this room")]
    RecordingRoom(String),
    /// `last_n` is 0 or above [`MAX_LAST_N`].
    #[error(
        "last_n must be between 1 and {MAX_LAST_N} (the video slots a browser's offer fits in \
         the SDP cap), not {0}"
    )]
    LastN(u32),
}

/// Checks a room's `last_n` (from the admin API or `--last-n`): 1 to [`MAX_LAST_N`].
pub fn check_last_n(last_n: Option<u32>) -> Result<Option<u32>, PolicyError> {
    match last_n {
        Some(n) if n == 0 || n as usize > MAX_LAST_N => Err(PolicyError::LastN(n)),
        other => Ok(other),
    }
}

impl RoomPolicyRequest {
    /// Checks the request and fills in defaults for the room named `room`.
    pub fn into_policy(self, room: &str) -> Result<RoomPolicy, PolicyError> {
        if self.e2ee == Some(false) {
            return Err(PolicyError::E2eeRequired);
        }
        fn cap(
            v: Option<u32>,
            field: &'static str,
            min: u32,
            max: u32,
        ) -> Result<u32, PolicyError> {
            match v {
                None => Ok(max),
                Some(n) if (min..=max).contains(&n) => Ok(n),
                Some(_) => Err(PolicyError::Capacity { field, min, max }),
            }
        }
        fn absent(
            v: Option<u32>,
            field: &'static str,
            kind: &'static str,
        ) -> Result<(), PolicyError> {
            match v {
                None => Ok(()),
                Some(_) => Err(PolicyError::NotApplicable { field, kind }),
            }
        }
        let (max_callers, max_presenters, max_viewers) = match self.kind {
            RoomKind::Meeting => {
                absent(self.max_presenters, "max_presenters", "meeting")?;
                absent(self.max_viewers, "max_viewers", "meeting")?;
                (
                    cap(self.max_callers, "max_callers", 1, MAX_MEETING_CALLERS)?,
                    0,
                    0,
                )
            }
            RoomKind::Broadcast => {
                absent(self.max_callers, "max_callers", "broadcast")?;
                (
                    0,
                    cap(
                        self.max_presenters,
                        "max_presenters",
                        1,
                        MAX_BROADCAST_PRESENTERS,
                    )?,
                    match self.max_viewers {
                        None => DEFAULT_BROADCAST_VIEWERS,
                        v => cap(v, "max_viewers", 0, MAX_BROADCAST_VIEWERS)?,
                    },
                )
            }
        };
        let last_n = check_last_n(self.last_n)?;
        if let Some(rec) = &self.recording {
            let doc = rec.document()?;
            if !doc.applies_to(room) {
                return Err(PolicyError::RecordingRoom(doc.room));
            }
        }
        Ok(RoomPolicy {
            kind: self.kind,
            max_callers,
            max_presenters,
            max_viewers,
            e2ee: true,
            recording: self.recording,
            receive_slots: self.receive_slots.unwrap_or(false),
            last_n,
        })
    }
}

impl RoomPolicy {
    /// The default policy of an auto-created room: a meeting at full capacity, not recorded.
    pub fn default_meeting() -> Self {
        RoomPolicy {
            kind: RoomKind::Meeting,
            max_callers: MAX_MEETING_CALLERS,
            max_presenters: 0,
            max_viewers: 0,
            e2ee: true,
            recording: None,
            receive_slots: false,
            last_n: None,
        }
    }

    /// How many devices of `role` the room admits.
    pub fn capacity(&self, role: Role) -> u32 {
        match (self.kind, role) {
            (RoomKind::Meeting, Role::Caller) => self.max_callers,
            (RoomKind::Broadcast, Role::Presenter) => self.max_presenters,
            (RoomKind::Broadcast, Role::Viewer) => self.max_viewers,
            (_, Role::Recorder) => self
                .recording
                .as_ref()
                .and_then(|r| r.document().ok())
                .map_or(0, |d| d.recorders.len() as u32),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn recording(room: &str) -> RecordingPolicy {
        let doc = serde_json::json!({
            "v": 1, "room": room, "issued_at": 1, "retention_days": 90,
            "recorders": [{"device": "rec-1", "identity_key": URL_SAFE_NO_PAD.encode([1u8; 32])}]
        });
        RecordingPolicy {
            v: 1,
            document: URL_SAFE_NO_PAD.encode(serde_json::to_vec(&doc).unwrap()),
            admin_key: URL_SAFE_NO_PAD.encode([2u8; 32]),
            sig: URL_SAFE_NO_PAD.encode([3u8; 64]),
        }
    }

    fn req(kind: RoomKind) -> RoomPolicyRequest {
        RoomPolicyRequest {
            kind,
            max_callers: None,
            max_presenters: None,
            max_viewers: None,
            e2ee: None,
            recording: None,
            receive_slots: None,
            last_n: None,
        }
    }

    #[test]
    fn defaults_and_caps() {
        let m = req(RoomKind::Meeting).into_policy("r").unwrap();
        assert_eq!((m.max_callers, m.capacity(Role::Caller)), (100, 100));
        assert_eq!(m.capacity(Role::Viewer), 0);
        let b = req(RoomKind::Broadcast).into_policy("r").unwrap();
        assert_eq!(b.capacity(Role::Viewer), 500);
        assert_eq!(b.capacity(Role::Caller), 0);
        let mut too_big = req(RoomKind::Meeting);
        too_big.max_callers = Some(101);
        assert!(matches!(
            too_big.into_policy("r"),
            Err(PolicyError::Capacity { .. })
        ));
        let mut plain = req(RoomKind::Meeting);
        plain.e2ee = Some(false);
        assert_eq!(plain.into_policy("r"), Err(PolicyError::E2eeRequired));
        let mut wrong = req(RoomKind::Meeting);
        wrong.max_viewers = Some(3);
        assert!(matches!(
            wrong.into_policy("r"),
            Err(PolicyError::NotApplicable { .. })
        ));
    }

    #[test]
    fn last_n_out_of_range_is_refused_by_the_policy() {
        for n in [0, MAX_LAST_N as u32 + 1] {
            let mut r = req(RoomKind::Meeting);
            r.last_n = Some(n);
            assert_eq!(r.into_policy("r"), Err(PolicyError::LastN(n)));
        }
        let mut two = req(RoomKind::Meeting);
        two.receive_slots = Some(true);
        two.last_n = Some(2);
        assert_eq!(two.into_policy("r").unwrap().last_n, Some(2));
        assert_eq!(
            req(RoomKind::Meeting).into_policy("r").unwrap().last_n,
            None
        );
    }

    #[test]
    fn recording_policy_shape() {
        let mut r = req(RoomKind::Meeting);
        r.recording = Some(recording("r"));
        let p = r.into_policy("r").unwrap();
        assert_eq!(p.capacity(Role::Recorder), 1);
        let mut other = req(RoomKind::Meeting);
        other.recording = Some(recording("other"));
        assert!(matches!(
            other.into_policy("r"),
            Err(PolicyError::RecordingRoom(_))
        ));
        let mut bad = recording("r");
        bad.sig = URL_SAFE_NO_PAD.encode([3u8; 63]);
        assert!(bad.document().is_err());
        let mut garbage = recording("r");
        garbage.document = URL_SAFE_NO_PAD.encode(b"not json");
        assert!(matches!(garbage.document(), Err(ShapeError::Document(_))));
    }
}
