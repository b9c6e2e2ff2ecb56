//! The task that owns one room: it applies [`RoomCommand`]s to the [`Room`] in order, fires its
//! rekey timer, and delivers the room's [`Output`]s onto each connection's bounded outbound
//! queue. A connection whose queue is full is dropped from the room rather than slowing everyone
//! else down.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::HubInner;
use crate::cluster::RecordWriter;
use crate::media_node::{MediaEvent, MediaNode, MediaSessionId};
use crate::metrics::Metrics;
use crate::policy::Role;
use crate::protocol::{
    ClientStats, ErrorCode, IceServer, Joined, KeyAck, KeyEnvelope, KeyRequest, LeaveReason,
    MediaState, ModerationAction, ModerationState, ReceiveSlotCounts, RequestId, SealedChat,
    ServerMessage, Subscription, reject_reason,
};
use crate::recorded_rooms::RecordedRoomReporter;
use crate::room::{
    ConnId, Departure, JoinAnswer, JoinError, JoinRequest, Output, Room, RoomDetail, RoomSummary,
};

/// What a room sends to one connection.
#[derive(Clone, Debug)]
pub enum Outbound {
    /// A serialized server message.
    Message {
        /// Its `type`, for metrics.
        ty: &'static str,
        /// The JSON text.
        text: Utf8Bytes,
    },
    /// An SFU `offer` (serialized), numbered per connection from 1. The session does not send
    /// one the device's own SDP has already settled ([`SdpSettled::offers_queued`]).
    NodeOffer {
        /// Its number on this connection.
        seq: u64,
        /// The JSON text.
        text: Utf8Bytes,
    },
    /// The device is out of the room: send `left` and close.
    Close(LeaveReason),
    /// Test hook [`crate::test_hooks::TestHook::SeverConnections`]: end the connection at once,
    /// without a close frame, as a network blip would.
    Sever,
    /// A moderator let this connection's waiting join in, with this slot: its `joined` is the
    /// next message.
    Admitted {
        /// The device's slot.
        slot: u16,
    },
    /// This connection's waiting join is turned away: send `error` with `code`, then close.
    Refused {
        /// The code of the `error`.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
}

/// What became of a join, as the connection hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// In, with this slot (`joined` is the first message on the queue).
    Joined {
        /// The device's slot.
        slot: u16,
        /// The join resumed the device's membership (`joined.resumed`): its media session on
        /// the media node is still there.
        resumed: bool,
        /// The device's media session (kept from before when it resumed).
        media_session: MediaSessionId,
    },
    /// Waiting in the lobby (`waiting` is the first message on the queue); then
    /// [`Outbound::Admitted`] or [`Outbound::Refused`].
    Waiting,
}

/// What the room answers when the device sends SDP ([`RoomCommand::SdpFromDevice`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdpSettled {
    /// The media session the SDP is for.
    pub media_session: MediaSessionId,
    /// SFU offers queued to the device's connection before its SDP: each is settled by it (the
    /// device answered it, or its own offer crossed it and the SFU withdrew it, §7.51), so one
    /// still in the queue ([`Outbound::NodeOffer`] with `seq` up to this) is not sent.
    pub offers_queued: u64,
}

