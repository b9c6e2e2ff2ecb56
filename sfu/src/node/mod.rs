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
//! - Leaving: a peer that closes (consent expired, DTLS failure...) leaves the core and
//!   `ParticipantGone` is reported; a removed participant's peer connection is closed.
//!
//! The core writes the transport-wide CC extension and all NACK/PLI/SR/RR/feedback RTCP; the
//! transport runs no `rtc` interceptors.

mod error;
mod events;
mod glue;
mod sdp;
mod state;
mod translate;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use sfu_forwarding::{Gauges, Metrics, Role, RoomPolicy, Sfu, TrackId, Transmit};
use tokio::sync::{broadcast, mpsc};

pub use error::NodeError;
pub use events::{ActiveSpeaker, MediaClass, NodeEvent, QualityDirection, TrackClass};
pub use state::{LayerPrefs, Observer};

use crate::transport::{
    OutgoingTrack, PeerId, ShardHandle, ShardStats, StartError, TransportConfig, start_shard,
};
use glue::Glue;
use state::{Deferred, Member, PendingSub, State, lock, parse_track, track_name};

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
}

struct Inner {
    state: Arc<Mutex<State>>,
    shard: ShardHandle,
    events: broadcast::Sender<NodeEvent>,
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
                    state.run_timers(Instant::now());
                    state.drain(&mut |peer, t| {
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
                        let _ = inner.shard.remove_outgoing_track(peer, ssrc).await;
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

    /// Subscribes to the node's events. Each receiver sees every event sent after it
    /// subscribed.
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
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
        let (metrics, gauges) = {
            let state = lock(&self.inner.state);
            (*state.sfu.metrics(), state.sfu.gauges())
        };
        NodeSnapshot {
            metrics,
            gauges,
            shard: self.inner.shard.stats().await.ok(),
        }
    }

    /// Opens a room named `room` with `policy`.
    pub fn create_room(&self, room: &str, policy: RoomPolicy) -> Result<(), NodeError> {
        let mut state = lock(&self.inner.state);
        if state.draining {
            return Err(NodeError::Draining);
        }
        if state.rooms.contains_key(room) {
            return Err(NodeError::RoomExists);
        }
        let id = state.sfu.create_room(policy)?;
        state.rooms.insert(room.to_owned(), id);
        state.room_names.insert(id, room.to_owned());
        tracing::info!(room, "room created");
        Ok(())
    }

    /// Closes a room: every participant in it is removed and its peer connection closed.
    pub async fn close_room(&self, room: &str) -> Result<(), NodeError> {
        let peers = {
            let mut state = lock(&self.inner.state);
            let id = state.rooms.remove(room).ok_or(NodeError::UnknownRoom)?;
            state.room_names.remove(&id);
            let now = Instant::now();
            let members: Vec<_> = state
                .members
                .iter()
                .filter(|(_, m)| m.room == room)
                .map(|(p, _)| *p)
                .collect();
            let mut peers = Vec::new();
            for p in members {
                if let Some(m) = state.forget(now, p) {
                    peers.extend(m.peer);
                }
            }
            state.sfu.close_room(now, id)?;
            peers
        };
        for peer in peers {
            // Already gone is fine.
            let _ = self.inner.shard.remove_peer(peer).await;
        }
        tracing::info!(room, "room closed");
        Ok(())
    }

    /// Adds participant `device` with `role` to `room` from its SDP offer and returns the SDP
    /// answer. `subscribe` tracks (ids from [`NodeEvent::TrackPublished`]) are in the answer
    /// when the offer has `recvonly` sections for them (a viewer), so media flows as soon as
    /// the peer connects; the others come in a [`NodeEvent::Offer`] right after it connected
    /// (a publisher's own sending sections are never used for them). Video in the media sections named in
    /// `screen_mids` is published as screen share.
    pub async fn add_participant(
        &self,
        room: &str,
        device: &str,
        role: Role,
        offer: String,
        subscribe: Vec<SubscriptionRequest>,
        screen_mids: &[String],
    ) -> Result<String, NodeError> {
        let (participant, outgoing) = {
            let mut state = lock(&self.inner.state);
            if state.draining {
                return Err(NodeError::Draining);
            }
            let room_id = *state.rooms.get(room).ok_or(NodeError::UnknownRoom)?;
            let key = (room.to_owned(), device.to_owned());
            if state.devices.contains_key(&key) {
                return Err(NodeError::ParticipantExists);
            }
            let wanted = resolve_tracks(&state, room, &subscribe)?;
            let participant =
                state
                    .sfu
                    .add_participant(room_id, role, sdp::extension_ids(&offer))?;
            state.devices.insert(key, participant);
            state.members.insert(
                participant,
                Member {
                    room: room.to_owned(),
                    device: device.to_owned(),
                    peer: None,
                    subs: HashMap::new(),
                    published_mids: HashMap::new(),
                    screen_mids: screen_mids.iter().cloned().collect(),
                    simulcast: sdp::simulcast_layers(&offer),
                },
            );
            let outgoing = plan_subscriptions(&mut state, participant, wanted);
            (participant, outgoing)
        };
        match self.inner.shard.add_peer(offer, outgoing).await {
            Ok(added) => {
                let registered = {
                    let mut state = lock(&self.inner.state);
                    match state.members.get_mut(&participant) {
                        Some(m) => {
                            m.peer = Some(added.peer);
                            state.peers.insert(added.peer, participant);
                            true
                        }
                        None => false,
                    }
                };
                if registered {
                    tracing::info!(room, device, peer = %added.peer, "participant added");
                    Ok(added.answer)
                } else {
                    // Removed (or its room closed) while the transport was answering.
                    let _ = self.inner.shard.remove_peer(added.peer).await;
                    Err(NodeError::UnknownParticipant)
                }
            }
            Err(e) => {
                lock(&self.inner.state).forget(Instant::now(), participant);
                Err(e.into())
            }
        }
    }

    /// Applies a participant's later offer (returns the answer) or its answer to a node offer
    /// (returns `None`). With an offer, `screen_mids` adds media sections whose video is
    /// screen share (sections announced before stay so).
    pub async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        description: SessionDescription,
        screen_mids: &[String],
    ) -> Result<Option<String>, NodeError> {
        let peer = self.peer_of(room, device)?;
        match description {
            SessionDescription::Offer(sdp) => {
                {
                    let mut state = lock(&self.inner.state);
                    let p = state
                        .devices
                        .get(&(room.to_owned(), device.to_owned()))
                        .copied();
                    if let Some(m) = p.and_then(|p| state.members.get_mut(&p)) {
                        m.screen_mids.extend(screen_mids.iter().cloned());
                        // Sections already published keep their layers; new ones are added.
                        for (mid, layers) in sdp::simulcast_layers(&sdp) {
                            m.simulcast.entry(mid).or_insert(layers);
                        }
                    }
                }
                Ok(Some(self.inner.shard.apply_offer(peer, sdp).await?))
            }
            SessionDescription::Answer(sdp) => {
                self.inner.shard.apply_answer(peer, sdp).await?;
                Ok(None)
            }
        }
    }

