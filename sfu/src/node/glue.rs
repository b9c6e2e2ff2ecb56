//! The shard-side handler: the node's [`MediaHandler`] runs the forwarding core on the
//! transport shard's task, packet by packet, under the node's one lock.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use sfu_forwarding::Transmit;

use super::state::{State, lock};
use crate::transport::{MediaHandler, Outbox, PeerEvent, PeerId};

/// The [`MediaHandler`] the node plugs into its transport shard: runs the forwarding core on the
/// shard's task, sending through the shard's outbox without a channel hop.
pub(crate) struct Glue {
    pub(crate) state: Arc<Mutex<State>>,
}

fn send_via_outbox(out: &mut Outbox<'_>, failures: &mut u64, peer: PeerId, t: Transmit) {
    let sent = match t {
        Transmit::Rtp {
            header, payload, ..
        } => out.send_rtp(peer, header.as_slice(), &payload).is_ok(),
        Transmit::Rtcp { packet, .. } => out.send_rtcp_bytes(peer, &packet).is_ok(),
    };
    if !sent {
        *failures += 1;
    }
}

impl Glue {
    fn flush(state: &mut State, out: &mut Outbox<'_>) {
        let mut failures = 0;
        let now = out.now();
        state.drain(now, &mut |peer, t| {
            send_via_outbox(out, &mut failures, peer, t)
        });
        state.send_failures += failures;
    }
}

impl MediaHandler for Glue {
    fn on_peer_event(&mut self, event: PeerEvent, out: &mut Outbox<'_>) {
        let mut state = lock(&self.state);
        let now = out.now();
        state.on_peer_event(event, now);
        Self::flush(&mut state, out);
    }

    fn on_rtp(&mut self, peer: PeerId, rtp: &[u8], arrival: Instant, out: &mut Outbox<'_>) {
        let now = out.now();
        let mut state = lock(&self.state);
        if let Some(p) = state.peers.get(&peer).copied() {
            // Refused packets are counted by the core (`sfu_packets_dropped_total`). The
            // transport-cc feedback reports `arrival`; the copies' send times are `now`.
            let _ = state
                .sfu
                .handle_rtp_arrived(now, arrival, p, Bytes::copy_from_slice(rtp));
        }
        state.run_timers(now);
        Self::flush(&mut state, out);
        if let Some(o) = &state.observer {
            o.forwarding_latency(Instant::now().saturating_duration_since(arrival));
        }
    }

    fn on_rtcp(&mut self, peer: PeerId, rtcp: &[u8], arrival: Instant, out: &mut Outbox<'_>) {
        let mut state = lock(&self.state);
        if let Some(p) = state.peers.get(&peer).copied() {
            // Refused packets are counted by the core. A sender report's arrival is what the
            // next receiver report's DLSR counts from.
            let _ = state.sfu.handle_rtcp(arrival, p, rtcp);
        }
        state.run_timers(out.now());
        Self::flush(&mut state, out);
    }
}
