//! One room's state and rules, without I/O.
//!
//! [`Room`] takes inputs (join, leave, key traffic, media events, admin actions) with the current
//! time passed in, and returns [`Output`]s: messages to deliver to connections and connections
//! to close. The room actor in [`crate::hub`] owns one `Room` and does the delivering; unit tests
//! drive a `Room` directly on virtual time.
//!
//! Rules held here:
//! - capacity per role and which roles a room kind admits (recorders only as named by the signed
//!   recording policy);
//! - roster visibility: in broadcasts a viewer sees the publishers, the recorder and itself, not
//!   the other viewers; everyone else sees everyone;
//! - key traffic is addressed only to devices in the sender's roster, envelopes name the sender's
//!   own device, room, call and slot;
//! - membership notices: a join makes every publisher ratchet (at once); leaves make every
//!   publisher rekey after a debounce, and in broadcasts viewer leaves are coalesced to at most
//!   one rekey per `broadcast_viewer_interval`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::auth::Grants;
use crate::media::MediaQuality;
use crate::policy::{Role, RoomKind, RoomPolicy};
use crate::protocol::{
    ClientStats, DeviceBundle, EnvelopeBody, ErrorCode, Joined, KeyAck, KeyAckNotice, KeyEnvelope,
    KeyRequest, KeyRequestNotice, LeaveReason, MembershipAction, MembershipNotice,
    PROTOCOL_VERSION, Roster, RosterDelta, RosterEntry, ServerMessage, Speaker, Speakers,
    Subscription, TrackInfo, TrackPublished, TrackUnpublished,
};

/// Identifies one client connection (unique for the process lifetime).
pub type ConnId = u64;

/// Number of slots (KID bits 12–23).
const SLOTS: u32 = 4096;

/// When membership notices go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RekeyTiming {
    /// Quiet time after a leave before the rekey notice (more leaves in it join the same rekey).
    pub debounce: Duration,
    /// Longest a rekey waits while leaves keep coming.
    pub max_delay: Duration,
    /// In broadcasts, least time between two rekeys caused only by viewer leaves.
    pub broadcast_viewer_interval: Duration,
}

impl Default for RekeyTiming {
    fn default() -> Self {
        RekeyTiming {
            debounce: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            broadcast_viewer_interval: Duration::from_secs(30),
        }
    }
}

/// Something the room wants done.
#[derive(Clone, Debug)]
pub enum Output {
    /// Deliver `message` to each connection in `to`.
    Send {
        /// Recipients.
        to: Vec<ConnId>,
        /// The message.
        message: ServerMessage,
    },
    /// Tell a connection it is out of the room (`left`), then close it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: LeaveReason,
    },
    /// A device is gone: the media node should drop its session.
    MediaRemove {
        /// Device id.
        device: String,
    },
}

/// A join as the room sees it: verified grants plus the device's bundle.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    /// The joining connection.
    pub conn: ConnId,
    /// Verified token grants.
    pub grants: Grants,
    /// Shape-checked device bundle.
    pub bundle: DeviceBundle,
    /// Display name.
    pub name: Option<String>,
    /// Wall-clock join time, Unix seconds (admin API only).
    pub now_unix: u64,
}

/// Why a join is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// No capacity left for the role.
    #[error("room is full: {capacity} {role} places taken")]
    Full {
        /// Role asked for.
        role: &'static str,
        /// Its capacity.
        capacity: u32,
    },
    /// The role cannot join this room.
    #[error("{0}")]
    RoleNotAllowed(String),
    /// The device id is held by a connection of another identity.
    #[error("device id is in use by another identity")]
    DuplicateDevice,
    /// No slot is free (cannot happen below 4096 members).
    #[error("no free slot")]
    NoSlot,
    /// The room is closed.
    #[error("room is closed")]
    Closed,
}

impl JoinError {
    /// The code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            JoinError::Full { .. } | JoinError::NoSlot => ErrorCode::RoomFull,
            JoinError::RoleNotAllowed(_) => ErrorCode::RoleNotAllowed,
            JoinError::DuplicateDevice => ErrorCode::DuplicateDevice,
            JoinError::Closed => ErrorCode::RoomNotFound,
        }
    }
}

