//! One client connection on `/v1/rtc`, generic over any `Sink`/`Stream` of WebSocket messages.
//!
//! [`run_session`] is what the axum handler runs on a real socket; tests can run it on channels.
//! The session authenticates the `join`, then relays between the client and its room's actor
//! (see [`crate::hub`]) and the media node. Per connection it enforces the message size cap
//! (close 1009), a message rate limit (excess dropped with `rate_limited`; a publishing
//! device's `key_envelope` messages have a budget of their own, sized for a rekey of a large
//! audience; more drops than the
//! flood allowance within a sliding window close with 1008, see [`flood`]), bounds on `stats`
//! ([`stats_gate`]) and on `media_state` and `chat` ([`relay_gate`]; a `chat` over its size bound
//! is refused before it reaches the room), pings, an idle timeout, and a write timeout (a client that stops reading is
//! dropped and counted once one write blocks that long). A device without a publish grant may
//! only send SDP in which no media section can send ([`crate::protocol::sdp_sending_section`]).
//! When the server shuts down, every session closes with 1001 and [`CLOSE_REASON_SHUTDOWN`].
//! Malformed, unknown and wrong-state messages get
//! an `error` and the connection goes on; every `error` answering a message that carried an
//! `id` names it as `request_id` (the room actor's refusals of key traffic too). Nothing of a
//! token or an SDP is logged.
//!
//! A join into a room with its lobby on waits (the room sends `waiting`): the session then
//! accepts only `leave` (anything else is `wrong_state`) until the room admits it
//! ([`Outbound::Admitted`], then `joined`) or turns it away ([`Outbound::Refused`]: an `error`
//! naming the `join`, then close 1000). `moderate` goes to the room, which checks the sender is a
//! moderator.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument as _, Span, debug, info, info_span, warn};

use crate::auth::{Grants, TokenVerifier, validate_room_name};
use crate::hub::{Hub, HubError, JoinOutcome, Outbound, RoomCommand};
use crate::media_node::{MediaSessionId, ParticipantSpec, PublishSource, SessionDescription};
use crate::policy::{RecordingPolicy, RoomPolicy};
use crate::protocol::{
    CHAT_BURST, CHAT_PER_SECOND, CLIENT_MESSAGE_TYPES, ChatBody, ClientMessage, ClientOffer,
    ClientStats, ErrorCode, HAND_BURST, HAND_PER_SECOND, Hand, Join, LeftNotice, MAX_NAME_BYTES,
    MAX_SDP_BYTES, MAX_SUBSCRIPTIONS, MAX_TRACKS_PER_OFFER, MEDIA_STATE_BURST,
    MEDIA_STATE_PER_SECOND, MediaState, PROTOCOL_VERSION, RequestHeader, RequestId, RequestIdField,
    ResumeCall, SdpBody, ServerMessage, ShapeError, TrackKind, TrackSource, Validate as _,
    reject_reason, sdp_sending_section,
};
use crate::room::{ConnId, Departure, JoinRequest, OfferOutcome, call_for_new_room};

mod flood;
mod relay_gate;
mod stats_gate;

pub use flood::FLOOD_WINDOW;
use flood::FloodDetector;
use relay_gate::RelayGate;
use stats_gate::StatsGate;

/// WebSocket close code for a message over the size cap (RFC 6455 §7.4.1).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code for a policy violation (sustained flooding).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code when the idle timeout passes ("going away").
pub const CLOSE_IDLE: u16 = 1001;
/// Normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code when the server shuts down ("going away"; the reason is [`CLOSE_REASON_SHUTDOWN`]).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close reason when the server shuts down: clients reconnect (to another instance) and join
/// again (`docs/protocol.md` §1).
pub const CLOSE_REASON_SHUTDOWN: &str = "server shutting down";

/// Per-connection limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Largest message accepted, bytes (64 KiB).
    pub max_message_bytes: usize,
    /// Sustained messages per second.
    pub messages_per_second: NonZeroU32,
    /// Burst allowance above the sustained rate.
    pub message_burst: NonZeroU32,
    /// Sustained `key_envelope` messages per second of a device that may publish (its own
    /// budget: a rekey wraps one envelope per device in the sender's roster).
    pub key_envelopes_per_second: NonZeroU32,
    /// Burst allowance of `key_envelope` messages.
    pub key_envelope_burst: NonZeroU32,
    /// Rate-limited (dropped) messages tolerated within [`FLOOD_WINDOW`]; one more closes the
    /// connection (1008). Messages that get through in between do not reset the count.
    pub flood_close_after: u32,
    /// Interval between server pings.
    pub ping_interval: Duration,
    /// Silence (no frame at all) after which the connection is closed.
    pub idle_timeout: Duration,
    /// Longest one write to the client may block before the connection is dropped.
    pub write_timeout: Duration,
}

/// What every session needs from the server.
#[derive(Clone)]
pub struct SessionContext {
    /// Rooms.
    pub hub: Hub,
    /// Token verification.
    pub verifier: Arc<TokenVerifier>,
    /// Limits.
    pub limits: SessionLimits,
    /// Whether a join may create a room (as an ephemeral meeting) that does not exist.
    pub auto_create_rooms: bool,
    /// Whether the rooms a join creates give receive slots.
    pub receive_slots: bool,
    /// The `last_n` of the rooms a join creates (`None`: the media node's default).
    pub last_n: Option<u32>,
    /// Signed recording policies for the rooms a join creates: a room whose name one names is
    /// created recorded under it (`--recording-policy`).
    pub auto_create_recording: Arc<[RecordingPolicy]>,
    /// Turns true when the server shuts down: the session closes with 1001.
    pub shutdown: watch::Receiver<bool>,
}

