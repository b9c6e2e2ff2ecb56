//! The SFU's HTTP listener (control API, `/metrics`, probes), plain HTTP/1.1 or HTTPS, with the
//! limits that keep idle and slow clients from exhausting it:
//!
//! - **connection cap** ([`HttpLimits::max_connections`]): a connection accepted beyond it is
//!   closed at once (counted `connection_limit`), so idle sockets cannot use up the process'
//!   descriptors;
//! - **header-read timeout** ([`HttpLimits::header_timeout`]): a client must send a request's
//!   headers within it, and the TLS handshake before them (counted `header_timeout`,
//!   `tls_handshake`). hyper starts this clock whenever the connection waits for a request head,
//!   so it is also the idle timeout of a kept-alive connection between requests;
//! - **request timeout** ([`HttpLimits::request_timeout`]): reading a request's body and
//!   answering it (not a streamed response body such as `GET /control/events`), else a 408
//!   JSON error (counted `request_timeout`).
//!
//! Open connections are the gauge `sfu_http_connections`, closes for these reasons
//! `sfu_http_connections_closed_total{reason}`. On shutdown [`serve`] stops accepting, lets open
//! requests finish for the grace period the shutdown future returns, then drops the rest.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper::rt::{Read, Write};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::metrics::HttpConnectionMetrics;
use crate::control::{RejectedCode, error_response};

/// The limits of the HTTP listener (`deploy/README.md` §1 names their settings).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time for the TLS handshake and for each request's headers (also the keep-alive idle
    /// timeout).
    pub header_timeout: Duration,
    /// Time to read a request's body and produce its answer.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) within `limits` until `shutdown` resolves;
/// then stops accepting and gives open connections the grace period `shutdown` returned.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    limits: HttpLimits,
    metrics: HttpConnectionMetrics,
    shutdown: impl Future<Output = Duration> + Send,
) -> std::io::Result<()> {
    let app = with_request_timeout(app, limits.request_timeout, metrics.clone());
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let grace = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "HTTP accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    metrics.closed("connection_limit");
                    drop(tcp);
                    continue;
                };
                let open = metrics.opened();
                let acceptor = acceptor.clone();
                let service = TowerToHyperService::new(app.clone());
                let watcher = graceful.watcher();
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let _open = open;
                    let Some(acceptor) = acceptor else {
                        serve_connection(TokioIo::new(tcp), service, limits, watcher, &metrics)
                            .await;
                        return;
                    };
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(TokioIo::new(stream), service, limits, watcher, &metrics)
                                .await;
                        }
                        Ok(Err(e)) => {
                            metrics.closed("tls_handshake");
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics.closed("tls_handshake");
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                });
            }
            grace = &mut shutdown => break grace,
        }
    };
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "HTTP connections still open at the end of the drain; closing"
        );
    }
    Ok(())
}

/// One connection over HTTP/1.1 with the header-read timeout.
async fn serve_connection<I>(
    io: I,
    service: TowerToHyperService<Router>,
    limits: HttpLimits,
    watcher: Watcher,
    metrics: &HttpConnectionMetrics,
) where
    I: Read + Write + Unpin + Send + 'static,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service);
    if let Err(e) = watcher.watch(connection).await {
        if e.is_timeout() {
            metrics.closed("header_timeout");
        } else {
            tracing::debug!(error = %e, "HTTP connection ended with an error");
        }
    }
}

/// Bounds reading each request and answering it by `limit`; a request that takes longer gets a
/// 408 JSON error. Also counts the control API's refusals by their code.
fn with_request_timeout(app: Router, limit: Duration, metrics: HttpConnectionMetrics) -> Router {
    app.layer(middleware::from_fn(move |request: Request, next: Next| {
        let metrics = metrics.clone();
        async move {
            match tokio::time::timeout(limit, next.run(request)).await {
                Ok(response) => {
                    if let Some(RejectedCode(code)) = response.extensions().get::<RejectedCode>() {
                        metrics.rejected(code);
                    }
                    response
                }
                Err(_) => {
                    metrics.closed("request_timeout");
                    timed_out()
                }
            }
        }
    }))
}

fn timed_out() -> Response {
    error_response(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "request timed out",
    )
}
