//! The node: one transport shard and one forwarding core glued together, and the async
//! [`NodeHandle`] the control API calls.
//!
//! The node's state — the forwarding core ([`sfu_forwarding::Sfu`]) and the node's maps — is
//! **owned by the shard's task**, inside its [`MediaHandler`](crate::transport::MediaHandler)
//! (`glue.rs`); there is no lock. What runs where:
//!
//! - Packets: a decrypted packet goes into `handle_rtp` in the shard's callback, and the
//!   transmits it produces are encrypted and written in the same pass (no channel hop).
//! - The core's timers (reports, transport-wide CC feedback, speaker detection, layer
//!   allocation): the handler names the core's next deadline to the shard
//!   (`MediaHandler::poll_timeout`), which wakes for the earlier of it and its peers' timers
//!   and runs them with the outbox at hand; a packet also runs what is due.
//! - Work the core's output defers (an unpublished track's outgoing tracks removed, which
//!   makes an offer) runs on the shard right after the callback (`MediaHandler::run_deferred`).
//! - The control API's commands ([`NodeHandle`] methods, `participants.rs`) are jobs sent to
//!   the shard on its command channel ([`ShardHandle::run`]): each runs between two packets
//!   with the state and the transport together (e.g. add the participant to the core, add its
//!   peer, record the peer's id: one step) and answers on a oneshot.
//! - What the handle reads without a trip to the shard: the drain flag and the participant
//!   count (atomics, `state::Published`). The metrics snapshot is a job.
//! - A participant's join progress (connected, first video given, first keyframe forwarded:
//!   `join_phases.rs`) sits in its member entry in the state and is updated by the callbacks
//!   and jobs that see those moments.
//!
//! What the node translates between the two:
//!
//! - Joining: the participant's `a=extmap` ids are read from its offer into the core's
//!   [`ExtensionIds`](sfu_forwarding::ExtensionIds); tracks to subscribe at join go into the
//!   first answer as outgoing tracks with SSRCs the node chooses (unique on the node).
//! - Publishing: the transport's `IncomingTrack` (mid, rid or SSRC, negotiated codecs and RTX
//!   payload types) becomes a core [`TrackSpec`](sfu_forwarding::TrackSpec).
//! - Subscribing: an outgoing track is added to the subscriber's peer connection; when the
//!   negotiation completes (`Negotiated`: the subscriber's payload types and mid) the core
//!   subscription starts with those [`DownstreamParams`](sfu_forwarding::DownstreamParams).
//! - Receive slots (rooms created with them, `slots.rs`): each participant gets one outgoing
//!   track per slot at join instead of per-track subscriptions; once all are negotiated the
//!   core maps the room's tracks onto them and the node reports each map as
//!   [`NodeEvent::Slots`].
//! - Leaving: a peer that closes (consent expired, DTLS failure...) leaves the core and
//!   `ParticipantGone` is reported; a removed participant's peer connection is closed.
//!
//! The core writes the transport-wide CC extension and all NACK/PLI/SR/RR/feedback RTCP; the
//! transport runs no `rtc` interceptors.
//!
//! Files: this one starts the node and holds its handle; `participants.rs` has the room and
//! participant commands, `publications.rs` the sources a participant asks to publish after its
//! first answer, `state.rs` the state the handler owns, `translate.rs` what events do
//! to it, `glue.rs` the shard-side handler, `sdp.rs` what is read from offers, `slots.rs`
//! receive slots, `join_phases.rs` a participant's progress to its first keyframe.

mod direction;
mod error;
mod glue;
mod join_phases;
mod participants;
mod publications;
mod relay;
mod renegotiations;
mod sdp;
mod sessions;
mod slots;
mod state;
mod translate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use sfu_forwarding::{Gauges, Metrics, Sfu};
use tokio::sync::{broadcast, watch};

