//! The client's side of a connection whose room another replica owns: the client's frames go
//! up to the owner as envelopes, the owner's come down and are written to the client. This
//! replica keeps only the socket: every rule of the session (limits, join, keys) runs at the
//! owner, so a proxied client meets the same service as a local one.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::Cluster;
use super::bus::{BusCommand, ProxyEvent};
use super::envelope::{Body, Direction, Envelope};
use crate::session::{CLOSE_GOING_AWAY, CLOSE_REASON_SHUTDOWN, SessionContext, TransportError};

/// Close code telling the client to reconnect at once (RFC 6455 "service restart").
pub const CLOSE_SERVICE_RESTART: u16 = 1012;
/// The close reason when a room's owner replica is lost.
pub const CLOSE_REASON_OWNER_LOST: &str = "room owner replica lost: reconnect";
/// Events queued for one proxied connection.
const PROXY_QUEUE: usize = 1024;

/// How a proxied connection ended.
pub(super) enum Proxied<W, R> {
    /// The connection is over.
    Done,
    /// The owner refused the connection (it does not own the room), or nobody reads its inbox,
    /// before anything reached the client: route it again.
    Reroute {
        /// The socket, to route again.
        sink: W,
        /// The socket, to route again.
        stream: R,
        /// Nobody read the owner's inbox (it is gone).
        owner_gone: bool,
    },
}

/// Which connection goes where.
pub(super) struct Carry<'a> {
    /// The replica that owns the room.
    pub(super) owner: &'a str,
    /// The room the `join` names.
    pub(super) room: &'a str,
    /// The connection's first frame (the `join`).
    pub(super) first: &'a Message,
    /// The client's address.
    pub(super) peer: Option<std::net::SocketAddr>,
}

/// Carries the client's connection to its room's owner, its first frame first.
pub(super) async fn run<W, R, E>(
    cluster: &Cluster,
    ctx: &SessionContext,
    carry: Carry<'_>,
    mut sink: W,
    mut stream: R,
) -> Proxied<W, R>
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: TransportError,
{
    let Carry {
        owner,
        room,
        first,
        peer,
    } = carry;
    let conn = cluster.next_conn();
    let (tx, mut events) = mpsc::channel(PROXY_QUEUE);
    cluster
        .bus
        .command(BusCommand::Proxy {
            conn,
            owner: owner.to_owned(),
            tx,
        })
        .await;
    let up = |body| Envelope {
        from: cluster.store.replica().to_owned(),
        conn,
        dir: Direction::Up,
        body,
    };
    let open = up(Body::Open {
        room: room.to_owned(),
        peer: peer.map(|p| p.to_string()),
    });
    let opened = match cluster.store.send(owner, &open).await {
        Ok(0) => Some(true),
        Ok(_) => match cluster
            .store
            .send(owner, &up(Body::from_message(first)))
            .await
        {
            Ok(0) => Some(true),
            Ok(_) => None,
            Err(_) => Some(false),
        },
        Err(_) => Some(false),
    };
    if let Some(owner_gone) = opened {
        if !owner_gone {
            cluster.metrics.redis_error("send");
        }
        cluster.bus.command(BusCommand::Unproxy(conn)).await;
        return Proxied::Reroute {
            sink,
            stream,
            owner_gone,
        };
    }
    cluster
        .metrics
        .bus_messages
        .with_label_values(&["sent"])
        .inc_by(2);
    let mut shutdown = ctx.shutdown.clone();
    let mut forwarded = false;
    let close = loop {
        tokio::select! {
            from_client = stream.next() => match from_client {
                Some(Ok(message)) => {
                    match cluster.store.send(owner, &up(Body::from_message(&message))).await {
                        Ok(n) if n > 0 => {
                            cluster.metrics.bus_messages.with_label_values(&["sent"]).inc();
                        }
                        Ok(_) => break Some((CLOSE_SERVICE_RESTART, CLOSE_REASON_OWNER_LOST)),
                        Err(_) => {
                            cluster.metrics.redis_error("send");
                            break Some((CLOSE_SERVICE_RESTART, CLOSE_REASON_OWNER_LOST));
                        }
                    }
                }
                Some(Err(e)) => {
                    debug!(error = %e, "proxied client connection failed");
                    let _ = cluster.store.send(owner, &up(Body::End)).await;
                    break None;
                }
                None => {
                    let _ = cluster.store.send(owner, &up(Body::End)).await;
                    break None;
                }
            },
            event = events.recv() => match event {
                Some(ProxyEvent::Down(Body::NotOwner)) if !forwarded => {
                    cluster.bus.command(BusCommand::Unproxy(conn)).await;
                    return Proxied::Reroute { sink, stream, owner_gone: false };
                }
                Some(ProxyEvent::Down(Body::End)) | None => break None,
                Some(ProxyEvent::Down(body)) => {
                    let Some(message) = body.to_message() else { continue };
                    forwarded = true;
                    let write = tokio::time::timeout(ctx.limits.write_timeout, sink.send(message));
                    if !matches!(write.await, Ok(Ok(()))) {
                        let _ = cluster.store.send(owner, &up(Body::End)).await;
                        break None;
                    }
                }
                Some(ProxyEvent::OwnerLost) => {
                    cluster.metrics.owner_lost.inc();
                    warn!(room, owner, "the replica owning this connection's room is gone; the client reconnects");
                    break Some((CLOSE_SERVICE_RESTART, CLOSE_REASON_OWNER_LOST));
                }
            },
            () = shutdown_requested(&mut shutdown) => {
                let _ = cluster.store.send(owner, &up(Body::End)).await;
                break Some((CLOSE_GOING_AWAY, CLOSE_REASON_SHUTDOWN));
            }
        }
    };
    cluster.bus.command(BusCommand::Unproxy(conn)).await;
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(
            ctx.limits.write_timeout,
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
    let _ = tokio::time::timeout(ctx.limits.write_timeout, sink.close()).await;
    Proxied::Done
}

/// Resolves when the server shuts down (never when it is gone without saying so).
async fn shutdown_requested(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
