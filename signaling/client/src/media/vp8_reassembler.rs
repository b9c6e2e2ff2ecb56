//! VP8 frames back from one RTP stream's payloads, as a browser's jitter buffer does it.
//!
//! A frame is the packets of one RTP timestamp, from the one whose descriptor starts the frame
//! (S = 1, partition 0) to the one with the marker bit, with no sequence number missing. Packets
//! may come in any order: a frame waits for a late packet (reordered, or recovered by NACK/RTX),
//! and frames are handed out in sequence order, so a frame completed early waits for the frames
//! before it. The wait is bounded: when more than the reorder window of frames is held, the
//! oldest gap is given up, its frame counted as incomplete (a frame with a missing packet, or a
//! frame none of whose packets came) and the frames behind it go out. Packets of a frame already
//! handed out or given up, and duplicates, are ignored and counted.
//!
//! Sans-IO and without allocation in steady state: frame buffers are recycled.

use std::collections::VecDeque;

use thiserror::Error;

use super::vp8_descriptor::Vp8Descriptor;
use super::vp8_header::Vp8Header;

/// Frames held by default while a packet is missing: about half a second of a 15–30 fps stream,
/// room for a retransmission round trip or two.
pub const DEFAULT_REORDER_WINDOW: usize = 12;

/// A packet this far behind the frames already handed out is not late but a stream that started
/// over (a sender restart): the reassembler starts over with it.
const RESTART_DISTANCE: u16 = 4096;

/// Why a payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The payload ends inside the VP8 payload descriptor.
    #[error("VP8 payload descriptor truncated")]
    Truncated,
    /// The payload holds a descriptor and no frame bytes.
    #[error("VP8 payload without frame bytes")]
    Empty,
}

/// What a reassembler did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReassemblerCounts {
    /// Complete frames handed out.
    pub frames: u64,
    /// Of those, keyframes.
    pub keyframes: u64,
    /// Frames given up: a packet of theirs never came (or none did) within the window.
    pub incomplete_frames: u64,
    /// Packets ignored: duplicates, and packets of a frame already handed out or given up.
    pub ignored_packets: u64,
}

/// A frame handed out by [`Vp8Reassembler::next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssembledFrame<'a> {
    /// The RTP timestamp of its packets.
    pub timestamp: u32,
    /// Whether it is a keyframe (bit 0 of its first byte, the clear frame tag, is 0).
    pub keyframe: bool,
    /// The frame bytes (for an E2EE stream, the sealed frame to open).
    pub data: &'a [u8],
}

/// Sequence number `a` comes before `b` (modulo 2^16, within half the range).
fn seq_before(a: u16, b: u16) -> bool {
    (b.wrapping_sub(a) as i16) > 0
}

/// One frame in progress: its packets' bytes in arrival order and where each one lies.
#[derive(Debug, Default)]
struct PendingFrame {
    timestamp: u32,
    data: Vec<u8>,
    /// (sequence number, offset in `data`, length), in arrival order.
    parts: Vec<(u16, usize, usize)>,
    /// Lowest sequence number seen.
    low_seq: u16,
    /// Highest sequence number seen.
    high_seq: u16,
    first_seq: Option<u16>,
    last_seq: Option<u16>,
}

impl PendingFrame {
    /// Whether every packet from the first to the marker is here.
    fn is_complete(&self) -> bool {
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => {
                usize::from(last.wrapping_sub(first)) + 1 == self.parts.len()
                    && self.low_seq == first
                    && self.high_seq == last
            }
            _ => false,
        }
    }

    fn add(&mut self, seq: u16, starts: bool, marker: bool, bytes: &[u8]) {
        if self.parts.is_empty() {
            (self.low_seq, self.high_seq) = (seq, seq);
        } else if seq_before(seq, self.low_seq) {
            self.low_seq = seq;
        } else if seq_before(self.high_seq, seq) {
            self.high_seq = seq;
        }
        self.parts.push((seq, self.data.len(), bytes.len()));
        self.data.extend_from_slice(bytes);
        if starts {
            self.first_seq = Some(seq);
        }
        if marker {
            self.last_seq = Some(seq);
        }
    }
}

/// Rebuilds VP8 frames from one RTP stream (one SSRC) (see the module documentation).
#[derive(Debug)]
pub struct Vp8Reassembler {
    window: usize,
    /// Frames in progress, in sequence order (disjoint ranges, sorted by `low_seq`).
    pending: VecDeque<PendingFrame>,
    /// Complete frames, in order, not yet handed out.
    ready: VecDeque<PendingFrame>,
    /// Emptied frames kept for their buffers.
    spare: Vec<PendingFrame>,
    /// Highest sequence number of the frames handed out or given up, and whether the next frame
    /// must start right after it (false after an incomplete frame: where it ended is unknown).
    consumed: Option<(u16, bool)>,
    /// Timestamp of the last frame handed out or given up.
    consumed_timestamp: Option<u32>,
    /// The frame last handed out.
    frame: Vec<u8>,
    counts: ReassemblerCounts,
}

