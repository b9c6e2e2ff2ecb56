//! The node: one transport shard and one forwarding core glued together, and the async
//! [`NodeHandle`] the control API calls.
//!
//! The forwarding core ([`sfu_forwarding::Sfu`]) runs **on the shard's task**, inside the
//! shard's [`MediaHandler`](crate::transport::MediaHandler) callbacks: a decrypted packet goes
//! into `handle_rtp`, and the transmits it produces are encrypted and written in the same pass
//! (no channel hop per packet). Commands from the control API take the same lock briefly
//! (never across an `.await`) to change the core, then talk to the shard through its handle.
//! A background task runs the core's timers when no packet arrives to run them (reports,
//! transport-wide CC feedback, speaker detection) and finishes work the shard callbacks cannot
//! await.
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
//! Files: this one starts the node and holds its handle and background task;
//! `participants.rs` has the room and participant commands, `state.rs` the state behind the
//! lock, `translate.rs` what events do to it, `glue.rs` the shard-side handler, `sdp.rs` what
//! is read from offers, `slots.rs` receive slots.

mod direction;
mod error;
mod events;
mod glue;
mod join_phases;
mod participants;
mod renegotiations;
mod sdp;
mod slots;
mod state;
mod translate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use sfu_forwarding::{Gauges, Metrics, Sfu, Transmit};
use tokio::sync::{broadcast, mpsc, watch};

pub use error::NodeError;
pub use events::{ActiveSpeaker, MediaClass, NodeEvent, QualityDirection, SlotEntry, TrackClass};
pub use renegotiations::Renegotiations;
pub use state::{LayerPrefs, Observer};

use crate::transport::{PeerId, ShardHandle, ShardStats, StartError, TransportConfig, start_shard};
use glue::Glue;
use renegotiations::Renegotiations as RenegotiationCounts;
use state::{Deferred, State, lock};

/// How often the background task checks the core's timers when no packet arrived to run them.
const TIMER_TICK: Duration = Duration::from_millis(20);

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
}

struct Inner {
    state: Arc<Mutex<State>>,
    shard: ShardHandle,
    events: broadcast::Sender<NodeEvent>,
    /// Set once when the process shuts down: open event streams end and new ones end at once.
    streams_stopped: watch::Sender<bool>,
}

/// The control surface of a running node. Cheap to clone; the node's background task stops
/// when the last handle is dropped.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

/// Starts a node: binds the transport shard's socket and spawns its task and the node's
/// background task on the current tokio runtime. `observer` receives join latencies and quality
/// figures (the metrics module's histograms).
pub async fn start_node(
    config: NodeConfig,
    observer: Option<Arc<dyn Observer>>,
) -> Result<NodeHandle, StartError> {
    let now = Instant::now();
    let ntp = sfu_forwarding::ntp_from_system_time(SystemTime::now());
    let (events, _) = broadcast::channel(EVENT_CAPACITY);
    let (deferred_tx, deferred_rx) = mpsc::unbounded_channel();
    let state = Arc::new(Mutex::new(State {
        sfu: Sfu::new(config.forwarding, now, ntp),
        rooms: HashMap::new(),
        room_names: HashMap::new(),
        slot_rooms: HashMap::new(),
        members: HashMap::new(),
        devices: HashMap::new(),
        peers: HashMap::new(),
        tracks: HashMap::new(),
        pending: HashMap::new(),
        next_ssrc: initial_ssrc(),
        draining: false,
        events: events.clone(),
        deferred: deferred_tx,
        observer,
        send_failures: 0,
        renegotiations: RenegotiationCounts::default(),
        departed: HashMap::new(),
        after_drain: Vec::new(),
    }));
    let shard = start_shard(
        config.transport,
        Glue {
            state: state.clone(),
        },
    )
    .await?;
    let inner = Arc::new(Inner {
        state,
        shard,
        events,
        streams_stopped: watch::Sender::new(false),
    });
    tokio::spawn(background(Arc::downgrade(&inner), deferred_rx));
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

/// Runs the core's timers between packets and the shard work the handler deferred.
async fn background(inner: Weak<Inner>, mut deferred: mpsc::UnboundedReceiver<Deferred>) {
    let mut tick = tokio::time::interval(TIMER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let Some(inner) = inner.upgrade() else { return };
                let mut out: Vec<(PeerId, bool, bytes::Bytes)> = Vec::new();
                {
                    let mut state = lock(&inner.state);
                    let now = Instant::now();
                    state.run_timers(now);
                    state.drain(now, &mut |peer, t| {
                        let mut buf = Vec::with_capacity(t.len());
                        t.write_to(&mut buf);
                        out.push((peer, matches!(t, Transmit::Rtp { .. }), buf.into()));
                    });
                }
                for (peer, is_rtp, bytes) in out {
                    // A peer that went away in between is not an error worth more than a count.
                    let sent = if is_rtp {
                        inner.shard.send_rtp(peer, bytes).await
                    } else {
                        inner.shard.send_rtcp(peer, bytes).await
                    };
                    if sent.is_err() {
                        lock(&inner.state).send_failures += 1;
                    }
                }
            }
            job = deferred.recv() => {
                let (Some(job), Some(inner)) = (job, inner.upgrade()) else { return };
                match job {
                    Deferred::RemoveOutgoing { peer, ssrc } => {
                        // The peer may be gone already; then there is nothing to remove.
                        if inner.shard.remove_outgoing_track(peer, ssrc).await.is_ok() {
                            lock(&inner.state).renegotiations.unpublish += 1;
                        }
                    }
                }
            }
        }
    }
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
        lock(&self.inner.state).draining = true;
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        lock(&self.inner.state).draining
    }

    /// Participants on the node.
    pub fn participant_count(&self) -> usize {
        lock(&self.inner.state).members.len()
    }

    /// The node's numbers for the metrics endpoint.
    pub async fn snapshot(&self) -> NodeSnapshot {
        let (metrics, gauges, renegotiations) = {
            let state = lock(&self.inner.state);
            (
                *state.sfu.metrics(),
                state.sfu.gauges(),
                state.renegotiations,
            )
        };
        NodeSnapshot {
            metrics,
            gauges,
            shard: self.inner.shard.stats().await.ok(),
            udp_receive_buffer_drops: self.inner.shard.kernel_receive_drops(),
            renegotiations,
        }
    }
}