pub use error::NodeError;
pub use publications::RequestedSource;
pub use relay::{RelayCounts, RelayRejectReason};
pub use renegotiations::Renegotiations;
/// The node's events are the control API's wire events (`GET /control/events`), defined once in
/// `sfu-control-api`: an embedded listener receives exactly what a remote one reads.
pub use sfu_control_api::{
    ActiveSpeaker, MediaClass, NodeEvent, QualityDirection, SlotEntry, TrackClass,
};
pub use state::{LayerPrefs, Observer};

use crate::transport::{
    ShardAccess, ShardHandle, ShardStats, StartError, TransportConfig, start_shard,
};
use glue::Glue;
use renegotiations::Renegotiations as RenegotiationCounts;
use state::{Published, State};

/// Capacity of the event channel; a listener that falls further behind loses the oldest events
/// (and is told so by `broadcast`'s `Lagged`).
const EVENT_CAPACITY: usize = 4096;

/// What a node is started with.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    /// The transport shard's socket, advertised address and timeouts.
    pub transport: TransportConfig,
    /// The forwarding core's tuning.
    pub forwarding: sfu_forwarding::Config,
}

/// A session description handed to [`NodeHandle::renegotiate`].
#[derive(Clone, PartialEq, Eq)]
pub enum SessionDescription {
    /// A new offer from the client (it adds or removes tracks); the node answers.
    Offer(String),
    /// The client's answer to a node offer ([`NodeEvent::Offer`]).
    Answer(String),
}

impl std::fmt::Debug for SessionDescription {
    // SDP carries ICE credentials: show only the size.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionDescription::Offer(s) => write!(f, "Offer({} bytes)", s.len()),
            SessionDescription::Answer(s) => write!(f, "Answer({} bytes)", s.len()),
        }
    }
}

/// One wanted subscription: a track id from [`NodeEvent::TrackPublished`] and layer wishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    /// Track id.
    pub track: String,
    /// Layer wishes.
    pub prefs: LayerPrefs,
}

/// A point-in-time copy of the node's numbers for the metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct NodeSnapshot {
    /// The core's counters.
    pub metrics: Metrics,
    /// The core's gauges.
    pub gauges: Gauges,
    /// The transport shard's counters (absent when the shard did not answer).
    pub shard: Option<ShardStats>,
    /// Datagrams the kernel dropped on the media socket for a full receive buffer (absent where
    /// the system does not report it).
    pub udp_receive_buffer_drops: Option<u64>,
    /// Offers the node made or answered after a join, by reason.
    pub renegotiations: Renegotiations,
    /// Media sessions replaced by a new session of their device (a reconnect).
    pub sessions_replaced: u64,
    /// The SFU-to-SFU relay's links, packets and refusals (§7.55).
    pub relay: RelayCounts,
}

struct Inner {
    /// The shard whose handler owns the node's state.
    shard: ShardHandle<Glue>,
    /// What the handle reads without a trip to the shard.
    published: Arc<Published>,
    events: broadcast::Sender<NodeEvent>,
    /// Set once when the process shuts down: open event streams end and new ones end at once.
    streams_stopped: watch::Sender<bool>,
}

/// The control surface of a running node. Cheap to clone; the node's shard (and the state it
/// owns) stops when the last handle is dropped.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

/// Starts a node: binds the transport shard's socket and spawns its task (which owns the node's
/// state) on the current tokio runtime. `observer` receives join latencies and quality
/// figures (the metrics module's histograms).
pub async fn start_node(
    config: NodeConfig,
    observer: Option<Arc<dyn Observer>>,
) -> Result<NodeHandle, StartError> {
    let now = Instant::now();
    let ntp = sfu_forwarding::ntp_from_system_time(SystemTime::now());
    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let published = Arc::new(Published::default());
    let state = State {
        sfu: Sfu::new(config.forwarding, now, ntp),
        rooms: HashMap::new(),
        room_names: HashMap::new(),
        slot_rooms: HashMap::new(),
        members: HashMap::new(),
        devices: HashMap::new(),
        ended_sessions: Default::default(),
        sessions_replaced: 0,
        peers: HashMap::new(),
        tracks: HashMap::new(),
        pending: HashMap::new(),
        next_ssrc: initial_ssrc(),
        published: published.clone(),
        events: events.clone(),
        deferred: Vec::new(),
        observer,
        send_failures: 0,
        renegotiations: RenegotiationCounts::default(),
        departed: HashMap::new(),
        after_drain: Vec::new(),
        relays: Default::default(),
    };
    let shard = start_shard(config.transport, Glue { state }).await?;
    let inner = Arc::new(Inner {
        shard,
        published,
        events,
        streams_stopped: watch::Sender::new(false),
    });
    Ok(NodeHandle { inner })
}

