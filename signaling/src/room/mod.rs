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
//! - raised hands go, stamped with the sender's device, to the sender and the members that see
//!   it, in the order they went up; a moderator may lower anyone's, and a hand goes with its device;
//! - media states and chat go, stamped with the sender's device, to the members that see the
//!   sender; the latest media state of each member is kept for `joined`;
//! - membership notices: joins make every publisher ratchet once per join window (one notice
//!   names every joiner of a burst, see docs/architecture.md §7.24); leaves make every
//!   publisher rekey after a debounce, and in broadcasts viewer leaves are coalesced to at most
//!   one rekey per `broadcast_viewer_interval`.
//!
//! The rules are spread over one file each: `roster` (who is in, who sees whom, joins and
//! leaves), `capacity` (roles, places and slots), `rekey` (when membership notices go out),
//! `keys` (routing key envelopes, acks and requests), `media_state` (microphone/camera states),
//! `hands` (raised hands),
//! `chat` (relaying sealed chat messages), `media` (tracks, speakers and quality
//! reports from the media node), `moderation` (the lock, the lobby and moderators' actions) and
//! `admin` (the admin API's views).

mod admin;
mod capacity;
mod chat;
mod hands;
#[cfg(test)]
mod hands_tests;
mod join_ratchet;
#[cfg(test)]
mod join_ratchet_tests;
mod keys;
mod media;
mod media_state;
mod moderation;
#[cfg(test)]
mod moderation_tests;
mod node_offers;
#[cfg(test)]
mod node_offers_tests;
mod record;
#[cfg(test)]
mod record_tests;
mod rekey;
mod resume;
#[cfg(test)]
mod resume_tests;
mod roster;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Instant;

use crate::media_node::{MediaQuality, MediaSessionId};
use crate::policy::{Role, RoomPolicy};
use crate::protocol::{
    ClientStats, ErrorCode, Joined, LeaveReason, MediaState, ReceiveSlotCounts, RosterEntry,
    ServerMessage, Subscription, TrackInfo,
};
use crate::test_hooks::TestHooks;

pub use admin::{ParticipantDetail, RoomDetail, RoomSummary};
pub use capacity::JoinError;
use join_ratchet::PendingRatchet;
pub use keys::RouteError;
use moderation::Controls;
pub use moderation::{JoinAnswer, MODERATION_OUTCOMES, ModerationError};
pub use node_offers::{OFFER_ANSWER_TIMEOUT, OFFER_RESENDS, OfferOutcome, PendingOffer};
pub use record::{MemberRecord, NO_CONNECTION, RoomRecord};
use rekey::PendingRekey;
pub use rekey::RekeyTiming;
pub use resume::{ResumeOutcome, call_for_new_room};
pub use roster::JoinRequest;

/// Identifies one client connection (unique for the process lifetime).
pub type ConnId = u64;

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
    /// A device is gone, or its media session was reset: the media node should drop that
    /// session (a later session of the device is not touched).
    MediaRemove {
        /// Device id.
        device: String,
        /// The media session to drop.
        session: MediaSessionId,
    },
    /// A device waiting in the lobby was let in: deliver its `joined` (first, before anything
    /// else to it); the connection is joined from now on.
    Admitted {
        /// The connection.
        conn: ConnId,
        /// Its `joined`.
        joined: Box<Joined>,
    },
    /// A join waiting in the lobby is turned away: tell the connection with an `error`, then
    /// close it.
    Refused {
        /// The connection.
        conn: ConnId,
        /// The code of the `error`.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// Count what became of a resume (`signaling_resumes_total`).
    Resume(ResumeOutcome),
    /// Count a node offer sent again or given up (`signaling_node_offers_total`).
    NodeOffer(OfferOutcome),
}

