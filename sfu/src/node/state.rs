//! The node's state, owned by the transport shard's task (inside its handler, `glue.rs`): the
//! forwarding core, and the names and SDP facts the core does not keep (room and device names,
//! peer ids, chosen downstream SSRCs). Packets, timers and the node's commands all reach it on
//! that one task, in turn; nothing else holds it. How events change it is in `translate.rs`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sfu_forwarding::{
    Direction, MediaKind as CoreKind, Output, ParticipantId, RoomId, Sfu, SlotCounts, TrackId,
    TrackKind, Transmit,
};
use tokio::sync::broadcast;

use super::NodeEvent;
use super::join_phases::JoinProgress;
use super::relay::{LinkEnd, RelayCounts, Relays};
use super::renegotiations::{OfferFacts, Renegotiations};
use super::sdp::RidLayer;
use super::sessions::EndedSessions;
use super::slots::SlotPlan;
use crate::transport::{PeerId, ReceiveSection};

/// Receives the figures the node observes for histograms (implemented by the metrics module).
pub trait Observer: Send + Sync + 'static {
    /// A peer connected: time from its offer to DTLS connected.
    fn join_latency(&self, latency: Duration);
    /// The first video keyframe was forwarded to a participant: time from its peer connection
    /// connecting (or from its first video to receive, when later) to that keyframe
    /// (`join_phases.rs`).
    fn first_keyframe(&self, wait: Duration);
    /// Time from an RTP packet's arrival at the shard to its copies handed to the transport.
    fn forwarding_latency(&self, latency: Duration);
    /// A reception-quality figure from RTCP.
    fn quality(
        &self,
        direction: Direction,
        kind: CoreKind,
        loss: f64,
        jitter: f64,
        rtt: Option<f64>,
    );
}

/// Work a handler callback queues because it needs the shard itself: run right after the
/// callback, on the shard's task ([`MediaHandler::run_deferred`]).
///
/// [`MediaHandler::run_deferred`]: crate::transport::MediaHandler::run_deferred
#[derive(Debug)]
pub(crate) enum Deferred {
    /// Stop sending a track to a peer (its publisher left or unpublished).
    RemoveOutgoing { peer: PeerId, ssrc: u32 },
}

/// A subscriber's wishes for one track, applied when the subscription starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerPrefs {
    /// Highest simulcast layer (0 = lowest), `None` for no cap.
    pub max_layer: Option<u8>,
    /// Visible size `(width, height)`; a height of 0 hides the video.
    pub size: Option<(u32, u32)>,
    /// Forward on top of last-N.
    pub pinned: bool,
}

/// One published track as the node knows it.
#[derive(Debug, Clone)]
pub(crate) struct TrackEntry {
    pub(crate) publisher: ParticipantId,
    pub(crate) kind: TrackKind,
    pub(crate) mime: String,
}

/// One participant as the node knows it.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) room: String,
    pub(crate) device: String,
    /// The media session's id, when its caller gave one (`sessions.rs`).
    pub(crate) session: Option<u64>,
    pub(crate) peer: Option<PeerId>,
    /// Whether the role may publish; without it every SDP that sends is refused
    /// (`node/direction.rs`).
    pub(crate) can_publish: bool,
    /// Subscriptions: track → downstream SSRC (negotiated or pending).
    pub(crate) subs: HashMap<TrackId, u32>,
    /// Media sections already published (a simulcast track reports one stream per rid).
    pub(crate) published_mids: HashMap<String, TrackId>,
    /// Media sections the participant announced as screen share (video there is published as
    /// [`TrackKind::Screen`]).
    pub(crate) screen_mids: HashSet<String>,
    /// Simulcast layers per media section, lowest first, read from the participant's offers
    /// (`a=rid` / `a=simulcast`; see [`super::sdp::simulcast_layers`]).
    pub(crate) simulcast: HashMap<String, Vec<RidLayer>>,
    /// What the participant's last offer is compared on with its next one.
    pub(crate) last_offer: OfferFacts,
    /// Its receive slots, in a room with them (`slots.rs`).
    pub(crate) slots: Option<SlotPlan>,
    /// The section the node receives its screen share on while it publishes one it asked for
    /// after its first answer (`publications.rs`); a stopped share's section stays `inactive`.
    pub(crate) screen: Option<ReceiveSection>,
    /// How far its join has come (`join_phases.rs`).
    pub(crate) join: JoinProgress,
}

