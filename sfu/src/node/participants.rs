//! The node's room and participant commands: rooms opened and closed, participants added from
//! their offers, renegotiated, subscribed and removed. Each takes the node's lock briefly to
//! change the core and the node's maps, then talks to the transport shard without it.

use std::collections::HashMap;
use std::time::Instant;

use sfu_forwarding::{Role, RoomPolicy, SlotCounts, TrackId};

use super::join_phases::JoinProgress;
use super::renegotiations::OfferFacts;
use super::slots::slots_need_offer;
use super::state::{Member, PendingSub, State, lock, parse_track, track_name};
use super::{
    LayerPrefs, NodeError, NodeHandle, SessionDescription, SubscriptionRequest, direction, sdp,
};
use crate::transport::{OutgoingTrack, PeerId};

impl NodeHandle {
    /// Opens a room named `room` with `policy` (participants subscribe per track).
    pub fn create_room(&self, room: &str, policy: RoomPolicy) -> Result<(), NodeError> {
        self.create_room_with(room, policy, false).map(|_| ())
    }

    /// Opens a room named `room` with `policy`; with `receive_slots` every participant gets
    /// receive slots (`slots.rs`) in place of per-track subscriptions, and the slot counts each
    /// gets are returned (the policy's [`RoomPolicy::slot_counts`]).
    pub fn create_room_with(
        &self,
        room: &str,
        policy: RoomPolicy,
        receive_slots: bool,
    ) -> Result<Option<SlotCounts>, NodeError> {
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
        let counts = receive_slots.then(|| policy.slot_counts());
        if let Some(counts) = counts {
            state.slot_rooms.insert(room.to_owned(), counts);
        }
        tracing::info!(room, receive_slots, "room created");
        Ok(counts)
    }

    /// Closes a room: every participant in it is removed and its peer connection closed.
    pub async fn close_room(&self, room: &str) -> Result<(), NodeError> {
        let peers = {
            let mut state = lock(&self.inner.state);
            let id = state.rooms.remove(room).ok_or(NodeError::UnknownRoom)?;
            state.room_names.remove(&id);
            state.slot_rooms.remove(room);
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
    /// `screen_mids` is published as screen share. In a room with receive slots `subscribe` must
    /// be empty ([`NodeError::SlotRoom`]): the participant gets its slots instead, in the
    /// offer's `recvonly` sections (audio slots in the audio ones, then video and screen slots
    /// in the video ones, in order) and the rest in one offer right after it connected.
    pub async fn add_participant(
        &self,
        room: &str,
        device: &str,
        role: Role,
        offer: String,
        subscribe: Vec<SubscriptionRequest>,
        screen_mids: &[String],
    ) -> Result<String, NodeError> {
        if !role.can_publish() {
            refuse_sending(&offer)?;
        }
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
            let slot_counts = state.slot_rooms.get(room).copied();
            if slot_counts.is_some() && !subscribe.is_empty() {
                return Err(NodeError::SlotRoom);
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
                    can_publish: role.can_publish(),
                    subs: HashMap::new(),
                    published_mids: HashMap::new(),
                    screen_mids: screen_mids.iter().cloned().collect(),
                    simulcast: sdp::simulcast_layers(&offer),
                    last_offer: OfferFacts::of(&offer),
                    slots: None,
                    join: JoinProgress::default(),
                },
            );
            let outgoing = match slot_counts {
                Some(counts) => {
                    let (plan, outgoing) = state.plan_slots(participant, counts);
                    if let Some(m) = state.members.get_mut(&participant) {
                        m.slots = Some(plan);
                    }
                    if slots_need_offer(counts, direction::receive_only_sections(&offer)) {
                        state.renegotiations.slots_at_join += 1;
                    }
                    outgoing
                }
                None => plan_subscriptions(&mut state, participant, wanted),
            };
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
        let can_publish = {
            let state = lock(&self.inner.state);
            state
                .devices
                .get(&(room.to_owned(), device.to_owned()))
                .and_then(|p| state.members.get(p))
                .is_some_and(|m| m.can_publish)
        };
        if !can_publish {
            match &description {
                SessionDescription::Offer(sdp) | SessionDescription::Answer(sdp) => {
                    refuse_sending(sdp)?;
                }
            }
        }
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
                let facts = OfferFacts::of(&sdp);
                let answer = self.inner.shard.apply_offer(peer, sdp).await?;
                let mut state = lock(&self.inner.state);
                let p = state
                    .devices
                    .get(&(room.to_owned(), device.to_owned()))
                    .copied();
                let state = &mut *state;
                if let Some(m) = p.and_then(|p| state.members.get_mut(&p)) {
                    state
                        .renegotiations
                        .count_client_offer(&m.last_offer, &facts);
                    m.last_offer = facts;
                }
                Ok(Some(answer))
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
    /// In a room with receive slots there are no per-track subscriptions: an empty list is
    /// accepted (nothing to do), any other is refused ([`NodeError::SlotRoom`]).
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
            if state.slot_rooms.contains_key(room) {
                return if subscriptions.is_empty() {
                    Ok(())
                } else {
                    Err(NodeError::SlotRoom)
                };
            }
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
            let subscribes = !added.is_empty();
            self.inner
                .shard
                .update_outgoing(peer, removed, added)
                .await?;
            let mut state = lock(&self.inner.state);
            if subscribes {
                state.renegotiations.subscribe += 1;
            } else {
                state.renegotiations.unsubscribe += 1;
            }
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

/// Refuses an SDP with media sections that send (for a participant without the publish right).
fn refuse_sending(sdp: &str) -> Result<(), NodeError> {
    let sending = direction::sending_sections(sdp);
    if sending.is_empty() {
        return Ok(());
    }
    let positions: Vec<String> = sending.iter().take(8).map(ToString::to_string).collect();
    Err(NodeError::SendsWithoutPublishRight(positions.join(", ")))
}
