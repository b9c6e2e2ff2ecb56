//! Room policy, roles, the core's configuration, and the descriptions of published tracks and
//! subscriptions the shell hands in (taken from the SDP it negotiated).

use std::time::Duration;

/// Hard cap on callers in a meeting room (docs/architecture.md §4.5).
pub const MAX_MEETING_CALLERS: usize = 100;
/// Hard cap on viewers in a broadcast room (docs/architecture.md §4.5).
pub const MAX_BROADCAST_VIEWERS: usize = 500;
/// Hard cap on presenters in a broadcast room.
pub const MAX_BROADCAST_PRESENTERS: usize = 16;
/// Most tracks one participant may publish (microphone, camera, screen video and audio, with
/// room to spare); bounds what one peer can make the core hold.
pub const MAX_TRACKS_PER_PARTICIPANT: usize = 8;
/// Most simulcast layers one track may have.
pub const MAX_LAYERS: usize = 3;

/// What kind of room this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    /// Everyone is a caller who may publish and subscribe (up to 100 callers).
    Meeting,
    /// Presenters publish; viewers only subscribe (up to 500 viewers).
    Broadcast,
}

/// A participant's role, from its signaling grant. Default deny: only callers and presenters
/// may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Meeting participant: publishes and subscribes.
    Caller,
    /// Broadcast presenter: publishes and subscribes.
    Presenter,
    /// Broadcast viewer: subscribes only.
    Viewer,
    /// Compliance recorder: subscribes only, allowed in either kind of room.
    Recorder,
}

impl Role {
    /// Whether this role may publish tracks.
    pub fn can_publish(self) -> bool {
        matches!(self, Role::Caller | Role::Presenter)
    }

    /// Whether this role may join a room of `kind`.
    pub fn allowed_in(self, kind: RoomKind) -> bool {
        match kind {
            RoomKind::Meeting => matches!(self, Role::Caller | Role::Recorder),
            RoomKind::Broadcast => matches!(self, Role::Presenter | Role::Viewer | Role::Recorder),
        }
    }
}

/// A room's caps and forwarding limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomPolicy {
    /// Meeting or broadcast.
    pub kind: RoomKind,
    /// Most publishing participants (callers in a meeting, presenters in a broadcast).
    pub max_publishers: usize,
    /// Most subscribe-only participants (viewers; recorders count here too). Meetings admit
    /// only recorders here.
    pub max_viewers: usize,
    /// How many of the loudest audio streams are forwarded once the room is large.
    pub loudest_n: usize,
    /// Room size (participants) above which only the loudest N audio streams are forwarded.
    pub loudest_n_threshold: usize,
    /// How many camera tracks, most recent speakers first, each subscriber receives (pinned
    /// tracks and screen shares come on top).
    pub last_n: usize,
}

impl RoomPolicy {
    /// A meeting of up to 100 callers with the default limits (loudest 3 above 10 callers,
    /// last-N 25).
    pub fn meeting() -> Self {
        Self {
            kind: RoomKind::Meeting,
            max_publishers: MAX_MEETING_CALLERS,
            max_viewers: 2,
            loudest_n: 3,
            loudest_n_threshold: 10,
            last_n: 25,
        }
    }

    /// A broadcast with up to 16 presenters and 500 viewers.
    pub fn broadcast() -> Self {
        Self {
            kind: RoomKind::Broadcast,
            max_publishers: MAX_BROADCAST_PRESENTERS,
            max_viewers: MAX_BROADCAST_VIEWERS,
            loudest_n: 3,
            loudest_n_threshold: 10,
            last_n: 25,
        }
    }

    /// The receive slots each subscriber's SDP gets at join (see [`crate::SlotLayout`]):
    /// loudest-N plus one spare audio slots, last-N video slots (capped by the room's other
    /// publishers), and [`crate::DEFAULT_SCREEN_SLOTS`] screen-share slots.
    pub fn slot_counts(&self) -> crate::SlotCounts {
        crate::SlotCounts {
            audio: (self.loudest_n + 1).min(crate::MAX_SLOTS_PER_KIND),
            video: self
                .last_n
                .min(self.max_publishers)
                .min(crate::MAX_SLOTS_PER_KIND),
            screen: crate::DEFAULT_SCREEN_SLOTS.min(self.max_publishers),
        }
    }

    /// Whether the caps are within the product's hard limits.
    pub fn within_limits(&self) -> bool {
        let (publishers, viewers) = match self.kind {
            RoomKind::Meeting => (MAX_MEETING_CALLERS, 8),
            RoomKind::Broadcast => (MAX_BROADCAST_PRESENTERS, MAX_BROADCAST_VIEWERS),
        };
        self.max_publishers <= publishers && self.max_viewers <= viewers && self.loudest_n > 0
    }
}