impl Default for Vp8Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Vp8Reassembler {
    /// A reassembler with the [`DEFAULT_REORDER_WINDOW`].
    pub fn new() -> Self {
        Self::with_window(DEFAULT_REORDER_WINDOW)
    }

    /// A reassembler that holds at most `window` frames (at least 1) while waiting for a packet.
    pub fn with_window(window: usize) -> Self {
        Vp8Reassembler {
            window: window.max(1),
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            spare: Vec::new(),
            consumed: None,
            consumed_timestamp: None,
            frame: Vec::new(),
            counts: ReassemblerCounts::default(),
        }
    }

    /// Takes one packet's payload. Frames it makes ready come out of [`Self::next_frame`].
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<(), PayloadError> {
        let descriptor = Vp8Descriptor::parse(payload).map_err(|_| PayloadError::Truncated)?;
        let bytes = &payload[descriptor.len..];
        if bytes.is_empty() {
            return Err(PayloadError::Empty);
        }
        if self.consumed.is_some_and(|(high, _)| {
            high.wrapping_sub(seq) > RESTART_DISTANCE && !seq_before(high, seq)
        }) {
            self.restart();
        }
        let late = self
            .consumed
            .is_some_and(|(high, _)| !seq_before(high, seq))
            || self.consumed_timestamp == Some(timestamp);
        if late {
            self.counts.ignored_packets += 1;
            return Ok(());
        }
        let index = match self.pending.iter().position(|f| f.timestamp == timestamp) {
            Some(i) => i,
            None => {
                let at = self
                    .pending
                    .iter()
                    .position(|f| seq_before(seq, f.low_seq))
                    .unwrap_or(self.pending.len());
                let mut frame = self.spare.pop().unwrap_or_default();
                frame.timestamp = timestamp;
                self.pending.insert(at, frame);
                at
            }
        };
        let frame = &mut self.pending[index];
        if frame.parts.iter().any(|(s, ..)| *s == seq) {
            self.counts.ignored_packets += 1;
            return Ok(());
        }
        frame.add(seq, descriptor.starts_frame, marker, bytes);
        self.release();
        Ok(())
    }

    /// Starts over (the stream restarted): frames in progress are given up, and the next
    /// complete frame goes out whatever its sequence number.
    pub fn restart(&mut self) {
        while let Some(frame) = self.pending.pop_front() {
            self.counts.incomplete_frames += 1;
            self.recycle(frame);
        }
        self.consumed = None;
        self.consumed_timestamp = None;
    }

    /// Moves the frames that may go out to `ready`, giving up the oldest gap while more than
    /// the window is held.
    fn release(&mut self) {
        while let Some(front) = self.pending.front() {
            let in_turn = match self.consumed {
                Some((high, true)) => front.first_seq == Some(high.wrapping_add(1)),
                _ => true,
            };
            if front.is_complete() && in_turn {
                self.consume_front(true);
            } else if self.pending.len() > self.window {
                self.counts.incomplete_frames += 1;
                if front.is_complete() {
                    // Every packet between the last frame and this one is missing: at least one
                    // whole frame was lost. This one goes out next.
                    if let Some((_, contiguous)) = &mut self.consumed {
                        *contiguous = false;
                    }
                } else {
                    self.consume_front(false);
                }
            } else {
                break;
            }
        }
    }

    /// Takes the front pending frame: to `ready` when complete, else given up.
    fn consume_front(&mut self, complete: bool) {
        let Some(frame) = self.pending.pop_front() else {
            return;
        };
        self.consumed = Some((frame.high_seq, complete));
        self.consumed_timestamp = Some(frame.timestamp);
        if complete {
            self.ready.push_back(frame);
        } else {
            self.recycle(frame);
        }
    }

    fn recycle(&mut self, mut frame: PendingFrame) {
        if self.spare.len() <= self.window {
            frame.data.clear();
            frame.parts.clear();
            frame.first_seq = None;
            frame.last_seq = None;
            self.spare.push(frame);
        }
    }

    /// The next complete frame, in sequence order, if one is ready. Call it after every
    /// [`Self::push`] until it returns `None`.
    pub fn next_frame(&mut self) -> Option<AssembledFrame<'_>> {
        let mut frame = self.ready.pop_front()?;
        let in_order = frame.parts.windows(2).all(|w| seq_before(w[0].0, w[1].0));
        if in_order {
            std::mem::swap(&mut self.frame, &mut frame.data);
        } else {
            let first = frame.low_seq;
            frame
                .parts
                .sort_unstable_by_key(|(s, ..)| s.wrapping_sub(first));
            self.frame.clear();
            for &(_, offset, len) in &frame.parts {
                self.frame
                    .extend_from_slice(&frame.data[offset..offset + len]);
            }
        }
        let timestamp = frame.timestamp;
        self.recycle(frame);
        let keyframe = self
            .frame
            .first()
            .is_some_and(|b| Vp8Header::is_keyframe(*b));
        self.counts.frames += 1;
        self.counts.keyframes += u64::from(keyframe);
        Some(AssembledFrame {
            timestamp,
            keyframe,
            data: &self.frame,
        })
    }

    /// What this reassembler handed out, gave up and ignored so far.
    pub fn counts(&self) -> ReassemblerCounts {
        self.counts
    }
}