/// A request to a room's actor.
#[derive(Debug)]
pub enum RoomCommand {
    /// Admit a device; its outbound queue is `tx`. Replies with the slot, or that it waits in
    /// the lobby.
    Join {
        /// The join.
        req: Box<JoinRequest>,
        /// The connection's outbound queue.
        tx: mpsc::Sender<Outbound>,
        /// What became of it.
        reply: oneshot::Sender<Result<JoinOutcome, JoinError>>,
    },
    /// A moderator action from a member (checked by the room: refused unless a moderator).
    Moderate {
        /// Connection.
        conn: ConnId,
        /// Sending device (stamped by the session).
        device: String,
        /// The action.
        action: ModerationAction,
        /// The `id` of the client message, named by an `error` refusing it.
        request_id: Option<RequestId>,
    },
    /// Admin: set the lock and the lobby (`None`: unchanged); replies with the new state.
    Controls {
        /// Lock or unlock.
        locked: Option<bool>,
        /// Lobby on or off.
        lobby: Option<bool>,
        /// The controls and lobby after the change.
        reply: oneshot::Sender<ModerationState>,
    },
    /// Admin: end the call for everyone (the room stays).
    EndCall(oneshot::Sender<()>),
    /// A device left or its connection ended.
    Leave {
        /// Connection.
        conn: ConnId,
        /// Device.
        device: String,
        /// How.
        how: Departure,
    },
    /// Relay a key envelope.
    Envelope {
        /// Connection.
        conn: ConnId,
        /// Sending device.
        device: String,
        /// The envelope.
        envelope: Box<KeyEnvelope>,
        /// The `id` of the client message, named by an `error` refusing it.
        request_id: Option<RequestId>,
    },
    /// Relay a key acknowledgement.
    Ack {
        /// Connection.
        conn: ConnId,
        /// Acknowledging device.
        device: String,
        /// The ack.
        ack: KeyAck,
        /// The `id` of the client message, named by an `error` refusing it.
        request_id: Option<RequestId>,
    },
    /// Relay a key request.
    Request {
        /// Connection.
        conn: ConnId,
        /// Requesting device.
        device: String,
        /// The request.
        req: KeyRequest,
        /// The `id` of the client message, named by an `error` refusing it.
        request_id: Option<RequestId>,
    },
    /// Record and relay a media state.
    MediaState {
        /// Connection.
        conn: ConnId,
        /// Device (stamped by the session, never from the client).
        device: String,
        /// The state.
        state: MediaState,
    },
    /// Raise or lower the device's own hand.
    Hand {
        /// Connection.
        conn: ConnId,
        /// Device (stamped by the session, never from the client).
        device: String,
        /// Up or down.
        raised: bool,
    },
    /// Relay a sealed chat message.
    Chat {
        /// Connection.
        conn: ConnId,
        /// Sending device (stamped by the session, never from the client).
        device: String,
        /// The sealed message (shape already checked).
        chat: Box<SealedChat>,
        /// The `id` of the client message, named by an `error` refusing it.
        request_id: Option<RequestId>,
    },
    /// Store client stats.
    Stats {
        /// Connection.
        conn: ConnId,
        /// Device.
        device: String,
        /// Stats.
        stats: ClientStats,
    },
    /// The device sent SDP to the media node (an answer or its own offer): the node offer it
    /// had pending is settled. Sent before the SDP goes to the node, so a node offer the SDP
    /// causes is not taken for settled.
    SdpFromDevice {
        /// Device.
        device: String,
        /// The device's current media session, which the SDP is for, and the SFU offers
        /// queued to its connection so far (`None`: not in the room).
        reply: oneshot::Sender<Option<SdpSettled>>,
    },
    /// Store subscriptions.
    Subscriptions {
        /// Connection.
        conn: ConnId,
        /// Device.
        device: String,
        /// Subscriptions.
        subscriptions: Vec<Subscription>,
    },
    /// An event from the media node.
    Media(MediaEvent),
    /// The media node created the room with receive slots: `joined` carries these counts.
    ReceiveSlots(ReceiveSlotCounts),
    /// Admin: summary.
    Summary(oneshot::Sender<RoomSummary>),
    /// Admin: detail.
    Detail(oneshot::Sender<RoomDetail>),
    /// Admin: remove a device; replies whether it was there.
    Kick {
        /// Device.
        device: String,
        /// Whether it was in the room.
        reply: oneshot::Sender<bool>,
    },
    /// Admin: close the room.
    Close(oneshot::Sender<()>),
    /// Another replica holds the room's owner lease (split after a Redis that lost its data):
    /// this copy ends without touching what is shared — its record and its media node copy are
    /// left alone, no member's media session is removed — and every connection in it is cut
    /// without a close frame, so its client reconnects and is carried to the owner.
    Yield,
    /// Test hook [`crate::test_hooks::TestHook::SeverConnections`]: cut a device's connection
    /// without a close frame; replies whether the device was there.
    Sever {
        /// Device.
        device: String,
        /// Whether it was in the room.
        reply: oneshot::Sender<bool>,
    },
}