    /// Replaces a participant's subscriptions: tracks not listed are unsubscribed, new ones are
    /// added (the node renegotiates: watch for [`NodeEvent::Offer`]), and layer wishes of
    /// existing ones are updated.
    pub async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        subscriptions: Vec<SubscriptionRequest>,
    ) -> Result<(), NodeError> {
        let (peer, removed, added) = {
            let mut state = lock(&self.inner.state);
            let now = Instant::now();
            let p = *state
                .devices
                .get(&(room.to_owned(), device.to_owned()))
                .ok_or(NodeError::UnknownParticipant)?;
            let peer = state
                .members
                .get(&p)
                .and_then(|m| m.peer)
                .ok_or(NodeError::UnknownParticipant)?;
            let wanted = resolve_tracks(&state, room, &subscriptions)?;
            let current: Vec<(TrackId, u32)> = state
                .members
                .get(&p)
                .map(|m| m.subs.iter().map(|(t, s)| (*t, *s)).collect())
                .unwrap_or_default();
            let mut removed = Vec::new();
            for (track, ssrc) in &current {
                if !wanted.iter().any(|(t, _)| t == track) {
                    // Not subscribed in the core yet when still pending: nothing to undo there.
                    let _ = state.sfu.unsubscribe(p, *track);
                    state.pending.remove(ssrc);
                    if let Some(m) = state.members.get_mut(&p) {
                        m.subs.remove(track);
                    }
                    removed.push(*ssrc);
                }
            }
            let mut new = Vec::new();
            for (track, prefs) in wanted {
                match current.iter().find(|(t, _)| *t == track) {
                    Some((_, ssrc)) => match state.pending.get_mut(ssrc) {
                        Some(pending) => pending.prefs = prefs,
                        None => state.apply_prefs(now, p, track, prefs),
                    },
                    None => new.push((track, prefs)),
                }
            }
            let added = plan_subscriptions(&mut state, p, new);
            (peer, removed, added)
        };
        if !(removed.is_empty() && added.is_empty()) {
            // One offer for the whole change.
            self.inner
                .shard
                .update_outgoing(peer, removed, added)
                .await?;
        }
        Ok(())
    }

    /// Removes a participant and closes its peer connection. Removing one that is not there
    /// is not an error (idempotent).
    pub async fn remove_participant(&self, room: &str, device: &str) -> Result<(), NodeError> {
        let peer = {
            let mut state = lock(&self.inner.state);
            let Some(p) = state
                .devices
                .get(&(room.to_owned(), device.to_owned()))
                .copied()
            else {
                return Ok(());
            };
            state.forget(Instant::now(), p).and_then(|m| m.peer)
        };
        if let Some(peer) = peer {
            // Already closed by itself is fine.
            let _ = self.inner.shard.remove_peer(peer).await;
        }
        tracing::info!(room, device, "participant removed");
        Ok(())
    }

    fn peer_of(&self, room: &str, device: &str) -> Result<PeerId, NodeError> {
        let state = lock(&self.inner.state);
        state
            .devices
            .get(&(room.to_owned(), device.to_owned()))
            .and_then(|p| state.members.get(p))
            .and_then(|m| m.peer)
            .ok_or(NodeError::UnknownParticipant)
    }
}

