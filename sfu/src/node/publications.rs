//! Sources a participant asks to publish after its first answer (docs/architecture.md §7.53):
//! the node adds a section it receives the source on (`recvonly` on its side) and offers;
//! unpublishing turns the section `inactive`, offers, and unpublishes the source's track at once
//! (its subscribers get `track_unpublished` and lose their copy). So after the first answer
//! only the node offers. Each share gets a section of its own: a standards stack (the `webrtc`
//! crate) stops a transceiver whose section is offered `inactive`, so that section cannot carry
//! the next share. Each command is one job on the shard, as in `participants.rs`.
//!
//! The node knows what each such section carries because it made it: its `a=mid` (known once
//! an offer carried it) is recorded among the member's screen sections, so the video arriving
//! there is published as [`TrackKind::Screen`](sfu_forwarding::TrackKind::Screen).

use super::state::State;
use super::{NodeError, NodeHandle};
use crate::transport::{MediaKind, PeerId, ShardAccess};

use super::glue::Glue;

/// A source a participant may ask to publish after its first answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedSource {
    /// Screen-share video.
    Screen,
}

impl NodeHandle {
    /// Adds a receiving section for `source` to the participant's peer connection and offers
    /// it: the participant answers with the source's track on it. Refused when the role may not publish
    /// ([`NodeError::PublishNotAllowed`]), when the source is published already
    /// ([`NodeError::AlreadyPublished`]), and, with `session`, unless that is the device's
    /// current media session ([`NodeError::UnknownParticipant`]).
    pub async fn publish(
        &self,
        room: &str,
        device: &str,
        source: RequestedSource,
        session: Option<u64>,
    ) -> Result<(), NodeError> {
        let (room_name, device_name) = (room.to_owned(), device.to_owned());
        self.on_shard(move |s| publish(s, &room_name, &device_name, source, session))
            .await??;
        tracing::info!(room, device, ?source, ?session, "source publish offered");
        Ok(())
    }

    /// Turns the section of `source` `inactive` and offers that, and unpublishes the source's
    /// track (its subscribers get `track_unpublished` now). Refused when the source is not
    /// published ([`NodeError::NotPublished`]).
    pub async fn unpublish(
        &self,
        room: &str,
        device: &str,
        source: RequestedSource,
        session: Option<u64>,
    ) -> Result<(), NodeError> {
        let (room_name, device_name) = (room.to_owned(), device.to_owned());
        self.on_shard(move |s| unpublish(s, &room_name, &device_name, source, session))
            .await??;
        tracing::info!(room, device, ?source, ?session, "source unpublished");
        Ok(())
    }
}

/// The participant and its peer, if it may publish.
fn publisher_peer(
    state: &State,
    room: &str,
    device: &str,
    session: Option<u64>,
) -> Result<(sfu_forwarding::ParticipantId, PeerId), NodeError> {
    let p = state
        .participant(room, device, session)
        .ok_or(NodeError::UnknownParticipant)?;
    let m = state.members.get(&p).ok_or(NodeError::UnknownParticipant)?;
    let peer = m.peer.ok_or(NodeError::UnknownParticipant)?;
    if !m.can_publish {
        return Err(NodeError::PublishNotAllowed);
    }
    Ok((p, peer))
}

fn publish(
    s: &mut ShardAccess<'_, Glue>,
    room: &str,
    device: &str,
    source: RequestedSource,
    session: Option<u64>,
) -> Result<(), NodeError> {
    let RequestedSource::Screen = source;
    let (p, peer) = publisher_peer(&s.handler().state, room, device, session)?;
    if s.handler()
        .state
        .members
        .get(&p)
        .and_then(|m| m.screen)
        .is_some()
    {
        return Err(NodeError::AlreadyPublished);
    }
    let section = s.add_receive_section(peer, MediaKind::Video)?;
    let mid = s.receive_section_mid(peer, section);
    let state = &mut s.handler().state;
    if let Some(m) = state.members.get_mut(&p) {
        m.screen = Some(section);
        m.screen_mids.extend(mid);
    }
    state.renegotiations.publish += 1;
    Ok(())
}

fn unpublish(
    s: &mut ShardAccess<'_, Glue>,
    room: &str,
    device: &str,
    source: RequestedSource,
    session: Option<u64>,
) -> Result<(), NodeError> {
    let RequestedSource::Screen = source;
    let (p, peer) = publisher_peer(&s.handler().state, room, device, session)?;
    let section = s
        .handler()
        .state
        .members
        .get(&p)
        .and_then(|m| m.screen)
        .ok_or(NodeError::NotPublished)?;
    s.stop_receiving(peer, section)?;
    let mid = s.receive_section_mid(peer, section);
    let now = s.now();
    let state = &mut s.handler().state;
    let mut track = None;
    if let Some(m) = state.members.get_mut(&p) {
        m.screen = None;
        track = mid.and_then(|mid| m.published_mids.remove(&mid));
    }
    if let Some(track) = track {
        // Its subscribers lose their copy (the core reports `TrackUnpublished`).
        let _ = state.sfu.unpublish(now, track);
    }
    state.renegotiations.unpublish += 1;
    Ok(())
}

/// Records the `a=mid` of the member's requested section once an offer carried it: called
/// before SDP from the device is applied, so the media that opens a section after its answer
/// is published as what was asked for.
pub(super) fn learn_section_mids(s: &mut ShardAccess<'_, Glue>, p: sfu_forwarding::ParticipantId) {
    let Some((peer, section)) = s
        .handler()
        .state
        .members
        .get(&p)
        .and_then(|m| Some((m.peer?, m.screen?)))
    else {
        return;
    };
    if let Some(mid) = s.receive_section_mid(peer, section)
        && let Some(m) = s.handler().state.members.get_mut(&p)
    {
        m.screen_mids.insert(mid);
    }
}
