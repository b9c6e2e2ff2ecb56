//! A WebSocket client of `/v1/rtc` (feature `session`): connect and join, typed sends with
//! automatic request ids, a receive stream of [`ServerMessage`]s, refusals matched to the request
//! that caused them, and reconnecting as the same device.
//!
//! One task per connection (`connection.rs`) owns the socket and the requests awaiting an answer;
//! the [`Session`] handle talks to it over two bounded queues, so memory stays bounded however
//! fast the caller sends or however slowly it reads:
//!
//! - **outgoing** ([`SessionConfig::outgoing_capacity`]): a send that finds it full fails at once
//!   with [`SessionError::OutgoingFull`] and is counted ([`SessionCounters::outgoing_full`]); the
//!   caller decides what to drop. Nothing waits, nothing grows.
//! - **incoming** ([`SessionConfig::incoming_capacity`]): when the caller does not read, the task
//!   stops reading the socket (back-pressure): no message is lost, and a client that stays behind
//!   long enough is dropped by the server's write timeout (`docs/protocol.md` §1).
//!
//! **Request ids**: every message sent gets the next [`RequestId`] of the session (protocol §1).
//! [`Session::request`] waits up to [`SessionConfig::answer_timeout`] for an `error` naming that
//! id: such an error is its `Err`, none in time is `Ok` (the protocol acknowledges no success
//! except `joined` and `answer`). An `error` for a message sent with [`Session::send`] is
//! delivered on the receive stream with its `request_id`, so the caller can still match it.
//!
//! **Reconnect** ([`Session::reconnect`]): drops the current socket (without `leave`), opens a new
//! one and sends `join` again with the same token, room, name and the same [`DeviceBundle`] (so the
//! same device id and keys), asking to be resumed (`join.resume`: the call id and slot of the lost
//! `joined`, docs/protocol.md §1 "Resume"). When the server still holds the device suspended (its
//! old connection dropped within the grace window), the new `joined` says `resumed: true`: same
//! slot, nobody else was told anything, and the keys and media of the call stay valid. Otherwise
//! it is a fresh join: media (`offer`, `subscribe`) and keys are the caller's to restore, as after
//! any rejoin: the new `joined` carries the roster to re-key to (docs/architecture.md §3.3). If the
//! server still holds the old connection open, the new join replaces it (the old one gets `left`
//! `replaced`), so the roster shows the device once. Requests awaiting an answer on the old
//! connection end with [`SessionError::ConnectionLost`].
//!
//! Plain `ws://` only: the library is for loopback tests and the load generator.

mod connection;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::protocol::{
    ClientMessage, ClientRequest, DeviceBundle, ErrorBody, Join, Joined, PROTOCOL_VERSION,
    PublishRequest, RequestId, ResumeCall, ServerMessage, TrackKind, TrackSource, UnpublishRequest,
};
use connection::{Connection, Outgoing};

/// Where and as whom a [`Session`] joins, and its queue sizes and timeouts.
#[derive(Clone)]
pub struct SessionConfig {
    /// `ws://HOST:PORT/v1/rtc`.
    pub url: String,
    /// The room to join.
    pub room: String,
    /// The access token (never logged).
    pub token: String,
    /// This device's public bundle: the same on every reconnect.
    pub device: DeviceBundle,
    /// Display name.
    pub name: Option<String>,
    /// Messages the outgoing queue holds before a send fails (256).
    pub outgoing_capacity: usize,
    /// Server messages the incoming queue holds before the socket is no longer read (1024).
    pub incoming_capacity: usize,
    /// How long [`Session::request`] waits for an `error` naming its id (2 s).
    pub answer_timeout: Duration,
    /// How long connecting and joining may take (10 s).
    pub join_timeout: Duration,
}

