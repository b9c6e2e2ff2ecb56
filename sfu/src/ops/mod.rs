//! Operations endpoints on the SFU's HTTP port: `/metrics` (Prometheus text, names from
//! `docs/metrics.md`), `/healthz` (the process' event loop answers: 200 `ok`, or 200 `draining`
//! during a drain) and `/readyz` (503 while draining). None needs credentials and none reveals
//! a room, participant or key. The listener itself, with its limits, is [`http_server`].

pub mod http_server;
mod metrics;
pub mod registry_heartbeat;
pub mod tls;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

pub use http_server::{HttpLimits, serve};
pub use metrics::{HttpConnectionMetrics, MetricsError, OpenConnection, SfuMetrics};

use crate::node::NodeHandle;

/// What the operations endpoints read.
#[derive(Clone)]
pub struct OpsState {
    /// The node.
    pub node: NodeHandle,
    /// The registry `/metrics` renders (also the node's [`Observer`](crate::node::Observer)).
    pub metrics: Arc<SfuMetrics>,
}

/// The router of `/metrics`, `/healthz` and `/readyz`.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics_handler(State(s): State<OpsState>) -> impl IntoResponse {
    let snapshot = s.node.snapshot().await;
    s.metrics.update(&snapshot);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

/// 200 while the process serves, also during the drain (then with the body `draining`).
async fn healthz(State(s): State<OpsState>) -> &'static str {
    if s.node.is_draining() {
        "draining"
    } else {
        "ok"
    }
}

async fn readyz(State(s): State<OpsState>) -> (StatusCode, &'static str) {
    if s.node.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ready")
    }
}
