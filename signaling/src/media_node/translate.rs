//! Translation between signaling's view of media and the SFU node's control API
//! (`sfu-control-api`): roles, room kinds and subscriptions one way, node events the other way.
//! The node knows a track only by its media section and codec; what a publisher announced with
//! its offer (source, simulcast layers) is kept here per device and joined to the node's
//! `track_published`. Both the remote and the embedded node go through these types, so they
//! translate the same way.

use std::collections::HashMap;
use std::sync::Mutex;

use sfu_control_api::{
    CreateRoom, NodeEvent, QualityDirection, ReceiveSlotCounts as NodeSlotCounts, RoleBody,
    RoomKindBody, SlotEntry, SubscriptionBody, TrackClass,
};

use super::{MediaEvent, MediaQuality, MediaRoomSpec, MediaSessionId};
use crate::policy::{Role, RoomKind};
use crate::protocol::{
    Layer, ReceiveSlotCounts, ReceiveSlotKind, SlotAssignment, SlotMap, Speaker, Subscription,
    TrackAnnouncement, TrackInfo, TrackKind, TrackSource,
};

/// What publishers announced, per (room, device), by media section, in which media session.
#[derive(Debug, Default)]
pub(super) struct Announcements {
    by_device: Mutex<HashMap<(String, String), Announced>>,
}

/// What one device announced in its current media session.
#[derive(Debug, Default)]
struct Announced {
    session: Option<MediaSessionId>,
    by_mid: HashMap<String, TrackAnnouncement>,
}

impl Announcements {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Announced>> {
        // A panic while holding this lock leaves a map that is still usable.
        self.by_device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a device's announced tracks in media session `session` (added to what it
    /// announced before in that session; a new session starts afresh) and returns the media
    /// sections whose video is screen share.
    pub(super) fn record(
        &self,
        room: &str,
        device: &str,
        session: MediaSessionId,
        tracks: Vec<TrackAnnouncement>,
    ) -> Vec<String> {
        let mut map = self.lock();
        let entry = map.entry((room.to_owned(), device.to_owned())).or_default();
        if entry.session != Some(session) {
            *entry = Announced {
                session: Some(session),
                by_mid: HashMap::new(),
            };
        }
        for t in tracks {
            entry.by_mid.insert(t.mid.clone(), t);
        }
        entry
            .by_mid
            .values()
            .filter(|t| t.kind == TrackKind::Video && t.source == TrackSource::Screen)
            .map(|t| t.mid.clone())
            .collect()
    }

    /// Forgets what a device announced in media session `session` (`None`: in any session);
    /// what a later session of the device announced stays.
    pub(super) fn forget(&self, room: &str, device: &str, session: Option<MediaSessionId>) {
        let key = (room.to_owned(), device.to_owned());
        let mut map = self.lock();
        if session.is_none() || map.get(&key).is_some_and(|a| a.session == session) {
            map.remove(&key);
        }
    }

    /// Forgets a room.
    pub(super) fn forget_room(&self, room: &str) {
        self.lock().retain(|(r, _), _| r != room);
    }

    /// The track as signaling announces it: source and layers as the publisher announced
    /// them, or derived from the node's classification when it announced nothing for the mid.
    fn track_info(
        &self,
        room: &str,
        publisher: String,
        track: String,
        class: TrackClass,
        mid: &str,
    ) -> TrackInfo {
        let announced = self
            .lock()
            .get(&(room.to_owned(), publisher.clone()))
            .and_then(|a| a.by_mid.get(mid))
            .cloned();
        let kind = match class {
            TrackClass::Audio => TrackKind::Audio,
            TrackClass::Camera | TrackClass::Screen => TrackKind::Video,
        };
        let (source, layers) = match announced {
            Some(a) if a.kind == kind => (a.source, a.layers),
            _ => (
                match class {
                    TrackClass::Audio => TrackSource::Microphone,
                    TrackClass::Camera => TrackSource::Camera,
                    TrackClass::Screen => TrackSource::Screen,
                },
                Vec::new(),
            ),
        };
        TrackInfo {
            id: track,
            publisher,
            kind,
            source,
            layers,
        }
    }