/// Classifies transport errors: only "message too big" gets a 1009 close.
pub trait TransportError: std::fmt::Display {
    /// Whether the transport refused a message for its size.
    fn is_message_too_big(&self) -> bool;
}

impl TransportError for axum::Error {
    fn is_message_too_big(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = source {
            if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
                return true;
            }
            source = e.source();
        }
        false
    }
}

impl TransportError for Infallible {
    fn is_message_too_big(&self) -> bool {
        match *self {}
    }
}

/// Whether a client message is a `key_envelope` (its `type` alone is read).
fn is_key_envelope(text: &str) -> bool {
    serde_json::from_str::<RequestHeader<'_>>(text).is_ok_and(|h| h.ty == "key_envelope")
}

/// Runs one client session until the client leaves, is removed or the connection ends.
pub async fn run_session<W, R, E>(sink: W, stream: R, ctx: SessionContext, peer: Option<SocketAddr>)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: TransportError,
{
    let conn = ctx.hub.next_conn_id();
    let span = info_span!("conn", conn, peer = ?peer, room = tracing::field::Empty, device = tracing::field::Empty);
    let metrics = ctx.hub.metrics().clone();
    metrics.connections.inc();
    let flood_allowance = ctx.limits.flood_close_after;
    let limiter = RateLimiter::direct(
        Quota::per_second(ctx.limits.messages_per_second).allow_burst(ctx.limits.message_burst),
    );
    let key_limiter = RateLimiter::direct(
        Quota::per_second(ctx.limits.key_envelopes_per_second)
            .allow_burst(ctx.limits.key_envelope_burst),
    );
    let mut session = Session {
        sink,
        ctx,
        conn,
        joined: None,
        lobby: None,
        limiter,
        key_limiter,
        flood: FloodDetector::new(flood_allowance, Instant::now()),
        last_rate_error: None,
        write_stalled: false,
        severed: false,
        settled_offers: 0,
        lost: false,
        drained: false,
        request_id: None,
        span: span.clone(),
    };
    async {
        debug!("connected");
        session.run(stream).await;
        if let Some(j) = session
            .joined
            .as_ref()
            .or(session.lobby.as_ref().map(|l| &l.state))
        {
            let how = if session.drained {
                Departure::ServerShutdown
            } else if session.lost || session.severed || session.write_stalled {
                Departure::Dropped
            } else {
                Departure::Closed
            };
            let _ = j.room_tx.send(RoomCommand::Leave {
                conn,
                device: j.device.clone(),
                how,
            });
        }
        debug!("disconnected");
    }
    .instrument(span)
    .await;
    metrics.connections.dec();
}

struct JoinedState {
    room: String,
    device: String,
    grants: Grants,
    slot: u16,
    room_tx: mpsc::UnboundedSender<RoomCommand>,
    media_session: bool,
    /// The device's media session as the room last named it (with each SDP the device sent);
    /// `None` before its first.
    media_session_id: Option<MediaSessionId>,
    join_started: Option<Instant>,
    stats_gate: StatsGate,
    relay_gate: RelayGate,
}

/// A join waiting in the room's lobby: what the session becomes once admitted.
struct Lobby {
    /// The joined state, its slot still to come.
    state: JoinedState,
    /// The `id` of the `join`: a refusal names it.
    join_request: Option<RequestId>,
}

struct Session<W> {
    sink: W,
    ctx: SessionContext,
    conn: ConnId,
    joined: Option<JoinedState>,
    /// A join waiting in the lobby (never set together with `joined`).
    lobby: Option<Lobby>,
    limiter: DefaultDirectRateLimiter,
    /// The budget of `key_envelope` messages of a device that may publish (every other
    /// message, and a non-publisher's envelopes, count against `limiter`).
    key_limiter: DefaultDirectRateLimiter,
    flood: FloodDetector,
    last_rate_error: Option<Instant>,
    /// A write blocked past the write timeout: nothing more is written, not even a close frame.
    write_stalled: bool,
    /// Test hook `sever-connections` cut this connection: it ends without a close frame.
    severed: bool,
    /// The connection was lost rather than closed (no close frame from the client, a failed
    /// write or ping, the idle timeout): the member is suspended, waiting to resume.
    lost: bool,
    /// The session ended because the service is draining (its client will rejoin).
    drained: bool,
    /// The `id` of the client message being handled: every `error` answering it names it.
    request_id: Option<RequestId>,
    /// SFU offers the device's SDP has settled: a queued [`Outbound::NodeOffer`] numbered up
    /// to this is not sent (its answer was sent, or the SFU withdrew it for the device's own
    /// offer, architecture §7.51).
    settled_offers: u64,
    span: Span,
}

