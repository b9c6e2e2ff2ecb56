//! The SFU-to-SFU relay (architecture §7.55): a room's tracks forwarded from an *origin* node to
//! an *edge* node over one SRTP link, keyed over the control API.
//!
//! - On the origin a link is an **export**: one participant of the room in the forwarding core
//!   (role recorder: every track, top layer, no loudest-N or last-N, no bandwidth cap),
//!   subscribed to every track the room publishes, now and later. What the core sends it goes
//!   out on the link instead of a peer connection; the feedback that comes back (PLI, FIR,
//!   NACK, reports, transport-cc) is the core's feedback from that participant.
//! - On the edge a link is an **import**: one publishing participant per origin publisher,
//!   named by the publisher's own device id, each publishing its relayed tracks with the SSRC
//!   and payload type they have on the link. Edge viewers subscribe to them like to any local
//!   track; what the edge core sends those publishers (keyframe requests, NACKs for loss on
//!   the link, reports) goes up the link.
//!
//! The links are part of the node's state, owned by the shard's task like the rest (no lock).
//! A datagram from an address no peer proved reaches [`State::on_relay_datagram`]; one from a
//! link's remote address is authenticated with the link's keys and handed to the core as the
//! link's participant's packet, one copy as for a peer's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use sfu_control_api::{
    ImportedTrack, RelayExport, RelayImported, RelayKeys, RelayProfile, RelayTrack, RelayTracks,
    TrackClass,
};
use sfu_forwarding::{
    Codec, DownstreamParams, ExtensionIds, LayerSpec, ParticipantId, Role, RoomId, TrackId,
    TrackKind, TrackSpec,
};

use super::glue::Glue;
use super::join_phases::JoinProgress;
use super::state::{Member, State, TrackEntry, parse_track, track_name};
use super::{NodeError, NodeEvent, NodeHandle};
use crate::transport::{
    Outbox, RelayCrypto, RelayKeyMaterial, RelayRefusal, ShardAccess, Unprotected,
};

/// The header extensions of a link, the same on both ends (no SDP negotiates them): the audio
/// level, so the edge finds its speakers, and transport-wide sequence numbers, so the edge's
/// feedback reaches the origin's estimate of the link.
pub(crate) const LINK_EXTENSIONS: ExtensionIds = ExtensionIds {
    mid: None,
    rid: None,
    repaired_rid: None,
    audio_level: Some(1),
    transport_cc: Some(2),
};

/// Why the relay refused something (`sfu_relay_rejected_total{reason}`): a datagram of a link,
/// or a control request about links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayRejectReason {
    /// A datagram from a link's address whose tag does not verify with the link's key.
    Unauthenticated,
    /// A datagram of a link accepted before.
    Replay,
    /// A datagram from a link's address that is not SRTP or SRTCP.
    Malformed,
    /// An authenticated RTP packet of an SSRC the import does not (yet) present.
    UnknownSsrc,
    /// A control request named a link this node does not have.
    UnknownLink,
    /// An import of a link this node imports already, or an export or import to an address
    /// another link uses.
    DuplicateLink,
    /// A control request with an address that is not `ip:port`.
    BadAddress,
    /// An import with keys that are not hex of the profile's lengths.
    BadKeys,
    /// A control request for a room this node does not have.
    UnknownRoom,
}

impl RelayRejectReason {
    /// Every reason, in the order of [`RelayCounts::rejected`].
    pub const ALL: [RelayRejectReason; 9] = [
        RelayRejectReason::Unauthenticated,
        RelayRejectReason::Replay,
        RelayRejectReason::Malformed,
        RelayRejectReason::UnknownSsrc,
        RelayRejectReason::UnknownLink,
        RelayRejectReason::DuplicateLink,
        RelayRejectReason::BadAddress,
        RelayRejectReason::BadKeys,
        RelayRejectReason::UnknownRoom,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            RelayRejectReason::Unauthenticated => "unauthenticated",
            RelayRejectReason::Replay => "replay",
            RelayRejectReason::Malformed => "malformed",
            RelayRejectReason::UnknownSsrc => "unknown_ssrc",
            RelayRejectReason::UnknownLink => "unknown_link",
            RelayRejectReason::DuplicateLink => "duplicate_link",
            RelayRejectReason::BadAddress => "bad_address",
            RelayRejectReason::BadKeys => "bad_keys",
            RelayRejectReason::UnknownRoom => "unknown_room",
        }
    }

    fn index(self) -> usize {
        // `ALL` lists every variant.
        Self::ALL
            .iter()
            .position(|r| *r == self)
            .expect("ALL lists every reason")
    }
}

impl From<RelayRefusal> for RelayRejectReason {
    fn from(r: RelayRefusal) -> Self {
        match r {
            RelayRefusal::Replay => RelayRejectReason::Replay,
            RelayRefusal::Unauthenticated => RelayRejectReason::Unauthenticated,
            _ => RelayRejectReason::Malformed,
        }
    }
}

