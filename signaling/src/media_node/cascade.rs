//! A broadcast spread over several SFU nodes of a pool (docs/architecture.md §7.57): the room
//! lives on its *origin* node; viewers the origin has no room for are seated on *edge* nodes,
//! each fed by one SFU-to-SFU relay link (§7.55) the pool sets up and keeps in step.
//!
//! This file holds what the pool keeps per room for that (who is seated on which node, each
//! edge's link and its origin track → edge track mapping), the seating rule, and how an event a
//! node sends about a spread room is routed. The pool (`pool.rs`) runs the control calls.
//!
//! Seating: a publisher (anyone who may publish) always on the origin; a broadcast viewer on the
//! origin while it has room, else on the first edge of the room with room, else on a new edge
//! (the pool's placement rule among the nodes with room that hold no copy of the room yet).
//! "Room" on a node: by its registry record, `participants < capacity` (not draining), where
//! participants is the larger of what the record says and the media sessions this pool seated
//! there (the record lags the joins by a heartbeat). A device keeps its node for every later
//! call; a device whose session was reset is seated again.
//!
//! Events of an edge: its `track_published`/`track_unpublished` (the relayed tracks, which the
//! origin's events announce already) and its `speakers` (the origin hears the publishers) are
//! dropped; events about a device seated on that edge pass, a `subscriptions_live` with its
//! edge track ids translated back to the origin's; events about any other device (the relayed
//! publishers, named by their own device ids) are dropped. An edge's `media_reset` (it
//! restarted and lost the import) counts as the edge lost; the origin's (it restarted and lost
//! the exports) closes the edges and gives up every seat before the room is reset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sfu_control_api::relay::RelayImported;

use super::{MediaEvent, MediaSessionId};
use crate::protocol::Subscription;

/// Where the media sessions of one room's devices are, and the room's edges.
#[derive(Debug, Default)]
pub(super) struct Cascade {
    /// Device → the node holding its current media session.
    pub(super) seats: HashMap<String, Seat>,
    /// The edge nodes holding a copy of the room, each fed by one link from the origin.
    pub(super) edges: Vec<Edge>,
}

/// One device's media session on a node.
#[derive(Debug)]
pub(super) struct Seat {
    /// Index of the node in the pool.
    pub(super) node: usize,
    /// The session seated.
    pub(super) session: MediaSessionId,
    /// On an edge: the subscriptions it asked for, by origin track ids (applied again when the
    /// edge's tracks change).
    pub(super) asked: Vec<Subscription>,
}

/// One edge node of a room.
#[derive(Debug)]
pub(super) struct Edge {
    /// Index of the node in the pool.
    pub(super) node: usize,
    /// The relay link's id (names the export on the origin and the import on the edge).
    pub(super) link: String,
    /// Origin track id → edge track id.
    tracks: HashMap<String, String>,
}

impl Edge {
    pub(super) fn new(node: usize, imported: &RelayImported) -> Edge {
        let mut edge = Edge {
            node,
            link: imported.link.clone(),
            tracks: HashMap::new(),
        };
        edge.set_tracks(imported);
        edge
    }

    /// The tracks the import presents now (its answer to a `PUT` of the export's tracks).
    pub(super) fn set_tracks(&mut self, imported: &RelayImported) {
        self.tracks = imported
            .tracks
            .iter()
            .map(|t| (t.origin_track.clone(), t.track.clone()))
            .collect();
    }

    /// Subscriptions by origin track ids, as the edge names the tracks; a track the edge does
    /// not present yet is left out (applied once it does).
    pub(super) fn to_edge(&self, asked: &[Subscription]) -> Vec<Subscription> {
        asked
            .iter()
            .filter_map(|s| {
                self.tracks.get(&s.track).map(|t| Subscription {
                    track: t.clone(),
                    ..s.clone()
                })
            })
            .collect()
    }

    /// Edge track ids as the origin (and so the room's clients) names them.
    fn to_origin(&self, tracks: Vec<String>) -> Vec<String> {
        tracks
            .into_iter()
            .filter_map(|edge_track| {
                self.tracks
                    .iter()
                    .find(|(_, t)| **t == edge_track)
                    .map(|(origin, _)| origin.clone())
            })
            .collect()
    }
}

impl Cascade {
    /// The node `device` should be seated on, or `None` when a new edge is needed.
    /// `has_room(node)` says whether a node takes one more media session, `usable(node)`
    /// whether it is reachable.
    pub(super) fn seat_for(
        &self,
        origin: usize,
        device: &str,
        viewer: bool,
        has_room: impl Fn(usize) -> bool,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        if !viewer {
            return Some(origin);
        }
        if let Some(seat) = self.seats.get(device)
            && usable(seat.node)
            && (seat.node == origin || self.edges.iter().any(|e| e.node == seat.node))
        {
            return Some(seat.node);
        }
        if has_room(origin) {
            return Some(origin);
        }
        self.edges
            .iter()
            .map(|e| e.node)
            .find(|&n| usable(n) && has_room(n))
    }