/// Why a routed message (key envelope, ack, request) is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The connection is not (or no longer) a member.
    #[error("not joined")]
    NotJoined,
    /// The grants do not allow it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The envelope's shape or binding is wrong.
    #[error("{0}")]
    BadEnvelope(String),
    /// The addressed device is not in the sender's roster.
    #[error("device {0:?} is not in your roster")]
    NotInRoster(String),
}

impl RouteError {
    /// The code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            RouteError::NotJoined => ErrorCode::WrongState,
            RouteError::Forbidden(_) => ErrorCode::Forbidden,
            RouteError::BadEnvelope(_) => ErrorCode::BadEnvelope,
            RouteError::NotInRoster(_) => ErrorCode::NotInRoster,
        }
    }
}

/// How a member departs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// The client sent `leave`.
    Left,
    /// Its connection ended.
    Dropped,
    /// An admin kicked it.
    Kicked,
    /// The same device joined on a new connection.
    Replaced,
    /// Its outbound queue overflowed.
    SlowConsumer,
}

/// One joined device.
#[derive(Clone, Debug)]
pub struct Member {
    /// Its roster entry.
    pub entry: RosterEntry,
    /// Its connection.
    pub conn: ConnId,
    /// May subscribe.
    pub can_subscribe: bool,
    /// Join time, Unix seconds.
    pub joined_at_unix: u64,
    /// Latest client stats.
    pub client_stats: Option<ClientStats>,
    /// Latest media node measurements.
    pub media_quality: Option<MediaQuality>,
    /// Current subscriptions.
    pub subscriptions: Vec<Subscription>,
}

/// Leaves waiting for their rekey notice.
#[derive(Debug, Default)]
struct PendingRekey {
    left: Vec<String>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// A leave that is not a broadcast viewer's: no coalescing window applies.
    urgent: bool,
}

/// A room.
#[derive(Debug)]
pub struct Room {
    name: String,
    call: String,
    policy: RoomPolicy,
    created_at_unix: u64,
    timing: RekeyTiming,
    roster_version: u64,
    members: BTreeMap<String, Member>,
    next_slot: u32,
    tracks: BTreeMap<String, TrackInfo>,
    pending: PendingRekey,
    last_rekey: Option<Instant>,
    closed: bool,
}

/// A room as listed by the admin API.
#[derive(Clone, Debug, Serialize)]
pub struct RoomSummary {
    /// Room name.
    pub name: String,
    /// Current call id.
    pub call: String,
    /// Meeting or broadcast.
    pub kind: RoomKind,
    /// Joined devices.
    pub participants: u32,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Whether a recording policy applies.
    pub recorded: bool,
}

/// A room in detail, for the admin API.
#[derive(Clone, Debug, Serialize)]
pub struct RoomDetail {
    /// Room name.
    pub name: String,
    /// Current call id.
    pub call: String,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// The policy.
    pub policy: RoomPolicy,
    /// Current roster version.
    pub roster_version: u64,
    /// Joined devices.
    pub participants: Vec<ParticipantDetail>,
    /// Published tracks.
    pub tracks: Vec<TrackInfo>,
}

/// One participant in detail.
#[derive(Clone, Debug, Serialize)]
pub struct ParticipantDetail {
    /// Device id.
    pub device: String,
    /// Token identity.
    pub identity: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Role.
    pub role: Role,
    /// Slot.
    pub slot: u16,
    /// May publish.
    pub can_publish: bool,
    /// May subscribe.
    pub can_subscribe: bool,
    /// Join time, Unix seconds.
    pub joined_at: u64,
    /// Latest client stats, when reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_stats: Option<ClientStats>,
    /// Latest media node measurements, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<MediaQuality>,
}

impl Room {
    /// A new, empty room. `call` is a fresh random call id (see docs/e2ee.md §3).
    pub fn new(
        name: String,
        call: String,
        policy: RoomPolicy,
        timing: RekeyTiming,
        created_at_unix: u64,
    ) -> Self {
        Room {
            name,
            call,
            policy,
            created_at_unix,
            timing,
            roster_version: 0,
            members: BTreeMap::new(),
            next_slot: 0,
            tracks: BTreeMap::new(),
            pending: PendingRekey::default(),
            last_rekey: None,
            closed: false,
        }
    }

    /// Room name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Current call id.
    pub fn call(&self) -> &str {
        &self.call
    }

    /// The policy.
    pub fn policy(&self) -> &RoomPolicy {
        &self.policy
    }

    /// Whether no device is joined.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether the room was closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The member holding `device`, if any.
    pub fn member(&self, device: &str) -> Option<&Member> {
        self.members.get(device)
    }

