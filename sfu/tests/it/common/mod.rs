//! Shared pieces of the integration tests: the real WebRTC clients (`call_client::peer`) in the
//! shapes the tests use and the steps that join them (`peers`), a pass-through media handler
//! standing in for the forwarding core, a UDP relay to replay, silence or police traffic, the
//! real `sfu` binary as a child process, and a STUN request builder.
//!
//! Network rule: everything binds 127.0.0.1, mDNS is off, UDP4 only, the ICE server list is
//! explicitly empty and the SFU advertises only 127.0.0.1.

pub(crate) mod deliver_rtcp;
pub(crate) mod ice_tcp;
pub(crate) mod peers;
pub(crate) mod relay;
pub(crate) mod sfu_process;
pub(crate) mod simulcast;
pub(crate) mod stun;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sfu::transport::{
    MediaHandler, Outbox, PeerEvent, PeerId, ShardHandle, TransportConfig, start_shard,
};
use tokio::sync::mpsc;

/// What the pass-through handler reports to a test.
#[derive(Debug, Clone)]
pub(crate) enum Observed {
    Event(PeerEvent),
    /// An RTP packet received from a peer (decrypted bytes).
    Rtp(PeerId, Vec<u8>),
}

/// TEST-ONLY forwarding shim, standing in for the `sfu-forwarding` core until it is glued in:
/// forwards every RTP packet from a publisher to every subscriber route registered with
/// [`Route`], rewriting SSRC and payload type, and reports everything to the test.
pub(crate) struct PassThrough {
    observed: mpsc::UnboundedSender<Observed>,
    routes: HashMap<PeerId, Vec<Route>>,
    route_rx: std::sync::mpsc::Receiver<(PeerId, Route)>,
}

/// Where a publisher's packets go: to `subscriber` with this SSRC and payload type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub(crate) subscriber: PeerId,
    pub(crate) ssrc: u32,
    pub(crate) payload_type: u8,
}

impl PassThrough {
    pub(crate) fn new() -> (
        Self,
        mpsc::UnboundedReceiver<Observed>,
        std::sync::mpsc::Sender<(PeerId, Route)>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (route_tx, route_rx) = std::sync::mpsc::channel();
        (
            Self {
                observed: tx,
                routes: HashMap::new(),
                route_rx,
            },
            rx,
            route_tx,
        )
    }
}

impl MediaHandler for PassThrough {
    fn on_peer_event(&mut self, event: PeerEvent, _out: &mut Outbox<'_>) {
        let _ = self.observed.send(Observed::Event(event));
    }

    fn on_rtp(&mut self, peer: PeerId, rtp: &[u8], _now: Instant, out: &mut Outbox<'_>) {
        while let Ok((publisher, route)) = self.route_rx.try_recv() {
            self.routes.entry(publisher).or_default().push(route);
        }
        let _ = self.observed.send(Observed::Rtp(peer, rtp.to_vec()));
        if let Some(routes) = self.routes.get(&peer) {
            for route in routes {
                let mut packet = rtp.to_vec();
                packet[1] = (packet[1] & 0x80) | (route.payload_type & 0x7f);
                packet[8..12].copy_from_slice(&route.ssrc.to_be_bytes());
                let _ = out.send_rtp_bytes(route.subscriber, &packet);
            }
        }
    }

    fn on_rtcp(&mut self, _peer: PeerId, _rtcp: &[u8], _now: Instant, _out: &mut Outbox<'_>) {}
}

/// An SFU shard on 127.0.0.1 with the pass-through handler (or another that reports the same
/// observations).
pub(crate) struct TestSfu<H = PassThrough> {
    pub(crate) handle: ShardHandle<H>,
    pub(crate) observed: mpsc::UnboundedReceiver<Observed>,
    pub(crate) routes: std::sync::mpsc::Sender<(PeerId, Route)>,
}

impl TestSfu {
    pub(crate) async fn start(config: TransportConfig) -> Self {
        let (handler, observed, routes) = PassThrough::new();
        let handle = start_shard(config, handler).await.expect("shard starts");
        Self {
            handle,
            observed,
            routes,
        }
    }
}

impl<H: MediaHandler> TestSfu<H> {
    /// Waits up to `timeout` for an observation matching `pred`, skipping others.
    pub(crate) async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Observed) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.observed.recv()).await;
            match next {
                Ok(Some(obs)) => {
                    if let Some(t) = pred(&obs) {
                        return Some(t);
                    }
                }
                _ => return None,
            }
        }
    }

    /// The first payload byte of each RTP packet the handler got from `peer`, counted, until
    /// `quiet` passes without one (tests mark each packet they send with a unique first byte).
    pub(crate) async fn rtp_markers(
        &mut self,
        peer: PeerId,
        quiet: Duration,
    ) -> HashMap<u8, usize> {
        let mut seen: HashMap<u8, usize> = HashMap::new();
        while let Some(marker) = self
            .wait_for(quiet, |o| match o {
                Observed::Rtp(p, bytes) if *p == peer => {
                    // 12-byte header, no CSRC; extensions may follow (X bit).
                    let mut offset = 12;
                    if bytes[0] & 0x10 != 0 {
                        let words = u16::from_be_bytes([bytes[14], bytes[15]]) as usize;
                        offset += 4 + 4 * words;
                    }
                    Some(bytes[offset])
                }
                _ => None,
            })
            .await
        {
            *seen.entry(marker).or_default() += 1;
        }
        seen
    }

    /// Waits for `peer` to connect.
    pub(crate) async fn wait_connected(&mut self, peer: PeerId, timeout: Duration) -> bool {
        self.wait_for(timeout, |o| match o {
            Observed::Event(PeerEvent::Connected { peer: p, .. }) if *p == peer => Some(()),
            _ => None,
        })
        .await
        .is_some()
    }
}

/// Loopback config with the given consent timeout.
pub(crate) fn loopback_config() -> TransportConfig {
    TransportConfig::loopback()
}

/// Installs a tracing subscriber once (RUST_LOG controls it) so failures can be diagnosed.
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// How often [`poll_until`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Waits until `condition` holds, looking every few milliseconds, for at most `limit`; panics
/// naming `awaited` (what the test was waiting for) when it still does not hold by then. Tests
/// wait for a state this way instead of sleeping for a guessed time: as short as the state
/// allows, and a clear failure when it never comes.
pub(crate) async fn poll_until(
    limit: Duration,
    awaited: &str,
    mut condition: impl AsyncFnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for: {awaited}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Asserts what [`TestSfu::rtp_markers`] counted for `count` packets marked `0..count`: each
/// delivered at most once, and all but two of them delivered (the stream kept flowing).
pub(crate) fn assert_markers_once_and_flowing(seen: &HashMap<u8, usize>, count: u8) {
    assert!(
        seen.values().all(|&n| n == 1),
        "every packet at most once: {seen:?}"
    );
    assert!(
        seen.len() >= usize::from(count) - 2,
        "the stream keeps flowing: {}",
        seen.len()
    );
}
