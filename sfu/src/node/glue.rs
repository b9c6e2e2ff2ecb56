//! The shard-side handler: the node's [`MediaHandler`] owns the node's state and runs the
//! forwarding core on the transport shard's task — packets, the core's timers, the work the
//! core's output defers, and (as jobs, `participants.rs`) the node's commands. No lock: the
//! shard's task is the only one that touches it.

use std::time::Instant;

use bytes::Bytes;
use sfu_forwarding::Transmit;

use super::relay;
use super::state::{Deferred, Route, State};
use crate::transport::{MediaHandler, Outbox, PeerEvent, PeerId, ShardAccess};

/// The [`MediaHandler`] the node plugs into its transport shard: owns the node's [`State`] and
/// sends the core's transmits through the shard's outbox without a channel hop.
pub(crate) struct Glue {
    pub(crate) state: State,
}

fn send_via_outbox(out: &mut Outbox<'_>, failures: &mut u64, route: Route<'_>, t: Transmit) {
    let peer = match route {
        Route::Peer(peer) => peer,
        Route::Relay(end, counts) => {
            if !relay::send_on_link(out, end, counts, t) {
                *failures += 1;
            }
            return;
        }
    };
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
    /// Drains the core's output: events become node events, transmits go out on the outbox.
    pub(crate) fn flush(&mut self, out: &mut Outbox<'_>) {
        let mut failures = 0;
        let now = out.now();
        self.state.drain(now, &mut |route, t| {
            send_via_outbox(out, &mut failures, route, t)
        });
        self.state.send_failures += failures;
    }
}

impl MediaHandler for Glue {
    fn on_peer_event(&mut self, event: PeerEvent, out: &mut Outbox<'_>) {
        let now = out.now();
        self.state.on_peer_event(event, now);
        self.flush(out);
    }

    fn on_rtp(&mut self, peer: PeerId, rtp: &[u8], arrival: Instant, out: &mut Outbox<'_>) {
        let now = out.now();
        let state = &mut self.state;
        if let Some(p) = state.peers.get(&peer).copied() {
            // Refused packets are counted by the core (`sfu_packets_dropped_total`). The
            // transport-cc feedback reports `arrival`; the copies' send times are `now`.
            let _ = state
                .sfu
                .handle_rtp_arrived(now, arrival, p, Bytes::copy_from_slice(rtp));
        }
        state.run_timers(now);
        self.flush(out);
        if let Some(o) = &self.state.observer {
            o.forwarding_latency(Instant::now().saturating_duration_since(arrival));
        }
    }

    fn on_rtcp(&mut self, peer: PeerId, rtcp: &[u8], arrival: Instant, out: &mut Outbox<'_>) {
        let state = &mut self.state;
        if let Some(p) = state.peers.get(&peer).copied() {
            // Refused packets are counted by the core. A sender report's arrival is what the
            // next receiver report's DLSR counts from.
            let _ = state.sfu.handle_rtcp(arrival, p, rtcp);
        }
        state.run_timers(out.now());
        self.flush(out);
    }

    fn on_unbound_datagram(
        &mut self,
        src: std::net::SocketAddr,
        data: &mut [u8],
        arrival: Instant,
        out: &mut Outbox<'_>,
    ) -> bool {
        let now = out.now();
        if !self.state.on_relay_datagram(src, data, now, arrival) {
            return false;
        }
        self.state.run_timers(now);
        self.flush(out);
        true
    }

    /// The core's next deadline (reports, transport-wide CC feedback, speaker detection, layer
    /// allocation): the shard wakes for it when no packet ran it first.
    fn poll_timeout(&self) -> Option<Instant> {
        self.state.sfu.poll_timeout()
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Outbox<'_>) {
        self.state.run_timers(now);
        self.flush(out);
    }

    fn run_deferred(shard: &mut ShardAccess<'_, Self>) {
        if shard.handler().state.deferred.is_empty() {
            return;
        }
        for job in std::mem::take(&mut shard.handler().state.deferred) {
            match job {
                Deferred::RemoveOutgoing { peer, ssrc } => {
                    // The peer may be gone already; then there is nothing to remove.
                    if shard.update_outgoing(peer, vec![ssrc], Vec::new()).is_ok() {
                        shard.handler().state.renegotiations.unpublish += 1;
                    }
                }
            }
        }
    }
}