/// Tunables of the core. `Default` gives the documented values.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// SSRC the SFU uses as sender of its own RTCP (PLI, FIR, RR).
    pub rtcp_ssrc: u32,
    /// Packets kept per source for retransmission (rounded up to a power of two).
    pub retransmit_buffer_packets: usize,
    /// Oldest packet served from the retransmission buffer.
    pub retransmit_max_age: Duration,
    /// Most retransmissions of one packet to one subscriber.
    pub retransmit_max_per_packet: u8,
    /// Minimum interval between keyframe requests sent for one source (5 per second at 200 ms).
    pub keyframe_request_interval: Duration,
    /// How often active speakers and loudest-N are re-evaluated.
    pub speaker_interval: Duration,
    /// How often transport-wide CC feedback is sent to publishers.
    pub feedback_interval: Duration,
    /// How often layers are re-allocated from the bandwidth estimates.
    pub allocation_interval: Duration,
    /// How often SR (to subscribers) and RR (to publishers) are sent.
    pub report_interval: Duration,
    /// A layer with no packet for this long counts as stopped by its publisher.
    pub layer_timeout: Duration,
    /// Smoothed speaker score (0–127, "dB above silence") at and above which a participant
    /// counts as speaking.
    pub speaker_threshold: f32,
    /// Bandwidth estimate of a new subscriber before any feedback, bit/s.
    pub initial_estimate_bps: u64,
    /// Lowest and highest estimate, bit/s.
    pub min_estimate_bps: u64,
    /// Highest estimate, bit/s.
    pub max_estimate_bps: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            rtcp_ssrc: 1,
            retransmit_buffer_packets: 1024,
            retransmit_max_age: Duration::from_millis(1000),
            retransmit_max_per_packet: 3,
            keyframe_request_interval: Duration::from_millis(200),
            speaker_interval: Duration::from_millis(200),
            feedback_interval: Duration::from_millis(100),
            allocation_interval: Duration::from_millis(500),
            report_interval: Duration::from_secs(1),
            layer_timeout: Duration::from_millis(1500),
            speaker_threshold: 30.0,
            initial_estimate_bps: 1_000_000,
            min_estimate_bps: 50_000,
            max_estimate_bps: 20_000_000,
        }
    }
}

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// Microphone audio (Opus).
    Audio,
    /// Camera video (VP8, up to 3 simulcast layers).
    Camera,
    /// Screen share (VP8 or VP9, one layer).
    Screen,
}

impl TrackKind {
    /// Audio or video, for metrics labels.
    pub fn media_kind(self) -> MediaKind {
        match self {
            TrackKind::Audio => MediaKind::Audio,
            TrackKind::Camera | TrackKind::Screen => MediaKind::Video,
        }
    }
}

/// Audio or video (the `kind` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// Codecs the core forwards. H.264 and AV1 are deliberately absent: E2EE rooms refuse them until
/// codec-aware partial encryption exists (docs/architecture.md §2.1), see [`Codec::from_mime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus audio, 48 kHz.
    Opus,
    /// VP8 video: descriptor parsed, picture id rewritten, simulcast.
    Vp8,
    /// VP9 video: forwarded opaquely, one layer only.
    Vp9,
}

impl Codec {
    /// Maps an SDP codec name (`opus`, `VP8`, `VP9`, case-insensitive, with or without the
    /// `audio/`/`video/` prefix) to a codec; any other name is refused.
    pub fn from_mime(name: &str) -> Result<Self, crate::Error> {
        let n = name.rsplit('/').next().unwrap_or(name);
        if n.eq_ignore_ascii_case("opus") {
            Ok(Codec::Opus)
        } else if n.eq_ignore_ascii_case("vp8") {
            Ok(Codec::Vp8)
        } else if n.eq_ignore_ascii_case("vp9") {
            Ok(Codec::Vp9)
        } else {
            Err(crate::Error::CodecNotAllowed)
        }
    }

    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Vp8 | Codec::Vp9 => 90_000,
        }
    }
}

/// One simulcast layer (or the only encoding) of a published track, from the SDP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayerSpec {
    /// The `rid` of this encoding, when simulcast uses RIDs.
    pub rid: Option<String>,
    /// The media SSRC when signaled; otherwise learned from the first packet carrying the rid.
    pub ssrc: Option<u32>,
    /// The RTX SSRC when signaled; otherwise learned from the repaired-rid.
    pub rtx_ssrc: Option<u32>,
    /// Width in pixels (0 for audio).
    pub width: u32,
    /// Height in pixels (0 for audio).
    pub height: u32,
    /// The encoder's configured maximum bitrate, used until the real rate is measured.
    pub max_bitrate_bps: u64,
}

/// A track the shell publishes for a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// Audio, camera or screen share.
    pub kind: TrackKind,
    /// The codec negotiated for it.
    pub codec: Codec,
    /// The SDP `mid` of its m-section.
    pub mid: String,
    /// The media payload type the publisher sends.
    pub payload_type: u8,
    /// The RTX payload type the publisher sends, when negotiated.
    pub rtx_payload_type: Option<u8>,
    /// Layers, lowest first (one for audio and screen share, up to three for cameras).
    pub layers: Vec<LayerSpec>,
}

/// RTX parameters of a subscriber's downstream stream (RFC 4588).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxParams {
    /// SSRC of the retransmission stream.
    pub ssrc: u32,
    /// RTX payload type the subscriber negotiated.
    pub payload_type: u8,
}

/// How one subscription is sent to its subscriber: chosen by the shell when it negotiates the
/// subscriber's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownstreamParams {
    /// SSRC of the stream the subscriber sees (one per subscription, whatever layer).
    pub ssrc: u32,
    /// Media payload type the subscriber negotiated.
    pub payload_type: u8,
    /// RTX, when the subscriber negotiated it; otherwise NACKs are answered on the media SSRC.
    pub rtx: Option<RtxParams>,
    /// The `mid` written into every packet when the subscriber negotiated the mid extension
    /// (at most 16 bytes; longer values are not written).
    pub mid: Option<String>,
}