    /// Translates one node event.
    pub(super) fn event(&self, event: NodeEvent) -> Option<MediaEvent> {
        Some(match event {
            NodeEvent::TrackPublished {
                room,
                publisher,
                track,
                kind,
                mid,
            } => {
                let track = self.track_info(&room, publisher, track, kind, &mid);
                MediaEvent::TrackPublished { room, track }
            }
            NodeEvent::TrackUnpublished { room, track, .. } => {
                MediaEvent::TrackUnpublished { room, track }
            }
            NodeEvent::ActiveSpeakers { room, speakers } => MediaEvent::ActiveSpeakers {
                room,
                speakers: speakers
                    .into_iter()
                    .map(|s| Speaker {
                        device: s.device,
                        level: s.level,
                    })
                    .collect(),
            },
            NodeEvent::ParticipantGone {
                room,
                device,
                reason,
                session,
            } => {
                let session = session.map(MediaSessionId);
                self.forget(&room, &device, session);
                MediaEvent::ParticipantGone {
                    room,
                    device,
                    reason,
                    session,
                }
            }
            NodeEvent::Quality {
                room,
                device,
                direction,
                kind: _,
                loss_ratio,
                jitter_seconds,
                rtt_seconds,
            } => {
                let mut quality = MediaQuality {
                    rtt_seconds,
                    jitter_seconds: Some(jitter_seconds),
                    ..MediaQuality::default()
                };
                match direction {
                    QualityDirection::Publisher => quality.publish_loss_ratio = Some(loss_ratio),
                    QualityDirection::Subscriber => quality.subscribe_loss_ratio = Some(loss_ratio),
                }
                MediaEvent::Quality {
                    room,
                    device,
                    quality,
                }
            }
            NodeEvent::Offer {
                room,
                device,
                sdp,
                session,
            } => MediaEvent::Offer {
                room,
                device,
                sdp,
                session: session.map(MediaSessionId),
            },
            NodeEvent::SubscriptionsLive {
                room,
                device,
                tracks,
            } => MediaEvent::SubscriptionsLive {
                room,
                device,
                tracks,
            },
            NodeEvent::Slots {
                room,
                device,
                version,
                slots,
            } => MediaEvent::Slots {
                room,
                device,
                map: slot_map(version, slots)?,
            },
            // A newer node may send events this build does not know.
            #[allow(unreachable_patterns)]
            _ => return None,
        })
    }
}

/// The client's `slots` message of a node's slot map (`None` when a slot name has no kind
/// this build knows).
fn slot_map(version: u64, slots: Vec<SlotEntry>) -> Option<SlotMap> {
    let slots = slots
        .into_iter()
        .map(|s| {
            let kind = match s.slot.chars().next()? {
                'a' => ReceiveSlotKind::Audio,
                'v' => ReceiveSlotKind::Video,
                's' => ReceiveSlotKind::Screen,
                _ => return None,
            };
            Some(SlotAssignment {
                slot: s.slot,
                kind,
                mid: s.mid,
                track: s.track,
                source: s.publisher,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(SlotMap {
        v: 1,
        version,
        slots,
    })
}

/// The slot counts of a node's `POST /control/rooms` answer as `joined` carries them.
pub(super) fn receive_slot_counts(counts: NodeSlotCounts) -> ReceiveSlotCounts {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ReceiveSlotCounts {
        audio: count(counts.audio),
        video: count(counts.video),
        screen: count(counts.screen),
    }
}

/// The node's role for a participant.
pub(super) fn role_body(role: Role) -> RoleBody {
    match role {
        Role::Caller => RoleBody::Caller,
        Role::Presenter => RoleBody::Presenter,
        Role::Viewer => RoleBody::Viewer,
        Role::Recorder => RoleBody::Recorder,
    }
}

/// The node's room kind.
pub(super) fn room_kind_body(kind: RoomKind) -> RoomKindBody {
    match kind {
        RoomKind::Meeting => RoomKindBody::Meeting,
        RoomKind::Broadcast => RoomKindBody::Broadcast,
    }
}

/// A room as the control API's `POST /control/rooms` body: what the remote node is sent and
/// what the embedded node reads its policy from, so both give the room the same limits.
pub(super) fn create_room_body(room: &MediaRoomSpec) -> CreateRoom {
    CreateRoom {
        room: room.room.clone(),
        kind: room_kind_body(room.kind),
        loudest_n: None,
        last_n: room.last_n.map(|n| n as usize),
        receive_slots: room.receive_slots,
    }
}

/// A client's subscription as the node takes it: the layer as an index (0 = lowest), the
/// visible size only when a height is given (a missing width then counts as 0), never pinned.
pub(super) fn subscription_body(s: Subscription) -> SubscriptionBody {
    SubscriptionBody {
        track: s.track,
        max_layer: s.layer.map(|l| match l {
            Layer::Low => 0,
            Layer::Medium => 1,
            Layer::High => 2,
        }),
        width: s.height.map(|_| s.width.unwrap_or(0)),
        height: s.height,
        pinned: false,
    }
}
