//! The HTTP server: `/v1/rtc` (WebSocket), `/v1/rooms` (admin), `/metrics`, `/healthz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use governor::RateLimiter;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

use crate::admin_api;
use crate::app_state::AppState;
use crate::auth::TokenVerifier;
use crate::config::{Config, ConfigError};
use crate::hub::Hub;
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
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
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

    /// Stops accepting, ends the server task and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the server stops (it stops on its own only on an I/O error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match (&mut self.task).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Builds the router over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/rtc", get(rtc))
        .merge(admin_api::routes())
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
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
    let metrics = Metrics::new()?;
    let hub = Hub::new(metrics, media, settings);
    let ip_limiter = Arc::new(RateLimiter::keyed(quota));
    let state = AppState {
        hub: hub.clone(),
        session: SessionContext {
            hub,
            verifier: Arc::new(TokenVerifier::new(&config.api_keys)),
            limits,
            auto_create_rooms: config.auto_create_rooms,
        },
        admin_token: config.admin_token.clone(),
        ip_limiter: ip_limiter.clone(),
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
    let app = extra
        .merge(router(state.clone()))
        .into_make_service_with_connect_info::<SocketAddr>();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // Forget idle per-IP limiter state now and then so it cannot grow without bound.
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                ip_limiter.retain_recent();
            }
        });
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
        sweeper.abort();
        result
    });
    info!(%addr, "signaling listening");
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
    })
}

async fn rtc(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    if state.ip_limiter.check_key(&peer.ip()).is_err() {
        state.hub.metrics().reject("rate_limited");
        let body = ErrorBody {
            code: ErrorCode::RateLimited,
            message: "too many connections from this address".into(),
        };
        return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    }
    let ctx = state.session.clone();
    let max = ctx.limits.max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            run_session(sink, stream, ctx, Some(peer))
        })
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.hub.metrics().render(),
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let media = match state.hub.media() {
        Some(node) if node.is_attached() => "attached",
        Some(_) => "detached",
        None => "none",
    };
    Json(serde_json::json!({ "status": "ok", "media": media })).into_response()
}
