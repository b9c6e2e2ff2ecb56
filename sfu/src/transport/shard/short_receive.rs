//! The short receive path: an SRTP packet of a stream already established goes from the receive
//! buffer to the media handler without crossing the peer's `rtc` pipeline.
//!
//! `RTCPeerConnection::unprotect_rtp_in_place` (a patch of the vendored `rtc` and `rtc-srtp`,
//! the twin of the send path's `protect_rtp_into`) decrypts it with the peer's SRTP context,
//! replay check and authentication included, where it lies: in the shard's receive buffer, so
//! the packet is copied once on its way in (by the kernel, into that buffer). The plaintext,
//! the start of that buffer, is handed to [`MediaHandler::on_rtp`] at once,
//! with the datagram's arrival time, as [`drive`](super::drive) hands what the pipeline
//! decrypted. Everything else keeps the pipeline: STUN, DTLS, SRTCP, packets of a peer not yet
//! connected, and the packets `rtc` must see (the first of every stream, which establish it and
//! fire `OnTrack`; a simulcast layer's until their `mid`/`rid` extensions bound its SSRC; RTX it
//! de-encapsulates; SSRCs it routes by payload type): for those `unprotect_rtp_in_place` answers
//! `None` and touches nothing, so the pipeline gets the datagram as received. What went into the pipeline reaches the handler when the shard drives
//! the peer at the end of the pass; until then the peer's SRTP keeps taking the pipeline too, so
//! the handler sees its packets in arrival order, and a stream's track (`OnTrack`) before the
//! stream's packets. The SFU loses nothing the pipeline did for the packets that skip it: it
//! registers no `rtc` interceptor that reads RTP (only `rtcp_delivery`'s, for RTCP), keeps its
//! own receive statistics and transport-cc feedback in the forwarding core, and reads none of
//! `rtc`'s statistics; ICE liveness is the shard's consent check, which only STUN feeds.

use std::time::Instant;

use tracing::trace;

use super::ShardState;
use crate::transport::events::PeerId;
use crate::transport::media::{MediaHandler, Outbox};
use crate::transport::protocol_byte::is_srtp;

/// What became of a datagram offered to the short path.
pub(super) enum ShortReceive {
    /// Delivered to the media handler, or refused by the SRTP context (and counted).
    Done,
    /// Not for this path: the datagram goes through the peer's `rtc` pipeline.
    Pipeline,
}

impl<H: MediaHandler> ShardState<H> {
    /// Offers a datagram from the authenticated address of peer `id` to the short path. `data`
    /// is decrypted in place when the path takes it ([`ShortReceive::Done`]: its bytes are then
    /// the shard's to reuse); it is left as it was when the answer is
    /// [`ShortReceive::Pipeline`].
    pub(super) fn receive_short(
        &mut self,
        id: PeerId,
        data: &mut [u8],
        arrival: Instant,
    ) -> ShortReceive {
        if !is_srtp(data) {
            return ShortReceive::Pipeline;
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return ShortReceive::Pipeline;
        };
        if !peer.connected || peer.pipeline_reads_pending {
            return ShortReceive::Pipeline;
        }
        let plaintext_len = match peer.pc.unprotect_rtp_in_place(data) {
            Ok(Some(len)) => len,
            Ok(None) => return ShortReceive::Pipeline,
            Err(err) => {
                trace!(%id, %err, "SRTP refused on the short path");
                let refused = peer.pc.take_read_errors();
                self.stats.add_rtc_refusals(&refused);
                return ShortReceive::Done;
            }
        };
        self.stats.rtp_in += 1;
        self.stats.rtp_short_path += 1;
        let mut outbox = Outbox {
            peers: &mut self.peers,
            dirty: &mut self.dirty,
            batch: &mut self.batch,
            now: Instant::now().max(arrival),
        };
        self.handler
            .on_rtp(id, &data[..plaintext_len], arrival, &mut outbox);
        ShortReceive::Done
    }
}
