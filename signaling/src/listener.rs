//! The HTTP listener: its own accept loop over hyper's HTTP/1 connection (WebSocket upgrades
//! included), because `axum::serve` exposes no timeouts. Each accepted connection needs a
//! [`ConnectionSlot`] (global and per-IP caps; a WebSocket keeps the slot of its connection),
//! must send a complete request head within the header-read timeout (hyper's timer, which also
//! runs while a keep-alive connection waits for its next request), and is closed after the idle
//! timeout without a byte either way, even mid-request (until it is upgraded; a WebSocket has its
//! own pings and idle timeout). On shutdown the loop stops accepting and every connection closes once its
//! request in flight is answered. Each connection refused or closed for a limit is counted in
//! `signaling_connection_drops_total{reason}`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower_service::Service as _;
use tracing::{debug, warn};

use crate::conn_limits::{ConnectionSlot, ConnectionSlots};
use crate::metrics::Metrics;

/// The listener's connection limits (see `[limits]` in [`crate::config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections per client IP.
    pub max_connections_per_ip: usize,
    /// Longest wait for a complete request head.
    pub header_read_timeout: Duration,
    /// Longest silence on a connection not upgraded to a WebSocket.
    pub idle_timeout: Duration,
}

/// What a handler finds in the request extensions: the slot of the connection it came on (a
/// WebSocket handler keeps it for the session's life).
pub type SlotHandle = Arc<ConnectionSlot>;

/// Serves `app` on `listener` until `stop` turns true, then waits for open connections to close
/// (the caller bounds that wait).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let slots = ConnectionSlots::new(limits.max_connections, limits.max_connections_per_ip);
    let mut conns = JoinSet::new();
    let conn_stop = stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => match slots.try_acquire(peer.ip()) {
                Ok(slot) => {
                    let conn = Connection {
                        app: app.clone(),
                        limits,
                        metrics: metrics.clone(),
                        peer,
                        slot: Arc::new(slot),
                    };
                    conns.spawn(conn.serve(tcp, conn_stop.clone()));
                }
                Err(refusal) => {
                    metrics.connection_dropped(refusal.reason());
                    debug!(%peer, reason = refusal.reason(), "connection refused");
                }
            },
            Err(e) => {
                // Out of descriptors (EMFILE) or the like: pause instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// One accepted connection and what serving it needs.
struct Connection {
    app: Router,
    limits: HttpLimits,
    metrics: Metrics,
    peer: SocketAddr,
    slot: SlotHandle,
}

impl Connection {
    async fn serve(self, tcp: TcpStream, mut stop: watch::Receiver<bool>) {
        let activity = Activity::new();
        let io = TokioIo::new(Tracked {
            inner: tcp,
            activity: activity.clone(),
        });
        let (app, peer, slot) = (self.app, self.peer, self.slot);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(slot.clone());
            let mut app = app.clone();
            async move { app.call(req).await }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, service).with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let mut closing = false;
        let result = loop {
            tokio::select! {
                r = conn.as_mut() => break r,
                _ = stop.wait_for(|s| *s), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = activity.silent_for(self.limits.idle_timeout) => {
                    // Not graceful: a request stalled mid-body would never finish. Dropping the
                    // connection closes the socket.
                    self.metrics.connection_dropped("http_idle_timeout");
                    debug!(%peer, "silent for the idle timeout; closed");
                    break Ok(());
                }
            }
        };
        match result {
            Ok(()) => {}
            Err(e) if e.is_timeout() => {
                self.metrics.connection_dropped("header_timeout");
                debug!(%peer, "no complete request head in time; closed");
            }
            Err(e) => debug!(%peer, error = %e, "connection error"),
        }
    }
}

/// When a connection last moved a byte (milliseconds since it was accepted).
#[derive(Clone)]
struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `idle`.
    async fn silent_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A TCP stream that records when it last read or wrote a byte.
struct Tracked {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