/// An outgoing track handed to the transport whose negotiation has not completed yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingSub {
    pub(crate) subscriber: ParticipantId,
    pub(crate) track: TrackId,
    pub(crate) rtx_ssrc: u32,
    pub(crate) prefs: LayerPrefs,
}

/// What the node's handle reads without a trip to the shard: written by whoever changes it
/// (the drain flag by the handle, the participant count by the shard), read with no lock.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// The node admits no new room or participant.
    pub(crate) draining: AtomicBool,
    /// Participants on the node.
    pub(crate) participants: AtomicUsize,
}

/// The node's state, owned by the shard's handler.
pub(crate) struct State {
    pub(crate) sfu: Sfu,
    pub(crate) rooms: HashMap<String, RoomId>,
    pub(crate) room_names: HashMap<RoomId, String>,
    /// Rooms whose participants get receive slots, with the counts each gets (`slots.rs`).
    pub(crate) slot_rooms: HashMap<String, SlotCounts>,
    pub(crate) members: HashMap<ParticipantId, Member>,
    pub(crate) devices: HashMap<(String, String), ParticipantId>,
    /// Media sessions removed on request: none of them can be added again.
    pub(crate) ended_sessions: EndedSessions,
    /// Media sessions replaced by a new session of their device (`sfu_media_sessions_replaced_total`).
    pub(crate) sessions_replaced: u64,
    pub(crate) peers: HashMap<PeerId, ParticipantId>,
    pub(crate) tracks: HashMap<TrackId, TrackEntry>,
    pub(crate) pending: HashMap<u32, PendingSub>,
    pub(crate) next_ssrc: u32,
    /// The drain flag and the participant count, shared with the node's handle.
    pub(crate) published: Arc<Published>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    /// Shard work queued by the core's output (see [`Deferred`]).
    pub(crate) deferred: Vec<Deferred>,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    /// Transmits the core produced for peers that were not connected yet, or could not be sent.
    pub(crate) send_failures: u64,
    /// Offers the node made or answered after a join, by reason.
    pub(crate) renegotiations: Renegotiations,
    /// Room and device names of participants forgotten since the last [`State::drain`]: the
    /// core reports their tracks' `TrackUnpublished` only when its output is drained, after the
    /// node dropped the member.
    pub(crate) departed: HashMap<ParticipantId, (String, String)>,
    /// Node events to emit after the core's output is drained (so a participant's
    /// `TrackUnpublished` events come before its `ParticipantGone`).
    pub(crate) after_drain: Vec<NodeEvent>,
    /// The SFU-to-SFU relay links (`relay.rs`, §7.55).
    pub(crate) relays: Relays,
}

/// Where a transmit of the core goes.
pub(crate) enum Route<'a> {
    /// A participant's peer connection.
    Peer(PeerId),
    /// A relay link (the export's subscriber, an import's publishers).
    Relay(&'a mut LinkEnd, &'a mut RelayCounts),
}

/// Track id as the control API spells it.
pub(crate) fn track_name(track: TrackId) -> String {
    format!("t{}", track.to_u64())
}

/// Parses a track id spelled by [`track_name`].
pub(crate) fn parse_track(name: &str) -> Option<TrackId> {
    name.strip_prefix('t')?
        .parse::<u64>()
        .ok()
        .map(TrackId::from_u64)
}

impl State {
    /// Whether the node is draining (set by the handle, read here).
    pub(crate) fn is_draining(&self) -> bool {
        self.published.draining.load(Ordering::Relaxed)
    }

    /// Adds a participant to the node's maps and publishes the new count.
    pub(crate) fn add_member(&mut self, p: ParticipantId, member: Member) {
        self.devices
            .insert((member.room.clone(), member.device.clone()), p);
        self.members.insert(p, member);
        self.published
            .participants
            .store(self.members.len(), Ordering::Relaxed);
    }

