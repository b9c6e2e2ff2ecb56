//! The HTTP server: `/v1/rtc` (WebSocket), `/v1/recorder/events` (recorder event stream),
//! `/v1/rooms` (admin), `/metrics`, `/healthz`, `/readyz`; its start and its drain.
//!
//! Draining ([`RunningServer::drain`], on SIGTERM or SIGINT): `/readyz` turns 503 and every
//! WebSocket session closes with 1001 and [`CLOSE_REASON_SHUTDOWN`](crate::session::CLOSE_REASON_SHUTDOWN)
//! (one that connects meanwhile is closed the same way at once) and every recorder event stream
//! ends; then every room is closed, on
//! the media node too, so that a restarted service can create the same names again; then the
//! listener stops accepting and the HTTP connections close. All of it within one timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, Extension, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use governor::RateLimiter;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::admin_api;
use crate::app_state::AppState;
use crate::auth::TokenVerifier;
use crate::cluster::Cluster;
use crate::config::{Config, ConfigError};
use crate::hub::Hub;
use crate::listener::SlotHandle;
use crate::media_node::MediaNode;
use crate::metrics::{Metrics, MetricsError};
use crate::protocol::{ErrorBody, ErrorCode};
use crate::session::{SessionContext, run_session};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The cluster's Redis could not be reached at start.
    #[error("cluster: {0}")]
    Cluster(#[from] crate::cluster::StoreError),
    /// The listening socket could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A running server.
pub struct RunningServer {
    addr: SocketAddr,
    state: AppState,
    /// True from the start of a drain: `/readyz` 503, sessions close with 1001.
    draining: watch::Sender<bool>,
    /// True once the listener must stop accepting and close its connections.
    stop_listener: watch::Sender<bool>,
    task: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainOutcome {
    /// Every WebSocket session closed within the timeout.
    pub sessions_closed: bool,
    /// Every room closed, on the media node too, within the timeout.
    pub rooms_closed: bool,
    /// The listener and all its connections ended within the timeout.
    pub listener_stopped: bool,
}

impl DrainOutcome {
    /// Everything finished within the timeout.
    pub fn complete(&self) -> bool {
        self.sessions_closed && self.rooms_closed && self.listener_stopped
    }
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The room registry.
    pub fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// The context sessions run with (to drive a session over channels in tests).
    pub fn session_context(&self) -> SessionContext {
        self.state.session.clone()
    }

    /// Stops accepting, ends the server task and waits for it (no drain: see [`Self::drain`]).
    pub async fn shutdown(mut self) {
        let _ = self.stop_listener.send(true);
        let _ = (&mut self.task).await;
        self.sweeper.abort();
    }

    /// Waits until the listener stops (it stops on its own only if its task fails).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task).await.map_err(std::io::Error::other)
    }

    /// Whether a drain has begun.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Begins draining without waiting: `/readyz` answers 503 and every WebSocket session closes
    /// with 1001 (see the module docs). [`Self::drain`] does this first.
    pub fn begin_drain(&self) {
        let _ = self.draining.send(true);
    }

    /// Drains within `timeout` (see the module docs) and stops the server. Whatever is not done
    /// when the timeout passes is abandoned (the listener and its connections are aborted).
    pub async fn drain(mut self, timeout: Duration) -> DrainOutcome {
        let deadline = Instant::now() + timeout;
        self.begin_drain();
        let metrics = self.state.hub.metrics().clone();
        let sessions_closed = wait_until(deadline, || metrics.connections.get() == 0).await;
        let held = self.state.hub.room_names();
        let rooms_closed = self.state.hub.close_all(deadline).await;
        if let Some(cluster) = &self.state.cluster {
            let _ = tokio::time::timeout_at(deadline, cluster.leave(&held)).await;
        }
        let _ = self.stop_listener.send(true);
        let listener_stopped = tokio::time::timeout_at(deadline, &mut self.task)
            .await
            .is_ok();
        if !listener_stopped {
            self.task.abort();
        }
        self.sweeper.abort();
        let outcome = DrainOutcome {
            sessions_closed,
            rooms_closed,
            listener_stopped,
        };
        if outcome.complete() {
            info!("drained");
        } else {
            warn!(
                ?outcome,
                ?timeout,
                "shutdown timeout passed before the drain finished"
            );
        }
        outcome
    }
}

/// Polls `done` every 10 ms until it holds (true) or `deadline` passes (false).
async fn wait_until(deadline: Instant, done: impl Fn() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/rtc", get(rtc))
        .route(
            crate::recorder_stream::PATH,
            get(crate::recorder_stream::recorder_events),
        )
        .merge(admin_api::routes())
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(crate::web_client::serve)
        .with_state(state)
}

/// Binds `config.listen` and serves until shut down.
pub async fn start(
    config: &Config,
    media: Option<Arc<dyn MediaNode>>,
) -> Result<RunningServer, ServeError> {
    start_with_routes(config, media, Router::new()).await
}

/// Like [`start`], also serving `extra` routes (the embedded SFU's `/sfu/metrics`, ...).
pub async fn start_with_routes(
    config: &Config,
    media: Option<Arc<dyn MediaNode>>,
    extra: Router,
) -> Result<RunningServer, ServeError> {
    let limits = config.session_limits()?;
    let settings = config.hub_settings()?;
    let quota = config.connection_quota()?;
    let http_limits = config.http_limits()?;
    let metrics = Metrics::new()?;
    let hub = Hub::new(metrics, media, settings);
    let ip_limiter = Arc::new(RateLimiter::keyed(quota));
    let (draining, draining_rx) = watch::channel(false);
    let (stop_listener, stop_rx) = watch::channel(false);
    let session = SessionContext {
        hub: hub.clone(),
        verifier: Arc::new(TokenVerifier::new(&config.api_keys)),
        limits,
        auto_create_rooms: config.auto_create_rooms,
        receive_slots: config.receive_slots,
        last_n: config.auto_create_last_n()?,
        auto_create_recording: config.auto_create_recording_policies()?.into(),
        shutdown: draining_rx.clone(),
    };
    let cluster = match config.cluster_settings()? {
        Some(settings) => Some(Cluster::start(&settings, session.clone()).await?),
        None => None,
    };
    let state = AppState {
        hub,
        session,
        admin_token: config.admin_token.clone(),
        ip_limiter: ip_limiter.clone(),
        draining: draining_rx,
        cluster,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let app = extra.merge(router(state.clone()));
    // Forget idle per-IP limiter state now and then so it cannot grow without bound.
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            ip_limiter.retain_recent();
        }
    });
    let task = tokio::spawn(crate::listener::serve(
        listener,
        app,
        http_limits,
        state.hub.metrics().clone(),
        stop_rx,
    ));
    info!(%addr, "signaling listening");
    Ok(RunningServer {
        addr,
        state,
        draining,
        stop_listener,
        task,
        sweeper,
    })
}