/// What to do after handling an input.
enum Flow {
    Continue,
    Close(u16, &'static str),
}

/// Resolves when the server shuts down (never when it is gone without saying so).
async fn shutdown_requested(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn recv_outbound(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl<W: Sink<Message> + Unpin> Session<W> {
    async fn run<R, E>(&mut self, mut stream: R)
    where
        R: Stream<Item = Result<Message, E>> + Unpin,
        E: TransportError,
    {
        let limits = self.ctx.limits;
        let mut outbound: Option<mpsc::Receiver<Outbound>> = None;
        let mut idle_deadline = tokio::time::Instant::now() + limits.idle_timeout;
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + limits.ping_interval,
            limits.ping_interval,
        );
        let shutdown = shutdown_requested(self.ctx.shutdown.clone());
        tokio::pin!(shutdown);
        let flow = loop {
            tokio::select! {
                frame = stream.next() => {
                    let flow = match frame {
                        None => {
                            self.lost = true;
                            break Flow::Continue;
                        }
                        Some(Err(e)) if e.is_message_too_big() => {
                            self.ctx.hub.metrics().reject("oversized");
                            Flow::Close(CLOSE_TOO_BIG, "message too big")
                        }
                        Some(Err(e)) => {
                            debug!(error = %e, "transport error");
                            self.lost = true;
                            break Flow::Continue;
                        }
                        Some(Ok(msg)) => {
                            idle_deadline = tokio::time::Instant::now() + limits.idle_timeout;
                            match msg {
                                Message::Text(text) => self.handle_text(text.as_str(), &mut outbound).await,
                                Message::Binary(b) => self.handle_binary(b.len()).await,
                                Message::Ping(_) | Message::Pong(_) => Flow::Continue,
                                Message::Close(_) => break Flow::Continue,
                            }
                        }
                    };
                    if let Flow::Close(..) = flow {
                        break flow;
                    }
                }
                item = recv_outbound(&mut outbound) => {
                    match item {
                        Some(Outbound::Message { ty, text }) => {
                            if self.write(ty, text).await.is_err() {
                                self.lost = true;
                                break Flow::Continue;
                            }
                        }
                        Some(Outbound::NodeOffer { seq, text }) => {
                            if seq <= self.settled_offers {
                                debug!(seq, "an SFU offer the device's own SDP settled is not sent");
                                self.ctx
                                    .hub
                                    .metrics()
                                    .node_offers
                                    .with_label_values(&[OfferOutcome::Superseded.as_str()])
                                    .inc();
                            } else if self.write("offer", text).await.is_err() {
                                self.lost = true;
                                break Flow::Continue;
                            }
                        }
                        Some(Outbound::Sever) => {
                            // Test hook: drop the socket unclosed, as a network blip would.
                            self.severed = true;
                            break Flow::Continue;
                        }
                        Some(Outbound::Admitted { slot }) => self.admitted(slot),
                        Some(Outbound::Refused { code, message }) => {
                            // Out of the lobby already: nothing to leave on exit.
                            let request_id = self.lobby.take().and_then(|l| l.join_request);
                            info!(code = code.as_str(), "join turned away from the lobby");
                            let msg = ServerMessage::error_answering(request_id, code, message);
                            let _ = self.write(msg.type_name(), msg.to_json().into()).await;
                            break Flow::Close(CLOSE_NORMAL, "join refused");
                        }
                        Some(Outbound::Close(reason)) => {
                            let msg = ServerMessage::Left(LeftNotice { reason });
                            let _ = self.write(msg.type_name(), msg.to_json().into()).await;
                            // Already out of the room: nothing to leave on exit.
                            self.joined = None;
                            self.lobby = None;
                            break Flow::Close(CLOSE_NORMAL, "left the room");
                        }
                        None => {
                            self.joined = None;
                            self.lobby = None;
                            break Flow::Close(CLOSE_POLICY, "dropped: outbound queue overflowed");
                        }
                    }
                }
                _ = ping.tick() => {
                    if self.send_frame(Message::Ping(Default::default())).await.is_err() {
                        self.lost = true;
                        break Flow::Continue;
                    }
                }
                () = &mut shutdown => {
                    self.drained = true;
                    break Flow::Close(CLOSE_GOING_AWAY, CLOSE_REASON_SHUTDOWN);
                }
                () = tokio::time::sleep_until(idle_deadline) => {
                    self.ctx.hub.metrics().reject("idle_timeout");
                    self.lost = true;
                    break Flow::Close(CLOSE_IDLE, "idle timeout");
                }
            }
        };
        if let Flow::Close(code, reason) = flow {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = self.send_frame(Message::Close(Some(frame))).await;
        }
        if !self.write_stalled && !self.severed {
            let _ = tokio::time::timeout(limits.write_timeout, self.sink.close()).await;
        }
    }

    /// Sends one frame within the write timeout. A write that blocks longer (the client stopped
    /// reading) is counted and marks the session stalled: nothing more is written to it.
    async fn send_frame(&mut self, msg: Message) -> Result<(), ()> {
        if self.write_stalled {
            return Err(());
        }
        match tokio::time::timeout(self.ctx.limits.write_timeout, self.sink.send(msg)).await {
            Ok(sent) => sent.map_err(|_| ()),
            Err(_) => {
                self.write_stalled = true;
                self.ctx.hub.metrics().connection_dropped("write_timeout");
                warn!("a write blocked past the write timeout (client not reading); dropping");
                Err(())
            }
        }
    }

    async fn write(&mut self, ty: &'static str, text: Utf8Bytes) -> Result<(), ()> {
        self.send_frame(Message::Text(text)).await?;
        let metrics = self.ctx.hub.metrics();
        metrics.messages_sent.with_label_values(&[ty]).inc();
        if ty == "key_envelope" {
            metrics.key_envelopes_relayed.inc();
        }
        Ok(())
    }

    async fn send(&mut self, msg: ServerMessage) -> Flow {
        match self.write(msg.type_name(), msg.to_json().into()).await {
            Ok(()) => Flow::Continue,
            Err(()) => {
                self.lost = true;
                Flow::Close(CLOSE_NORMAL, "write failed")
            }
        }
    }

    async fn refuse(&mut self, code: ErrorCode, message: impl Into<String>) -> Flow {
        self.refuse_as(code, reject_reason(code), message).await
    }

    /// Like [`Self::refuse`], counted under `reason` (one of `REJECT_REASONS`) instead of the
    /// code's own.
    async fn refuse_as(
        &mut self,
        code: ErrorCode,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Flow {
        self.ctx.hub.metrics().reject(reason);
        let msg = ServerMessage::error_answering(self.request_id, code, message);
        self.send(msg).await
    }

    /// Applies the size cap and the rate limit to a message of `len` bytes (`text` when it is
    /// a text message); `Some` when the message must not be handled.
    async fn admit(&mut self, len: usize, text: Option<&str>) -> Option<Flow> {
        if len > self.ctx.limits.max_message_bytes {
            self.ctx.hub.metrics().reject("oversized");
            return Some(Flow::Close(CLOSE_TOO_BIG, "message too big"));
        }
        let limiter = if text.is_some_and(|t| self.wraps_keys() && is_key_envelope(t)) {
            &self.key_limiter
        } else {
            &self.limiter
        };
        if limiter.check().is_err() {
            self.ctx.hub.metrics().reject("rate_limited");
            let now = Instant::now();
            if self.flood.record_drop(now) {
                warn!("message flood; closing");
                self.ctx.hub.metrics().reject("flood");
                return Some(Flow::Close(
                    CLOSE_POLICY,
                    "message flood: rate limit exceeded",
                ));
            }
            if self
                .last_rate_error
                .is_none_or(|t| now - t >= Duration::from_secs(1))
            {
                self.last_rate_error = Some(now);
                // At most once a second, so reading the dropped message's id costs nothing.
                let request_id = text.and_then(|t| match serde_json::from_str(t) {
                    Ok(RequestHeader {
                        id: Some(RequestIdField::Valid(id)),
                        ..
                    }) => Some(id),
                    _ => None,
                });
                let msg = ServerMessage::error_answering(
                    request_id,
                    ErrorCode::RateLimited,
                    "too many messages; dropped",
                );
                return Some(self.send(msg).await);
            }
            return Some(Flow::Continue);
        }
        None
    }

    /// Whether this connection's device sends key envelopes: joined with the publish grant.
    fn wraps_keys(&self) -> bool {
        self.joined.as_ref().is_some_and(|j| j.grants.can_publish)
    }

    async fn handle_binary(&mut self, len: usize) -> Flow {
        self.request_id = None;
        if let Some(flow) = self.admit(len, None).await {
            return flow;
        }
        self.count_received("unknown");
        self.refuse(
            ErrorCode::Malformed,
            "binary messages are not part of the protocol",
        )
        .await
    }

    fn count_received(&self, ty: &str) {
        self.ctx
            .hub
            .metrics()
            .messages_received
            .with_label_values(&[ty])
            .inc();
    }

    async fn handle_text(
        &mut self,
        text: &str,
        outbound: &mut Option<mpsc::Receiver<Outbound>>,
    ) -> Flow {
        self.request_id = None;
        if let Some(flow) = self.admit(text.len(), Some(text)).await {
            return flow;
        }
        let ty = match serde_json::from_str::<RequestHeader<'_>>(text) {
            Ok(RequestHeader { ty, id: None }) => ty.into_owned(),
            Ok(RequestHeader {
                ty,
                id: Some(RequestIdField::Valid(id)),
            }) => {
                self.request_id = Some(id);
                ty.into_owned()
            }
            Ok(RequestHeader {
                ty,
                id: Some(RequestIdField::Invalid(_)),
            }) => {
                let counted = CLIENT_MESSAGE_TYPES.iter().find(|t| **t == ty);
                self.count_received(counted.copied().unwrap_or("unknown"));
                return self
                    .refuse(
                        ErrorCode::Malformed,
                        "`id` must be an integer from 0 to 4294967295",
                    )
                    .await;
            }
            Err(_) => {
                self.count_received("unknown");
                return self
                    .refuse(
                        ErrorCode::Malformed,
                        "not a JSON object with a string `type`",
                    )
                    .await;
            }
        };
        let Some(&known) = CLIENT_MESSAGE_TYPES.iter().find(|t| **t == ty) else {
            self.count_received("unknown");
            return self
                .refuse(ErrorCode::UnknownType, "unknown message type")
                .await;
        };
        self.count_received(known);
        let msg = match serde_json::from_str::<ClientMessage>(text) {
            Ok(m) => m,
            Err(e) => {
                // serde's message names the field and expected type; it is only sent back to
                // the connection that wrote it and never logged.
                let code = refusal_code(known, text);
                return self.refuse(code, format!("bad {known}: {e}")).await;
            }
        };
        if let Some(lobby) = &self.lobby {
            return match msg {
                ClientMessage::Leave(_) => {
                    info!("leave from the lobby");
                    let cmd = RoomCommand::Leave {
                        conn: self.conn,
                        device: lobby.state.device.clone(),
                        how: Departure::Left,
                    };
                    // The room answers with `Outbound::Close`, which ends the session.
                    if lobby.state.room_tx.send(cmd).is_err() {
                        Flow::Close(CLOSE_NORMAL, "room closed")
                    } else {
                        Flow::Continue
                    }
                }
                other => {
                    let what = other.type_name();
                    self.refuse(
                        ErrorCode::WrongState,
                        format!("{what} while waiting in the lobby for a moderator"),
                    )
                    .await
                }
            };
        }
        match (msg, self.joined.is_some()) {
            (ClientMessage::Join(join), false) => self.join(join, outbound).await,
            (ClientMessage::Join(_), true) => {
                self.refuse(ErrorCode::WrongState, "already joined").await
            }
            (other, false) => {
                let what = other.type_name();
                self.refuse(ErrorCode::WrongState, format!("{what} before join"))
                    .await
            }
            (ClientMessage::Offer(offer), true) => self.offer(offer).await,
            (ClientMessage::Answer(answer), true) => self.answer(answer).await,
            (ClientMessage::Subscribe(update), true) => {
                let Some(j) = &self.joined else {
                    return Flow::Continue;
                };
                if !j.grants.can_subscribe {
                    return self
                        .refuse(ErrorCode::Forbidden, "token does not grant can_subscribe")
                        .await;
                }
                if update.subscriptions.len() > MAX_SUBSCRIPTIONS {
                    return self
                        .refuse(ErrorCode::Malformed, "too many subscriptions")
                        .await;
                }
                let _ = j.room_tx.send(RoomCommand::Subscriptions {
                    conn: self.conn,
                    device: j.device.clone(),
                    subscriptions: update.subscriptions.clone(),
                });
                let (room, device) = (j.room.clone(), j.device.clone());
                let Some(node) = self.ctx.hub.media().cloned() else {
                    return self.media_unavailable().await;
                };
                // Known from the join (or the first SDP of a device let in from the lobby).
                let Some(session) = j.media_session_id else {
                    return self
                        .refuse(ErrorCode::WrongState, "subscribe before any media session")
                        .await;
                };
                match node
                    .set_subscriptions(&room, &device, session, update.subscriptions)
                    .await
                {
                    Ok(()) => Flow::Continue,
                    Err(e) => self.refuse(ErrorCode::MediaError, e.to_string()).await,
                }
            }
            (ClientMessage::KeyEnvelope(body), true) => {
                let request_id = self.request_id;
                self.to_room(|conn, device| RoomCommand::Envelope {
                    conn,
                    device,
                    envelope: Box::new(body.envelope),
                    request_id,
                })
            }
            (ClientMessage::KeyAck(ack), true) => {
                let request_id = self.request_id;
                self.to_room(|conn, device| RoomCommand::Ack {
                    conn,
                    device,
                    ack,
                    request_id,
                })
            }
            (ClientMessage::KeyRequest(req), true) => {
                let request_id = self.request_id;
                self.to_room(|conn, device| RoomCommand::Request {
                    conn,
                    device,
                    req,
                    request_id,
                })
            }
            (ClientMessage::Stats(stats), true) => self.stats(stats).await,
            (ClientMessage::MediaState(state), true) => self.media_state(state).await,
            (ClientMessage::Chat(body), true) => self.chat(body).await,
            (ClientMessage::Hand(hand), true) => self.hand(hand).await,
            (ClientMessage::Publish(request), true) => {
                self.publication(request.kind, request.source, true).await
            }
            (ClientMessage::Unpublish(request), true) => {
                self.publication(TrackKind::Video, request.source, false)
                    .await
            }
            (ClientMessage::Moderate(action), true) => {
                let request_id = self.request_id;
                self.to_room(|conn, device| RoomCommand::Moderate {
                    conn,
                    device,
                    action,
                    request_id,
                })
            }
            (ClientMessage::Leave(_), true) => {
                info!("leave");
                // The room answers with `Outbound::Close`, which ends the session.
                self.to_room(|conn, device| RoomCommand::Leave {
                    conn,
                    device,
                    how: Departure::Left,
                })
            }
        }
    }

    /// A `stats` report: within the device's bounds it feeds the decrypt-failure counter and
    /// the room's latest stats; outside them it is refused whole and adds nothing.
    async fn stats(&mut self, stats: ClientStats) -> Flow {
        let Some(j) = &mut self.joined else {
            return Flow::Continue;
        };
        if let Err(refusal) = j.stats_gate.admit(&stats, Instant::now()) {
            return self
                .refuse_as(refusal.code(), refusal.metric_reason(), refusal.message())
                .await;
        }
        self.ctx
            .hub
            .metrics()
            .client_decrypt_failures
            .inc_by(stats.decrypt_failures);
        self.to_room(|conn, device| RoomCommand::Stats {
            conn,
            device,
            stats,
        })
    }

    /// A `media_state`: within the device's allowance it goes to the room, stamped with this
    /// connection's device.
    async fn media_state(&mut self, state: MediaState) -> Flow {
        if self
            .joined
            .as_ref()
            .is_some_and(|j| !j.relay_gate.admit_media_state())
        {
            return self
                .refuse_as(
                    ErrorCode::RateLimited,
                    "media_state_too_frequent",
                    format!(
                        "media_state: at most {MEDIA_STATE_BURST} at once, then \
                         {MEDIA_STATE_PER_SECOND} per second; dropped"
                    ),
                )
                .await;
        }
        self.to_room(|conn, device| RoomCommand::MediaState {
            conn,
            device,
            state,
        })
    }

    /// A `hand`: within the device's allowance it goes to the room, stamped with this
    /// connection's device (a client can only move its own hand).
    async fn hand(&mut self, hand: Hand) -> Flow {
        if self
            .joined
            .as_ref()
            .is_some_and(|j| !j.relay_gate.admit_hand())
        {
            return self
                .refuse_as(
                    ErrorCode::RateLimited,
                    "hand_too_frequent",
                    format!(
                        "hand: at most {HAND_BURST} at once, then {HAND_PER_SECOND} per second; \
                         dropped"
                    ),
                )
                .await;
        }
        self.to_room(|conn, device| RoomCommand::Hand {
            conn,
            device,
            raised: hand.raised,
        })
    }

    /// A `chat`: a sealed message of the right shape and size, within the device's allowance,
    /// goes to the room (which relays it unopened), stamped with this connection's device.
    async fn chat(&mut self, body: ChatBody) -> Flow {
        if let Err(e) = body.chat.validate() {
            let reason = match e {
                ShapeError::TooLong { .. } => "chat_too_large",
                _ => "malformed",
            };
            return self
                .refuse_as(ErrorCode::Malformed, reason, format!("bad chat: {e}"))
                .await;
        }
        if self
            .joined
            .as_ref()
            .is_some_and(|j| !j.relay_gate.admit_chat())
        {
            return self
                .refuse_as(
                    ErrorCode::RateLimited,
                    "chat_too_frequent",
                    format!(
                        "chat: at most {CHAT_BURST} at once, then {CHAT_PER_SECOND} per second; \
                         dropped"
                    ),
                )
                .await;
        }
        let request_id = self.request_id;
        self.to_room(|conn, device| RoomCommand::Chat {
            conn,
            device,
            chat: Box::new(body.chat),
            request_id,
        })
    }

    /// Refuses an SDP from a device without a publish grant when any media section of it can
    /// send (`None` when it may go on).
    async fn refuse_sending_sdp(&mut self, sdp: &str) -> Option<Flow> {
        let sending = sdp_sending_section(sdp)?;
        info!("receive-only device sent an SDP that can send; refused");
        Some(
            self.refuse_as(
                ErrorCode::Forbidden,
                "sdp_sends_without_grant",
                format!("this token may not publish: offer receive-only media ({sending})"),
            )
            .await,
        )
    }

    fn to_room(&self, make: impl FnOnce(ConnId, String) -> RoomCommand) -> Flow {
        match &self.joined {
            Some(j) if j.room_tx.send(make(self.conn, j.device.clone())).is_err() => {
                Flow::Close(CLOSE_NORMAL, "room closed")
            }
            _ => Flow::Continue,
        }
    }

    /// Tells the room the device sends SDP (settling a node offer it had pending) and returns
    /// the media session the SDP is for, remembered for later calls; `None` when the device is
    /// no longer in the room (its connection is being closed). SFU offers still queued to this
    /// connection from before are settled too, and not sent.
    async fn sdp_from_device(&mut self) -> Option<MediaSessionId> {
        let j = self.joined.as_ref()?;
        let (reply, answer) = oneshot::channel();
        j.room_tx
            .send(RoomCommand::SdpFromDevice {
                device: j.device.clone(),
                reply,
            })
            .ok()?;
        let settled = answer.await.ok().flatten()?;
        self.settled_offers = self.settled_offers.max(settled.offers_queued);
        if let Some(j) = &mut self.joined {
            j.media_session_id = Some(settled.media_session);
        }
        Some(settled.media_session)
    }

    async fn media_unavailable(&mut self) -> Flow {
        self.refuse(
            ErrorCode::MediaUnavailable,
            "no media node (SFU) is attached to this signaling service",
        )
        .await
    }

    async fn join(&mut self, join: Join, outbound: &mut Option<mpsc::Receiver<Outbound>>) -> Flow {
        let metrics = self.ctx.hub.metrics().clone();
        let started = Instant::now();
        match self.try_join(join, outbound, started).await {
            Ok(JoinOutcome::Joined { .. }) => {
                metrics.joins.with_label_values(&["ok"]).inc();
                Flow::Continue
            }
            Ok(JoinOutcome::Waiting) => {
                metrics.joins.with_label_values(&["waiting"]).inc();
                Flow::Continue
            }
            Err((code, message)) => {
                metrics.joins.with_label_values(&["refused"]).inc();
                info!(code = code.as_str(), "join refused");
                self.refuse(code, message).await
            }
        }
    }

    async fn try_join(
        &mut self,
        join: Join,
        outbound: &mut Option<mpsc::Receiver<Outbound>>,
        started: Instant,
    ) -> Result<JoinOutcome, (ErrorCode, String)> {
        if join.v != PROTOCOL_VERSION {
            return Err((
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {} is not supported (this server speaks {PROTOCOL_VERSION})",
                    join.v
                ),
            ));
        }
        join.device
            .validate()
            .map_err(|e| (ErrorCode::BadBundle, e.to_string()))?;
        if join.name.as_ref().is_some_and(|n| n.len() > MAX_NAME_BYTES) {
            return Err((
                ErrorCode::Malformed,
                format!("name longer than {MAX_NAME_BYTES} bytes"),
            ));
        }
        validate_room_name(&join.room).map_err(|_| {
            (
                ErrorCode::Malformed,
                "room must be 1-64 characters of [A-Za-z0-9_-]".to_string(),
            )
        })?;
        let grants = self
            .ctx
            .verifier
            .verify(&join.token)
            .map_err(|e| (e.code(), e.to_string()))?;
        if grants.room != join.room {
            return Err((ErrorCode::WrongRoom, "the token grants another room".into()));
        }
        let device = join.device.device.clone();
        let req = JoinRequest {
            conn: self.conn,
            grants: grants.clone(),
            bundle: join.device,
            name: join.name,
            resume: join.resume.clone(),
            now_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        // An ephemeral room can close between lookup and join; one retry covers that race.
        for _ in 0..2 {
            let room_tx = self.lookup_room(&join.room, join.resume.as_ref()).await?;
            let (tx, rx) = mpsc::channel(self.ctx.hub.outbound_queue());
            let (reply, answer) = oneshot::channel();
            let cmd = RoomCommand::Join {
                req: Box::new(req.clone()),
                tx,
                reply,
            };
            if room_tx.send(cmd).is_err() {
                continue;
            }
            let Ok(result) = answer.await else { continue };
            let outcome = result.map_err(|e| (e.code(), e.to_string()))?;
            self.span.record("room", join.room.as_str());
            self.span.record("device", device.as_str());
            *outbound = Some(rx);
            let state = JoinedState {
                room: join.room.clone(),
                device,
                grants,
                slot: 0,
                room_tx,
                media_session: false,
                media_session_id: None,
                join_started: Some(started),
                stats_gate: StatsGate::new(Instant::now()),
                relay_gate: RelayGate::new(),
            };
            match outcome {
                JoinOutcome::Joined {
                    slot,
                    resumed,
                    media_session,
                } => {
                    info!(role = state.grants.role.as_str(), slot, resumed, "joined");
                    // A resumed device's media session is still on the media node, unless its
                    // peer connection did not survive: its next offer then starts a fresh one,
                    // which replaces the old one on the node in one step.
                    let media_lost = join.resume.as_ref().is_some_and(|r| r.media_lost);
                    self.joined = Some(JoinedState {
                        slot,
                        media_session: resumed && !media_lost,
                        media_session_id: Some(media_session),
                        ..state
                    });
                }
                JoinOutcome::Waiting => {
                    info!(role = state.grants.role.as_str(), "waiting in the lobby");
                    self.lobby = Some(Lobby {
                        state,
                        join_request: self.request_id,
                    });
                }
            }
            return Ok(outcome);
        }
        Err((ErrorCode::RoomNotFound, "room closed while joining".into()))
    }

    /// The room let this connection's waiting join in: it is joined from now on (its `joined`
    /// is the next message out). Join latency counts from here, not from the wait.
    fn admitted(&mut self, slot: u16) {
        let Some(lobby) = self.lobby.take() else {
            return;
        };
        info!(
            role = lobby.state.grants.role.as_str(),
            slot, "admitted from the lobby"
        );
        let now = Instant::now();
        self.joined = Some(JoinedState {
            slot,
            join_started: Some(now),
            stats_gate: StatsGate::new(now),
            ..lobby.state
        });
    }

    /// The room `name`, created (as an ephemeral meeting) when joins may create rooms and none
    /// exists. A resuming join that creates it gives it the call id it resumes, when that has
    /// the shape of one (docs/architecture.md §7.42); an existing room's call id never changes.
    async fn lookup_room(
        &self,
        name: &str,
        resume: Option<&ResumeCall>,
    ) -> Result<mpsc::UnboundedSender<RoomCommand>, (ErrorCode, String)> {
        if let Some(tx) = self.ctx.hub.room(name) {
            return Ok(tx);
        }
        if !self.ctx.auto_create_rooms {
            return Err((
                ErrorCode::RoomNotFound,
                format!("room {name:?} does not exist"),
            ));
        }
        match self
            .ctx
            .hub
            .create_room_with_call(
                name,
                RoomPolicy {
                    receive_slots: self.ctx.receive_slots,
                    last_n: self.ctx.last_n,
                    recording: self
                        .ctx
                        .auto_create_recording
                        .iter()
                        .find(|p| p.document().is_ok_and(|d| d.applies_to(name)))
                        .cloned(),
                    ..RoomPolicy::default_meeting()
                },
                true,
                call_for_new_room(resume),
            )
            .await
        {
            Ok(_) | Err(HubError::Exists) => {}
            Err(e) => return Err((ErrorCode::MediaError, e.to_string())),
        }
        self.ctx
            .hub
            .room(name)
            .ok_or((ErrorCode::RoomNotFound, "room closed while joining".into()))
    }

    async fn offer(&mut self, offer: ClientOffer) -> Flow {
        let Some(j) = &self.joined else {
            return Flow::Continue;
        };
        if offer.sdp.len() > MAX_SDP_BYTES || offer.tracks.len() > MAX_TRACKS_PER_OFFER {
            return self.refuse(ErrorCode::Malformed, "offer too large").await;
        }
        if !j.grants.can_publish {
            if !offer.tracks.is_empty() {
                return self
                    .refuse_as(
                        ErrorCode::Forbidden,
                        "sdp_sends_without_grant",
                        "this token may not publish: announce no tracks",
                    )
                    .await;
            }
            if let Some(flow) = self.refuse_sending_sdp(&offer.sdp).await {
                return flow;
            }
        }
        let Some(j) = &self.joined else {
            return Flow::Continue;
        };
        let Some(node) = self.ctx.hub.media().cloned() else {
            return self.media_unavailable().await;
        };
        let (room, device) = (j.room.clone(), j.device.clone());
        // Settles a node offer this device had pending (before the node can make a new one).
        let Some(session) = self.sdp_from_device().await else {
            return Flow::Continue;
        };
        let Some(j) = &self.joined else {
            return Flow::Continue;
        };
        let spec = ParticipantSpec {
            session,
            device: device.clone(),
            slot: j.slot,
            role: j.grants.role,
            can_publish: j.grants.can_publish,
            can_subscribe: j.grants.can_subscribe,
        };
        let result = if j.media_session {
            // Only the SFU offers after the first answer; a client that offers anyway (a
            // standards client renegotiating on its own) is still answered: counted.
            self.ctx.hub.metrics().client_reoffers.inc();
            match node
                .renegotiate(
                    &room,
                    &device,
                    session,
                    SessionDescription::Offer(offer.sdp.clone()),
                    offer.tracks.clone(),
                )
                .await
            {
                // The node lost the session (it restarted, or dropped the peer): a fresh one.
                Err(crate::media_node::MediaError::UnknownParticipant) => {
                    node.add_participant(&room, &spec, offer.sdp, offer.tracks)
                        .await
                }
                other => other.and_then(|a| {
                    a.ok_or_else(|| {
                        crate::media_node::MediaError::Failed("no answer to an offer".into())
                    })
                }),
            }
        } else {
            node.add_participant(&room, &spec, offer.sdp, offer.tracks)
                .await
        };
        match result {
            Ok(sdp) => {
                let flow = self.send(ServerMessage::Answer(SdpBody { sdp })).await;
                if let Some(j) = &mut self.joined {
                    j.media_session = true;
                    if let Some(t) = j.join_started.take() {
                        self.ctx
                            .hub
                            .metrics()
                            .join_latency
                            .observe(t.elapsed().as_secs_f64());
                    }
                }
                flow
            }
            Err(e) => self.refuse(ErrorCode::MediaError, e.to_string()).await,
        }
    }

    /// `publish` (`on`) or `unpublish`: the SFU adds a section it receives the source on, or
    /// turns it `inactive`, and offers (docs/architecture.md §7.53). Refusals
    /// name the message's id.
    async fn publication(&mut self, kind: TrackKind, source: TrackSource, on: bool) -> Flow {
        let Some(j) = &self.joined else {
            return Flow::Continue;
        };
        let what = if on { "publish" } else { "unpublish" };
        if (kind, source) != (TrackKind::Video, TrackSource::Screen) {
            return self
                .refuse(
                    ErrorCode::Malformed,
                    format!("only video screen can be asked for with {what}"),
                )
                .await;
        }
        if !j.grants.can_publish {
            return self
                .refuse(ErrorCode::Forbidden, "token does not grant can_publish")
                .await;
        }
        if !j.media_session {
            return self
                .refuse(
                    ErrorCode::WrongState,
                    format!("{what} before the answer to the first offer"),
                )
                .await;
        }
        let Some(node) = self.ctx.hub.media().cloned() else {
            return self.media_unavailable().await;
        };
        let Some(session) = j.media_session_id else {
            return self
                .refuse(
                    ErrorCode::WrongState,
                    format!("{what} before any media session"),
                )
                .await;
        };
        let (room, device) = (j.room.clone(), j.device.clone());
        let result = if on {
            node.publish(&room, &device, session, PublishSource::Screen)
                .await
        } else {
            node.unpublish(&room, &device, session, PublishSource::Screen)
                .await
        };
        match result {
            Ok(()) => Flow::Continue,
            Err(crate::media_node::MediaError::Publication(reason)) => {
                self.refuse(ErrorCode::WrongState, reason).await
            }
            Err(e) => self.refuse(ErrorCode::MediaError, e.to_string()).await,
        }
    }

    async fn answer(&mut self, answer: SdpBody) -> Flow {
        let Some(j) = &self.joined else {
            return Flow::Continue;
        };
        if answer.sdp.len() > MAX_SDP_BYTES {
            return self.refuse(ErrorCode::Malformed, "answer too large").await;
        }
        if !j.grants.can_publish
            && let Some(flow) = self.refuse_sending_sdp(&answer.sdp).await
        {
            return flow;
        }
        let Some(j) = &self.joined else {
            return Flow::Continue;
        };
        let Some(node) = self.ctx.hub.media().cloned() else {
            return self.media_unavailable().await;
        };
        if !j.media_session {
            return self
                .refuse(ErrorCode::WrongState, "answer without a media session")
                .await;
        }
        let (room, device) = (j.room.clone(), j.device.clone());
        let Some(session) = self.sdp_from_device().await else {
            return Flow::Continue;
        };
        match node
            .renegotiate(
                &room,
                &device,
                session,
                SessionDescription::Answer(answer.sdp),
                Vec::new(),
            )
            .await
        {
            Ok(_) => Flow::Continue,
            Err(e) => self.refuse(ErrorCode::MediaError, e.to_string()).await,
        }
    }
}

/// The code a client message of type `known` that did not parse is refused with: a bundle or an
/// envelope that does not fit its wire form (a key of the wrong length, bad base64url) is
/// `bad_bundle` / `bad_envelope`, as when it parses but fails its shape checks; anything else
/// is `malformed`. Only called on the refusal path, so parsing again costs a normal client
/// nothing.
fn refusal_code(known: &str, text: &str) -> ErrorCode {
    let (field, code) = match known {
        "join" => ("device", ErrorCode::BadBundle),
        "key_envelope" => ("envelope", ErrorCode::BadEnvelope),
        _ => return ErrorCode::Malformed,
    };
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::from_str(text) else {
        return ErrorCode::Malformed;
    };
    let Some(value) = fields.remove(field) else {
        return ErrorCode::Malformed;
    };
    let fits = if known == "join" {
        serde_json::from_value::<crate::protocol::DeviceBundle>(value).is_ok()
    } else {
        serde_json::from_value::<crate::protocol::KeyEnvelope>(value).is_ok()
    };
    if fits { ErrorCode::Malformed } else { code }
}
