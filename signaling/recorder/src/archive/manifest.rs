//! A session's manifest (`manifest.json`, encrypted to the organization like every file of the
//! session): who was there and when, the call security code at each roster change, every file
//! with the hashes of its plaintext and ciphertext, and the signed recording policy.

use serde::{Deserialize, Serialize};

/// The manifest's blob name within a session's folder.
pub const MANIFEST_BLOB: &str = "manifest.json.age";

/// A session's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version (1).
    pub v: u32,
    /// The session id.
    pub session: String,
    /// The room's name.
    pub room: String,
    /// When the recorder joined.
    pub started_at: String,
    /// When the session ended.
    pub ended_at: String,
    /// The retention period, seconds.
    pub retention_secs: u64,
    /// When retention lets the session go.
    pub expires_at: String,
    /// The recorder that made it.
    pub recorder: RecorderRecord,
    /// Every participant, one record per presence (a device that left and came back has two).
    pub participants: Vec<ParticipantRecord>,
    /// The call security code after each roster change.
    pub security_codes: Vec<SecurityCodeRecord>,
    /// Every track and its files.
    pub tracks: Vec<TrackRecord>,
    /// The chat and its files (absent in sessions recorded before chat was kept: empty).
    #[serde(default)]
    pub chat: ChatRecord,
    /// The signed recording policy the room carried, as given.
    pub policy_json: String,
}

/// The recorder that wrote the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderRecord {
    /// Its device id.
    pub device: String,
    /// Its Ed25519 identity key (base64url): the key the chain is signed with.
    pub identity_key: String,
}

/// A participant's presence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantRecord {
    /// Its device id.
    pub device: String,
    /// Its identity (display name).
    pub identity: String,
    /// Its role.
    pub role: String,
    /// Its Ed25519 identity key (base64url).
    pub identity_key: String,
    /// When the recorder saw it join.
    pub joined_at: String,
    /// When it left (none: still there at the end).
    pub left_at: Option<String>,
}

/// The call security code from a moment on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityCodeRecord {
    /// The code.
    pub code: String,
    /// When it took effect.
    pub at: String,
}

/// A track and the files it was written to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackRecord {
    /// The service's track id.
    pub track_id: String,
    /// The publishing device.
    pub device: String,
    /// `audio` or `video`.
    pub kind: String,
    /// `opus` or `vp8`.
    pub codec: String,
    /// `microphone`, `camera` or `screen`.
    pub source: String,
    /// Picture size written (video; 0 for audio).
    pub width: u16,
    /// Picture height written (video; 0 for audio).
    pub height: u16,
    /// Frames written, all parts.
    pub frames: u64,
    /// Video frames received before the track's first keyframe, not written (undecodable).
    pub frames_before_keyframe: u64,
    /// Its files, in order.
    pub files: Vec<FileRecord>,
}

/// The session's chat: JSON lines (`archive::chat_log::ChatLine`), in parts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRecord {
    /// Messages received, all parts.
    pub messages: u64,
    /// Of them, those the recorder could not open (logged with the reason, without text).
    pub unreadable: u64,
    /// Its files, in order (`frames` counts the messages of each).
    pub files: Vec<FileRecord>,
}

/// One file (one part of a track, or of the chat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// The blob's name in the session's folder (`…webm.age`).
    pub name: String,
    /// Part number within the track, from 1.
    pub part: u32,
    /// Frames in it (messages, for a chat part).
    pub frames: u64,
    /// First frame's time from the session's start, milliseconds.
    pub first_pts_ms: u64,
    /// Last frame's time from the session's start, milliseconds.
    pub last_pts_ms: u64,
    /// SHA-256 (hex) of the WebM file (plaintext).
    pub plaintext_sha256: String,
    /// Its size.
    pub plaintext_bytes: u64,
    /// SHA-256 (hex) of the stored blob (ciphertext).
    pub ciphertext_sha256: String,
    /// Its size.
    pub ciphertext_bytes: u64,
}