    /// The nodes holding a copy of the room (origin first).
    pub(super) fn nodes(&self, origin: usize) -> Vec<usize> {
        std::iter::once(origin)
            .chain(self.edges.iter().map(|e| e.node))
            .collect()
    }

    /// Removes edge `node` and the seats on it; returns its link and the devices seated there.
    pub(super) fn remove_edge(&mut self, node: usize) -> Option<(String, Vec<String>)> {
        let at = self.edges.iter().position(|e| e.node == node)?;
        let edge = self.edges.remove(at);
        let devices: Vec<String> = self
            .seats
            .iter()
            .filter(|(_, s)| s.node == node)
            .map(|(d, _)| d.clone())
            .collect();
        for d in &devices {
            self.seats.remove(d);
        }
        Some((edge.link, devices))
    }

    /// Removes edge `node` when it is still the one of `link` and nobody is seated there;
    /// whether it did.
    pub(super) fn remove_empty_edge(&mut self, node: usize, link: &str) -> bool {
        let empty = !self.seats.values().any(|s| s.node == node);
        match self
            .edges
            .iter()
            .position(|e| e.node == node && e.link == link)
        {
            Some(at) if empty => {
                self.edges.remove(at);
                true
            }
            _ => false,
        }
    }

    /// The link of edge `node` when nobody is seated there.
    pub(super) fn empty_edge_link(&self, node: usize) -> Option<String> {
        if self.seats.values().any(|s| s.node == node) {
            return None;
        }
        self.edges
            .iter()
            .find(|e| e.node == node)
            .map(|e| e.link.clone())
    }

    /// The devices seated on `node`, sorted.
    pub(super) fn devices_on(&self, node: usize) -> Vec<String> {
        let mut devices: Vec<String> = self
            .seats
            .iter()
            .filter(|(_, s)| s.node == node)
            .map(|(d, _)| d.clone())
            .collect();
        devices.sort();
        devices
    }
}

/// What becomes of an event a node sent about a room.
#[derive(Debug)]
pub(super) enum Route {
    /// Pass it on.
    Pass(MediaEvent),
    /// Pass it on and bring the room's edges in step with the origin's tracks.
    PassAndSync(MediaEvent),
    /// The origin lost the room's media state (it restarted): its exports are gone, so the
    /// edges are closed and every seat given up before the reset is passed on.
    PassAfterClosingEdges(MediaEvent),
    /// Drop it.
    Drop,
    /// The edge lost the room's copy (it restarted): handle it as a lost edge.
    EdgeLost,
}

/// Routes `event` from node `from` about a room whose origin is `origin`.
pub(super) fn route(origin: usize, cascade: &Cascade, from: usize, event: MediaEvent) -> Route {
    if from == origin {
        return match event {
            MediaEvent::TrackPublished { .. } | MediaEvent::TrackUnpublished { .. }
                if !cascade.edges.is_empty() =>
            {
                Route::PassAndSync(event)
            }
            MediaEvent::MediaReset { .. } => Route::PassAfterClosingEdges(event),
            _ => Route::Pass(event),
        };
    }
    let Some(edge) = cascade.edges.iter().find(|e| e.node == from) else {
        return Route::Drop;
    };
    let seated_here = |device: &str| cascade.seats.get(device).is_some_and(|s| s.node == from);
    match event {
        MediaEvent::MediaReset { .. } => Route::EdgeLost,
        MediaEvent::SubscriptionsLive {
            room,
            device,
            tracks,
        } if seated_here(&device) => Route::Pass(MediaEvent::SubscriptionsLive {
            room,
            tracks: edge.to_origin(tracks),
            device,
        }),
        _ if device_of(&event).is_some_and(seated_here) => Route::Pass(event),
        _ => Route::Drop,
    }
}

/// The device an event about one device's media session names.
fn device_of(event: &MediaEvent) -> Option<&str> {
    match event {
        MediaEvent::Offer { device, .. }
        | MediaEvent::Quality { device, .. }
        | MediaEvent::Slots { device, .. }
        | MediaEvent::ParticipantGone { device, .. } => Some(device),
        _ => None,
    }
}

/// Whether a room is an origin or an edge copy on a node (admin API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CascadeRole {
    /// The room's own node: its publishers and the viewers it had room for.
    Origin,
    /// A copy fed by a relay link from the origin: viewers only.
    Edge,
}

/// A room on one node of a pool, as the admin API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRoom {
    /// Room name.
    pub room: String,
    /// Origin or edge.
    pub role: CascadeRole,
    /// The devices whose current media session the node holds, sorted.
    pub devices: Vec<String>,
}

