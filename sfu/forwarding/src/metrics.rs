//! Counters for the Prometheus metrics of docs/metrics.md, kept as plain numbers the shell reads
//! and exports (the core has no metrics dependency), and per-participant statistics.

use std::time::Duration;

use crate::MediaKind;

/// A counter split by media kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByKind {
    /// Audio.
    pub audio: u64,
    /// Video.
    pub video: u64,
}

impl ByKind {
    pub(crate) fn add(&mut self, kind: MediaKind, n: u64) {
        match kind {
            MediaKind::Audio => self.audio += n,
            MediaKind::Video => self.video += n,
        }
    }

    /// Sum over both kinds.
    pub fn total(&self) -> u64 {
        self.audio + self.video
    }
}

/// A counter or gauge split by receive-slot kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BySlotKind {
    /// Audio slots.
    pub audio: u64,
    /// Video (camera) slots.
    pub video: u64,
    /// Screen-share slots.
    pub screen: u64,
}

impl BySlotKind {
    pub(crate) fn add(&mut self, kind: crate::SlotKind, n: u64) {
        match kind {
            crate::SlotKind::Audio => self.audio += n,
            crate::SlotKind::Video => self.video += n,
            crate::SlotKind::Screen => self.screen += n,
        }
    }

    /// Sum over the kinds.
    pub fn total(&self) -> u64 {
        self.audio + self.video + self.screen
    }
}

/// `sfu_packets_dropped_total{reason}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// `malformed`: RTP, RTCP, RTX or VP8 descriptor that does not parse.
    pub malformed: u64,
    /// `unknown_ssrc`: RTP whose SSRC/mid/rid matches no published layer, or a payload type
    /// that is not the track's.
    pub unknown_ssrc: u64,
    /// `unknown_participant`: input for a participant id the core does not know.
    pub unknown_participant: u64,
    /// `not_publisher`: media from a participant whose role may not publish.
    pub not_publisher: u64,
    /// `no_subscriber`: a valid packet nobody receives.
    pub no_subscriber: u64,
    /// `stale`: a late packet from before a subscriber's last switch point (not forwarded to
    /// that subscriber, counted once per subscriber).
    pub stale: u64,
    /// `nack_miss`: a NACKed packet no longer in the buffer (too old, evicted, never seen) or
    /// retransmitted too often.
    pub nack_miss: u64,
}

/// `sfu_rtcp_feedback_total{type, direction}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Feedback {
    /// NACK messages received from subscribers.
    pub nack_received: u64,
    /// NACK messages sent to publishers.
    pub nack_sent: u64,
    /// PLIs received from subscribers.
    pub pli_received: u64,
    /// PLIs sent to publishers.
    pub pli_sent: u64,
    /// FIRs received from subscribers.
    pub fir_received: u64,
    /// FIRs sent to publishers.
    pub fir_sent: u64,
}

/// Node-wide counters. Gauges (`sfu_rooms`, `sfu_participants`, `sfu_tracks`) are read from
/// [`crate::Sfu::gauges`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metrics {
    /// `sfu_packets_received_total{kind}`.
    pub packets_received: ByKind,
    /// `sfu_bytes_received_total{kind}`.
    pub bytes_received: ByKind,
    /// `sfu_packets_sent_total{kind, type="initial"}`.
    pub packets_sent: ByKind,
    /// `sfu_bytes_sent_total{kind, type="initial"}`.
    pub bytes_sent: ByKind,
    /// `sfu_packets_sent_total{kind, type="retransmit"}`.
    pub packets_retransmitted: ByKind,
    /// `sfu_bytes_sent_total{kind, type="retransmit"}`.
    pub bytes_retransmitted: ByKind,
    /// `sfu_packets_dropped_total{reason}`.
    pub dropped: Dropped,
    /// `sfu_rtcp_feedback_total`.
    pub feedback: Feedback,
    /// `sfu_layer_switches_total{direction="up"}`.
    pub layer_switches_up: u64,
    /// `sfu_layer_switches_total{direction="down"}`.
    pub layer_switches_down: u64,
    /// RTCP packets received (compound), any participant.
    pub rtcp_received: u64,
    /// `sfu_slot_reassignments_total{kind}`: a receive slot was given another track.
    pub slot_reassignments: BySlotKind,
}

/// `sfu_rooms`, `sfu_participants`, `sfu_tracks{kind}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Open rooms.
    pub rooms: u64,
    /// Admitted participants.
    pub participants: u64,
    /// Published tracks by kind.
    pub tracks: ByKind,
    /// `sfu_receive_slots{kind}`: receive slots of all subscribers.
    pub slots: BySlotKind,
    /// `sfu_receive_slots_occupied{kind}`: receive slots that carry (or switch to) a track.
    pub slots_occupied: BySlotKind,
}

/// Per-participant statistics (for the admin API; never a metrics label).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParticipantStats {
    /// RTP packets received from this participant.
    pub packets_received: u64,
    /// RTP bytes received from this participant.
    pub bytes_received: u64,
    /// RTP packets sent to this participant (initial).
    pub packets_sent: u64,
    /// RTP bytes sent to this participant (initial).
    pub bytes_sent: u64,
    /// Retransmissions sent to this participant.
    pub packets_retransmitted: u64,
    /// NACKs received from this participant.
    pub nacks_received: u64,
    /// PLIs and FIRs received from this participant.
    pub keyframe_requests_received: u64,
    /// Packets from this participant that were dropped as malformed or unknown.
    pub packets_dropped: u64,
    /// Current bandwidth estimate towards this participant, bit/s.
    pub estimate_bps: u64,
    /// Last round-trip time computed from its RR.
    pub rtt: Option<Duration>,
}