impl SessionConfig {
    /// A configuration with the default queue sizes and timeouts.
    pub fn new(
        url: impl Into<String>,
        room: impl Into<String>,
        token: impl Into<String>,
        device: DeviceBundle,
    ) -> Self {
        SessionConfig {
            url: url.into(),
            room: room.into(),
            token: token.into(),
            device,
            name: None,
            outgoing_capacity: 256,
            incoming_capacity: 1024,
            answer_timeout: Duration::from_secs(2),
            join_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("url", &self.url)
            .field("room", &self.room)
            .field("token", &"<redacted>")
            .field("device", &self.device.device)
            .field("name", &self.name)
            .field("outgoing_capacity", &self.outgoing_capacity)
            .field("incoming_capacity", &self.incoming_capacity)
            .field("answer_timeout", &self.answer_timeout)
            .field("join_timeout", &self.join_timeout)
            .finish()
    }
}

/// Why a session operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The WebSocket could not be opened.
    #[error("connect: {0}")]
    Connect(String),
    /// The server refused the message (its `error` named this message's request id), `join`
    /// included.
    #[error("refused: {}: {}", .0.code.as_str(), .0.message)]
    Refused(ErrorBody),
    /// Connecting and joining took longer than [`SessionConfig::join_timeout`].
    #[error("no joined within {0:?}")]
    JoinTimeout(Duration),
    /// The outgoing queue was full: the message was not sent (counted).
    #[error("outgoing queue full ({capacity} messages); message not sent")]
    OutgoingFull {
        /// The queue's size.
        capacity: usize,
    },
    /// The connection ended before the message was sent or answered.
    #[error("connection lost")]
    ConnectionLost,
    /// The server sent something that is not protocol (named in the text).
    #[error("protocol: {0}")]
    Protocol(String),
}

/// What a session counted, over all its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCounters {
    /// Messages written to the socket.
    pub sent: u64,
    /// Server messages received (unknown types ignored).
    pub received: u64,
    /// Sends refused because the outgoing queue was full.
    pub outgoing_full: u64,
    /// `error`s matched to a [`Session::request`].
    pub refused_requests: u64,
    /// Connections opened (1 plus successful reconnects).
    pub connections: u64,
}

/// Counters shared by the handle and its connection tasks (relaxed atomics, no lock).
#[derive(Debug, Default)]
pub(crate) struct SharedCounters {
    sent: AtomicU64,
    received: AtomicU64,
    outgoing_full: AtomicU64,
    refused_requests: AtomicU64,
    connections: AtomicU64,
}

impl SharedCounters {
    fn snapshot(&self) -> SessionCounters {
        SessionCounters {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            outgoing_full: self.outgoing_full.load(Ordering::Relaxed),
            refused_requests: self.refused_requests.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }
}

/// A joined client session (see the module docs).
pub struct Session {
    config: SessionConfig,
    joined: Box<Joined>,
    outgoing: mpsc::Sender<Outgoing>,
    incoming: mpsc::Receiver<ServerMessage>,
    task: tokio::task::JoinHandle<()>,
    next_id: RequestId,
    counters: Arc<SharedCounters>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.config)
            .field("device", &self.joined.device)
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects to [`SessionConfig::url`], sends `join` and returns once `joined` arrives.
    pub async fn connect(config: SessionConfig) -> Result<Session, SessionError> {
        let counters = Arc::new(SharedCounters::default());
        let (joined, connection) = open(&config, 0, None, &counters).await?;
        Ok(Session {
            joined,
            outgoing: connection.outgoing,
            incoming: connection.incoming,
            task: connection.task,
            next_id: 1,
            counters,
            config,
        })
    }

    /// The `joined` of the current connection.
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// This device's id.
    pub fn device(&self) -> &str {
        &self.config.device.device
    }

    /// What the session counted so far.
    pub fn counters(&self) -> SessionCounters {
        self.counters.snapshot()
    }

    /// Queues `message` with the next request id and returns the id at once. A refusal arrives
    /// on [`Self::recv`] as an `error` naming the id.
    pub fn send(&mut self, message: ClientMessage) -> Result<RequestId, SessionError> {
        let id = self.take_id();
        self.enqueue(id, message, None)?;
        Ok(id)
    }

    /// Asks the SFU to receive `source` after the first answer (docs/protocol.md §5
    /// `publish`): the SFU's `offer` with a section for it follows on [`Self::recv`] (answer it
    /// with the source's track on that section, e.g. `Peer::answer_publishing_video`); a
    /// refusal arrives there as an `error` naming the returned id. After the first answer
    /// only the SFU offers: this is how a client adds a source.
    pub fn publish(&mut self, source: TrackSource) -> Result<RequestId, SessionError> {
        let kind = match source {
            TrackSource::Microphone | TrackSource::ScreenAudio => TrackKind::Audio,
            TrackSource::Camera | TrackSource::Screen => TrackKind::Video,
        };
        self.send(ClientMessage::Publish(PublishRequest { kind, source }))
    }

