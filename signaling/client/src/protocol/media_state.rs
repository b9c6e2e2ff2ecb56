//! What a participant's microphone, camera and screen share are doing (`media_state`, both
//! directions): the client says it, the service stamps the sender's device, relays it to whoever
//! sees the sender and keeps the latest one per device for `joined.media_states`.

use serde::{Deserialize, Serialize};

/// `media_state` messages accepted back to back; then [`MEDIA_STATE_PER_SECOND`].
pub const MEDIA_STATE_BURST: u32 = 10;

/// Sustained `media_state` messages per second per connection (one per button press).
pub const MEDIA_STATE_PER_SECOND: u32 = 5;

/// The microphone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioState {
    /// Sending sound.
    On,
    /// Muted, or no microphone.
    Muted,
}

/// The camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoState {
    /// Sending a picture.
    On,
    /// Turned off, or no camera.
    Off,
}

/// A device's media state, as its client states it (body of the client's `media_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaState {
    /// The microphone.
    pub audio: AudioState,
    /// The camera.
    pub video: VideoState,
    /// Whether it shares its screen.
    pub screen: bool,
}

/// A media state with the device it is of, stamped by the service (body of the server's
/// `media_state` and an entry of `joined.media_states`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMediaState {
    /// The device, as the service authenticated it (never taken from the client).
    pub device: String,
    /// Its state.
    #[serde(flatten)]
    pub state: MediaState,
}
