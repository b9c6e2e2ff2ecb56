//! The node's state shared between the transport shard (which runs the forwarding core on its
//! task, packet by packet) and the node's command methods: the core, and the names and SDP
//! facts the core does not keep (room and device names, peer ids, chosen downstream SSRCs).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sfu_forwarding::{
    Codec, Direction, DownstreamParams, Event, LayerSpec, MediaKind as CoreKind, Output,
    ParticipantId, RoomId, RtxParams, Sfu, TrackId, TrackKind, TrackSpec, Transmit,
};
use tokio::sync::{broadcast, mpsc};

use super::events::{ActiveSpeaker, MediaClass, NodeEvent, QualityDirection, TrackClass};
use super::sdp::RidLayer;
use crate::transport::{
    CloseReason, IncomingTrack, MediaHandler, MediaKind, Outbox, PeerEvent, PeerId,
};

/// Receives the figures the node observes for histograms (implemented by the metrics module).
pub trait Observer: Send + Sync + 'static {
    /// A peer connected: time from its offer to DTLS connected.
    fn join_latency(&self, latency: Duration);
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

/// Work the shard-side handler cannot do itself (it must not await): done by the node's
/// background task.
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
    pub(crate) peer: Option<PeerId>,
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
}

/// An outgoing track handed to the transport whose negotiation has not completed yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingSub {
    pub(crate) subscriber: ParticipantId,
    pub(crate) track: TrackId,
    pub(crate) rtx_ssrc: u32,
    pub(crate) prefs: LayerPrefs,
}

/// Everything behind the node's one lock.
pub(crate) struct State {
    pub(crate) sfu: Sfu,
    pub(crate) rooms: HashMap<String, RoomId>,
    pub(crate) room_names: HashMap<RoomId, String>,
    pub(crate) members: HashMap<ParticipantId, Member>,
    pub(crate) devices: HashMap<(String, String), ParticipantId>,
    pub(crate) peers: HashMap<PeerId, ParticipantId>,
    pub(crate) tracks: HashMap<TrackId, TrackEntry>,
    pub(crate) pending: HashMap<u32, PendingSub>,
    pub(crate) next_ssrc: u32,
    pub(crate) draining: bool,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) deferred: mpsc::UnboundedSender<Deferred>,
    pub(crate) observer: Option<Arc<dyn Observer>>,
    /// Transmits the core produced for peers that were not connected yet, or could not be sent.
    pub(crate) send_failures: u64,
    /// Room and device names of participants forgotten since the last [`State::drain`]: the
    /// core reports their tracks' `TrackUnpublished` only when its output is drained, after the
    /// node dropped the member.
    pub(crate) departed: HashMap<ParticipantId, (String, String)>,
    /// Node events to emit after the core's output is drained (so a participant's
    /// `TrackUnpublished` events come before its `ParticipantGone`).
    pub(crate) after_drain: Vec<NodeEvent>,
}

/// Locks the state; a poisoned lock (a panic elsewhere while holding it) still holds
/// consistent-enough data for forwarding to go on, so it is recovered rather than propagated.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

fn track_class(kind: TrackKind) -> TrackClass {
    match kind {
        TrackKind::Audio => TrackClass::Audio,
        TrackKind::Camera => TrackClass::Camera,
        TrackKind::Screen => TrackClass::Screen,
    }
}

fn reason_name(reason: &CloseReason) -> &'static str {
    match reason {
        CloseReason::Removed => "removed",
        CloseReason::ConsentExpired => "consent_expired",
        CloseReason::ConnectTimeout => "connect_timeout",
        CloseReason::DtlsFailed => "dtls_failed",
        CloseReason::PeerClosed => "peer_closed",
        CloseReason::Failed => "failed",
        CloseReason::Shutdown => "shutdown",
    }
}

impl State {
    /// A fresh downstream SSRC, unique on this node (never 0, never the core's RTCP SSRC).
    pub(crate) fn allocate_ssrc(&mut self) -> u32 {
        loop {
            self.next_ssrc = self.next_ssrc.wrapping_add(1);
            if self.next_ssrc > 1 && !self.pending.contains_key(&self.next_ssrc) {
                return self.next_ssrc;
            }
        }
    }

    fn emit(&self, event: NodeEvent) {
        // No receiver is fine: nobody is listening yet.
        let _ = self.events.send(event);
    }

    fn names(&self, p: ParticipantId) -> Option<(String, String)> {
        self.members
            .get(&p)
            .map(|m| (m.room.clone(), m.device.clone()))
            .or_else(|| self.departed.get(&p).cloned())
    }

    /// Forgets a participant everywhere (core, maps, pending subscriptions).
    pub(crate) fn forget(&mut self, now: Instant, p: ParticipantId) -> Option<Member> {
        let member = self.members.remove(&p)?;
        self.departed
            .insert(p, (member.room.clone(), member.device.clone()));
        self.devices
            .remove(&(member.room.clone(), member.device.clone()));
        if let Some(peer) = member.peer {
            self.peers.remove(&peer);
        }
        self.pending.retain(|_, s| s.subscriber != p);
        // The core may already have dropped it with its room; nothing else can fail here.
        let _ = self.sfu.remove_participant(now, p);
        Some(member)
    }