async fn rtc(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    slot: Option<Extension<SlotHandle>>,
    ws: WebSocketUpgrade,
) -> Response {
    if state.ip_limiter.check_key(&peer.ip()).is_err() {
        state.hub.metrics().reject("rate_limited");
        let body = ErrorBody {
            code: ErrorCode::RateLimited,
            message: "too many connections from this address".into(),
            request_id: None,
        };
        return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    }
    let ctx = state.session.clone();
    let cluster = state.cluster.clone();
    let max = ctx.limits.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            // The connection's place under the listener's caps lasts as long as the session.
            let _slot = slot;
            let (sink, stream) = socket.split();
            match cluster {
                Some(cluster) => cluster.serve_socket(ctx, sink, stream, Some(peer)).await,
                None => run_session(sink, stream, ctx, Some(peer)).await,
            }
        })
}

async fn metrics(State(state): State<AppState>) -> Response {
    let nodes = state
        .hub
        .media()
        .map(|node| node.node_states())
        .unwrap_or_default();
    state.hub.metrics().set_media_nodes(&nodes);
    if let Some(counts) = state.hub.media().and_then(|node| node.registry_reads()) {
        state.hub.metrics().set_registry_counts(counts);
    }
    if let Some(counts) = state.hub.media().and_then(|node| node.relay_counts()) {
        state.hub.metrics().set_relay_counts(counts);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.hub.metrics().render(),
    )
        .into_response()
}

/// `200 ready` while serving with a media node attached; `503` while draining (`draining`) or
/// while no media node is attached or the attached one is unreachable (`no_media`; with a pool
/// of nodes: while none is reachable).
async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = if *state.draining.borrow() {
        Some("draining")
    } else if !state.hub.media().is_some_and(|node| node.is_attached()) {
        Some("no_media")
    } else {
        None
    };
    match not_ready {
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": reason })),
        )
            .into_response(),
        None => Json(serde_json::json!({ "status": "ready", "media": "attached" })).into_response(),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    let media = match state.hub.media() {
        Some(node) if node.is_attached() => "attached",
        Some(_) => "detached",
        None => "none",
    };
    Json(serde_json::json!({ "status": "ok", "media": media })).into_response()
}
