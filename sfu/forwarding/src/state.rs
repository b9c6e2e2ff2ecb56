//! The core's entities as flat records: rooms, participants, tracks with their layers, and
//! subscriptions. They live in slabs owned by [`crate::Sfu`] and refer to each other by id.

use std::time::Instant;

use crate::{
    Codec, DownstreamParams, ExtensionIds, LayerSpec, MediaKind, ParticipantId, ParticipantStats,
    Role, RoomId, RoomPolicy, SubscriptionId, TrackId, TrackKind, bwe::Bwe, recv_stats::RecvStats,
    rewriter::Rewriter, rtx_buffer::RtxBuffer, slots::SlotLayout, slots::SlotState,
    twcc_receiver::TwccReceiver,
};

#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) policy: RoomPolicy,
    pub(crate) participants: Vec<ParticipantId>,
    pub(crate) publishers: usize,
    pub(crate) viewers: usize,
    pub(crate) tracks: Vec<TrackId>,
    /// Last announced active speakers, loudest first.
    pub(crate) speakers: Vec<ParticipantId>,
    /// Participants by how recently they spoke, most recent first (joiners at the back): the
    /// order last-N picks cameras in.
    pub(crate) speaker_order: Vec<ParticipantId>,
    /// Every audio track of the room, loudest first (smoothed level; ties keep the previous
    /// loudest-N selection, then publish order): what audio slots are filled from.
    pub(crate) audio_rank: Vec<TrackId>,
}

/// One incoming SSRC of a publisher, bound to a track layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source {
    pub(crate) ssrc: u32,
    pub(crate) track: TrackId,
    pub(crate) layer: u8,
    pub(crate) rtx: bool,
}

#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) room: RoomId,
    pub(crate) role: Role,
    pub(crate) ext: ExtensionIds,
    pub(crate) tracks: Vec<TrackId>,
    pub(crate) sources: Vec<Source>,
    pub(crate) subscriptions: Vec<SubscriptionId>,
    /// Receive slots (subscriptions whose track the core chooses), in layout order.
    pub(crate) slots: Vec<SubscriptionId>,
    pub(crate) slot_layout: Option<SlotLayout>,
    /// Cameras pinned for the video slots, in pin order.
    pub(crate) slot_pins: Vec<TrackId>,
    /// Version of the last `SlotsChanged` announced for this subscriber.
    pub(crate) slots_version: u64,
    /// A slot lost its track outside the assignment (its track was unpublished): the next
    /// assignment announces the map even when it assigns nothing new.
    pub(crate) slots_stale: bool,
    pub(crate) twcc_seq: u16,
    pub(crate) bwe: Bwe,
    /// Arrivals of this participant's packets, for transport-cc feedback to it.
    pub(crate) twcc_rx: TwccReceiver,
    pub(crate) stats: ParticipantStats,
}

/// Measured bitrate over ~1 s windows.
#[derive(Debug, Default)]
pub(crate) struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    pub(crate) bps: u64,
}

impl RateMeter {
    pub(crate) fn add(&mut self, now: Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        self.bytes += bytes as u64;
        let elapsed = now.saturating_duration_since(start);
        if elapsed.as_millis() >= 1000 {
            self.bps = (self.bytes as f64 * 8.0 / elapsed.as_secs_f64()) as u64;
            self.bytes = 0;
            self.window_start = Some(now);
        }
    }
}

/// A publisher's last sender report on a layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublisherSr {
    pub(crate) ntp: u64,
    pub(crate) rtp_timestamp: u32,
    pub(crate) arrival: Instant,
}

#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) spec: LayerSpec,
    pub(crate) ssrc: Option<u32>,
    pub(crate) rtx_ssrc: Option<u32>,
    pub(crate) buffer: RtxBuffer,
    pub(crate) recv: RecvStats,
    pub(crate) rate: RateMeter,
    /// When the layer last carried media. Padding-only packets (a browser's bandwidth probes,
    /// which Chromium sends on the media SSRC of a layer it does not encode) do not count: a
    /// layer that only pads has no keyframe to switch to.
    pub(crate) last_media: Option<Instant>,
    pub(crate) last_keyframe_request: Option<Instant>,
    pub(crate) fir_seq: u8,
    pub(crate) sr: Option<PublisherSr>,
}

impl Layer {
    /// Bitrate used for allocation: measured, else the configured maximum, else a default by
    /// layer index.
    pub(crate) fn cost_bps(&self, index: usize) -> u64 {
        if self.rate.bps > 0 {
            self.rate.bps
        } else if self.spec.max_bitrate_bps > 0 {
            self.spec.max_bitrate_bps
        } else {
            [150_000, 500_000, 1_500_000][index.min(2)]
        }
    }
}

/// Smoothed audio level of an audio track, for speaker detection.
#[derive(Debug, Default)]
pub(crate) struct AudioActivity {
    pub(crate) sum: u64,
    pub(crate) packets: u32,
    pub(crate) score: f32,
    /// Among the loudest N (always true in rooms at or below the threshold).
    pub(crate) selected: bool,
}

#[derive(Debug)]
pub(crate) struct Track {
    pub(crate) room: RoomId,
    pub(crate) publisher: ParticipantId,
    pub(crate) kind: TrackKind,
    pub(crate) codec: Codec,
    pub(crate) mid: String,
    pub(crate) payload_type: u8,
    pub(crate) rtx_payload_type: Option<u8>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) subscribers: Vec<SubscriptionId>,
    pub(crate) audio: AudioActivity,
}