    /// Applies a transport event.
    fn on_peer_event(&mut self, event: PeerEvent, now: Instant) {
        match event {
            PeerEvent::Connected { join_latency, .. } => {
                if let Some(o) = &self.observer {
                    o.join_latency(join_latency);
                }
            }
            PeerEvent::IncomingTrack { peer, track } => self.on_incoming_track(now, peer, track),
            PeerEvent::LocalOffer { peer, sdp } => {
                if let Some((room, device)) = self.peers.get(&peer).and_then(|p| self.names(*p)) {
                    self.emit(NodeEvent::Offer { room, device, sdp });
                }
            }
            PeerEvent::Negotiated { outgoing, .. } => {
                for o in outgoing {
                    let Some(pending) = self.pending.get(&o.ssrc).cloned() else {
                        continue;
                    };
                    let Some(entry) = self.tracks.get(&pending.track) else {
                        self.pending.remove(&o.ssrc);
                        continue;
                    };
                    let Some(codec) = o
                        .codecs
                        .iter()
                        .find(|c| c.mime_type.eq_ignore_ascii_case(&entry.mime))
                    else {
                        tracing::debug!(
                            ssrc = o.ssrc,
                            "outgoing track negotiated without its codec"
                        );
                        continue;
                    };
                    let down = DownstreamParams {
                        ssrc: o.ssrc,
                        payload_type: codec.payload_type,
                        rtx: codec.rtx_payload_type.map(|pt| RtxParams {
                            ssrc: pending.rtx_ssrc,
                            payload_type: pt,
                        }),
                        mid: o.mid.clone(),
                    };
                    self.pending.remove(&o.ssrc);
                    match self
                        .sfu
                        .subscribe(now, pending.subscriber, pending.track, down)
                    {
                        Ok(_) => {
                            self.apply_prefs(now, pending.subscriber, pending.track, pending.prefs)
                        }
                        Err(e) => tracing::debug!(error = %e, "subscription refused by the core"),
                    }
                }
            }
            PeerEvent::Closed { peer, reason } => {
                let Some(p) = self.peers.get(&peer).copied() else {
                    return;
                };
                if let Some(member) = self.forget(now, p)
                    && reason != CloseReason::Removed
                {
                    self.after_drain.push(NodeEvent::ParticipantGone {
                        room: member.room,
                        device: member.device,
                        reason: reason_name(&reason).to_owned(),
                    });
                }
            }
        }
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

    fn on_incoming_track(&mut self, now: Instant, peer: PeerId, track: IncomingTrack) {
        let Some(p) = self.peers.get(&peer).copied() else {
            return;
        };
        let Some(member) = self.members.get(&p) else {
            return;
        };
        if member.published_mids.contains_key(&track.mid) {
            return;
        }
        tracing::debug!(%peer, mid = %track.mid, rid = ?track.rid, ssrc = track.ssrc, "incoming track");
        let Some(primary) = track.codecs.first() else {
            return;
        };
        let Ok(codec) = Codec::from_mime(&primary.mime_type) else {
            tracing::debug!(mime = %primary.mime_type, "incoming track with a codec the core refuses");
            return;
        };
        let kind = match track.kind {
            MediaKind::Audio => TrackKind::Audio,
            MediaKind::Video if member.screen_mids.contains(&track.mid) => TrackKind::Screen,
            MediaKind::Video => TrackKind::Camera,
        };
        // A simulcast section is published once with every layer its offer announced (the
        // core binds the other rids' SSRCs from their first packets); a rid the offer did not
        // announce, or a plain section, is one layer.
        let announced = match (&track.rid, member.simulcast.get(&track.mid)) {
            (Some(rid), Some(layers)) if layers.iter().any(|l| &l.rid == rid) => Some(layers),
            _ => None,
        };
        let layers = match (announced, &track.rid) {
            (Some(layers), _) => layers
                .iter()
                .map(|l| LayerSpec {
                    rid: Some(l.rid.clone()),
                    ssrc: (track.rid.as_ref() == Some(&l.rid)).then_some(track.ssrc),
                    width: l.width,
                    height: l.height,
                    ..LayerSpec::default()
                })
                .collect(),
            (None, Some(rid)) => vec![LayerSpec {
                rid: Some(rid.clone()),
                ..LayerSpec::default()
            }],
            (None, None) => vec![LayerSpec {
                ssrc: Some(track.ssrc),
                ..LayerSpec::default()
            }],
        };
        let spec = TrackSpec {
            kind,
            codec,
            mid: track.mid.clone(),
            payload_type: primary.payload_type,
            rtx_payload_type: primary.rtx_payload_type,
            layers,
        };
        match self.sfu.publish(now, p, spec) {
            Ok(id) => {
                self.tracks.insert(
                    id,
                    TrackEntry {
                        publisher: p,
                        kind,
                        mime: primary.mime_type.clone(),
                    },
                );
                if let Some(m) = self.members.get_mut(&p) {
                    m.published_mids.insert(track.mid, id);
                }
            }
            Err(e) => tracing::debug!(error = %e, "publish refused by the core"),
        }
    }

    /// Turns one core event into node events.
    fn on_core_event(&mut self, event: Event) {
        match event {
            Event::TrackPublished {
                room,
                publisher,
                track,
                kind,
            } => {
                let (Some(room), Some(m)) =
                    (self.room_names.get(&room), self.members.get(&publisher))
                else {
                    return;
                };
                let mid = m
                    .published_mids
                    .iter()
                    .find(|(_, t)| **t == track)
                    .map(|(mid, _)| mid.clone())
                    .unwrap_or_default();
                self.emit(NodeEvent::TrackPublished {
                    room: room.clone(),
                    publisher: m.device.clone(),
                    track: track_name(track),
                    kind: track_class(kind),
                    mid,
                });
            }
            Event::TrackUnpublished {
                publisher, track, ..
            } => {
                self.tracks.remove(&track);
                for m in self.members.values_mut() {
                    if let Some(ssrc) = m.subs.remove(&track)
                        && let Some(peer) = m.peer
                    {
                        let _ = self.deferred.send(Deferred::RemoveOutgoing { peer, ssrc });
                    }
                }
                self.pending.retain(|_, s| s.track != track);
                // The publisher may have left already (its departure is what unpublished the
                // track); its names are kept until this drain ends. The room name comes from the
                // participant too, as a closing room's name is forgotten before its events
                // arrive.
                let Some((room, device)) = self.names(publisher) else {
                    return;
                };
                self.emit(NodeEvent::TrackUnpublished {
                    room,
                    publisher: device,
                    track: track_name(track),
                });
            }
            Event::ActiveSpeakers {
                room,
                speakers,
                levels,
            } => {
                let Some(room) = self.room_names.get(&room) else {
                    return;
                };
                let speakers = speakers
                    .iter()
                    .zip(levels)
                    .filter_map(|(p, level)| {
                        self.members.get(p).map(|m| ActiveSpeaker {
                            device: m.device.clone(),
                            level,
                        })
                    })
                    .collect();
                self.emit(NodeEvent::ActiveSpeakers {
                    room: room.clone(),
                    speakers,
                });
            }
            Event::QualityReport {
                participant,
                direction,
                kind,
                fraction_lost,
                jitter_seconds,
                rtt_seconds,
            } => {
                if let Some(o) = &self.observer {
                    o.quality(direction, kind, fraction_lost, jitter_seconds, rtt_seconds);
                }
                let Some((room, device)) = self.names(participant) else {
                    return;
                };
                self.emit(NodeEvent::Quality {
                    room,
                    device,
                    direction: match direction {
                        Direction::Publisher => QualityDirection::Publisher,
                        Direction::Subscriber => QualityDirection::Subscriber,
                    },
                    kind: match kind {
                        CoreKind::Audio => MediaClass::Audio,
                        CoreKind::Video => MediaClass::Video,
                    },
                    loss_ratio: fraction_lost,
                    jitter_seconds,
                    rtt_seconds,
                });
            }
            // Layer switches, keyframe requests and the like: visible with RUST_LOG=sfu=debug.
            other => tracing::debug!(event = ?other, "core event"),
        }
    }

    /// Runs the core's timers when due.
    pub(crate) fn run_timers(&mut self, now: Instant) {
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
    }

    /// Drains the core's output: events are handled here, transmits go to `send` with the
    /// peer they are for (transmits for participants without a peer are dropped).
    pub(crate) fn drain(&mut self, send: &mut dyn FnMut(PeerId, Transmit)) {
        while let Some(out) = self.sfu.poll_output() {
            match out {
                Output::Transmit(t) => match self.members.get(&t.to()).and_then(|m| m.peer) {
                    Some(peer) => send(peer, t),
                    None => self.send_failures += 1,
                },
                Output::Event(e) => self.on_core_event(e),
            }
        }
        for event in std::mem::take(&mut self.after_drain) {
            self.emit(event);
        }
        self.departed.clear();
    }
}

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
        state.drain(&mut |peer, t| send_via_outbox(out, &mut failures, peer, t));
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

    fn on_rtp(&mut self, peer: PeerId, rtp: &[u8], now: Instant, out: &mut Outbox<'_>) {
        let mut state = lock(&self.state);
        if let Some(p) = state.peers.get(&peer).copied() {
            // Refused packets are counted by the core (`sfu_packets_dropped_total`).
            let _ = state.sfu.handle_rtp(now, p, Bytes::copy_from_slice(rtp));
        }
        state.run_timers(now);
        Self::flush(&mut state, out);
        if let Some(o) = &state.observer {
            o.forwarding_latency(Instant::now().saturating_duration_since(now));
        }
    }

    fn on_rtcp(&mut self, peer: PeerId, rtcp: &[u8], now: Instant, out: &mut Outbox<'_>) {
        let mut state = lock(&self.state);
        if let Some(p) = state.peers.get(&peer).copied() {
            // Refused packets are counted by the core.
            let _ = state.sfu.handle_rtcp(now, p, rtcp);
        }
        state.run_timers(now);
        Self::flush(&mut state, out);
    }
}
