//! The contract between the live side of the recorder (`live`: joins a room, receives and
//! decrypts its media) and the archive (`archive`: writes, encrypts, signs and chains what it is
//! given). The live side calls these in the order things happen; the archive owns the files.
//!
//! Everything handed over is plaintext that exists only in memory: the archive must encrypt it
//! before anything reaches the disk.

use std::time::{Duration, SystemTime};

/// Why a sink refused something or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The store could not be written.
    #[error("archive i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame or track the sink cannot take (unknown track, codec it cannot mux, …).
    #[error("archive refused: {0}")]
    Refused(String),
}

/// What a recorded session starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStart {
    /// The room's name.
    pub room: String,
    /// When the recorder joined (wall clock).
    pub started_at: SystemTime,
    /// How long the session is kept, from the signed recording policy.
    pub retention: Duration,
    /// The signed recording policy the room carried (its JSON, as in `joined.recording`).
    pub policy_json: String,
}

/// A participant as the roster showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// Its device id.
    pub device: String,
    /// The identity (display name) from its access token.
    pub identity: String,
    /// Its role (`caller`, `presenter`, `viewer`, `recorder`).
    pub role: String,
    /// Its Ed25519 identity key from its verified bundle.
    pub identity_key: [u8; 32],
    /// When the recorder saw it join (or found it in the roster).
    pub at: SystemTime,
}

/// Audio or video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Opus audio.
    Audio,
    /// VP8 video.
    Video,
}

/// How a track's frames are encoded (as sent: the recorder never transcodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus, 48 kHz.
    Opus,
    /// VP8.
    Vp8,
}

/// A published track the recorder receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackMeta {
    /// The track id the service announced (unique within the session).
    pub track_id: String,
    /// The publishing device.
    pub device: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// Its codec.
    pub codec: Codec,
    /// `microphone`, `camera` or `screen`.
    pub source: String,
    /// Picture size of the layer recorded, when known (video).
    pub width: u16,
    /// Picture height, when known (video).
    pub height: u16,
}

/// One decrypted frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The track it belongs to (announced with [`SessionSink::track`] first).
    pub track_id: &'a str,
    /// Presentation time from the session's start (from the RTP timestamps; monotonic per track).
    pub pts: Duration,
    /// A VP8 keyframe (always true for audio).
    pub keyframe: bool,
    /// The decrypted frame: an Opus packet or a whole VP8 frame.
    pub data: &'a [u8],
}

/// A chat message as the recorder received it (opened with the sender's key, like a frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatEntry {
    /// The sending device, as the service stamped it.
    pub from: String,
    /// When the recorder received it (wall clock).
    pub at: SystemTime,
    /// The same moment from the session's start (the media's time line).
    pub pts: Duration,
    /// What it said, or why it could not be read.
    pub body: ChatBody,
}

/// The content of a [`ChatEntry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatBody {
    /// The opened message (UTF-8 text; other bytes are kept lossily replaced).
    Text(String),
    /// An opened reaction (plaintext `0x01` + the emoji, docs/e2ee.md §6): the emoji.
    Reaction(String),
    /// It could not be opened: why (no key for it, or it did not authenticate).
    Unreadable(String),
}

/// What a finished session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// The archive's id of the session.
    pub session_id: String,
    /// Frames written, all tracks.
    pub frames: u64,
    /// Bytes written to the store (encrypted).
    pub bytes_written: u64,
}

/// One recorded session, written as it happens.
pub trait SessionSink: Send {
    /// A participant joined (or was in the roster when the recorder joined).
    fn participant_joined(&mut self, participant: Participant) -> Result<(), SinkError>;
    /// A participant left.
    fn participant_left(&mut self, device: &str, at: SystemTime) -> Result<(), SinkError>;
    /// The call security code after a roster change (docs/e2ee.md §5).
    fn security_code(&mut self, code: &str, at: SystemTime) -> Result<(), SinkError>;
    /// A track starts; its frames follow.
    fn track(&mut self, track: TrackMeta) -> Result<(), SinkError>;
    /// A decrypted frame of an announced track.
    fn frame(&mut self, frame: Frame<'_>) -> Result<(), SinkError>;
    /// A chat message (in the order received).
    fn chat(&mut self, entry: ChatEntry) -> Result<(), SinkError>;
    /// The session ended: write the manifest, sign and chain it.
    fn finish(self: Box<Self>, at: SystemTime) -> Result<SessionSummary, SinkError>;
}

/// Where sessions are begun (the archive, over its store).
pub trait SessionArchive: Send + Sync {
    /// Starts a session.
    fn begin(&self, start: SessionStart) -> Result<Box<dyn SessionSink>, SinkError>;
}