/// Checks that every requested track exists in `room`, returning core ids and wishes.
fn resolve_tracks(
    state: &State,
    room: &str,
    requests: &[SubscriptionRequest],
) -> Result<Vec<(TrackId, LayerPrefs)>, NodeError> {
    requests
        .iter()
        .map(|r| {
            let id = parse_track(&r.track).ok_or(NodeError::UnknownTrack)?;
            let entry = state.tracks.get(&id).ok_or(NodeError::UnknownTrack)?;
            let in_room = state
                .members
                .get(&entry.publisher)
                .is_some_and(|m| m.room == room);
            if !in_room {
                return Err(NodeError::UnknownTrack);
            }
            Ok((id, r.prefs))
        })
        .collect()
}

/// Chooses downstream SSRCs for new subscriptions of `subscriber`, records them as pending and
/// returns the outgoing tracks to add to its peer connection. A participant's own tracks are
/// skipped.
fn plan_subscriptions(
    state: &mut State,
    subscriber: sfu_forwarding::ParticipantId,
    wanted: Vec<(TrackId, LayerPrefs)>,
) -> Vec<OutgoingTrack> {
    let mut outgoing = Vec::new();
    for (track, prefs) in wanted {
        let Some(entry) = state.tracks.get(&track).cloned() else {
            continue;
        };
        if entry.publisher == subscriber {
            continue;
        }
        let stream_id = state
            .members
            .get(&entry.publisher)
            .map(|m| m.device.clone())
            .unwrap_or_default();
        let ssrc = state.allocate_ssrc();
        let rtx_ssrc = state.allocate_ssrc();
        state.pending.insert(
            ssrc,
            PendingSub {
                subscriber,
                track,
                rtx_ssrc,
                prefs,
            },
        );
        if let Some(m) = state.members.get_mut(&subscriber) {
            m.subs.insert(track, ssrc);
        }
        outgoing.push(OutgoingTrack {
            kind: match entry.kind.media_kind() {
                sfu_forwarding::MediaKind::Audio => crate::transport::MediaKind::Audio,
                sfu_forwarding::MediaKind::Video => crate::transport::MediaKind::Video,
            },
            ssrc,
            rtx_ssrc: Some(rtx_ssrc),
            stream_id,
            track_id: track_name(track),
            mime_type: entry.mime,
        });
    }
    outgoing
}