/// The relay's figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Links this node exports (origin).
    pub origin_links: usize,
    /// Links this node imports (edge).
    pub edge_links: usize,
    /// Datagrams sent on links.
    pub packets_out: u64,
    /// Datagrams taken from links (authenticated).
    pub packets_in: u64,
    /// Bytes of the datagrams sent on links.
    pub bytes_out: u64,
    /// Bytes of the datagrams taken from links.
    pub bytes_in: u64,
    /// Refusals, by [`RelayRejectReason::ALL`]'s order.
    pub rejected: [u64; 9],
}

impl RelayCounts {
    pub(crate) fn reject(&mut self, reason: RelayRejectReason) {
        self.rejected[reason.index()] += 1;
    }
}

/// One end of a link: where its packets go and its SRTP.
pub(crate) struct LinkEnd {
    pub(crate) remote: SocketAddr,
    pub(crate) crypto: RelayCrypto,
}

/// One track an export sends: its SSRC and payload type on the link.
#[derive(Debug, Clone, Copy)]
struct ExportedTrack {
    ssrc: u32,
    payload_type: u8,
}

/// One relayed track an import presents.
#[derive(Debug, Clone)]
struct ImportedEntry {
    track: TrackId,
    publisher: ParticipantId,
    ssrc: u32,
}

enum LinkKind {
    /// This node is the origin: `participant` subscribes to the room's tracks.
    Export {
        participant: ParticipantId,
        tracks: HashMap<TrackId, ExportedTrack>,
    },
    /// This node is the edge: the origin's publishers, by device, and the tracks they present,
    /// by origin track id.
    Import {
        publishers: HashMap<String, ParticipantId>,
        tracks: HashMap<String, ImportedEntry>,
        by_ssrc: HashMap<u32, ParticipantId>,
    },
}

struct Link {
    room: String,
    end: LinkEnd,
    kind: LinkKind,
}

/// The node's relay links (§7.55).
#[derive(Default)]
pub(crate) struct Relays {
    links: HashMap<String, Link>,
    /// Which link a datagram from an address belongs to.
    by_addr: HashMap<SocketAddr, Vec<String>>,
    /// Which import an RTP packet from an origin belongs to, by its address and SSRC (in clear;
    /// an origin's SSRCs are unique on it, so several rooms' links between the same two nodes
    /// do not mix). RTCP, at control rate, is tried against each link from its address.
    by_remote_ssrc: HashMap<(SocketAddr, u32), String>,
    /// Which link a core participant is the relay's (the export's subscriber, the import's
    /// publishers): transmits for it go on that link.
    by_participant: HashMap<ParticipantId, String>,
    pub(crate) counts: RelayCounts,
}

impl Relays {
    /// The link end transmits for core participant `p` go to, with the counters, if `p` is a
    /// relay's participant.
    pub(crate) fn end_for(&mut self, p: ParticipantId) -> Option<(&mut LinkEnd, &mut RelayCounts)> {
        let link = self.by_participant.get(&p)?;
        let link = self.links.get_mut(link)?;
        Some((&mut link.end, &mut self.counts))
    }

    /// The counts for `/metrics`, with the current numbers of links.
    pub(crate) fn snapshot(&self) -> RelayCounts {
        let mut counts = self.counts;
        counts.origin_links = self
            .links
            .values()
            .filter(|l| matches!(l.kind, LinkKind::Export { .. }))
            .count();
        counts.edge_links = self.links.len() - counts.origin_links;
        counts
    }
}

/// The payload type a track has on a link (no SDP negotiates it; both ends read it from the
/// export).
fn link_payload_type(codec: Codec) -> u8 {
    match codec {
        Codec::Opus => 111,
        Codec::Vp8 => 96,
        Codec::Vp9 => 98,
    }
}

fn class_of(kind: TrackKind) -> TrackClass {
    match kind {
        TrackKind::Audio => TrackClass::Audio,
        TrackKind::Camera => TrackClass::Camera,
        TrackKind::Screen => TrackClass::Screen,
    }
}

fn kind_of(class: TrackClass) -> TrackKind {
    match class {
        TrackClass::Audio => TrackKind::Audio,
        TrackClass::Camera => TrackKind::Camera,
        TrackClass::Screen => TrackKind::Screen,
    }
}

/// Parses a media address from a control request: `ip:port`, a port above 0, an address that
/// can receive (not unspecified, not multicast).
pub(crate) fn parse_media_address(text: &str) -> Option<SocketAddr> {
    let addr: SocketAddr = text.parse().ok()?;
    let ip = addr.ip();
    (addr.port() != 0 && !ip.is_unspecified() && !ip.is_multicast()).then_some(addr)
}

impl State {
    fn relay_refuse(&mut self, reason: RelayRejectReason, error: NodeError) -> NodeError {
        self.relays.counts.reject(reason);
        error
    }

    /// Whether `track` is one an import presents here: it is not exported again, so two nodes
    /// never relay a track back and forth.
    fn is_relayed(&self, track: TrackId) -> bool {
        self.tracks
            .get(&track)
            .is_some_and(|e| self.relays.by_participant.contains_key(&e.publisher))
    }