/// A joined connection: its device and its outbound queue.
struct ConnHandle {
    device: String,
    tx: mpsc::Sender<Outbound>,
    /// SFU offers queued to this connection ([`Outbound::NodeOffer`]'s numbers).
    offers_queued: u64,
}

impl ConnHandle {
    fn new(device: String, tx: mpsc::Sender<Outbound>) -> Self {
        ConnHandle {
            device,
            tx,
            offers_queued: 0,
        }
    }
}

/// The owner of one room (see the module docs).
pub(super) struct RoomActor {
    room: Room,
    id: u64,
    ephemeral: bool,
    hub: Weak<HubInner>,
    metrics: Metrics,
    media: Option<Arc<dyn MediaNode>>,
    conns: HashMap<ConnId, ConnHandle>,
    counts: BTreeMap<Role, u32>,
    /// Reports head counts to the recorded-room directory (recorded rooms only); dropped when
    /// the room ends, which tells the directory.
    recorded: Option<RecordedRoomReporter>,
    /// Writes the room's record for the other replicas (several replicas only); dropped when
    /// the room ends, which deletes the record.
    record: Option<RecordWriter>,
    /// What the last record written was made from ([`Room::record_stamp`]).
    record_stamp: Option<(u64, usize, bool, bool, u64)>,
    /// The room was yielded to another replica ([`RoomCommand::Yield`]): the actor ends.
    yielded: bool,
}

impl RoomActor {
    /// An actor for `room`, registered in `hub` under `id` (so a newer room of the same name is
    /// not unregistered when this one ends).
    pub(super) fn new(
        room: Room,
        id: u64,
        recorded: Option<RecordedRoomReporter>,
        ephemeral: bool,
        hub: Weak<HubInner>,
        metrics: Metrics,
        media: Option<Arc<dyn MediaNode>>,
    ) -> Self {
        RoomActor {
            room,
            id,
            ephemeral,
            hub,
            metrics,
            media,
            conns: HashMap::new(),
            counts: BTreeMap::new(),
            recorded,
            record: None,
            record_stamp: None,
            yielded: false,
        }
    }

    /// The actor writing the room's record with `record` (several replicas).
    pub(super) fn with_record(mut self, record: Option<RecordWriter>) -> Self {
        self.record = record;
        self
    }

    /// Writes the room's record when what it is made from changed.
    fn write_record(&mut self) {
        let Some(writer) = &self.record else {
            return;
        };
        let stamp = self.room.record_stamp();
        if self.record_stamp == Some(stamp) {
            return;
        }
        self.record_stamp = Some(stamp);
        let node = self
            .media
            .as_ref()
            .and_then(|m| m.node_of_room(self.room.name()));
        writer.write(self.room.record(self.ephemeral, node));
    }