    /// Joined devices per role.
    pub fn counts(&self) -> BTreeMap<Role, u32> {
        let mut c = BTreeMap::new();
        for m in self.members.values() {
            *c.entry(m.entry.role).or_insert(0) += 1;
        }
        c
    }

    fn sees(&self, viewer: &RosterEntry, subject: &RosterEntry) -> bool {
        self.policy.kind == RoomKind::Meeting
            || viewer.role != Role::Viewer
            || subject.role != Role::Viewer
            || viewer.device == subject.device
    }

    /// Connections of members (other than `subject`) that see `subject`, filtered by `keep`.
    fn watchers(&self, subject: &RosterEntry, keep: impl Fn(&Member) -> bool) -> Vec<ConnId> {
        self.members
            .values()
            .filter(|m| m.entry.device != subject.device)
            .filter(|m| self.sees(&m.entry, subject) && keep(m))
            .map(|m| m.conn)
            .collect()
    }

    fn check_role(&self, grants: &Grants, bundle: &DeviceBundle) -> Result<(), JoinError> {
        let allowed = match (self.policy.kind, grants.role) {
            (RoomKind::Meeting, Role::Caller) => true,
            (RoomKind::Broadcast, Role::Presenter | Role::Viewer) => true,
            (_, Role::Recorder) => {
                let named = self
                    .policy
                    .recording
                    .as_ref()
                    .and_then(|r| r.document().ok())
                    .is_some_and(|doc| {
                        doc.recorders.iter().any(|r| {
                            r.device == bundle.device && r.identity_key == bundle.identity_key
                        })
                    });
                if !named {
                    return Err(JoinError::RoleNotAllowed(
                        "this device is not a recorder named by the room's recording policy".into(),
                    ));
                }
                true
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            let kind = match self.policy.kind {
                RoomKind::Meeting => "meeting",
                RoomKind::Broadcast => "broadcast",
            };
            Err(JoinError::RoleNotAllowed(format!(
                "role {} cannot join a {kind} room",
                grants.role.as_str()
            )))
        }
    }

    fn allocate_slot(&mut self) -> Option<u16> {
        for _ in 0..SLOTS {
            let candidate = self.next_slot % SLOTS;
            self.next_slot = (self.next_slot + 1) % SLOTS;
            // `candidate` < 4096, so it fits in u16.
            let slot = candidate as u16;
            if self.members.values().all(|m| m.entry.slot != slot) {
                return Some(slot);
            }
        }
        None
    }

    /// Admits a device. On success returns the `joined` body for it and the notices for others.
    pub fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        media: bool,
    ) -> Result<(Joined, Vec<Output>), JoinError> {
        if self.closed {
            return Err(JoinError::Closed);
        }
        self.check_role(&req.grants, &req.bundle)?;
        let replacing = match self.members.get(&req.bundle.device) {
            Some(old) if old.entry.identity == req.grants.identity => Some(old.entry.role),
            Some(_) => return Err(JoinError::DuplicateDevice),
            None => None,
        };
        let role = req.grants.role;
        let capacity = self.policy.capacity(role);
        let taken =
            self.counts().get(&role).copied().unwrap_or(0) - u32::from(replacing == Some(role));
        if taken >= capacity {
            return Err(JoinError::Full {
                role: role.as_str(),
                capacity,
            });
        }
        let mut out = Vec::new();
        if replacing.is_some() {
            out.extend(self.remove(&req.bundle.device, Departure::Replaced, now));
        }
        let slot = self.allocate_slot().ok_or(JoinError::NoSlot)?;
        let entry = RosterEntry {
            device: req.bundle.device.clone(),
            identity: req.grants.identity.clone(),
            name: req.name,
            role,
            slot,
            can_publish: req.grants.can_publish,
            bundle: req.bundle,
        };
        self.roster_version += 1;
        let version = self.roster_version;
        let roster_watchers = self.watchers(&entry, |_| true);
        let senders = self.watchers(&entry, |m| m.entry.can_publish);
        if !roster_watchers.is_empty() {
            out.push(Output::Send {
                to: roster_watchers,
                message: ServerMessage::Roster(RosterDelta {
                    version,
                    added: vec![entry.clone()],
                    removed: vec![],
                }),
            });
        }
        if !senders.is_empty() {
            out.push(Output::Send {
                to: senders,
                message: ServerMessage::Membership(MembershipNotice {
                    action: MembershipAction::Ratchet,
                    joined: vec![entry.device.clone()],
                    left: vec![],
                    roster_version: version,
                }),
            });
        }
        let devices: Vec<RosterEntry> = self
            .members
            .values()
            .filter(|m| self.sees(&entry, &m.entry))
            .map(|m| m.entry.clone())
            .chain(std::iter::once(entry.clone()))
            .collect();
        let joined = Joined {
            v: PROTOCOL_VERSION,
            room: self.name.clone(),
            call: self.call.clone(),
            kind: self.policy.kind,
            device: entry.device.clone(),
            slot,
            role,
            can_publish: entry.can_publish,
            can_subscribe: req.grants.can_subscribe,
            media,
            recording: self.policy.recording.clone(),
            roster: Roster { version, devices },
            tracks: self.tracks.values().cloned().collect(),
        };
        self.members.insert(
            entry.device.clone(),
            Member {
                entry,
                conn: req.conn,
                can_subscribe: req.grants.can_subscribe,
                joined_at_unix: req.now_unix,
                client_stats: None,
                media_quality: None,
                subscriptions: Vec::new(),
            },
        );
        Ok((joined, out))
    }

