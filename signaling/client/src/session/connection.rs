//! The task that owns one WebSocket of a [`Session`](super::Session): it writes queued messages,
//! reads server messages onto the incoming queue, and answers each [`Session::request`]
//! (super::Session::request) with the `error` naming its id or with `Ok` at its deadline.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{SessionConfig, SessionError, SharedCounters};
use crate::protocol::{ErrorBody, Joined, RequestId, ServerMessage};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One queued client message, serialized with its request id.
pub(super) struct Outgoing {
    pub(super) id: RequestId,
    pub(super) text: String,
    /// Where [`Session::request`](super::Session::request) waits for its answer.
    pub(super) answer: Option<oneshot::Sender<Result<(), SessionError>>>,
}

/// A request waiting for an `error` naming it until its deadline.
struct Awaiting {
    id: RequestId,
    deadline: Instant,
    answer: oneshot::Sender<Result<(), SessionError>>,
}

/// The handle side of a started connection task.
pub(super) struct Connection {
    pub(super) outgoing: mpsc::Sender<Outgoing>,
    pub(super) incoming: mpsc::Receiver<ServerMessage>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

/// Opens the WebSocket, sends the serialized `join` and reads until `joined` (or the `error`
/// refusing the join).
pub(super) async fn connect_and_join(
    config: &SessionConfig,
    join: String,
    join_id: RequestId,
) -> Result<(Box<Joined>, Socket), SessionError> {
    let (mut ws, _) = tokio_tungstenite::connect_async(config.url.as_str())
        .await
        .map_err(|e| SessionError::Connect(e.to_string()))?;
    ws.send(Message::text(join))
        .await
        .map_err(|_| SessionError::ConnectionLost)?;
    while let Some(frame) = ws.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => return Err(SessionError::ConnectionLost),
            Ok(_) => continue,
        };
        match ServerMessage::parse(text.as_str()) {
            Ok(Some(ServerMessage::Joined(joined))) => return Ok((joined, ws)),
            Ok(Some(ServerMessage::Error(error)))
                if error.request_id.is_none_or(|id| id == join_id) =>
            {
                return Err(SessionError::Refused(error));
            }
            Ok(_) => {}
            Err(e) => return Err(SessionError::Protocol(e.to_string())),
        }
    }
    Err(SessionError::ConnectionLost)
}

impl Connection {
    /// Starts the task on a joined socket.
    pub(super) fn start(
        ws: Socket,
        config: &SessionConfig,
        counters: Arc<SharedCounters>,
    ) -> Connection {
        let (outgoing, outgoing_rx) = mpsc::channel(config.outgoing_capacity.max(1));
        let (incoming_tx, incoming) = mpsc::channel(config.incoming_capacity.max(1));
        let task = tokio::spawn(
            Task {
                ws,
                answer_timeout: config.answer_timeout,
                awaiting: VecDeque::new(),
                incoming: incoming_tx,
                counters,
            }
            .run(outgoing_rx),
        );
        Connection {
            outgoing,
            incoming,
            task,
        }
    }
}

struct Task {
    ws: Socket,
    answer_timeout: std::time::Duration,
    /// In send order, so deadlines are ascending too: the front is always the next to expire.
    awaiting: VecDeque<Awaiting>,
    incoming: mpsc::Sender<ServerMessage>,
    counters: Arc<SharedCounters>,
}

impl Task {
    async fn run(mut self, mut outgoing: mpsc::Receiver<Outgoing>) {
        loop {
            let next_deadline = self.awaiting.front().map(|a| a.deadline);
            tokio::select! {
                queued = outgoing.recv() => {
                    let Some(queued) = queued else { break };
                    if self.ws.send(Message::text(queued.text)).await.is_err() {
                        if let Some(answer) = queued.answer {
                            let _ = answer.send(Err(SessionError::ConnectionLost));
                        }
                        break;
                    }
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    if let Some(answer) = queued.answer {
                        self.awaiting.push_back(Awaiting {
                            id: queued.id,
                            deadline: Instant::now() + self.answer_timeout,
                            answer,
                        });
                    }
                }
                frame = self.ws.next() => {
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            if !self.deliver(text.as_str()).await {
                                break;
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                        Some(Ok(_)) => {}
                    }
                }
                () = sleep_until(next_deadline) => {
                    let now = Instant::now();
                    while self.awaiting.front().is_some_and(|a| a.deadline <= now) {
                        if let Some(done) = self.awaiting.pop_front() {
                            let _ = done.answer.send(Ok(()));
                        }
                    }
                }
            }
        }
        for waiting in self.awaiting.drain(..) {
            let _ = waiting.answer.send(Err(SessionError::ConnectionLost));
        }
    }

    /// Hands one server message to its request or to the incoming queue; `false` once the
    /// session handle is gone.
    async fn deliver(&mut self, text: &str) -> bool {
        let message = match ServerMessage::parse(text) {
            Ok(Some(message)) => message,
            // An unknown type (ignored, protocol §1) or not protocol: nothing to deliver.
            Ok(None) | Err(_) => return true,
        };
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        if let ServerMessage::Error(ErrorBody {
            request_id: Some(id),
            ..
        }) = &message
            && let Some(at) = self.awaiting.iter().position(|a| a.id == *id)
            && let Some(waiting) = self.awaiting.remove(at)
            && let ServerMessage::Error(error) = message
        {
            self.counters
                .refused_requests
                .fetch_add(1, Ordering::Relaxed);
            let _ = waiting.answer.send(Err(SessionError::Refused(error)));
            return true;
        }
        self.incoming.send(message).await.is_ok()
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
