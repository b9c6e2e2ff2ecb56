//! Media descriptions in the protocol: SDP bodies, the tracks a publisher announces and the
//! server publishes, subscriptions and active speakers, used in both directions.

use serde::{Deserialize, Serialize};

/// An SDP body (`answer` from a client; `offer`/`answer` from the server).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdpBody {
    /// The SDP (never logged).
    pub sdp: String,
}

impl std::fmt::Debug for SdpBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdpBody")
            .field("sdp_bytes", &self.sdp.len())
            .finish()
    }
}

/// What a publisher says about one track it sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackAnnouncement {
    /// The SDP media id (`a=mid`) carrying the track.
    pub mid: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// What the track shows.
    pub source: TrackSource,
    /// Simulcast layers sent (empty, and left out, when not simulcast).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<Layer>,
}

/// `publish`: the device asks the SFU to receive one more source after its first answer
/// (docs/architecture.md §7.53). Only `video` `screen` can be asked for; the SFU answers with an
/// `offer` carrying a section it receives on, and errors name the message's `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRequest {
    /// Audio or video (`video` for a screen share).
    pub kind: TrackKind,
    /// What it shows (`screen`).
    pub source: TrackSource,
}

/// `unpublish`: the device stops a source it published with `publish`; the SFU offers its
/// section `inactive` and subscribers get `track_unpublished`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnpublishRequest {
    /// The source (`screen`).
    pub source: TrackSource,
}

/// Media kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Opus audio.
    Audio,
    /// VP8/VP9 video.
    Video,
}

/// Track source, matching the KID stream field of docs/e2ee.md §1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// Microphone audio (stream 0).
    Microphone,
    /// Camera video (stream 1).
    Camera,
    /// Screen-share video (stream 2).
    Screen,
    /// Screen-share audio (stream 3).
    ScreenAudio,
}

/// A simulcast layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The lowest resolution layer.
    Low,
    /// The middle layer.
    Medium,
    /// The full resolution layer.
    High,
}

/// One wanted track.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Track id as published in `track_published`.
    pub track: String,
    /// Highest layer wanted; absent lets the SFU choose from the visible size and bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    /// Width in CSS pixels the track is shown at (0 = hidden).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in CSS pixels the track is shown at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// A published track as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Track id (unique in the room), used in `subscribe`.
    pub id: String,
    /// Publishing device.
    pub publisher: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// What it shows.
    pub source: TrackSource,
    /// Simulcast layers available.
    #[serde(default)]
    pub layers: Vec<Layer>,
}

/// One active speaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Speaker {
    /// Device id.
    pub device: String,
    /// Audio level 0–1 (1 = loudest).
    pub level: f32,
}