/// How a member departs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// The client sent `leave`.
    Left,
    /// Its connection was lost (no close frame, a failed write, the idle timeout): the member
    /// is suspended for the resume grace window first (`resume`), then departs.
    Dropped,
    /// Its connection was closed on purpose without `leave` (the client's close frame, or the
    /// server closing it for breaking a limit): it departs at once, as a dropped one would after
    /// the grace window.
    Closed,
    /// An admin kicked it.
    Kicked,
    /// The same device joined on a new connection.
    Replaced,
    /// Its outbound queue overflowed.
    SlowConsumer,
    /// A moderator or the admin API ended the call for everyone.
    CallEnded,
    /// The service is draining: every connection closes with 1001 and its client will rejoin
    /// the restarted service. The others are told nothing (they are closing too; a roster
    /// removal racing their own close would drop a tile the page keeps while it reconnects).
    ServerShutdown,
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
    /// Its latest `media_state`, once it sent one.
    pub media_state: Option<MediaState>,
    /// Its raised hand's place in the queue (`Room::hands_raised` when it went up), while up.
    pub hand: Option<u64>,
    /// Its token grants `moderator`.
    pub moderator: bool,
    /// Its connection was lost: it departs at this instant unless it resumes before
    /// (`resume`). `conn` names the lost connection meanwhile, so what is sent to it is dropped.
    pub suspended_until: Option<Instant>,
    /// The media node's offer it has not answered yet (`node_offers`).
    pub node_offer: Option<PendingOffer>,
    /// Its current media session on the media node: chosen at join, kept when it resumes,
    /// new when its session is reset (`node_offers`).
    pub media_session: MediaSessionId,
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
    next_receive_slot: u32,
    tracks: BTreeMap<String, TrackInfo>,
    pending: PendingRekey,
    pending_ratchet: PendingRatchet,
    last_rekey: Option<Instant>,
    closed: bool,
    /// Hands raised so far: the next raised hand's place in the queue is one more.
    hands_raised: u64,
    /// The lock and the lobby (`moderation`).
    controls: Controls,
    test_hooks: TestHooks,
    /// The receive slots the media node gives each device (a room with receive slots, once
    /// the node created it): `joined` carries them.
    receive_slots: Option<ReceiveSlotCounts>,
}

impl Room {
    /// A new, empty room. `call` is a fresh random call id (see docs/e2ee.md §3), or the call id a
    /// resuming join that created the room named (docs/architecture.md §7.42).
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
            next_receive_slot: 0,
            tracks: BTreeMap::new(),
            pending: PendingRekey::default(),
            pending_ratchet: PendingRatchet::default(),
            last_rekey: None,
            closed: false,
            hands_raised: 0,
            controls: Controls::default(),
            test_hooks: TestHooks::default(),
            receive_slots: None,
        }
    }

    /// The room with test hooks in force (`signaling dev --test-hooks` only; see
    /// [`crate::test_hooks`]).
    pub fn with_test_hooks(mut self, hooks: TestHooks) -> Self {
        self.test_hooks = hooks;
        self
    }

    /// Records the receive slots the media node gives each device of this room.
    pub fn set_receive_slots(&mut self, counts: ReceiveSlotCounts) {
        self.receive_slots = Some(counts);
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

    fn all_conns(&self) -> Vec<ConnId> {
        self.members.values().map(|m| m.conn).collect()
    }

    /// Closes the room: every member is told and disconnected.
    pub fn close(&mut self) -> Vec<Output> {
        self.closed = true;
        self.pending = PendingRekey::default();
        self.pending_ratchet = PendingRatchet::default();
        let waiting = std::mem::take(&mut self.controls).into_waiting();
        waiting
            .into_iter()
            .map(|w| Output::Refused {
                conn: w.conn,
                code: ErrorCode::RoomNotFound,
                message: "the room was closed".into(),
            })
            .chain(
                std::mem::take(&mut self.members)
                    .into_values()
                    .map(|m| Output::Close {
                        conn: m.conn,
                        reason: LeaveReason::RoomClosed,
                    }),
            )
            .collect()
    }
}