    /// The export's entry for a track, subscribing the export's participant to it.
    fn export_track(
        &mut self,
        now: Instant,
        participant: ParticipantId,
        track: TrackId,
    ) -> Option<ExportedTrack> {
        let entry = self.tracks.get(&track)?;
        let codec = Codec::from_mime(&entry.mime).ok()?;
        let exported = ExportedTrack {
            ssrc: self.allocate_ssrc(),
            payload_type: link_payload_type(codec),
        };
        let down = DownstreamParams {
            ssrc: exported.ssrc,
            payload_type: exported.payload_type,
            // No RTX on the link: the origin answers the edge's NACKs on the media SSRC.
            rtx: None,
            mid: None,
        };
        match self.sfu.subscribe(now, participant, track, down) {
            Ok(_) => Some(exported),
            Err(e) => {
                tracing::debug!(error = %e, "relay subscription refused by the core");
                None
            }
        }
    }

    /// Creates an export of `room` to the edge at `edge_address`.
    fn relay_export(
        &mut self,
        now: Instant,
        origin: SocketAddr,
        room: &str,
        edge_address: &str,
    ) -> Result<RelayExport, NodeError> {
        if self.is_draining() {
            return Err(NodeError::Draining);
        }
        let Some(&room_id) = self.rooms.get(room) else {
            return Err(self.relay_refuse(RelayRejectReason::UnknownRoom, NodeError::UnknownRoom));
        };
        let Some(edge) = parse_media_address(edge_address) else {
            return Err(
                self.relay_refuse(RelayRejectReason::BadAddress, NodeError::BadRelayAddress)
            );
        };
        if self.relay_links_of(room).iter().any(|id| {
            self.relays
                .links
                .get(id)
                .is_some_and(|l| l.end.remote == edge && matches!(l.kind, LinkKind::Export { .. }))
        }) {
            return Err(self.relay_refuse(RelayRejectReason::DuplicateLink, NodeError::LinkExists));
        }
        let participant = self
            .sfu
            .add_participant(room_id, Role::Recorder, LINK_EXTENSIONS)?;
        let down = RelayKeyMaterial::generate();
        let up = RelayKeyMaterial::generate();
        let crypto = RelayCrypto::new(&down, &up).map_err(NodeError::RelayCrypto)?;
        let link = new_link_id();
        let room_tracks: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|(_, e)| {
                self.members
                    .get(&e.publisher)
                    .is_some_and(|m| m.room == room)
            })
            .map(|(t, _)| *t)
            .filter(|t| !self.is_relayed(*t))
            .collect();
        let mut tracks = HashMap::new();
        for t in room_tracks {
            if let Some(exported) = self.export_track(now, participant, t) {
                tracks.insert(t, exported);
            }
        }
        self.relays
            .by_addr
            .entry(edge)
            .or_default()
            .push(link.clone());
        self.relays.by_participant.insert(participant, link.clone());
        self.relays.links.insert(
            link.clone(),
            Link {
                room: room.to_owned(),
                end: LinkEnd {
                    remote: edge,
                    crypto,
                },
                kind: LinkKind::Export {
                    participant,
                    tracks,
                },
            },
        );
        tracing::info!(room, link, %edge, "relay export created");
        let listed = self.export_tracks(&link).unwrap_or_default();
        Ok(RelayExport {
            link,
            origin_media_address: origin.to_string(),
            edge_media_address: edge.to_string(),
            keys: RelayKeys {
                profile: RelayProfile::AeadAes128Gcm,
                origin_to_edge: down.to_wire(),
                edge_to_origin: up.to_wire(),
            },
            tracks: listed.tracks,
        })
    }

    /// The tracks export `link` carries now.
    fn export_tracks(&self, link: &str) -> Option<RelayTracks> {
        let Some(Link {
            kind: LinkKind::Export { tracks, .. },
            ..
        }) = self.relays.links.get(link)
        else {
            return None;
        };
        let mut listed: Vec<RelayTrack> = tracks
            .iter()
            .filter_map(|(t, e)| {
                let entry = self.tracks.get(t)?;
                let device = self.members.get(&entry.publisher)?.device.clone();
                Some(RelayTrack {
                    track: track_name(*t),
                    publisher: device,
                    kind: class_of(entry.kind),
                    mime: entry.mime.clone(),
                    ssrc: e.ssrc,
                    payload_type: e.payload_type,
                })
            })
            .collect();
        listed.sort_by(|a, b| a.track.cmp(&b.track));
        Some(RelayTracks { tracks: listed })
    }

    /// A track was published in `room`: every export of the room sends it too.
    pub(crate) fn relay_track_published(&mut self, now: Instant, room: RoomId, track: TrackId) {
        let Some(name) = self.room_names.get(&room).cloned() else {
            return;
        };
        let exports: Vec<(String, ParticipantId)> = self
            .relays
            .links
            .iter()
            .filter_map(|(id, l)| match &l.kind {
                LinkKind::Export { participant, .. } if l.room == name => {
                    Some((id.clone(), *participant))
                }
                _ => None,
            })
            .collect();
        if self.is_relayed(track) {
            return;
        }
        for (link, participant) in exports {
            let Some(exported) = self.export_track(now, participant, track) else {
                continue;
            };
            if let Some(Link {
                kind: LinkKind::Export { tracks, .. },
                ..
            }) = self.relays.links.get_mut(&link)
            {
                tracks.insert(track, exported);
            }
        }
    }

    /// A track went away: no export sends it any more (the core dropped the subscriptions).
    pub(crate) fn relay_track_unpublished(&mut self, track: TrackId) {
        for link in self.relays.links.values_mut() {
            if let LinkKind::Export { tracks, .. } = &mut link.kind {
                tracks.remove(&track);
            }
        }
    }

    /// Creates the import of `export` into `room`.
    fn relay_import(
        &mut self,
        now: Instant,
        room: &str,
        export: RelayExport,
    ) -> Result<RelayImported, NodeError> {
        if self.is_draining() {
            return Err(NodeError::Draining);
        }
        let Some(&room_id) = self.rooms.get(room) else {
            return Err(self.relay_refuse(RelayRejectReason::UnknownRoom, NodeError::UnknownRoom));
        };
        let Some(origin) = parse_media_address(&export.origin_media_address) else {
            return Err(
                self.relay_refuse(RelayRejectReason::BadAddress, NodeError::BadRelayAddress)
            );
        };
        let imported_already = self.relay_links_of(room).iter().any(|id| {
            self.relays.links.get(id).is_some_and(|l| {
                l.end.remote == origin && matches!(l.kind, LinkKind::Import { .. })
            })
        });
        if self.relays.links.contains_key(&export.link) || imported_already {
            return Err(self.relay_refuse(RelayRejectReason::DuplicateLink, NodeError::LinkExists));
        }
        let keys = &export.keys;
        let (down, up) = match (
            RelayKeyMaterial::from_wire(keys.profile, &keys.origin_to_edge),
            RelayKeyMaterial::from_wire(keys.profile, &keys.edge_to_origin),
        ) {
            (Ok(down), Ok(up)) => (down, up),
            _ => {
                return Err(self.relay_refuse(RelayRejectReason::BadKeys, NodeError::BadRelayKeys));
            }
        };
        for t in &export.tracks {
            if self
                .devices
                .contains_key(&(room.to_owned(), t.publisher.clone()))
            {
                return Err(NodeError::ParticipantExists);
            }
        }
        let crypto = RelayCrypto::new(&up, &down).map_err(NodeError::RelayCrypto)?;
        let link = export.link.clone();
        self.relays
            .by_addr
            .entry(origin)
            .or_default()
            .push(link.clone());
        self.relays.links.insert(
            link.clone(),
            Link {
                room: room.to_owned(),
                end: LinkEnd {
                    remote: origin,
                    crypto,
                },
                kind: LinkKind::Import {
                    publishers: HashMap::new(),
                    tracks: HashMap::new(),
                    by_ssrc: HashMap::new(),
                },
            },
        );
        tracing::info!(room, link, %origin, "relay import created");
        self.relay_sync_import(now, room_id, &link, export.tracks)
    }

    /// Makes import `link` present exactly `wanted`: new tracks published (by their
    /// publisher's device, added when new), gone ones unpublished, publishers left with no
    /// track removed.
    fn relay_sync_import(
        &mut self,
        now: Instant,
        room_id: RoomId,
        link: &str,
        wanted: Vec<RelayTrack>,
    ) -> Result<RelayImported, NodeError> {
        let Some(l) = self.relays.links.get(link) else {
            return Err(self.relay_refuse(RelayRejectReason::UnknownLink, NodeError::UnknownLink));
        };
        let LinkKind::Import { tracks, .. } = &l.kind else {
            return Err(self.relay_refuse(RelayRejectReason::UnknownLink, NodeError::UnknownLink));
        };
        let room = l.room.clone();
        let gone: Vec<String> = tracks
            .keys()
            .filter(|t| !wanted.iter().any(|w| &w.track == *t))
            .cloned()
            .collect();
        for origin_track in gone {
            self.relay_unimport_track(now, link, &origin_track);
        }
        for t in wanted {
            if let Err(e) = self.relay_import_track(now, room_id, &room, link, t) {
                tracing::debug!(error = %e, link, "relayed track not presented");
            }
        }
        self.relay_drop_idle_publishers(now, link);
        Ok(self.imported(link))
    }

    fn imported(&self, link: &str) -> RelayImported {
        let mut tracks = Vec::new();
        if let Some(Link {
            kind: LinkKind::Import { tracks: t, .. },
            ..
        }) = self.relays.links.get(link)
        {
            for (origin_track, e) in t {
                let publisher = self
                    .members
                    .get(&e.publisher)
                    .map(|m| m.device.clone())
                    .unwrap_or_default();
                tracks.push(ImportedTrack {
                    origin_track: origin_track.clone(),
                    track: track_name(e.track),
                    publisher,
                });
            }
        }
        tracks.sort_by(|a, b| a.origin_track.cmp(&b.origin_track));
        RelayImported {
            link: link.to_owned(),
            tracks,
        }
    }

    /// Presents one relayed track on the edge (nothing when it is there already).
    fn relay_import_track(
        &mut self,
        now: Instant,
        room_id: RoomId,
        room: &str,
        link: &str,
        t: RelayTrack,
    ) -> Result<(), NodeError> {
        let Some(Link {
            kind: LinkKind::Import {
                publishers, tracks, ..
            },
            ..
        }) = self.relays.links.get(link)
        else {
            return Err(NodeError::UnknownLink);
        };
        if tracks.contains_key(&t.track) {
            return Ok(());
        }
        if parse_track(&t.track).is_none() {
            return Err(NodeError::UnknownTrack);
        }
        let codec = Codec::from_mime(&t.mime)?;
        let publisher = match publishers.get(&t.publisher) {
            Some(p) => *p,
            None => {
                if self
                    .devices
                    .contains_key(&(room.to_owned(), t.publisher.clone()))
                {
                    return Err(NodeError::ParticipantExists);
                }
                let p = match self
                    .sfu
                    .add_participant(room_id, Role::Caller, LINK_EXTENSIONS)
                {
                    Err(sfu_forwarding::Error::RoleNotAllowed) => {
                        self.sfu
                            .add_participant(room_id, Role::Presenter, LINK_EXTENSIONS)?
                    }
                    other => other?,
                };
                self.add_member(p, relayed_member(room, &t.publisher));
                self.relays.by_participant.insert(p, link.to_owned());
                if let Some(Link {
                    kind: LinkKind::Import { publishers, .. },
                    ..
                }) = self.relays.links.get_mut(link)
                {
                    publishers.insert(t.publisher.clone(), p);
                }
                p
            }
        };
        let kind = kind_of(t.kind);
        let spec = TrackSpec {
            kind,
            codec,
            mid: t.track.clone(),
            payload_type: t.payload_type,
            rtx_payload_type: None,
            layers: vec![LayerSpec {
                ssrc: Some(t.ssrc),
                ..LayerSpec::default()
            }],
        };
        let id = self.sfu.publish(now, publisher, spec)?;
        self.tracks.insert(
            id,
            TrackEntry {
                publisher,
                kind,
                mime: t.mime.clone(),
            },
        );
        if let Some(m) = self.members.get_mut(&publisher) {
            m.published_mids.insert(t.track.clone(), id);
        }
        if let Some(Link {
            end,
            kind: LinkKind::Import {
                tracks, by_ssrc, ..
            },
            ..
        }) = self.relays.links.get_mut(link)
        {
            by_ssrc.insert(t.ssrc, publisher);
            self.relays
                .by_remote_ssrc
                .insert((end.remote, t.ssrc), link.to_owned());
            tracks.insert(
                t.track,
                ImportedEntry {
                    track: id,
                    publisher,
                    ssrc: t.ssrc,
                },
            );
        }
        Ok(())
    }

    /// Stops presenting one relayed track on the edge.
    fn relay_unimport_track(&mut self, now: Instant, link: &str, origin_track: &str) {
        let Some(Link {
            end,
            kind: LinkKind::Import {
                tracks, by_ssrc, ..
            },
            ..
        }) = self.relays.links.get_mut(link)
        else {
            return;
        };
        let Some(entry) = tracks.remove(origin_track) else {
            return;
        };
        by_ssrc.remove(&entry.ssrc);
        self.relays.by_remote_ssrc.remove(&(end.remote, entry.ssrc));
        if let Some(m) = self.members.get_mut(&entry.publisher) {
            m.published_mids.remove(origin_track);
        }
        // The core reports `TrackUnpublished`, which removes it from subscribers and the maps.
        let _ = self.sfu.unpublish(now, entry.track);
    }

    /// Removes the import's publishers that present no track any more.
    fn relay_drop_idle_publishers(&mut self, now: Instant, link: &str) {
        let Some(Link {
            kind: LinkKind::Import {
                publishers, tracks, ..
            },
            ..
        }) = self.relays.links.get_mut(link)
        else {
            return;
        };
        let idle: Vec<(String, ParticipantId)> = publishers
            .iter()
            .filter(|(_, p)| !tracks.values().any(|e| e.publisher == **p))
            .map(|(d, p)| (d.clone(), *p))
            .collect();
        for (device, _) in &idle {
            publishers.remove(device);
        }
        for (_, p) in idle {
            self.relay_forget_publisher(now, p);
        }
    }

    /// Participant `p` left the node some other way (removed over the control API, its room
    /// closed): if it was an import's publisher, the import forgets it and its tracks, so a
    /// later `PUT` of the export's list presents them again.
    pub(crate) fn relay_participant_forgotten(&mut self, p: ParticipantId) {
        let Some(link) = self.relays.by_participant.remove(&p) else {
            return;
        };
        let Some(Link {
            end,
            kind:
                LinkKind::Import {
                    publishers,
                    tracks,
                    by_ssrc,
                },
            ..
        }) = self.relays.links.get_mut(&link)
        else {
            return;
        };
        publishers.retain(|_, q| *q != p);
        let remote = end.remote;
        let by_remote_ssrc = &mut self.relays.by_remote_ssrc;
        tracks.retain(|_, e| {
            if e.publisher != p {
                return true;
            }
            by_ssrc.remove(&e.ssrc);
            by_remote_ssrc.remove(&(remote, e.ssrc));
            false
        });
    }

    fn relay_forget_publisher(&mut self, now: Instant, p: ParticipantId) {
        self.relays.by_participant.remove(&p);
        if let Some(member) = self.forget(now, p) {
            self.after_drain.push(NodeEvent::ParticipantGone {
                room: member.room,
                device: member.device,
                reason: "relay_ended".to_owned(),
                session: None,
            });
        }
    }

    /// Deletes link `link` (export or import): forwarding on it stops, and an import's
    /// publishers leave the edge room (their tracks unpublished).
    pub(crate) fn relay_delete(&mut self, now: Instant, link: &str) -> Result<(), NodeError> {
        let Some(l) = self.relays.links.remove(link) else {
            return Err(self.relay_refuse(RelayRejectReason::UnknownLink, NodeError::UnknownLink));
        };
        if let Some(ids) = self.relays.by_addr.get_mut(&l.end.remote) {
            ids.retain(|id| id != link);
            if ids.is_empty() {
                self.relays.by_addr.remove(&l.end.remote);
            }
        }
        match l.kind {
            LinkKind::Export { participant, .. } => {
                self.relays.by_participant.remove(&participant);
                // Already gone with its room is fine.
                let _ = self.sfu.remove_participant(now, participant);
            }
            LinkKind::Import {
                publishers, tracks, ..
            } => {
                for e in tracks.values() {
                    self.relays.by_remote_ssrc.remove(&(l.end.remote, e.ssrc));
                }
                for p in publishers.into_values() {
                    self.relay_forget_publisher(now, p);
                }
            }
        }
        tracing::info!(link, room = l.room, "relay link deleted");
        Ok(())
    }

    /// Tells the edge of each export in `links` that the export ends: an RTCP BYE on the
    /// link, protected with its key (sent [`GOODBYE_COPIES`] times, each a new SRTCP packet, as
    /// UDP may lose one). The edge frees its import on the first it authenticates.
    pub(crate) fn relay_say_goodbye(&mut self, links: &[String], out: &mut Outbox<'_>) {
        let bye = goodbye_packet();
        for id in links {
            let Some(Link {
                end,
                kind: LinkKind::Export { .. },
                ..
            }) = self.relays.links.get_mut(id)
            else {
                continue;
            };
            for _ in 0..GOODBYE_COPIES {
                if let Ok(size) = out.send_relay_rtcp(end.remote, &mut end.crypto, &bye) {
                    self.relays.counts.packets_out += 1;
                    self.relays.counts.bytes_out += size as u64;
                }
            }
        }
    }

    /// The links of room `room`.
    pub(crate) fn relay_links_of(&self, room: &str) -> Vec<String> {
        self.relays
            .links
            .iter()
            .filter(|(_, l)| l.room == room)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Room `room` is closing: its links go with it.
    pub(crate) fn relay_room_closed(&mut self, now: Instant, room: &str) {
        for link in self.relay_links_of(room) {
            let _ = self.relay_delete(now, &link);
        }
    }

    /// A datagram from an address no peer proved: taken when it is a link's remote address
    /// (authenticated with the link's keys and handed to the core), `false` otherwise. RTP is
    /// an import's by its SSRC; RTCP (control rate) is tried against each link from the
    /// address until one authenticates it.
    pub(crate) fn on_relay_datagram(
        &mut self,
        src: SocketAddr,
        data: &mut [u8],
        now: Instant,
        arrival: Instant,
    ) -> bool {
        if !self.relays.by_addr.contains_key(&src) {
            return false;
        }
        if data.len() >= 8 && rtc::shared::util::is_rtcp(data) {
            self.on_relay_rtcp(src, data, now, arrival);
        } else {
            self.on_relay_rtp(src, data, now, arrival);
        }
        true
    }

    fn on_relay_rtp(&mut self, src: SocketAddr, data: &mut [u8], now: Instant, arrival: Instant) {
        let relays = &mut self.relays;
        let Some(ssrc) = data
            .get(8..12)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        else {
            relays.counts.reject(RelayRejectReason::Malformed);
            return;
        };
        let link = relays
            .by_remote_ssrc
            .get(&(src, ssrc))
            .and_then(|id| relays.links.get_mut(id));
        let Some(Link {
            end,
            kind: LinkKind::Import { by_ssrc, .. },
            ..
        }) = link
        else {
            relays.counts.reject(RelayRejectReason::UnknownSsrc);
            return;
        };
        let size = data.len() as u64;
        let len = match end.crypto.unprotect(data) {
            Ok(Unprotected::Rtp(len)) => len,
            Ok(Unprotected::Rtcp(_)) => {
                relays.counts.reject(RelayRejectReason::Malformed);
                return;
            }
            Err(refusal) => {
                relays.counts.reject(refusal.into());
                return;
            }
        };
        let Some(&from) = by_ssrc.get(&ssrc) else {
            relays.counts.reject(RelayRejectReason::UnknownSsrc);
            return;
        };
        relays.counts.packets_in += 1;
        relays.counts.bytes_in += size;
        // Refused packets are counted by the core, as for a peer's.
        let _ =
            self.sfu
                .handle_rtp_arrived(now, arrival, from, Bytes::copy_from_slice(&data[..len]));
    }

    fn on_relay_rtcp(&mut self, src: SocketAddr, data: &[u8], now: Instant, arrival: Instant) {
        let size = data.len() as u64;
        let ids = self.relays.by_addr.get(&src).cloned().unwrap_or_default();
        let mut refusal = RelayRejectReason::Unauthenticated;
        let mut taken = None;
        for id in ids {
            let Some(link) = self.relays.links.get_mut(&id) else {
                continue;
            };
            // SRTCP is decrypted into a buffer of its own: a wrong key leaves `data` as it was.
            match link.end.crypto.unprotect_rtcp(data) {
                Ok(rtcp) => {
                    taken = Some((id, rtcp));
                    break;
                }
                Err(RelayRefusal::Replay) => refusal = RelayRejectReason::Replay,
                Err(_) => {}
            }
        }
        let Some((id, rtcp)) = taken else {
            self.relays.counts.reject(refusal);
            return;
        };
        self.relays.counts.packets_in += 1;
        self.relays.counts.bytes_in += size;
        let Some(link) = self.relays.links.get(&id) else {
            return;
        };
        let from = match &link.kind {
            LinkKind::Import { .. } if is_goodbye(&rtcp) => {
                // The origin ended the export: the import goes with it.
                let _ = self.relay_delete(now, &id);
                return;
            }
            LinkKind::Export { participant, .. } => Some(*participant),
            // The origin's reports name the sender's SSRC: the publisher of that stream.
            LinkKind::Import { by_ssrc, .. } => rtcp
                .get(4..8)
                .and_then(|s| by_ssrc.get(&u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
                .copied(),
        };
        if let Some(from) = from {
            let _ = self.sfu.handle_rtcp(arrival, from, &rtcp);
        }
    }
}

/// A fresh link id: random, so that links from several origins never share one at an edge.
fn new_link_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    // The system generator fails only when the OS has none, where nothing secure can run.
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random generator works");
    format!("l{:016x}", u64::from_be_bytes(bytes))
}

/// How many copies of the goodbye an ending export sends.
const GOODBYE_COPIES: usize = 3;

/// The SSRC an export's goodbye names (the cores' own RTCP SSRC is 1; this one is the link's).
const GOODBYE_SSRC: u32 = 0x5245_4c59;

/// An RTCP BYE (RFC 3550 §6.6) naming [`GOODBYE_SSRC`]: an export ends.
fn goodbye_packet() -> [u8; 8] {
    let ssrc = GOODBYE_SSRC.to_be_bytes();
    [0x81, 203, 0, 1, ssrc[0], ssrc[1], ssrc[2], ssrc[3]]
}

/// Whether an authenticated RTCP compound packet of a link is an export's goodbye.
fn is_goodbye(rtcp: &[u8]) -> bool {
    rtcp.len() >= 8 && rtcp[1] == 203 && rtcp[4..8] == GOODBYE_SSRC.to_be_bytes()
}

/// The member an import's publisher is on the edge: the origin publisher's device, no peer.
fn relayed_member(room: &str, device: &str) -> Member {
    Member {
        room: room.to_owned(),
        device: device.to_owned(),
        session: None,
        peer: None,
        can_publish: true,
        subs: HashMap::new(),
        published_mids: HashMap::new(),
        screen_mids: Default::default(),
        simulcast: HashMap::new(),
        last_offer: Default::default(),
        slots: None,
        screen: None,
        join: JoinProgress::default(),
    }
}

/// Sends a transmit of the core on a relay link.
pub(crate) fn send_on_link(
    out: &mut Outbox<'_>,
    end: &mut LinkEnd,
    counts: &mut RelayCounts,
    t: sfu_forwarding::Transmit,
) -> bool {
    let sent = match t {
        sfu_forwarding::Transmit::Rtp {
            header, payload, ..
        } => out.send_relay_rtp(end.remote, &mut end.crypto, header.as_slice(), &payload),
        sfu_forwarding::Transmit::Rtcp { packet, .. } => {
            out.send_relay_rtcp(end.remote, &mut end.crypto, &packet)
        }
    };
    match sent {
        Ok(size) => {
            counts.packets_out += 1;
            counts.bytes_out += size as u64;
            true
        }
        Err(_) => false,
    }
}

type Shard<'a, 'b> = &'a mut ShardAccess<'b, Glue>;

impl NodeHandle {
    /// Creates an export of `room` to the edge node whose media address is `edge_address`
    /// (§7.55) and answers what the edge needs to import it. The link's packets go only to
    /// that address, and only its datagrams that authenticate are taken.
    pub async fn relay_export(
        &self,
        room: &str,
        edge_address: &str,
    ) -> Result<RelayExport, NodeError> {
        let (room, edge_address) = (room.to_owned(), edge_address.to_owned());
        let origin = self.udp_addr();
        self.on_shard(move |s: Shard<'_, '_>| {
            let now = s.now();
            s.handler()
                .state
                .relay_export(now, origin, &room, &edge_address)
        })
        .await?
    }

    /// The tracks export `link` carries now (to put to the edge's import after a
    /// `track_published` or `track_unpublished` of the room on this node).
    pub async fn relay_export_tracks(&self, link: &str) -> Result<RelayTracks, NodeError> {
        let link = link.to_owned();
        self.on_shard(move |s: Shard<'_, '_>| {
            let state = &mut s.handler().state;
            match state.export_tracks(&link) {
                Some(tracks) => Ok(tracks),
                None => {
                    Err(state.relay_refuse(RelayRejectReason::UnknownLink, NodeError::UnknownLink))
                }
            }
        })
        .await?
    }

    /// Imports into `room` the link an origin node's export answered (§7.55): the origin's
    /// publishers join the room under their own device ids and publish the relayed tracks.
    pub async fn relay_import(
        &self,
        room: &str,
        export: RelayExport,
    ) -> Result<RelayImported, NodeError> {
        let room = room.to_owned();
        self.on_shard(move |s: Shard<'_, '_>| {
            let now = s.now();
            s.handler().state.relay_import(now, &room, export)
        })
        .await?
    }

    /// Makes import `link` present exactly `tracks` (the origin export's current list).
    pub async fn relay_sync_import(
        &self,
        link: &str,
        tracks: RelayTracks,
    ) -> Result<RelayImported, NodeError> {
        let link = link.to_owned();
        self.on_shard(move |s: Shard<'_, '_>| {
            let now = s.now();
            let state = &mut s.handler().state;
            let room_id = match state.relays.links.get(&link) {
                Some(Link {
                    room,
                    kind: LinkKind::Import { .. },
                    ..
                }) => state.rooms.get(room).copied(),
                _ => None,
            };
            let Some(room_id) = room_id else {
                return Err(
                    state.relay_refuse(RelayRejectReason::UnknownLink, NodeError::UnknownLink)
                );
            };
            state.relay_sync_import(now, room_id, &link, tracks.tracks)
        })
        .await?
    }

    /// Deletes export `link` (on the origin) or import `link` (on the edge); `export` says
    /// which the caller means, and the other kind of link of that name is not touched.
    pub async fn relay_delete(&self, link: &str, export: bool) -> Result<(), NodeError> {
        let link = link.to_owned();
        self.on_shard(move |s: Shard<'_, '_>| {
            let now = s.now();
            let state = &mut s.handler().state;
            let is_export = state
                .relays
                .links
                .get(&link)
                .map(|l| matches!(l.kind, LinkKind::Export { .. }));
            if is_export != Some(export) {
                return Err(
                    state.relay_refuse(RelayRejectReason::UnknownLink, NodeError::UnknownLink)
                );
            }
            let (glue, mut out) = s.handler_and_outbox();
            glue.state
                .relay_say_goodbye(std::slice::from_ref(&link), &mut out);
            glue.state.relay_delete(now, &link)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_addresses_are_ip_and_port_that_can_receive() {
        assert!(parse_media_address("127.0.0.1:5000").is_some());
        assert!(parse_media_address("[::1]:5000").is_some());
        for bad in [
            "",
            "127.0.0.1",
            "127.0.0.1:0",
            "0.0.0.0:5000",
            "239.1.1.1:5000",
            "localhost:5000",
            "127.0.0.1:70000",
        ] {
            assert!(parse_media_address(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_the_goodbye_is_a_goodbye() {
        assert!(is_goodbye(&goodbye_packet()));
        // A BYE of another SSRC (a publisher's), a receiver report, short input.
        assert!(!is_goodbye(&[0x81, 203, 0, 1, 0, 0, 0, 9]));
        assert!(!is_goodbye(&[0x81, 201, 0, 1, 0x52, 0x45, 0x4c, 0x59]));
        assert!(!is_goodbye(&goodbye_packet()[..7]));
    }

    #[test]
    fn every_reject_reason_has_its_own_counter_and_label() {
        let mut counts = RelayCounts::default();
        for (i, r) in RelayRejectReason::ALL.iter().enumerate() {
            counts.reject(*r);
            assert_eq!(counts.rejected[i], 1, "{}", r.label());
        }
        let mut labels: Vec<_> = RelayRejectReason::ALL.iter().map(|r| r.label()).collect();
        labels.dedup();
        assert_eq!(labels.len(), RelayRejectReason::ALL.len());
    }
}