/// A starting point for downstream SSRCs that differs between runs (SSRCs need not be secret,
/// only distinct within each peer connection, which the node's counter guarantees).
fn initial_ssrc() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    0x1000_0000 | (nanos & 0x0fff_ffff)
}

impl NodeHandle {
    /// The media socket's bound address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.inner.shard.local_addr()
    }

    /// The ICE-TCP listener's bound address; `None` when ICE-TCP is off.
    pub fn ice_tcp_addr(&self) -> Option<SocketAddr> {
        self.inner.shard.ice_tcp_addr()
    }

    /// Subscribes to the node's events. Each receiver sees every event sent after it
    /// subscribed.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Ends every open event stream (and any opened later) at once: the process is shutting
    /// down and must not wait on listeners that never hang up. Listeners see their stream end,
    /// as on any disconnect.
    pub fn stop_event_streams(&self) {
        self.inner.streams_stopped.send_replace(true);
    }

    /// Resolves once [`stop_event_streams`](Self::stop_event_streams) was called (at once if
    /// it already was). An event stream selects on it.
    pub fn event_streams_stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.inner.streams_stopped.subscribe();
        async move {
            // An error means the node is gone, which ends the streams just as well.
            let _ = stopped.wait_for(|stopped| *stopped).await;
        }
    }

    /// Starts draining: no new room or participant is admitted; existing ones keep forwarding.
    pub fn start_drain(&self) {
        self.inner.published.draining.store(true, Ordering::Relaxed);
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.inner.published.draining.load(Ordering::Relaxed)
    }

    /// Participants on the node (as the shard last published it).
    pub fn participant_count(&self) -> usize {
        self.inner.published.participants.load(Ordering::Relaxed)
    }

    /// The node's numbers for the metrics endpoint: one short job on the shard, between two
    /// packets (the core's counters and the shard's are read in the same step). All zero when
    /// the shard has stopped.
    pub async fn snapshot(&self) -> NodeSnapshot {
        let numbers = self
            .inner
            .shard
            .run(|s| {
                let stats = s.stats();
                let state = &s.handler().state;
                (
                    *state.sfu.metrics(),
                    state.sfu.gauges(),
                    state.renegotiations,
                    state.sessions_replaced,
                    stats,
                    state.relays.snapshot(),
                )
            })
            .await;
        let (metrics, gauges, renegotiations, sessions_replaced, shard, relay) = match numbers {
            Ok((metrics, gauges, renegotiations, replaced, stats, relay)) => (
                metrics,
                gauges,
                renegotiations,
                replaced,
                Some(stats),
                relay,
            ),
            Err(_) => Default::default(),
        };
        NodeSnapshot {
            metrics,
            gauges,
            shard,
            udp_receive_buffer_drops: self.inner.shard.kernel_receive_drops(),
            renegotiations,
            sessions_replaced,
            relay,
        }
    }

    /// Runs `job` on the shard with the node's state and the transport, then sends what the
    /// core produced meanwhile; [`NodeError::Transport`] when the shard has stopped.
    async fn on_shard<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut ShardAccess<'_, Glue>) -> T + Send + 'static,
    ) -> Result<T, NodeError> {
        let result = self
            .inner
            .shard
            .run(|shard| {
                let result = job(shard);
                let (glue, mut out) = shard.handler_and_outbox();
                glue.flush(&mut out);
                result
            })
            .await?;
        Ok(result)
    }
}
