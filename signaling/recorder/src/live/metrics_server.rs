//! The recorder's operations listener (`--metrics-listen`): `GET /metrics`, the Prometheus text
//! of [`RecorderMetrics`], and `GET /healthz`, 200 `ok` (the process is up and serving: what a
//! liveness probe and the image's `HEALTHCHECK` ask); anything else is 404.
//!
//! An axum router served over HTTP/1.1 by hyper, one task per connection, with the SFU
//! listener's limits in small: at most [`MAX_CONNECTIONS`] open (one more is closed as soon as it
//! is accepted, logged) and [`HEADER_TIMEOUT`] for each request's head, which is also the idle
//! timeout of a kept-alive connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::metrics::RecorderMetrics;

/// Connections open at once; more are closed when accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// Time a client has to send a request's head (and a kept-alive connection may stay idle).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The routes: `/metrics` and `/healthz`.
fn router(metrics: Arc<RecorderMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(metrics)
}

async fn render(State(metrics): State<Arc<RecorderMetrics>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
        .into_response()
}

/// Serves the routes on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<RecorderMetrics>) {
    let app = router(metrics);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, MAX_CONNECTIONS, "metrics listener: connection refused, too many open");
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        });
    }
}

/// Binds `addr` and serves the routes on it in a task.
pub async fn spawn_metrics(
    addr: SocketAddr,
    metrics: Arc<RecorderMetrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, tokio::spawn(serve_metrics(listener, metrics))))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::live::metrics::{DecryptFailure, DropReason};

    /// One request on a fresh connection; the whole response.
    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn metrics_endpoint_serves_every_family() {
        let metrics = RecorderMetrics::new();
        metrics.frame_dropped(DropReason::Backlog);
        metrics.decrypt_failed(DecryptFailure::NoKey);
        let (addr, task) = spawn_metrics("127.0.0.1:0".parse().unwrap(), metrics)
            .await
            .unwrap();
        let text = get(addr, "/metrics").await;
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(
            text.contains("content-type: text/plain; version=0.0.4"),
            "{text}"
        );
        let health = get(addr, "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        let other = get(addr, "/v1/rooms").await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        task.abort();
        for line in [
            "recorder_active_sessions 0",
            "recorder_frames_decrypted_total 0",
            "recorder_decrypt_failures_total{reason=\"no_key\"} 1",
            "recorder_frames_dropped_total{reason=\"backlog\"} 1",
            "recorder_bytes_written_total 0",
            "recorder_sessions_total{outcome=\"finished\"} 0",
            "recorder_rooms_refused_total{reason=\"untrusted_policy\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("process_resident_memory_bytes ")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_header_timeout() {
        let (addr, task) = spawn_metrics("127.0.0.1:0".parse().unwrap(), RecorderMetrics::new())
            .await
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metr").await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(HEADER_TIMEOUT * 3, s.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the listener closed the connection");
        // Still serving the others.
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
        task.abort();
    }
}