/// What a pool counted of the relays it drove (`signaling_relay_*`,
/// `signaling_edge_failovers_total`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Relay links up now (one per edge of a room).
    pub links: u64,
    /// Edges set up (room created on the edge, exported, imported).
    pub setups_ok: u64,
    /// Edge setups that failed (the node was then skipped).
    pub setups_failed: u64,
    /// Track syncs (export's tracks put to the import) that succeeded.
    pub syncs_ok: u64,
    /// Track syncs that failed.
    pub syncs_failed: u64,
    /// Edges lost (killed, unreachable past the failover delay, restarted): their viewers
    /// were reset.
    pub edge_failovers: u64,
    /// Edges closed after their last viewer left (and none came within the linger time).
    pub edges_closed: u64,
}

/// The pool's relay counters.
#[derive(Debug, Default)]
pub(super) struct RelayCounters {
    pub(super) setups_ok: AtomicU64,
    pub(super) setups_failed: AtomicU64,
    pub(super) syncs_ok: AtomicU64,
    pub(super) syncs_failed: AtomicU64,
    pub(super) edge_failovers: AtomicU64,
    pub(super) edges_closed: AtomicU64,
}

impl RelayCounters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self, links: u64) -> RelayCounts {
        RelayCounts {
            links,
            setups_ok: self.setups_ok.load(Ordering::Relaxed),
            setups_failed: self.setups_failed.load(Ordering::Relaxed),
            syncs_ok: self.syncs_ok.load(Ordering::Relaxed),
            syncs_failed: self.syncs_failed.load(Ordering::Relaxed),
            edge_failovers: self.edge_failovers.load(Ordering::Relaxed),
            edges_closed: self.edges_closed.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu_control_api::relay::ImportedTrack;

    fn edge(node: usize) -> Edge {
        Edge::new(
            node,
            &RelayImported {
                link: format!("l{node}"),
                tracks: vec![ImportedTrack {
                    origin_track: "t-origin".into(),
                    track: "t-edge".into(),
                    publisher: "presenter".into(),
                }],
            },
        )
    }

    fn seat(node: usize) -> Seat {
        Seat {
            node,
            session: MediaSessionId(node as u64),
            asked: Vec::new(),
        }
    }

    #[test]
    fn viewers_fill_the_origin_then_each_edge_and_publishers_stay_on_the_origin() {
        let mut c = Cascade::default();
        assert_eq!(c.seat_for(0, "p", false, |_| false, |_| true), Some(0));
        assert_eq!(c.seat_for(0, "v", true, |_| true, |_| true), Some(0));
        assert_eq!(
            c.seat_for(0, "v", true, |_| false, |_| true),
            None,
            "a new edge"
        );
        c.edges.push(edge(1));
        c.edges.push(edge(2));
        assert_eq!(c.seat_for(0, "v", true, |n| n == 2, |_| true), Some(2));
        c.seats.insert("v".into(), seat(1));
        assert_eq!(
            c.seat_for(0, "v", true, |_| false, |_| true),
            Some(1),
            "kept"
        );
        assert_eq!(c.seat_for(0, "v", true, |n| n == 2, |n| n != 1), Some(2));
    }

    #[test]
    fn edge_events_are_dropped_or_translated() {
        let mut c = Cascade::default();
        c.edges.push(edge(1));
        c.seats.insert("viewer".into(), seat(1));
        c.seats.insert("presenter".into(), seat(0));
        let live = MediaEvent::SubscriptionsLive {
            room: "r".into(),
            device: "viewer".into(),
            tracks: vec!["t-edge".into()],
        };
        match route(0, &c, 1, live) {
            Route::Pass(MediaEvent::SubscriptionsLive { tracks, .. }) => {
                assert_eq!(tracks, vec!["t-origin".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        let gone = MediaEvent::ParticipantGone {
            room: "r".into(),
            device: "presenter".into(),
            reason: "relay_ended".into(),
            session: None,
        };
        assert!(matches!(route(0, &c, 1, gone), Route::Drop));
        let unpublished = MediaEvent::TrackUnpublished {
            room: "r".into(),
            track: "t-edge".into(),
        };
        assert!(matches!(route(0, &c, 1, unpublished.clone()), Route::Drop));
        assert!(matches!(
            route(0, &c, 0, unpublished),
            Route::PassAndSync(_)
        ));
        assert!(matches!(route(0, &c, 2, gone_of("viewer")), Route::Drop));
        let reset = MediaEvent::MediaReset {
            room: "r".into(),
            reason: crate::protocol::MediaResetReason::MediaNodeRestarted,
        };
        assert!(matches!(route(0, &c, 1, reset.clone()), Route::EdgeLost));
        assert!(matches!(
            route(0, &c, 0, reset),
            Route::PassAfterClosingEdges(_)
        ));
        let (link, devices) = c.remove_edge(1).expect("an edge");
        assert_eq!((link.as_str(), devices), ("l1", vec!["viewer".to_owned()]));
    }

    fn gone_of(device: &str) -> MediaEvent {
        MediaEvent::ParticipantGone {
            room: "r".into(),
            device: device.into(),
            reason: "x".into(),
            session: None,
        }
    }
}
