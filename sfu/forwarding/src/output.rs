//! What the core hands back to the shell: packets to send ([`Transmit`]) and things that
//! happened ([`Event`]).

use bytes::Bytes;

use crate::{MediaKind, ParticipantId, RoomId, SlotRef, TrackId, TrackKind, rtp::HeaderBuf};

/// A packet for the shell to SRTP/SRTCP-protect and send to one participant.
#[derive(Debug, Clone)]
pub enum Transmit {
    /// An RTP packet: `header` (RTP header, the SFU's extensions, RTX OSN, rewritten VP8
    /// descriptor) followed by `payload` (shared among subscribers, not copied).
    Rtp {
        /// The receiving participant.
        to: ParticipantId,
        /// Audio or video (metrics label).
        kind: MediaKind,
        /// Whether this is a retransmission (metrics label `type`).
        retransmit: bool,
        /// Per-subscriber bytes.
        header: HeaderBuf,
        /// Shared payload bytes.
        payload: Bytes,
    },
    /// A compound RTCP packet.
    Rtcp {
        /// The receiving participant.
        to: ParticipantId,
        /// The packet.
        packet: Bytes,
    },
}

impl Transmit {
    /// The receiving participant.
    pub fn to(&self) -> ParticipantId {
        match self {
            Transmit::Rtp { to, .. } | Transmit::Rtcp { to, .. } => *to,
        }
    }

    /// Length of the whole packet.
    pub fn len(&self) -> usize {
        match self {
            Transmit::Rtp {
                header, payload, ..
            } => header.as_slice().len() + payload.len(),
            Transmit::Rtcp { packet, .. } => packet.len(),
        }
    }

    /// Whether the packet is empty (never, for packets the core makes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the whole packet to `out` (for the shell's encryption buffer).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Transmit::Rtp {
                header, payload, ..
            } => {
                out.extend_from_slice(header.as_slice());
                out.extend_from_slice(payload);
            }
            Transmit::Rtcp { packet, .. } => out.extend_from_slice(packet),
        }
    }
}

/// Which side of the SFU a quality report describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Media from a publisher to the SFU (measured by the SFU).
    Publisher,
    /// Media from the SFU to a subscriber (reported by the subscriber's RR).
    Subscriber,
}

/// Something the shell (or signaling, through it) should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A track was published.
    TrackPublished {
        /// Its room.
        room: RoomId,
        /// The publisher.
        publisher: ParticipantId,
        /// The track.
        track: TrackId,
        /// What it carries.
        kind: TrackKind,
    },
    /// A track went away (unpublished, or its publisher left); its subscriptions are gone.
    TrackUnpublished {
        /// Its room.
        room: RoomId,
        /// The publisher.
        publisher: ParticipantId,
        /// The track.
        track: TrackId,
    },
    /// The active speakers of a room changed: loudest first.
    ActiveSpeakers {
        /// The room.
        room: RoomId,
        /// Speaking participants, loudest first (empty when nobody speaks).
        speakers: Vec<ParticipantId>,
        /// Each speaker's smoothed audio level, 0 (silence) to 1 (0 dBov), same order.
        levels: Vec<f32>,
    },
    /// A keyframe request (PLI or FIR) was sent to a publisher.
    KeyframeRequested {
        /// The publisher.
        publisher: ParticipantId,
        /// The track.
        track: TrackId,
        /// The layer index (0 = lowest).
        layer: u8,
    },
    /// A subscriber now receives another layer of a track (switched at a keyframe).
    LayerChanged {
        /// The subscriber.
        subscriber: ParticipantId,
        /// The track.
        track: TrackId,
        /// Previous layer, `None` when forwarding just (re)started.
        from: Option<u8>,
        /// New layer.
        to: u8,
    },
    /// A subscription was paused or resumed by loudest-N (audio) or last-N (video).
    ForwardingChanged {
        /// The subscriber.
        subscriber: ParticipantId,
        /// The track.
        track: TrackId,
        /// Whether packets are now forwarded.
        forwarding: bool,
    },
    /// A reception quality figure: from an RR a subscriber sent, or measured by the SFU on a
    /// publisher's stream when it sends its own RR. Feeds the loss, jitter and RTT histograms.
    QualityReport {
        /// The participant the figure is about.
        participant: ParticipantId,
        /// Which direction.
        direction: Direction,
        /// Audio or video.
        kind: MediaKind,
        /// Fraction lost in the report interval, 0–1.
        fraction_lost: f64,
        /// Interarrival jitter in seconds.
        jitter_seconds: f64,
        /// Round-trip time, when the report allowed computing it.
        rtt_seconds: Option<f64>,
    },
    /// A subscriber's receive slots carry other tracks: send it the `slots` message
    /// (docs/protocol.md). Announced when the assignment is decided; a video slot switches at
    /// the new source's next keyframe and an audio slot at its next packet.
    SlotsChanged {
        /// The subscriber.
        subscriber: ParticipantId,
        /// Increases by one with each map announced for this subscriber.
        version: u64,
        /// Every slot of the subscriber in layout order, with the track it carries (`None`:
        /// empty).
        map: Vec<(SlotRef, Option<TrackId>)>,
    },
    /// A room was closed; its participants, tracks and subscriptions are gone.
    RoomClosed {
        /// The room.
        room: RoomId,
    },
}

/// One output of [`crate::Sfu::poll_output`].
#[derive(Debug, Clone)]
pub enum Output {
    /// A packet to send.
    Transmit(Transmit),
    /// An event.
    Event(Event),
}