    /// Removes `device` if `conn` still holds it (a stale connection cannot remove its
    /// replacement).
    pub fn leave(
        &mut self,
        conn: ConnId,
        device: &str,
        how: Departure,
        now: Instant,
    ) -> Vec<Output> {
        match self.members.get(device) {
            Some(m) if m.conn == conn => self.remove(device, how, now),
            _ => Vec::new(),
        }
    }

    /// Removes `device` (an admin kick).
    pub fn kick(&mut self, device: &str, now: Instant) -> Option<Vec<Output>> {
        self.members
            .contains_key(device)
            .then(|| self.remove(device, Departure::Kicked, now))
    }

    fn remove(&mut self, device: &str, how: Departure, now: Instant) -> Vec<Output> {
        let Some(gone) = self.members.remove(device) else {
            return Vec::new();
        };
        self.roster_version += 1;
        let mut out = Vec::new();
        let watchers = self.watchers(&gone.entry, |_| true);
        if !watchers.is_empty() {
            out.push(Output::Send {
                to: watchers,
                message: ServerMessage::Roster(RosterDelta {
                    version: self.roster_version,
                    added: vec![],
                    removed: vec![gone.entry.device.clone()],
                }),
            });
        }
        let reason = match how {
            Departure::Left => Some(LeaveReason::Leave),
            Departure::Kicked => Some(LeaveReason::Kicked),
            Departure::Replaced => Some(LeaveReason::Replaced),
            Departure::Dropped | Departure::SlowConsumer => None,
        };
        if let Some(reason) = reason {
            out.push(Output::Close {
                conn: gone.conn,
                reason,
            });
        }
        out.push(Output::MediaRemove {
            device: gone.entry.device.clone(),
        });
        let stale: Vec<String> = self
            .tracks
            .values()
            .filter(|t| t.publisher == gone.entry.device)
            .map(|t| t.id.clone())
            .collect();
        for id in stale {
            out.extend(self.unpublish(&id));
        }
        self.schedule_rekey(gone.entry, now);
        out
    }

    fn schedule_rekey(&mut self, gone: RosterEntry, now: Instant) {
        let p = &mut self.pending;
        p.left.push(gone.device);
        p.first.get_or_insert(now);
        p.last = Some(now);
        p.urgent |= !(self.policy.kind == RoomKind::Broadcast && gone.role == Role::Viewer);
    }

