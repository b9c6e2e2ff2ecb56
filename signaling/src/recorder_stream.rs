//! `GET /v1/recorder/events`: the recorder event stream (docs/protocol.md §9), NDJSON of
//! [`RecorderEvent`]s for one recorder device.
//!
//! Default deny: the request needs `Authorization: Bearer <JWT>` signed with an API key's secret
//! and granting `role: "recorder"` with a `device` and no room
//! ([`TokenVerifier::verify_recorder_stream`]); anything else is answered 401 (no or bad token)
//! or 403 (a valid token without that grant) with a JSON error and counted in
//! `signaling_rejected_total`. The events come from the recorded-room directory
//! ([`crate::recorded_rooms`]): first the rooms active now, then changes; a `ping` goes out
//! every [`PING_INTERVAL`]. The stream ends when the directory closes it (it could not keep up:
//! counted there) or when the server drains. It is an ordinary HTTP response on the listener's
//! accept loop, so the connection caps apply to it.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::app_state::AppState;
use crate::auth::AuthError;
use crate::metrics::Metrics;
use crate::protocol::{ErrorBody, ErrorCode, RecorderEvent, reject_reason};

/// How often a `ping` line is sent.
pub const PING_INTERVAL: Duration = Duration::from_secs(5);

/// The path of the stream.
pub const PATH: &str = "/v1/recorder/events";

/// Serves [`PATH`] (see the module docs).
pub async fn recorder_events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let metrics = state.hub.metrics().clone();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let grant = match token {
        None => Err(AuthError::BadToken("missing bearer token")),
        Some(t) => state.session.verifier.verify_recorder_stream(t),
    };
    let grant = match grant {
        Ok(g) => g,
        Err(e) => return refuse(&metrics, &e),
    };
    if *state.draining.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(error_body(
                ErrorCode::Internal,
                "server shutting down".into(),
            )),
        )
            .into_response();
    }
    let Some(events) = state.hub.recorded_rooms().subscribe(&grant.device).await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(error_body(
                ErrorCode::Internal,
                "server shutting down".into(),
            )),
        )
            .into_response();
    };
    info!(device = %grant.device, "recorder event stream opened");
    let lines = ndjson(events, state.draining.clone(), metrics, grant.device);
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn error_body(code: ErrorCode, message: String) -> ErrorBody {
    ErrorBody {
        code,
        message,
        request_id: None,
    }
}

/// 401 for a missing, malformed, expired or badly signed token; 403 for a valid token that does
/// not grant the stream. Counted under the error code's reason.
fn refuse(metrics: &Metrics, e: &AuthError) -> Response {
    let code = e.code();
    metrics.reject(reject_reason(code));
    let status = match e {
        AuthError::MissingGrant(_) | AuthError::Inconsistent(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    let mut response = (status, Json(error_body(code, e.to_string()))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Counts the stream open while it lives.
struct OpenStream {
    metrics: Metrics,
    device: String,
}

impl OpenStream {
    fn new(metrics: Metrics, device: String) -> Self {
        metrics.recorder_streams.inc();
        OpenStream { metrics, device }
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.metrics.recorder_streams.dec();
        info!(device = %self.device, "recorder event stream closed");
    }
}

/// The response body: one JSON line per event, a `ping` line every [`PING_INTERVAL`], ending
/// when the directory drops the queue or the server drains.
fn ndjson(
    events: mpsc::Receiver<RecorderEvent>,
    draining: watch::Receiver<bool>,
    metrics: Metrics,
    device: String,
) -> impl Stream<Item = Result<String, std::convert::Infallible>> + Send + 'static {
    let open = OpenStream::new(metrics, device);
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = (events, draining, ping, open);
    futures_util::stream::unfold(
        state,
        |(mut events, mut draining, mut ping, open)| async move {
            if *draining.borrow() {
                return None;
            }
            let event = tokio::select! {
                event = events.recv() => event?,
                _ = ping.tick() => RecorderEvent::Ping,
                // A closed channel means the server is gone: end the stream too.
                _ = draining.wait_for(|d| *d) => return None,
            };
            Some((Ok(line(&event)), (events, draining, ping, open)))
        },
    )
}

/// One NDJSON line.
fn line(event: &RecorderEvent) -> String {
    // Strings, integers and the policy's strings: serializing cannot fail.
    let mut text = serde_json::to_string(event).expect("recorder event serializes");
    text.push('\n');
    text
}
