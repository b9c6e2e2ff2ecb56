//! One viewer's received media, as the `async` engine's receiver does it
//! (`participant/media_tasks.rs`): Opus packets are frames, VP8 packets are reassembled per
//! SSRC, and every frame is SFrame-decrypted and its probe recorded by the viewer's
//! [`FrameOpener`]. The `baseline` scenario's receivers use it too (`baseline.rs`), so the
//! generator's receive cost has a figure without a WebRTC transport.

use std::collections::HashMap;
use std::time::Instant;

use call_client::media::Vp8Reassembler;
use e2ee_frames::Codec;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

use crate::secure_media::FrameOpener;

/// The fields of a received RTP packet the receiver uses, borrowed from wherever the packet
/// was parsed: the short path's plaintext (no copy) or a packet `rtc`'s pipeline delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpView<'a> {
    pub(crate) ssrc: u32,
    pub(crate) sequence_number: u16,
    pub(crate) timestamp: u32,
    pub(crate) marker: bool,
    pub(crate) payload: &'a [u8],
}

impl<'a> From<&sfu_forwarding::rtp::RtpPacket<'a>> for RtpView<'a> {
    fn from(p: &sfu_forwarding::rtp::RtpPacket<'a>) -> Self {
        Self {
            ssrc: p.ssrc,
            sequence_number: p.sequence_number,
            timestamp: p.timestamp,
            marker: p.marker,
            payload: p.payload(),
        }
    }
}

impl<'a> From<&'a rtc::rtp::Packet> for RtpView<'a> {
    fn from(p: &'a rtc::rtp::Packet) -> Self {
        Self {
            ssrc: p.header.ssrc,
            sequence_number: p.header.sequence_number,
            timestamp: p.header.timestamp,
            marker: p.header.marker,
            payload: &p.payload,
        }
    }
}

/// What one viewer received and decrypted.
#[derive(Debug, Default)]
pub(crate) struct MediaReceiver {
    pub(crate) opener: FrameOpener,
    video: HashMap<u32, Vp8Reassembler>,
    /// VP8 frames lost to a missing RTP packet before decryption.
    pub(crate) broken_frames: u64,
    /// RTP packets received (after SRTP).
    pub(crate) packets: u64,
    /// Frames that decrypted and carried a probe.
    pub(crate) frames_decrypted: u64,
}

impl MediaReceiver {
    /// One RTP packet of a track of `kind`, received at `now` (`arrival_us` on the run clock).
    pub(crate) fn on_rtp(
        &mut self,
        kind: RtpCodecKind,
        packet: RtpView<'_>,
        now: Instant,
        arrival_us: u64,
    ) {
        self.packets += 1;
        if kind == RtpCodecKind::Audio {
            let opened = self
                .opener
                .open(now, Codec::Opus, packet.payload, arrival_us)
                .is_ok();
            self.frames_decrypted += u64::from(opened);
            return;
        }
        let r = self.video.entry(packet.ssrc).or_default();
        let before = r.counts().incomplete_frames;
        let pushed = r.push(
            packet.sequence_number,
            packet.timestamp,
            packet.marker,
            packet.payload,
        );
        if pushed.is_ok() {
            while let Some(frame) = r.next_frame() {
                let opened = self
                    .opener
                    .open(now, Codec::Vp8, frame.data, arrival_us)
                    .is_ok();
                self.frames_decrypted += u64::from(opened);
            }
        }
        self.broken_frames += r.counts().incomplete_frames - before;
    }

    /// A new media session (after a `media_reset`): reassembly starts over, keys and
    /// measurements stay.
    pub(crate) fn restart(&mut self) {
        self.video.clear();
    }
}
