//! The node's room and participant commands: rooms opened and closed, participants added from
//! their offers, renegotiated, subscribed and removed. Each is one job on the shard
//! ([`NodeHandle::on_shard`]): it changes the core and the node's maps and calls the transport
//! in the same step, between two packets, so no change races a packet or another command.
//! What can be read from the SDP without the state is read before the job, off the shard.

use std::collections::HashMap;

use sfu_forwarding::{Role, RoomPolicy, SlotCounts, TrackId};

use super::glue::Glue;
use super::join_phases::JoinProgress;
use super::publications::learn_section_mids;
use super::renegotiations::OfferFacts;
use super::slots::slots_need_offer;
use super::state::{Member, PendingSub, State, parse_track, track_name};
use super::{
    LayerPrefs, NodeError, NodeHandle, SessionDescription, SubscriptionRequest, direction, sdp,
};
use crate::transport::{OutgoingTrack, PeerId, ShardAccess};

/// The shard as the node's jobs see it.
type Shard<'a, 'b> = &'a mut ShardAccess<'b, Glue>;

impl NodeHandle {
    /// Opens a room named `room` with `policy` (participants subscribe per track).
    pub async fn create_room(&self, room: &str, policy: RoomPolicy) -> Result<(), NodeError> {
        self.create_room_with(room, policy, false).await.map(|_| ())
    }

    /// Opens a room named `room` with `policy`; with `receive_slots` every participant gets
    /// receive slots (`slots.rs`) in place of per-track subscriptions, and the slot counts each
    /// gets are returned (the policy's [`RoomPolicy::slot_counts`]).
    pub async fn create_room_with(
        &self,
        room: &str,
        policy: RoomPolicy,
        receive_slots: bool,
    ) -> Result<Option<SlotCounts>, NodeError> {
        let room = room.to_owned();
        self.on_shard(move |s| create_room(&mut s.handler().state, room, policy, receive_slots))
            .await?
    }