    /// Stops a source published with [`Self::publish`]: the SFU's `offer` turning its section
    /// `inactive` follows on [`Self::recv`]; a refusal arrives there as an `error` naming the
    /// returned id.
    pub fn unpublish(&mut self, source: TrackSource) -> Result<RequestId, SessionError> {
        self.send(ClientMessage::Unpublish(UnpublishRequest { source }))
    }

    /// Sends `message` and waits up to [`SessionConfig::answer_timeout`] for an `error` naming
    /// it: `Err(Refused)` when one came, `Ok` when none did.
    pub async fn request(&mut self, message: ClientMessage) -> Result<(), SessionError> {
        let id = self.take_id();
        let (answer, answered) = oneshot::channel();
        self.enqueue(id, message, Some(answer))?;
        answered.await.unwrap_or(Err(SessionError::ConnectionLost))
    }

    /// The next server message; `None` once the connection ended (then [`Self::reconnect`]).
    /// Cancel-safe: use it in `select!`.
    pub async fn recv(&mut self) -> Option<ServerMessage> {
        self.incoming.recv().await
    }

    /// Opens a new connection as the same device and joins again, asking to resume the call and
    /// slot of the current `joined` (see the module docs for what is re-sent; the new
    /// [`Joined::resumed`] says whether it was). Messages of the old connection not yet read are
    /// dropped.
    pub async fn reconnect(&mut self) -> Result<&Joined, SessionError> {
        self.task.abort();
        let resume = ResumeCall {
            call: self.joined.call.clone(),
            slot: self.joined.slot,
            media_lost: false,
        };
        let (joined, connection) =
            open(&self.config, self.next_id, Some(resume), &self.counters).await?;
        self.next_id = self.next_id.wrapping_add(1);
        self.joined = joined;
        self.outgoing = connection.outgoing;
        self.incoming = connection.incoming;
        self.task = connection.task;
        Ok(&self.joined)
    }

    /// [`Self::reconnect`] to another replica of the service at `url` (`ws://HOST:PORT/v1/rtc`):
    /// what a client does when the replica it was connected to is gone. Later reconnects go
    /// there too.
    pub async fn reconnect_to(&mut self, url: &str) -> Result<&Joined, SessionError> {
        self.config.url = url.to_owned();
        self.reconnect().await
    }

    /// Sends `leave` and waits (up to the join timeout) for the server to end the connection;
    /// messages not read by then are dropped. Best effort: a connection already gone is left.
    pub async fn leave(&mut self) {
        if self
            .send(ClientMessage::Leave(crate::protocol::Leave {}))
            .is_err()
        {
            return;
        }
        let wait = async { while self.incoming.recv().await.is_some() {} };
        let _ = tokio::time::timeout(self.config.join_timeout, wait).await;
    }

    fn take_id(&mut self) -> RequestId {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn enqueue(
        &self,
        id: RequestId,
        message: ClientMessage,
        answer: Option<oneshot::Sender<Result<(), SessionError>>>,
    ) -> Result<(), SessionError> {
        let text = ClientRequest {
            id: Some(id),
            message,
        }
        .to_json();
        let outgoing = Outgoing { id, text, answer };
        self.outgoing.try_send(outgoing).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                self.counters.outgoing_full.fetch_add(1, Ordering::Relaxed);
                SessionError::OutgoingFull {
                    capacity: self.config.outgoing_capacity,
                }
            }
            mpsc::error::TrySendError::Closed(_) => SessionError::ConnectionLost,
        })
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects, joins with request id `join_id` (asking to `resume` a lost session when given) and
/// starts the connection task.
async fn open(
    config: &SessionConfig,
    join_id: RequestId,
    resume: Option<ResumeCall>,
    counters: &Arc<SharedCounters>,
) -> Result<(Box<Joined>, Connection), SessionError> {
    let join = ClientRequest {
        id: Some(join_id),
        message: ClientMessage::Join(Join {
            v: PROTOCOL_VERSION,
            room: config.room.clone(),
            token: config.token.clone(),
            device: config.device.clone(),
            name: config.name.clone(),
            resume,
        }),
    };
    let joining = connection::connect_and_join(config, join.to_json(), join_id);
    let (joined, ws) = tokio::time::timeout(config.join_timeout, joining)
        .await
        .map_err(|_| SessionError::JoinTimeout(config.join_timeout))??;
    counters.connections.fetch_add(1, Ordering::Relaxed);
    counters.sent.fetch_add(1, Ordering::Relaxed);
    Ok((joined, Connection::start(ws, config, counters.clone())))
}