    /// A fresh downstream SSRC, unique on this node (never 0, never the core's RTCP SSRC).
    pub(crate) fn allocate_ssrc(&mut self) -> u32 {
        loop {
            self.next_ssrc = self.next_ssrc.wrapping_add(1);
            if self.next_ssrc > 1 && !self.pending.contains_key(&self.next_ssrc) {
                return self.next_ssrc;
            }
        }
    }

    pub(super) fn emit(&self, event: NodeEvent) {
        // No receiver is fine: nobody is listening yet.
        let _ = self.events.send(event);
    }

    /// The media session id of participant `p`, when it has one.
    pub(super) fn session_of(&self, p: ParticipantId) -> Option<u64> {
        self.members.get(&p).and_then(|m| m.session)
    }

    /// The participant `(room, device)` names, when `session` (if given) is its current media
    /// session: a call about a session that was replaced or reset is not about its successor.
    pub(crate) fn participant(
        &self,
        room: &str,
        device: &str,
        session: Option<u64>,
    ) -> Option<ParticipantId> {
        let p = *self.devices.get(&(room.to_owned(), device.to_owned()))?;
        match session {
            Some(id) if self.members.get(&p)?.session != Some(id) => None,
            _ => Some(p),
        }
    }

    pub(super) fn names(&self, p: ParticipantId) -> Option<(String, String)> {
        self.members
            .get(&p)
            .map(|m| (m.room.clone(), m.device.clone()))
            .or_else(|| self.departed.get(&p).cloned())
    }

    /// Forgets a participant everywhere (core, maps, pending subscriptions).
    pub(crate) fn forget(&mut self, now: Instant, p: ParticipantId) -> Option<Member> {
        let member = self.members.remove(&p)?;
        self.published
            .participants
            .store(self.members.len(), Ordering::Relaxed);
        self.departed
            .insert(p, (member.room.clone(), member.device.clone()));
        self.devices
            .remove(&(member.room.clone(), member.device.clone()));
        if let Some(peer) = member.peer {
            self.peers.remove(&peer);
        }
        self.pending.retain(|_, s| s.subscriber != p);
        // A relayed publisher leaves its import too (`relay.rs`).
        self.relay_participant_forgotten(p);
        // The core may already have dropped it with its room; nothing else can fail here.
        let _ = self.sfu.remove_participant(now, p);
        Some(member)
    }

    /// Applies a subscriber's layer wishes to an active subscription.
    pub(crate) fn apply_prefs(
        &mut self,
        now: Instant,
        sub: ParticipantId,
        track: TrackId,
        prefs: LayerPrefs,
    ) {
        tracing::debug!(?sub, ?track, ?prefs, "layer wishes");
        // These fail only for an unknown subscription, which was just checked or created.
        let _ = self.sfu.set_max_layer(now, sub, track, prefs.max_layer);
        if let Some((w, h)) = prefs.size {
            let _ = self.sfu.set_requested_size(now, sub, track, w, h);
        }
        if prefs.pinned {
            let _ = self.sfu.set_pinned(now, sub, track, true);
        }
    }

    /// Runs the core's timers when due.
    pub(crate) fn run_timers(&mut self, now: Instant) {
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
    }

    /// Drains the core's output at `now`: events are handled here, transmits go to `send` with
    /// the peer or relay link they are for (transmits for participants with neither are
    /// dropped).
    pub(crate) fn drain(&mut self, now: Instant, send: &mut dyn FnMut(Route<'_>, Transmit)) {
        while let Some(out) = self.sfu.poll_output() {
            match out {
                Output::Transmit(t) => match self.members.get(&t.to()).and_then(|m| m.peer) {
                    Some(peer) => send(Route::Peer(peer), t),
                    None => match self.relays.end_for(t.to()) {
                        Some((end, counts)) => send(Route::Relay(end, counts), t),
                        None => self.send_failures += 1,
                    },
                },
                Output::Event(e) => self.on_core_event(now, e),
            }
        }
        for event in std::mem::take(&mut self.after_drain) {
            self.emit(event);
        }
        self.departed.clear();
    }
}