    /// Closes a room: every participant in it is removed and its peer connection closed.
    pub async fn close_room(&self, room: &str) -> Result<(), NodeError> {
        let room = room.to_owned();
        self.on_shard(move |s| close_room(s, &room)).await?
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
    ///
    /// `session` names this media session of the device (chosen by the caller, unique per
    /// session). With it, a device already in the room under another session is replaced in
    /// the same step (its old peer connection closed, no `ParticipantGone`), and a session
    /// that was removed ([`NodeHandle::remove_participant`]) is refused
    /// ([`NodeError::SessionEnded`]). Without it a device already there is refused
    /// ([`NodeError::ParticipantExists`]).
    ///
    /// [`NodeEvent::TrackPublished`]: super::NodeEvent::TrackPublished
    /// [`NodeEvent::Offer`]: super::NodeEvent::Offer
    #[allow(clippy::too_many_arguments)]
    pub async fn add_participant(
        &self,
        room: &str,
        device: &str,
        role: Role,
        offer: String,
        subscribe: Vec<SubscriptionRequest>,
        screen_mids: &[String],
        session: Option<u64>,
    ) -> Result<String, NodeError> {
        if !role.can_publish() {
            refuse_sending(&offer)?;
        }
        let join = Join {
            room: room.to_owned(),
            device: device.to_owned(),
            role,
            facts: JoinFacts::of(&offer, screen_mids),
            offer,
            subscribe,
            session,
        };
        let (peer, answer) = self.on_shard(move |s| add_participant(s, join)).await??;
        tracing::info!(room, device, %peer, ?session, "participant added");
        Ok(answer)
    }

    /// Applies a participant's later offer (returns the answer) or its answer to a node offer
    /// (returns `None`). With an offer, `screen_mids` adds media sections whose video is
    /// screen share (sections announced before stay so). With `session`, the call is refused
    /// ([`NodeError::UnknownParticipant`]) unless that is the device's current media session.
    pub async fn renegotiate(
        &self,
        room: &str,
        device: &str,
        description: SessionDescription,
        screen_mids: &[String],
        session: Option<u64>,
    ) -> Result<Option<String>, NodeError> {
        let key = ParticipantKey::new(room, device, session);
        let sending = match &description {
            SessionDescription::Offer(sdp) | SessionDescription::Answer(sdp) => {
                sending_refusal(sdp)
            }
        };
        match description {
            SessionDescription::Offer(sdp) => {
                let facts = OfferFacts::of(&sdp);
                let simulcast = sdp::simulcast_layers(&sdp);
                let screen_mids = screen_mids.to_vec();
                self.on_shard(move |s| {
                    let (p, peer) = member_peer(&s.handler().state, &key, sending)?;
                    learn_section_mids(s, p);
                    if let Some(m) = s.handler().state.members.get_mut(&p) {
                        m.screen_mids.extend(screen_mids);
                        // Sections already published keep their layers; new ones are added.
                        for (mid, layers) in simulcast {
                            m.simulcast.entry(mid).or_insert(layers);
                        }
                    }
                    let answer = s.apply_offer(peer, sdp)?;
                    let state = &mut s.handler().state;
                    if let Some(m) = state.members.get_mut(&p) {
                        state
                            .renegotiations
                            .count_client_offer(&m.last_offer, &facts);
                        m.last_offer = facts;
                    }
                    Ok(Some(answer))
                })
                .await?
            }
            SessionDescription::Answer(sdp) => {
                self.on_shard(move |s| {
                    let (p, peer) = member_peer(&s.handler().state, &key, sending)?;
                    learn_section_mids(s, p);
                    s.apply_answer(peer, sdp)?;
                    Ok(None)
                })
                .await?
            }
        }
    }

    /// Replaces a participant's subscriptions: tracks not listed are unsubscribed, new ones are
    /// added (the node renegotiates: watch for [`NodeEvent::Offer`](super::NodeEvent::Offer)),
    /// and layer wishes of existing ones are updated.
    /// In a room with receive slots there are no per-track subscriptions: an empty list is
    /// accepted (nothing to do), any other is refused ([`NodeError::SlotRoom`]). With
    /// `session`, only for that media session of the device (as [`Self::renegotiate`]).
    pub async fn set_subscriptions(
        &self,
        room: &str,
        device: &str,
        subscriptions: Vec<SubscriptionRequest>,
        session: Option<u64>,
    ) -> Result<(), NodeError> {
        let key = ParticipantKey::new(room, device, session);
        self.on_shard(move |s| set_subscriptions(s, &key, &subscriptions))
            .await?
    }

    /// Removes a participant and closes its peer connection. Removing one that is not there
    /// is not an error (idempotent). With `session`, only that media session of the device is
    /// removed (a later session of the device stays), and that session can never be added
    /// again.
    pub async fn remove_participant(
        &self,
        room: &str,
        device: &str,
        session: Option<u64>,
    ) -> Result<(), NodeError> {
        let key = ParticipantKey::new(room, device, session);
        self.on_shard(move |s| {
            let now = s.now();
            let state = &mut s.handler().state;
            if let Some(id) = key.session {
                state.ended_sessions.insert(id);
            }
            let Some(p) = state.participant(&key.room, &key.device, key.session) else {
                return;
            };
            if let Some(peer) = state.forget(now, p).and_then(|m| m.peer) {
                // Already closed by itself is fine.
                s.remove_peer(peer);
            }
        })
        .await?;
        tracing::info!(room, device, ?session, "participant removed");
        Ok(())
    }
}

fn create_room(
    state: &mut State,
    room: String,
    policy: RoomPolicy,
    receive_slots: bool,
) -> Result<Option<SlotCounts>, NodeError> {
    if state.is_draining() {
        return Err(NodeError::Draining);
    }
    if state.rooms.contains_key(&room) {
        return Err(NodeError::RoomExists);
    }
    let id = state.sfu.create_room(policy)?;
    state.room_names.insert(id, room.clone());
    let counts = receive_slots.then(|| policy.slot_counts());
    if let Some(counts) = counts {
        state.slot_rooms.insert(room.clone(), counts);
    }
    tracing::info!(room, receive_slots, "room created");
    state.rooms.insert(room, id);
    Ok(counts)
}

fn close_room(s: Shard<'_, '_>, room: &str) -> Result<(), NodeError> {
    let now = s.now();
    {
        // The edges of the room's exports hear that they end (§7.55).
        let (glue, mut out) = s.handler_and_outbox();
        let links = glue.state.relay_links_of(room);
        glue.state.relay_say_goodbye(&links, &mut out);
    }
    let state = &mut s.handler().state;
    let id = state.rooms.remove(room).ok_or(NodeError::UnknownRoom)?;
    state.room_names.remove(&id);
    state.slot_rooms.remove(room);
    // Its relay links go first: an import's publishers are members of the room too.
    state.relay_room_closed(now, room);
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
    let closed = state.sfu.close_room(now, id);
    for peer in peers {
        // Already gone is fine.
        s.remove_peer(peer);
    }
    closed?;
    tracing::info!(room, "room closed");
    Ok(())
}

/// What a join reads from the offer itself, before its job runs.
struct JoinFacts {
    extension_ids: sfu_forwarding::ExtensionIds,
    simulcast: HashMap<String, Vec<sdp::RidLayer>>,
    last_offer: OfferFacts,
    receive_only: (usize, usize),
    screen_mids: Vec<String>,
}

impl JoinFacts {
    fn of(offer: &str, screen_mids: &[String]) -> Self {
        JoinFacts {
            extension_ids: sdp::extension_ids(offer),
            simulcast: sdp::simulcast_layers(offer),
            last_offer: OfferFacts::of(offer),
            receive_only: direction::receive_only_sections(offer),
            screen_mids: screen_mids.to_vec(),
        }
    }
}

/// A participant joining, as its job takes it.
struct Join {
    room: String,
    device: String,
    role: Role,
    facts: JoinFacts,
    offer: String,
    subscribe: Vec<SubscriptionRequest>,
    session: Option<u64>,
}

/// Names one participant in a command: its room, its device and, when the caller gives one,
/// the media session the command is for.
struct ParticipantKey {
    room: String,
    device: String,
    session: Option<u64>,
}

impl ParticipantKey {
    fn new(room: &str, device: &str, session: Option<u64>) -> Self {
        ParticipantKey {
            room: room.to_owned(),
            device: device.to_owned(),
            session,
        }
    }
}

/// Adds the participant to the core and the node's maps, its peer to the transport, and records
/// the peer's id: one step. Returns the peer and the SDP answer.
fn add_participant(s: Shard<'_, '_>, join: Join) -> Result<(PeerId, String), NodeError> {
    let state = &mut s.handler().state;
    if state.is_draining() {
        return Err(NodeError::Draining);
    }
    let room_id = *state.rooms.get(&join.room).ok_or(NodeError::UnknownRoom)?;
    if join
        .session
        .is_some_and(|id| state.ended_sessions.contains(id))
    {
        return Err(NodeError::SessionEnded);
    }
    let key = (join.room.clone(), join.device.clone());
    let previous = state.devices.get(&key).copied();
    if previous.is_some() && join.session.is_none() {
        return Err(NodeError::ParticipantExists);
    }
    let slot_counts = state.slot_rooms.get(&join.room).copied();
    if slot_counts.is_some() && !join.subscribe.is_empty() {
        return Err(NodeError::SlotRoom);
    }
    let wanted = resolve_tracks(state, &join.room, &join.subscribe)?;
    if let Some(old) = previous {
        // The device's new session replaces its old one in this same job: no packet, event
        // or command sees the room with both or with neither.
        let now = s.now();
        let state = &mut s.handler().state;
        state.sessions_replaced += 1;
        if let Some(peer) = state.forget(now, old).and_then(|m| m.peer) {
            s.remove_peer(peer);
        }
        tracing::info!(room = %join.room, device = %join.device, "media session replaced");
    }
    let state = &mut s.handler().state;
    let facts = join.facts;
    let participant = state
        .sfu
        .add_participant(room_id, join.role, facts.extension_ids)?;
    state.add_member(
        participant,
        Member {
            room: join.room,
            device: join.device,
            session: join.session,
            peer: None,
            can_publish: join.role.can_publish(),
            subs: HashMap::new(),
            published_mids: HashMap::new(),
            screen_mids: facts.screen_mids.into_iter().collect(),
            simulcast: facts.simulcast,
            last_offer: facts.last_offer,
            slots: None,
            screen: None,
            join: JoinProgress::default(),
        },
    );
    let outgoing = match slot_counts {
        Some(counts) => {
            let (plan, outgoing) = state.plan_slots(participant, counts);
            if let Some(m) = state.members.get_mut(&participant) {
                m.slots = Some(plan);
            }
            if slots_need_offer(counts, facts.receive_only) {
                state.renegotiations.slots_at_join += 1;
            }
            outgoing
        }
        None => plan_subscriptions(state, participant, wanted),
    };
    match s.add_peer(join.offer, &outgoing) {
        Ok(added) => {
            let state = &mut s.handler().state;
            if let Some(m) = state.members.get_mut(&participant) {
                m.peer = Some(added.peer);
            }
            state.peers.insert(added.peer, participant);
            Ok((added.peer, added.answer))
        }
        Err(e) => {
            let now = s.now();
            s.handler().state.forget(now, participant);
            Err(e.into())
        }
    }
}

/// The participant `key` names and its peer, once `sending` (a refusal of an SDP that sends)
/// is checked against its publish right.
fn member_peer(
    state: &State,
    key: &ParticipantKey,
    sending: Option<NodeError>,
) -> Result<(sfu_forwarding::ParticipantId, PeerId), NodeError> {
    let p = state
        .participant(&key.room, &key.device, key.session)
        .ok_or(NodeError::UnknownParticipant)?;
    let m = state.members.get(&p).ok_or(NodeError::UnknownParticipant)?;
    let peer = m.peer.ok_or(NodeError::UnknownParticipant)?;
    if let (false, Some(refusal)) = (m.can_publish, sending) {
        return Err(refusal);
    }
    Ok((p, peer))
}

fn set_subscriptions(
    s: Shard<'_, '_>,
    key: &ParticipantKey,
    subscriptions: &[SubscriptionRequest],
) -> Result<(), NodeError> {
    let now = s.now();
    let state = &mut s.handler().state;
    let room = key.room.as_str();
    let p = state
        .participant(room, &key.device, key.session)
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
    let wanted = resolve_tracks(state, room, subscriptions)?;
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
    let added = plan_subscriptions(state, p, new);
    if removed.is_empty() && added.is_empty() {
        return Ok(());
    }
    // One offer for the whole change.
    let subscribes = !added.is_empty();
    s.update_outgoing(peer, removed, added)?;
    let counts = &mut s.handler().state.renegotiations;
    if subscribes {
        counts.subscribe += 1;
    } else {
        counts.unsubscribe += 1;
    }
    Ok(())
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
    match sending_refusal(sdp) {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// The refusal of an SDP with media sections that send, were it from a participant without the
/// publish right; `None` when it sends nothing.
fn sending_refusal(sdp: &str) -> Option<NodeError> {
    let sending = direction::sending_sections(sdp);
    if sending.is_empty() {
        return None;
    }
    let positions: Vec<String> = sending.iter().take(8).map(ToString::to_string).collect();
    Some(NodeError::SendsWithoutPublishRight(positions.join(", ")))
}
