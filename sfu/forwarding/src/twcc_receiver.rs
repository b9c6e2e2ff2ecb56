//! Transport-wide CC feedback *to* publishers: the arrival time of every packet that carried the
//! publisher's transport-wide sequence number, reported back every
//! [`crate::Config::feedback_interval`] so the publisher's own congestion controller (and with
//! it the simulcast layers a browser sends) works through the SFU. The load generator's sans-IO
//! viewers report what they receive from the SFU with it too
//! (`loadtest/src/viewer_engine/feedback.rs`).

use crate::{seq::seq_newer, twcc};

/// Most arrivals held between two feedbacks; beyond it the oldest are reported early.
const MAX_PENDING: usize = 2048;

/// See the module docs.
#[derive(Debug, Default)]
pub struct TwccReceiver {
    /// (transport-wide sequence number, arrival µs on the core's clock), in arrival order.
    pending: Vec<(u16, i64)>,
    /// First sequence number not yet covered by a feedback.
    next_expected: Option<u16>,
    feedback_count: u8,
}

impl TwccReceiver {
    /// Records the arrival (µs on the receiver's clock) of the packet with transport-wide
    /// sequence number `seq`.
    pub fn on_packet(&mut self, seq: u16, arrival_us: i64) {
        if let Some(next) = self.next_expected
            && seq != next
            && seq_newer(next, seq)
        {
            // Already reported as lost; too late to report now.
            return;
        }
        if self.pending.len() < MAX_PENDING {
            self.pending.push((seq, arrival_us));
        }
    }

    /// Appends a transport-cc packet covering everything pending, if anything is.
    pub fn write_feedback(&mut self, out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32) {
        let Some(&(first, _)) = self.pending.first() else {
            return;
        };
        let base = match self.next_expected {
            Some(next) => next,
            None => self
                .pending
                .iter()
                .map(|(s, _)| *s)
                .fold(first, |a, s| if seq_newer(a, s) { s } else { a }),
        };
        let span = self
            .pending
            .iter()
            .map(|(s, _)| usize::from(s.wrapping_sub(base)) + 1)
            .max()
            .unwrap_or(0)
            .min(usize::from(twcc::MAX_STATUSES));
        let mut arrivals = vec![None; span];
        for (s, at) in &self.pending {
            if let Some(slot) = arrivals.get_mut(usize::from(s.wrapping_sub(base))) {
                *slot = Some(*at);
            }
        }
        twcc::write_feedback(
            out,
            sender_ssrc,
            media_ssrc,
            base,
            self.feedback_count,
            &arrivals,
        );
        self.feedback_count = self.feedback_count.wrapping_add(1);
        self.next_expected = Some(base.wrapping_add(span as u16));
        self.pending.clear();
    }
}