/// One entry of a subscription's send history, for answering NACKs: what was sent under an
/// output sequence number. 16 bytes, since one is written per packet per subscriber.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentRecord {
    pub(crate) out_ts: u32,
    pub(crate) out_seq: u16,
    pub(crate) src_seq: u16,
    /// Picture id sent, or [`NO_PICTURE_ID`].
    pub(crate) out_pid: u16,
    pub(crate) out_tl0: Option<u8>,
    /// Source layer, or [`EMPTY_SLOT`] for a slot never written.
    pub(crate) layer: u8,
    pub(crate) retransmits: u8,
    /// The subscription's assignment number when sent: for a receive slot, which source the
    /// packet came from (see `slots.rs`). Fits the record's padding.
    pub(crate) assignment: u8,
}

/// `SentRecord::out_pid` when the packet had no picture id (ids are 15-bit).
pub(crate) const NO_PICTURE_ID: u16 = u16::MAX;
/// `SentRecord::layer` of an unused slot.
pub(crate) const EMPTY_SLOT: u8 = u8::MAX;

impl Default for SentRecord {
    fn default() -> Self {
        Self {
            out_ts: 0,
            out_seq: 0,
            src_seq: 0,
            out_pid: NO_PICTURE_ID,
            out_tl0: None,
            layer: EMPTY_SLOT,
            retransmits: 0,
            assignment: 0,
        }
    }
}

impl SentRecord {
    pub(crate) fn picture_id(&self) -> Option<u16> {
        (self.out_pid != NO_PICTURE_ID).then_some(self.out_pid)
    }
}

pub(crate) const HISTORY_LEN: usize = 1024;

#[derive(Debug)]
pub(crate) struct Subscription {
    pub(crate) subscriber: ParticipantId,
    /// The track forwarded; for a receive slot the one forwarded now ([`TrackId::NONE`] when
    /// empty, which resolves to no track).
    pub(crate) track: TrackId,
    /// A receive slot's next track, waiting for its switch point; the subscription is in the
    /// subscriber lists of both `track` and this.
    pub(crate) next_track: Option<TrackId>,
    /// Set for a receive slot.
    pub(crate) slot: Option<SlotState>,
    /// Incremented at each switch of a slot to another track, recorded in every [`SentRecord`].
    pub(crate) assignment: u8,
    pub(crate) kind: MediaKind,
    pub(crate) down: DownstreamParams,
    pub(crate) mid: Option<([u8; 16], u8)>,
    /// Extension ids of the subscriber, copied here to keep the hot path on one record.
    pub(crate) ext: ExtensionIds,
    pub(crate) rewriter: Rewriter,
    pub(crate) current_layer: Option<u8>,
    pub(crate) target_layer: Option<u8>,
    pub(crate) requested_height: Option<u32>,
    pub(crate) max_layer: Option<u8>,
    pub(crate) pinned: bool,
    /// Paused by loudest-N (audio) or last-N (video).
    pub(crate) paused: bool,
    pub(crate) history: Vec<SentRecord>,
    pub(crate) rtx_seq: u16,
    pub(crate) packets_sent: u32,
    pub(crate) octets_sent: u32,
    /// Middle 32 bits of the NTP time of the last SR sent and when.
    pub(crate) last_sr: Option<(u32, Instant)>,
    /// When a keyframe was last requested on this subscription's behalf.
    pub(crate) keyframe_asked_at: Option<Instant>,
}

impl Subscription {
    pub(crate) fn new(
        subscriber: ParticipantId,
        track: TrackId,
        kind: MediaKind,
        down: DownstreamParams,
        ext: ExtensionIds,
    ) -> Self {
        let mid = down
            .mid
            .as_deref()
            .filter(|m| !m.is_empty() && m.len() <= 16)
            .map(|m| {
                let mut b = [0u8; 16];
                b[..m.len()].copy_from_slice(m.as_bytes());
                (b, m.len() as u8)
            });
        Self {
            subscriber,
            track,
            next_track: None,
            slot: None,
            assignment: 0,
            kind,
            down,
            mid,
            ext,
            rewriter: Rewriter::default(),
            current_layer: None,
            target_layer: None,
            requested_height: None,
            max_layer: None,
            pinned: false,
            paused: false,
            history: Vec::new(),
            rtx_seq: 0,
            packets_sent: 0,
            octets_sent: 0,
            last_sr: None,
            keyframe_asked_at: None,
        }
    }

    pub(crate) fn record(&mut self, rec: SentRecord) {
        if self.history.is_empty() {
            self.history.resize(HISTORY_LEN, SentRecord::default());
        }
        self.history[usize::from(rec.out_seq) % HISTORY_LEN] = rec;
    }

    pub(crate) fn sent(&mut self, out_seq: u16) -> Option<&mut SentRecord> {
        self.history
            .get_mut(usize::from(out_seq) % HISTORY_LEN)
            .filter(|r| r.layer != EMPTY_SLOT && r.out_seq == out_seq)
    }

    pub(crate) fn mid_bytes(&self) -> Option<&[u8]> {
        self.mid.as_ref().map(|(b, n)| &b[..usize::from(*n)])
    }
}