    /// Serves commands until the room closes (or, when ephemeral, empties), then unregisters it.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<RoomCommand>) {
        loop {
            let deadline = self.room.poll_timeout();
            let cmd = tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => Some(cmd),
                    None => break,
                },
                () = sleep_until(deadline) => None,
            };
            let now = Instant::now();
            // The slot counts arrive right after an ephemeral room is created, before anyone
            // is in it: they do not empty it.
            let configures = matches!(cmd, Some(RoomCommand::ReceiveSlots(_)));
            match cmd {
                Some(cmd) => self.handle(cmd, now),
                None => {
                    let out = self.room.handle_timeout(now);
                    self.deliver(out, now);
                }
            }
            self.update_gauges();
            if self.yielded
                || self.room.is_closed()
                || (self.ephemeral && self.room.is_empty() && !configures)
            {
                break;
            }
            self.write_record();
        }
        self.shutdown(&mut rx);
    }

    fn shutdown(mut self, rx: &mut mpsc::UnboundedReceiver<RoomCommand>) {
        // The media node's close is counted from before the room leaves the registry until it is
        // done, so `Hub::close_all` can wait for the node to have closed the room.
        let pending = match (&self.media, self.hub.upgrade()) {
            (Some(_), Some(hub)) => {
                hub.media_closes_pending
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                Some(hub.media_closes_pending.clone())
            }
            _ => None,
        };
        if let Some(hub) = self.hub.upgrade() {
            let mut rooms = hub.rooms.lock().unwrap_or_else(|e| e.into_inner());
            if rooms.get(self.room.name()).is_some_and(|e| e.id == self.id) {
                rooms.remove(self.room.name());
            }
        }
        rx.close();
        if !self.room.is_closed() {
            let out = self.room.close();
            self.deliver(out, Instant::now());
        }
        self.update_gauges();
        // The room is out of the registry and empty: the directory hears it ended, and its
        // record goes.
        self.recorded = None;
        self.record = None;
        self.metrics.rooms.dec();
        if let Some(node) = self.media.clone() {
            let name = self.room.name().to_string();
            tokio::spawn(async move {
                if let Err(e) = node.close_room(&name).await {
                    debug!(room = %name, error = %e, "media close_room failed");
                }
                if let Some(p) = pending {
                    p.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                }
            });
        }
        info!(room = self.room.name(), "room closed");
    }

    fn update_gauges(&mut self) {
        let now = self.room.counts();
        for role in Role::ALL {
            let before = i64::from(self.counts.get(&role).copied().unwrap_or(0));
            let after = i64::from(now.get(&role).copied().unwrap_or(0));
            if before != after {
                self.metrics
                    .participants
                    .with_label_values(&[role.as_str()])
                    .add(after - before);
            }
        }
        if let Some(reporter) = &mut self.recorded {
            let recorders = now.get(&Role::Recorder).copied().unwrap_or(0);
            let everyone: u32 = now.values().sum();
            reporter.presence(everyone - recorders, recorders);
        }
        self.counts = now;
    }

    /// TURN credentials for a device that joined with media, when TURN is configured. The
    /// opaque id in the username is logged (debug) with the device, never the credential.
    fn ice_servers(&self, joined: &Joined) -> Vec<IceServer> {
        let Some(turn) = self.hub.upgrade().and_then(|hub| hub.settings.turn.clone()) else {
            return Vec::new();
        };
        if !joined.media {
            return Vec::new();
        }
        let server = turn.mint(super::unix_now());
        debug!(
            room = self.room.name(),
            device = %joined.device,
            turn_username = %server.username,
            "TURN credentials minted"
        );
        vec![server]
    }

    /// Refuses the client message `request_id` of `conn` with an `error`.
    fn send_error(
        &self,
        conn: ConnId,
        request_id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    ) {
        self.metrics.reject(reject_reason(code));
        if let Some(c) = self.conns.get(&conn) {
            let msg = ServerMessage::error_answering(request_id, code, message);
            let _ = c.tx.try_send(Outbound::Message {
                ty: "error",
                text: msg.to_json().into(),
            });
        }
    }

    fn handle(&mut self, cmd: RoomCommand, now: Instant) {
        match cmd {
            RoomCommand::Join { req, tx, reply } => {
                let conn = req.conn;
                let device = req.bundle.device.clone();
                // A join of a device already in the room replaces its connection (a reconnect).
                let rejoin = self.room.member(&device).is_some();
                match self.room.request_join(*req, now, self.media.is_some()) {
                    Ok(JoinAnswer::Joined(mut joined, out)) => {
                        if rejoin && !joined.resumed {
                            self.metrics.rejoins.inc();
                        }
                        let slot = joined.slot;
                        let resumed = joined.resumed;
                        joined.ice_servers = self.ice_servers(&joined);
                        let msg = ServerMessage::Joined(joined);
                        // The queue is fresh, so the first message always fits.
                        let _ = tx.try_send(Outbound::Message {
                            ty: "joined",
                            text: msg.to_json().into(),
                        });
                        let media_session = self
                            .room
                            .member(&device)
                            .map_or_else(MediaSessionId::random, |m| m.media_session);
                        self.conns.insert(conn, ConnHandle::new(device, tx));
                        self.deliver(out, now);
                        let _ = reply.send(Ok(JoinOutcome::Joined {
                            slot,
                            resumed,
                            media_session,
                        }));
                    }
                    Ok(JoinAnswer::Waiting(out)) => {
                        info!(room = self.room.name(), device = %device, "join waits in the lobby");
                        self.conns.insert(conn, ConnHandle::new(device, tx));
                        self.deliver(out, now);
                        let _ = reply.send(Ok(JoinOutcome::Waiting));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            RoomCommand::Moderate {
                conn,
                device,
                action,
                request_id,
            } => {
                let name = action.name();
                match self
                    .room
                    .moderate(conn, &device, action, now, self.media.is_some())
                {
                    Ok(out) => {
                        info!(room = self.room.name(), device = %device, action = name, "moderation");
                        self.metrics.moderation(name, "ok");
                        self.deliver(out, now);
                    }
                    Err(e) => {
                        info!(room = self.room.name(), device = %device, action = name, error = %e, "moderation refused");
                        self.metrics.moderation(name, e.outcome());
                        self.send_error(conn, request_id, e.code(), e.to_string());
                    }
                }
            }
            RoomCommand::Controls {
                locked,
                lobby,
                reply,
            } => {
                let actions = [
                    locked.map(|on| if on { "lock" } else { "unlock" }),
                    lobby.map(|on| if on { "lobby_on" } else { "lobby_off" }),
                ];
                for name in actions.into_iter().flatten() {
                    info!(
                        room = self.room.name(),
                        action = name,
                        "moderation by the admin API"
                    );
                    self.metrics.moderation(name, "ok");
                }
                let out = self.room.set_controls(locked, lobby);
                self.deliver(out, now);
                let _ = reply.send(self.room.moderation_state());
            }
            RoomCommand::EndCall(reply) => {
                info!(room = self.room.name(), "call ended by the admin API");
                self.metrics.moderation("end_call", "ok");
                let out = self.room.end_call(now);
                self.deliver(out, now);
                let _ = reply.send(());
            }
            RoomCommand::Leave { conn, device, how } => {
                let out = self.room.leave(conn, &device, how, now);
                if self.room.is_suspended_conn(conn) {
                    info!(room = self.room.name(), device = %device, "connection lost; suspended until it resumes or the grace window ends");
                }
                self.deliver(out, now);
                self.conns.remove(&conn);
            }
            RoomCommand::Envelope {
                conn,
                device,
                envelope,
                request_id,
            } => match self.room.route_envelope(conn, &device, *envelope) {
                Ok(out) => self.deliver(vec![out], now),
                Err(e) => self.send_error(conn, request_id, e.code(), e.to_string()),
            },
            RoomCommand::Ack {
                conn,
                device,
                ack,
                request_id,
            } => match self.room.route_ack(conn, &device, ack) {
                Ok(out) => self.deliver(vec![out], now),
                Err(e) => self.send_error(conn, request_id, e.code(), e.to_string()),
            },
            RoomCommand::Request {
                conn,
                device,
                req,
                request_id,
            } => match self.room.route_request(conn, &device, req) {
                Ok(out) => self.deliver(vec![out], now),
                Err(e) => self.send_error(conn, request_id, e.code(), e.to_string()),
            },
            RoomCommand::MediaState {
                conn,
                device,
                state,
            } => {
                let out = self.room.set_media_state(conn, &device, state);
                self.deliver(out, now);
            }
            RoomCommand::Hand {
                conn,
                device,
                raised,
            } => {
                let out = self.room.set_hand(conn, &device, raised);
                self.deliver(out, now);
            }
            RoomCommand::Chat {
                conn,
                device,
                chat,
                request_id,
            } => match self.room.route_chat(conn, &device, *chat) {
                Ok(out) => self.deliver(out, now),
                Err(e) => self.send_error(conn, request_id, e.code(), e.to_string()),
            },
            RoomCommand::Stats {
                conn,
                device,
                stats,
            } => self.room.record_stats(conn, &device, stats),
            RoomCommand::Subscriptions {
                conn,
                device,
                subscriptions,
            } => self.room.record_subscriptions(conn, &device, subscriptions),
            RoomCommand::SdpFromDevice { device, reply } => {
                let offers_queued = self
                    .room
                    .member(&device)
                    .and_then(|m| self.conns.get(&m.conn))
                    .map_or(0, |c| c.offers_queued);
                let settled = self
                    .room
                    .sdp_from_device(&device)
                    .map(|media_session| SdpSettled {
                        media_session,
                        offers_queued,
                    });
                // The session may have gone meanwhile; it then has nothing to send.
                let _ = reply.send(settled);
            }
            RoomCommand::Media(ev) => {
                let out = match ev {
                    MediaEvent::TrackPublished { track, .. } => self.room.publish(track),
                    MediaEvent::TrackUnpublished { track, .. } => self.room.unpublish(&track),
                    MediaEvent::ActiveSpeakers { speakers, .. } => self.room.speakers(speakers),
                    MediaEvent::Quality {
                        device, quality, ..
                    } => {
                        self.room.record_quality(&device, quality);
                        Vec::new()
                    }
                    MediaEvent::Offer {
                        device,
                        sdp,
                        session,
                        ..
                    } => self.room.node_offer(&device, session, sdp, now),
                    MediaEvent::SubscriptionsLive { device, tracks, .. } => {
                        self.room.subscriptions_live(&device, &tracks)
                    }
                    MediaEvent::Slots { device, map, .. } => {
                        self.room.slots_to_device(&device, map)
                    }
                    MediaEvent::ParticipantGone {
                        device,
                        reason,
                        session,
                        ..
                    } if !self.room.is_current_session(&device, session) => {
                        debug!(room = self.room.name(), device = %device, %reason, "an earlier media session gone");
                        Vec::new()
                    }
                    MediaEvent::ParticipantGone { device, reason, .. } => {
                        info!(room = self.room.name(), device = %device, %reason, "media session gone");
                        self.room.to_device(
                            &device,
                            ServerMessage::error(
                                ErrorCode::MediaError,
                                format!(
                                    "media session ended ({reason}); send a new offer to reconnect"
                                ),
                            ),
                        )
                    }
                    MediaEvent::MediaReset { reason, .. } => {
                        warn!(room = self.room.name(), %reason, "media sessions reset");
                        self.metrics
                            .media_resets
                            .with_label_values(&[reason.as_str()])
                            .inc();
                        self.room.media_reset(reason)
                    }
                    MediaEvent::ParticipantsReset {
                        devices, reason, ..
                    } => {
                        warn!(room = self.room.name(), %reason, devices = devices.len(), "some media sessions reset");
                        self.metrics
                            .media_resets
                            .with_label_values(&[reason.as_str()])
                            .inc();
                        self.room.media_reset_devices(&devices, reason)
                    }
                };
                self.deliver(out, now);
            }
            RoomCommand::ReceiveSlots(counts) => self.room.set_receive_slots(counts),
            RoomCommand::Summary(reply) => {
                let _ = reply.send(self.room.summary());
            }
            RoomCommand::Detail(reply) => {
                let _ = reply.send(self.room.detail());
            }
            RoomCommand::Kick { device, reply } => {
                let found = match self.room.kick(&device, now) {
                    Some(out) => {
                        info!(room = self.room.name(), device = %device, "kicked");
                        self.deliver(out, now);
                        true
                    }
                    None => false,
                };
                let _ = reply.send(found);
            }
            RoomCommand::Close(reply) => {
                let out = self.room.close();
                self.deliver(out, now);
                let _ = reply.send(());
            }
            RoomCommand::Yield => {
                warn!(
                    room = self.room.name(),
                    connections = self.conns.len(),
                    "another replica owns this room now: its copy here ends and its clients reconnect"
                );
                self.media = None;
                if let Some(writer) = self.record.take() {
                    writer.abandon();
                }
                for c in self.conns.values() {
                    let _ = c.tx.try_send(Outbound::Sever);
                }
                self.conns.clear();
                self.yielded = true;
            }
            RoomCommand::Sever { device, reply } => {
                // The connection leaves the room when its session ends, as any dropped one.
                let conn = self.conns.values().find(|c| c.device == device);
                let found = conn.is_some_and(|c| c.tx.try_send(Outbound::Sever).is_ok());
                if found {
                    info!(room = self.room.name(), device = %device, "connection severed (test hook)");
                }
                let _ = reply.send(found);
            }
        }
    }

    /// Delivers outputs; connections whose queue overflows are dropped from the room (which may
    /// produce more outputs, delivered in the same loop).
    fn deliver(&mut self, out: Vec<Output>, now: Instant) {
        let mut queue: std::collections::VecDeque<Output> = out.into();
        while let Some(o) = queue.pop_front() {
            match o {
                Output::Send { to, message } => {
                    let ty = message.type_name();
                    let node_offer = matches!(message, ServerMessage::Offer(_));
                    let text: Utf8Bytes = message.to_json().into();
                    for conn in to {
                        let Some(c) = self.conns.get_mut(&conn) else {
                            if self.room.is_suspended_conn(conn) {
                                self.metrics.suspended_drops.inc();
                            }
                            continue;
                        };
                        let item = if node_offer {
                            c.offers_queued += 1;
                            Outbound::NodeOffer {
                                seq: c.offers_queued,
                                text: text.clone(),
                            }
                        } else {
                            Outbound::Message {
                                ty,
                                text: text.clone(),
                            }
                        };
                        if let Err(mpsc::error::TrySendError::Full(_)) = c.tx.try_send(item) {
                            warn!(room = self.room.name(), device = %c.device, "outbound queue full; dropping the connection");
                            self.metrics.reject("slow_consumer");
                            let device = c.device.clone();
                            // Dropping the sender ends the connection's queue: it closes.
                            self.conns.remove(&conn);
                            queue.extend(self.room.leave(
                                conn,
                                &device,
                                Departure::SlowConsumer,
                                now,
                            ));
                        }
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(c) = self.conns.remove(&conn) {
                        let _ = c.tx.try_send(Outbound::Close(reason));
                    }
                }
                Output::Admitted { conn, mut joined } => {
                    let Some(c) = self.conns.get(&conn) else {
                        continue;
                    };
                    let slot = joined.slot;
                    joined.ice_servers = self.ice_servers(&joined);
                    let msg = ServerMessage::Joined(joined);
                    let admitted = c.tx.try_send(Outbound::Admitted { slot }).is_ok()
                        && c.tx
                            .try_send(Outbound::Message {
                                ty: "joined",
                                text: msg.to_json().into(),
                            })
                            .is_ok();
                    if admitted {
                        self.metrics.joins.with_label_values(&["ok"]).inc();
                    } else {
                        // Its queue is full (it never read): out, as any slow connection.
                        warn!(room = self.room.name(), device = %c.device, "outbound queue full on admission; dropping the connection");
                        self.metrics.reject("slow_consumer");
                        let device = c.device.clone();
                        self.conns.remove(&conn);
                        queue.extend(self.room.leave(conn, &device, Departure::SlowConsumer, now));
                    }
                }
                Output::Refused {
                    conn,
                    code,
                    message,
                } => {
                    self.metrics.reject(reject_reason(code));
                    self.metrics.joins.with_label_values(&["refused"]).inc();
                    if let Some(c) = self.conns.remove(&conn) {
                        let _ = c.tx.try_send(Outbound::Refused { code, message });
                    }
                }
                Output::Resume(outcome) => {
                    info!(
                        room = self.room.name(),
                        outcome = outcome.as_str(),
                        "resume"
                    );
                    self.metrics
                        .resumes
                        .with_label_values(&[outcome.as_str()])
                        .inc();
                }
                Output::NodeOffer(outcome) => {
                    info!(
                        room = self.room.name(),
                        outcome = outcome.as_str(),
                        "node offer"
                    );
                    self.metrics
                        .node_offers
                        .with_label_values(&[outcome.as_str()])
                        .inc();
                }
                Output::MediaRemove { device, session } => {
                    if let Some(node) = self.media.clone() {
                        let room = self.room.name().to_string();
                        tokio::spawn(async move {
                            if let Err(e) = node.remove_participant(&room, &device, session).await {
                                debug!(room = %room, device = %device, error = %e, "media remove failed");
                            }
                        });
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
