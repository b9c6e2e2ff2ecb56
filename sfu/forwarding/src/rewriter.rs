//! Per-subscription rewriting of sequence number, timestamp, VP8 picture id and TL0PICIDX, so a
//! subscriber sees one continuous stream while the SFU switches simulcast layers or pauses and
//! resumes forwarding.
//!
//! Within one *epoch* (from one switch point to the next) every output field is the source field
//! plus a fixed offset, so reordering and gaps are passed through exactly as the source had them.
//! At a switch the offsets are chosen so the first packet of the new epoch follows the highest
//! values sent so far: sequence number + 1, picture id + 1, TL0PICIDX + 1, and timestamp + the
//! wall-clock time elapsed since the packet that carried the highest timestamp (at least 1 tick).
//! Late packets from before the switch point are dropped, since their numbers would collide.

use std::time::Instant;

use crate::{
    media_packet::MediaPacket,
    seq::{seq_newer, signed_diff},
};

const PID_MODULUS: u16 = 1 << 15;

/// The rewritten fields of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewritten {
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    pub(crate) picture_id: Option<u16>,
    pub(crate) tl0_pic_idx: Option<u8>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Rewriter {
    started: bool,
    seq_offset: u16,
    ts_offset: u32,
    tl0_offset: u8,
    epoch_first_seq: u16,
    /// Moving anchor (source id, output id) for picture ids; source ids may be 7 or 15 bits.
    pid_anchor: Option<(u16, u16)>,
    have_highest: bool,
    highest_seq: u16,
    highest_ts: u32,
    highest_ts_at: Option<Instant>,
    highest_pid: Option<u16>,
    highest_tl0: Option<u8>,
}

impl Rewriter {
    /// Starts a new epoch at `packet` (a switch point).
    pub(crate) fn start(&mut self, now: Instant, packet: &MediaPacket, clock_rate: u32) {
        self.epoch_first_seq = packet.seq;
        let src_pid = packet.vp8.and_then(|d| d.picture_id).map(|p| p.value);
        let src_tl0 = packet.vp8.and_then(|d| d.tl0_pic_idx);
        if !self.have_highest {
            self.seq_offset = 0;
            self.ts_offset = 0;
            self.tl0_offset = 0;
            self.pid_anchor = src_pid.map(|p| (p, p));
        } else {
            self.seq_offset = self.highest_seq.wrapping_add(1).wrapping_sub(packet.seq);
            let elapsed = self
                .highest_ts_at
                .map(|at| now.saturating_duration_since(at))
                .unwrap_or_default();
            let ticks = (elapsed.as_secs_f64() * f64::from(clock_rate)).round();
            let ticks = ticks.clamp(1.0, f64::from(u32::MAX / 2)) as u32;
            self.ts_offset = self
                .highest_ts
                .wrapping_add(ticks)
                .wrapping_sub(packet.timestamp);
            self.pid_anchor = src_pid.map(|p| {
                let next = self.highest_pid.map_or(p, |h| (h + 1) % PID_MODULUS);
                (p, next)
            });
            if let Some(t) = src_tl0 {
                let next = self.highest_tl0.map_or(t, |h| h.wrapping_add(1));
                self.tl0_offset = next.wrapping_sub(t);
            }
        }
        self.started = true;
    }

    /// Rewrites one packet of the current epoch, or `None` for a late packet from before the
    /// epoch's switch point (or when no epoch was started).
    pub(crate) fn rewrite(&mut self, now: Instant, packet: &MediaPacket) -> Option<Rewritten> {
        if !self.started
            || (packet.seq != self.epoch_first_seq && seq_newer(self.epoch_first_seq, packet.seq))
        {
            return None;
        }
        let seq = packet.seq.wrapping_add(self.seq_offset);
        let timestamp = packet.timestamp.wrapping_add(self.ts_offset);
        if !self.have_highest || seq_newer(seq, self.highest_seq) {
            self.highest_seq = seq;
        }
        if !self.have_highest || (timestamp.wrapping_sub(self.highest_ts) as i32) > 0 {
            self.highest_ts = timestamp;
            self.highest_ts_at = Some(now);
        }
        self.have_highest = true;
        let mut picture_id = None;
        if let (Some(src), Some((anchor_src, anchor_out))) = (
            packet.vp8.and_then(|d| d.picture_id),
            self.pid_anchor.as_mut(),
        ) {
            let d = signed_diff(src.value, *anchor_src, src.modulus());
            let out = (i32::from(*anchor_out) + d).rem_euclid(i32::from(PID_MODULUS)) as u16;
            if d > 0 {
                *anchor_src = src.value;
                *anchor_out = out;
            }
            if self
                .highest_pid
                .is_none_or(|h| signed_diff(out, h, PID_MODULUS) > 0)
            {
                self.highest_pid = Some(out);
            }
            picture_id = Some(out);
        }
        let tl0_pic_idx = packet
            .vp8
            .and_then(|d| d.tl0_pic_idx)
            .map(|t| t.wrapping_add(self.tl0_offset));
        if let Some(t) = tl0_pic_idx
            && self
                .highest_tl0
                .is_none_or(|h| (t.wrapping_sub(h) as i8) > 0)
        {
            self.highest_tl0 = Some(t);
        }
        Some(Rewritten {
            seq,
            timestamp,
            picture_id,
            tl0_pic_idx,
        })
    }

    /// The highest output timestamp and when it was produced (for sender reports).
    pub(crate) fn highest_timestamp(&self) -> Option<(u32, Instant)> {
        self.highest_ts_at.map(|at| (self.highest_ts, at))
    }

    /// The timestamp offset of the current epoch.
    pub(crate) fn ts_offset(&self) -> u32 {
        self.ts_offset
    }
}