    /// When [`Room::handle_timeout`] next needs calling.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let p = &self.pending;
        let (first, last) = (p.first?, p.last?);
        let t = self.timing;
        Some(if p.urgent {
            (last + t.debounce).min(first + t.max_delay)
        } else {
            let earliest = first + t.debounce;
            match self.last_rekey {
                Some(prev) => earliest.max(prev + t.broadcast_viewer_interval),
                None => earliest,
            }
        })
    }

    /// Sends the rekey notice when it is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Output> {
        match self.poll_timeout() {
            Some(due) if due <= now => {}
            _ => return Vec::new(),
        }
        let pending = std::mem::take(&mut self.pending);
        self.last_rekey = Some(now);
        let senders: Vec<ConnId> = self
            .members
            .values()
            .filter(|m| m.entry.can_publish)
            .map(|m| m.conn)
            .collect();
        if senders.is_empty() {
            return Vec::new();
        }
        vec![Output::Send {
            to: senders,
            message: ServerMessage::Membership(MembershipNotice {
                action: MembershipAction::Rekey,
                joined: vec![],
                left: pending.left,
                roster_version: self.roster_version,
            }),
        }]
    }

    /// The member `device` if `conn` holds it.
    fn sender(&self, conn: ConnId, device: &str) -> Result<&Member, RouteError> {
        self.members
            .get(device)
            .filter(|m| m.conn == conn)
            .ok_or(RouteError::NotJoined)
    }

    /// A member that `from` may address, or `NotInRoster`.
    fn addressee(&self, from: &Member, to: &str) -> Result<&Member, RouteError> {
        self.members
            .get(to)
            .filter(|m| m.entry.device != from.entry.device && self.sees(&from.entry, &m.entry))
            .ok_or_else(|| RouteError::NotInRoster(to.to_string()))
    }

    /// Routes a key envelope to its recipient after checking who may send what to whom.
    pub fn route_envelope(
        &self,
        conn: ConnId,
        device: &str,
        envelope: KeyEnvelope,
    ) -> Result<Output, RouteError> {
        let from = self.sender(conn, device)?;
        if !from.entry.can_publish {
            return Err(RouteError::Forbidden(
                "only devices that may publish send key envelopes",
            ));
        }
        envelope
            .validate()
            .map_err(|e| RouteError::BadEnvelope(e.to_string()))?;
        if envelope.sender != from.entry.device {
            return Err(RouteError::Forbidden(
                "envelope sender must be your own device",
            ));
        }
        if envelope.room != self.name {
            return Err(RouteError::BadEnvelope(
                "envelope names another room".into(),
            ));
        }
        if envelope.call != self.call {
            return Err(RouteError::BadEnvelope(
                "envelope names another call".into(),
            ));
        }
        if envelope.slot != from.entry.slot {
            return Err(RouteError::BadEnvelope(
                "envelope slot is not your slot".into(),
            ));
        }
        let to = self.addressee(from, &envelope.recipient)?;
        Ok(Output::Send {
            to: vec![to.conn],
            message: ServerMessage::KeyEnvelope(EnvelopeBody { envelope }),
        })
    }

    /// Routes a key acknowledgement to the device whose key it acknowledges.
    pub fn route_ack(&self, conn: ConnId, device: &str, ack: KeyAck) -> Result<Output, RouteError> {
        let from = self.sender(conn, device)?;
        let to = self.addressee(from, &ack.to)?;
        if !to.entry.can_publish {
            return Err(RouteError::NotInRoster(ack.to));
        }
        Ok(Output::Send {
            to: vec![to.conn],
            message: ServerMessage::KeyAck(KeyAckNotice {
                from: from.entry.device.clone(),
                generation: ack.generation,
                step: ack.step,
            }),
        })
    }

    /// Routes a key request to the sending device asked.
    pub fn route_request(
        &self,
        conn: ConnId,
        device: &str,
        req: KeyRequest,
    ) -> Result<Output, RouteError> {
        let from = self.sender(conn, device)?;
        let to = self.addressee(from, &req.to)?;
        if !to.entry.can_publish {
            return Err(RouteError::NotInRoster(req.to));
        }
        Ok(Output::Send {
            to: vec![to.conn],
            message: ServerMessage::KeyRequest(KeyRequestNotice {
                from: from.entry.device.clone(),
                generation: req.generation,
            }),
        })
    }

    /// Stores a member's latest client stats.
    pub fn record_stats(&mut self, conn: ConnId, device: &str, stats: ClientStats) {
        if let Some(m) = self.members.get_mut(device).filter(|m| m.conn == conn) {
            m.client_stats = Some(stats);
        }
    }

    /// Stores a member's subscriptions.
    pub fn record_subscriptions(&mut self, conn: ConnId, device: &str, subs: Vec<Subscription>) {
        if let Some(m) = self.members.get_mut(device).filter(|m| m.conn == conn) {
            m.subscriptions = subs;
        }
    }

    /// A media node published a track.
    pub fn publish(&mut self, track: TrackInfo) -> Vec<Output> {
        if !self.members.contains_key(&track.publisher) {
            return Vec::new();
        }
        self.tracks.insert(track.id.clone(), track.clone());
        let to = self.all_conns();
        vec![Output::Send {
            to,
            message: ServerMessage::TrackPublished(TrackPublished { track }),
        }]
    }

    /// A track went away.
    pub fn unpublish(&mut self, track: &str) -> Vec<Output> {
        if self.tracks.remove(track).is_none() {
            return Vec::new();
        }
        let to = self.all_conns();
        vec![Output::Send {
            to,
            message: ServerMessage::TrackUnpublished(TrackUnpublished {
                track: track.into(),
            }),
        }]
    }

    /// The active speakers changed.
    pub fn speakers(&self, speakers: Vec<Speaker>) -> Vec<Output> {
        let speakers: Vec<Speaker> = speakers
            .into_iter()
            .filter(|s| self.members.contains_key(&s.device))
            .collect();
        vec![Output::Send {
            to: self.all_conns(),
            message: ServerMessage::Speakers(Speakers { speakers }),
        }]
    }

    /// Stores a quality report from the media node: the figures it carries replace the
    /// member's earlier ones, the others stay.
    pub fn record_quality(&mut self, device: &str, quality: MediaQuality) {
        if let Some(m) = self.members.get_mut(device) {
            let q = m.media_quality.get_or_insert_with(MediaQuality::default);
            q.rtt_seconds = quality.rtt_seconds.or(q.rtt_seconds);
            q.publish_loss_ratio = quality.publish_loss_ratio.or(q.publish_loss_ratio);
            q.subscribe_loss_ratio = quality.subscribe_loss_ratio.or(q.subscribe_loss_ratio);
            q.jitter_seconds = quality.jitter_seconds.or(q.jitter_seconds);
            q.available_bitrate_bps = quality.available_bitrate_bps.or(q.available_bitrate_bps);
        }
    }

    /// Forwards a node-initiated message (offer, or an error) to one device.
    pub fn to_device(&self, device: &str, message: ServerMessage) -> Vec<Output> {
        match self.members.get(device) {
            Some(m) => vec![Output::Send {
                to: vec![m.conn],
                message,
            }],
            None => Vec::new(),
        }
    }

    fn all_conns(&self) -> Vec<ConnId> {
        self.members.values().map(|m| m.conn).collect()
    }

    /// Closes the room: every member is told and disconnected.
    pub fn close(&mut self) -> Vec<Output> {
        self.closed = true;
        self.pending = PendingRekey::default();
        std::mem::take(&mut self.members)
            .into_values()
            .map(|m| Output::Close {
                conn: m.conn,
                reason: LeaveReason::RoomClosed,
            })
            .collect()
    }

    /// The admin API's summary.
    pub fn summary(&self) -> RoomSummary {
        RoomSummary {
            name: self.name.clone(),
            call: self.call.clone(),
            kind: self.policy.kind,
            // At most a few hundred members by policy caps.
            participants: self.members.len() as u32,
            created_at: self.created_at_unix,
            recorded: self.policy.recording.is_some(),
        }
    }

    /// The admin API's detail.
    pub fn detail(&self) -> RoomDetail {
        RoomDetail {
            name: self.name.clone(),
            call: self.call.clone(),
            created_at: self.created_at_unix,
            policy: self.policy.clone(),
            roster_version: self.roster_version,
            participants: self
                .members
                .values()
                .map(|m| ParticipantDetail {
                    device: m.entry.device.clone(),
                    identity: m.entry.identity.clone(),
                    name: m.entry.name.clone(),
                    role: m.entry.role,
                    slot: m.entry.slot,
                    can_publish: m.entry.can_publish,
                    can_subscribe: m.can_subscribe,
                    joined_at: m.joined_at_unix,
                    client_stats: m.client_stats.clone(),
                    quality: m.media_quality.clone(),
                })
                .collect(),
            tracks: self.tracks.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::RoomPolicyRequest;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const T: RekeyTiming = RekeyTiming {
        debounce: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        broadcast_viewer_interval: Duration::from_secs(30),
    };

    fn room(kind: RoomKind) -> Room {
        let req = RoomPolicyRequest {
            kind,
            max_callers: None,
            max_presenters: None,
            max_viewers: None,
            e2ee: None,
            recording: None,
        };
        Room::new(
            "r".into(),
            "c-1".into(),
            req.into_policy("r").unwrap(),
            T,
            0,
        )
    }

    fn join_req(conn: ConnId, device: &str, role: Role) -> JoinRequest {
        JoinRequest {
            conn,
            grants: Grants {
                room: "r".into(),
                identity: format!("id-{device}"),
                role,
                can_publish: role.may_publish(),
                can_subscribe: true,
            },
            bundle: DeviceBundle {
                v: 1,
                device: device.into(),
                identity_key: URL_SAFE_NO_PAD.encode([1u8; 32]),
                hpke_key: URL_SAFE_NO_PAD.encode([2u8; 32]),
                sig: URL_SAFE_NO_PAD.encode([3u8; 64]),
            },
            name: None,
            now_unix: 0,
        }
    }

    fn membership(out: &[Output]) -> Vec<(Vec<ConnId>, MembershipAction, Vec<String>)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send {
                    to,
                    message: ServerMessage::Membership(n),
                } => {
                    let devices = if n.action == MembershipAction::Ratchet {
                        &n.joined
                    } else {
                        &n.left
                    };
                    Some((to.clone(), n.action, devices.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn join_notifies_and_assigns_distinct_slots() {
        let now = Instant::now();
        let mut r = room(RoomKind::Meeting);
        let (a, out) = r.join(join_req(1, "a", Role::Caller), now, false).unwrap();
        assert!(out.is_empty());
        assert_eq!(a.roster.devices.len(), 1);
        let (b, out) = r.join(join_req(2, "b", Role::Caller), now, false).unwrap();
        assert_ne!(a.slot, b.slot);
        assert_eq!(b.roster.devices.len(), 2);
        assert!(b.roster.version > a.roster.version);
        assert_eq!(
            membership(&out),
            vec![(vec![1], MembershipAction::Ratchet, vec!["b".into()])]
        );
    }

    #[test]
    fn leaves_are_debounced_into_one_rekey() {
        let t0 = Instant::now();
        let mut r = room(RoomKind::Meeting);
        for (i, d) in ["a", "b", "c", "d"].iter().enumerate() {
            r.join(join_req(i as u64, d, Role::Caller), t0, false)
                .unwrap();
        }
        let out = r.leave(2, "c", Departure::Dropped, t0);
        assert!(membership(&out).is_empty(), "no rekey before the debounce");
        let t1 = t0 + Duration::from_millis(50);
        r.leave(3, "d", Departure::Left, t1);
        assert_eq!(r.poll_timeout(), Some(t1 + T.debounce));
        assert!(r.handle_timeout(t1 + Duration::from_millis(99)).is_empty());
        let out = r.handle_timeout(t1 + T.debounce);
        assert_eq!(
            membership(&out),
            vec![(
                vec![0, 1],
                MembershipAction::Rekey,
                vec!["c".into(), "d".into()]
            )]
        );
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn continuous_leaves_rekey_by_max_delay() {
        let t0 = Instant::now();
        let mut r = room(RoomKind::Meeting);
        for i in 0..20u64 {
            r.join(join_req(i, &format!("d{i}"), Role::Caller), t0, false)
                .unwrap();
        }
        for i in 1..10u64 {
            r.leave(
                i,
                &format!("d{i}"),
                Departure::Dropped,
                t0 + Duration::from_millis(60 * i),
            );
        }
        assert_eq!(
            r.poll_timeout(),
            Some(t0 + Duration::from_millis(60) + T.max_delay)
        );
    }

    #[test]
    fn broadcast_viewer_leaves_coalesce() {
        let t0 = Instant::now();
        let mut r = room(RoomKind::Broadcast);
        r.join(join_req(0, "p", Role::Presenter), t0, false)
            .unwrap();
        for i in 1..=5u64 {
            r.join(join_req(i, &format!("v{i}"), Role::Viewer), t0, false)
                .unwrap();
        }
        r.leave(1, "v1", Departure::Dropped, t0);
        let first = t0 + T.debounce;
        assert_eq!(membership(&r.handle_timeout(first)).len(), 1);
        // A second viewer leave soon after waits for the coalescing window.
        r.leave(2, "v2", Departure::Dropped, first + Duration::from_secs(1));
        assert_eq!(r.poll_timeout(), Some(first + T.broadcast_viewer_interval));
        assert!(r.handle_timeout(first + Duration::from_secs(29)).is_empty());
        let out = r.handle_timeout(first + T.broadcast_viewer_interval);
        assert_eq!(
            membership(&out),
            vec![(vec![0], MembershipAction::Rekey, vec!["v2".into()])]
        );
    }

    #[test]
    fn viewers_see_publishers_only() {
        let now = Instant::now();
        let mut r = room(RoomKind::Broadcast);
        r.join(join_req(0, "p", Role::Presenter), now, false)
            .unwrap();
        let (v1, out) = r.join(join_req(1, "v1", Role::Viewer), now, false).unwrap();
        assert_eq!(v1.roster.devices.len(), 2);
        assert!(
            out.iter()
                .all(|o| matches!(o, Output::Send { to, .. } if to == &vec![0]))
        );
        let (v2, _) = r.join(join_req(2, "v2", Role::Viewer), now, false).unwrap();
        let names: Vec<_> = v2
            .roster
            .devices
            .iter()
            .map(|e| e.device.as_str())
            .collect();
        assert_eq!(names, vec!["p", "v2"]);
        let ack = KeyAck {
            to: "v1".into(),
            generation: 0,
            step: 0,
        };
        assert_eq!(
            r.route_ack(2, "v2", ack).unwrap_err(),
            RouteError::NotInRoster("v1".into())
        );
    }

    #[test]
    fn capacity_and_roles() {
        let now = Instant::now();
        let mut r = room(RoomKind::Broadcast);
        assert!(matches!(
            r.join(join_req(0, "c", Role::Caller), now, false),
            Err(JoinError::RoleNotAllowed(_))
        ));
        assert!(matches!(
            r.join(join_req(0, "rec", Role::Recorder), now, false),
            Err(JoinError::RoleNotAllowed(_))
        ));
        for i in 0..500u64 {
            r.join(join_req(i, &format!("v{i}"), Role::Viewer), now, false)
                .unwrap();
        }
        assert_eq!(
            r.join(join_req(999, "v-extra", Role::Viewer), now, false)
                .unwrap_err(),
            JoinError::Full {
                role: "viewer",
                capacity: 500
            }
        );
        // The same device and identity may rejoin (replacing its old connection).
        let (_, out) = r
            .join(join_req(1000, "v7", Role::Viewer), now, false)
            .unwrap();
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Close {
                conn: 7,
                reason: LeaveReason::Replaced
            }
        )));
        // The old connection's late leave does not remove the new one.
        r.leave(7, "v7", Departure::Dropped, now);
        assert_eq!(r.member("v7").map(|m| m.conn), Some(1000));
    }

    #[test]
    fn envelope_rules() {
        let now = Instant::now();
        let mut r = room(RoomKind::Meeting);
        let (a, _) = r.join(join_req(1, "a", Role::Caller), now, false).unwrap();
        r.join(join_req(2, "b", Role::Caller), now, false).unwrap();
        let env = KeyEnvelope {
            v: 1,
            room: "r".into(),
            call: "c-1".into(),
            sender: "a".into(),
            recipient: "b".into(),
            slot: a.slot,
            generation: 0,
            step: 0,
            suite: 5,
            enc: URL_SAFE_NO_PAD.encode([0u8; 32]),
            ct: URL_SAFE_NO_PAD.encode([0u8; 48]),
            sig: URL_SAFE_NO_PAD.encode([0u8; 64]),
        };
        assert!(
            matches!(r.route_envelope(1, "a", env.clone()), Ok(Output::Send { to, .. }) if to == vec![2])
        );
        assert_eq!(
            r.route_envelope(9, "a", env.clone()).unwrap_err(),
            RouteError::NotJoined
        );
        let mut spoof = env.clone();
        spoof.sender = "b".into();
        assert_eq!(
            r.route_envelope(1, "a", spoof).unwrap_err().code(),
            ErrorCode::Forbidden
        );
        let mut stranger = env.clone();
        stranger.recipient = "zz".into();
        assert_eq!(
            r.route_envelope(1, "a", stranger).unwrap_err().code(),
            ErrorCode::NotInRoster
        );
        let mut other_room = env.clone();
        other_room.room = "x".into();
        assert_eq!(
            r.route_envelope(1, "a", other_room).unwrap_err().code(),
            ErrorCode::BadEnvelope
        );
        let mut other_call = env;
        other_call.call = "c-2".into();
        assert_eq!(
            r.route_envelope(1, "a", other_call).unwrap_err().code(),
            ErrorCode::BadEnvelope
        );
    }
}
