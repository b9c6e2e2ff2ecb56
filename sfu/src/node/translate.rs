//! What the node's state does with events: a transport event (a peer connected, published a
//! track, finished a negotiation, closed) changes the core and the node's maps; a core event
//! becomes the node events the control API reports, in room and device names.

use std::time::Instant;

use sfu_forwarding::{
    Codec, Direction, DownstreamParams, Event, LayerSpec, MediaKind as CoreKind, RtxParams,
    SlotKind, TrackKind, TrackSpec,
};

use super::state::{Deferred, State, TrackEntry, track_name};
use super::{ActiveSpeaker, MediaClass, NodeEvent, QualityDirection, TrackClass};
use crate::transport::{CloseReason, IncomingTrack, MediaKind, PeerEvent, PeerId};

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
    /// Applies a transport event.
    pub(super) fn on_peer_event(&mut self, event: PeerEvent, now: Instant) {
        match event {
            PeerEvent::Connected { peer, join_latency } => {
                if let Some(o) = &self.observer {
                    o.join_latency(join_latency);
                }
                self.join_connected(peer, now);
            }
            PeerEvent::IncomingTrack { peer, track } => self.on_incoming_track(now, peer, track),
            PeerEvent::LocalOffer { peer, sdp } => {
                if let Some(&p) = self.peers.get(&peer)
                    && let Some((room, device)) = self.names(p)
                {
                    let session = self.session_of(p);
                    self.emit(NodeEvent::Offer {
                        room,
                        device,
                        sdp,
                        session,
                    });
                }
            }
            PeerEvent::Negotiated { peer, outgoing } => {
                self.slots_negotiated(now, &outgoing);
                let mut live = Vec::new();
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
                            if entry.kind != TrackKind::Audio {
                                self.join_video_given(pending.subscriber, now);
                            }
                            self.apply_prefs(now, pending.subscriber, pending.track, pending.prefs);
                            live.push(track_name(pending.track));
                        }
                        Err(e) => tracing::debug!(error = %e, "subscription refused by the core"),
                    }
                }
                if !live.is_empty()
                    && let Some((room, device)) = self.peers.get(&peer).and_then(|p| self.names(*p))
                {
                    self.emit(NodeEvent::SubscriptionsLive {
                        room,
                        device,
                        tracks: live,
                    });
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
                        session: member.session,
                    });
                }
            }
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
        tracing::debug!(
            %peer,
            mid = for_log(&track.mid),
            rid = ?track.rid.as_deref().map(for_log),
            ssrc = track.ssrc,
            "incoming track"
        );
        let Some(primary) = track.codecs.first() else {
            return;
        };
        let Ok(codec) = Codec::from_mime(&primary.mime_type) else {
            tracing::debug!(
                mime = for_log(&primary.mime_type),
                "incoming track with a codec the core refuses"
            );
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

    /// Turns one core event, drained at `now`, into node events.
    pub(super) fn on_core_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::TrackPublished {
                room,
                publisher,
                track,
                kind,
            } => {
                // Every relay export of the room sends it too (§7.55).
                self.relay_track_published(now, room, track);
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
                self.relay_track_unpublished(track);
                self.tracks.remove(&track);
                for m in self.members.values_mut() {
                    if let Some(ssrc) = m.subs.remove(&track)
                        && let Some(peer) = m.peer
                    {
                        self.deferred.push(Deferred::RemoveOutgoing { peer, ssrc });
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
            Event::SlotsChanged {
                subscriber,
                version,
                map,
            } => {
                if map
                    .iter()
                    .any(|(slot, track)| slot.kind != SlotKind::Audio && track.is_some())
                {
                    self.join_video_given(subscriber, now);
                }
                if let Some(event) = self.slots_event(subscriber, version, &map) {
                    self.emit(event);
                }
            }
            // Video (re)starts forwarding to a subscriber at a keyframe.
            Event::LayerChanged {
                subscriber,
                track,
                from: None,
                to,
            } => {
                tracing::debug!(
                    ?subscriber,
                    ?track,
                    to,
                    "video starts forwarding at a keyframe"
                );
                self.join_keyframe_forwarded(subscriber, now);
            }
            // Layer switches, keyframe requests and the like: visible with RUST_LOG=sfu=debug.
            other => tracing::debug!(event = ?other, "core event"),
        }
    }
}

/// A client-supplied SDP token (mid, rid, MIME type) cut to at most 64 bytes for a log line, so
/// a hostile SDP cannot make one long.
fn for_log(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
