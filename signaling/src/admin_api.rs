//! Admin REST API under `/v1/rooms` (bearer token): create, list, inspect, kick, close, and the
//! moderation controls: lock and lobby (`PATCH /v1/rooms/{name}/controls`), end the call
//! (`POST /v1/rooms/{name}/end`); and the media nodes with the rooms placed on each
//! (`GET /v1/media-nodes`); with several replicas, which replica owns each room
//! (`GET /v1/cluster`; the other routes answer for the rooms this replica owns).
//! `signaling/openapi.json` describes it; a test validates real responses against it.
//!
//! Request bodies are strict, as the document's `additionalProperties: false` says: a field the
//! API does not know (a typo such as `max_caller`) is refused with 400 `unknown_field` naming it,
//! never ignored (an ignored capacity typo silently creates a room of the default size).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::app_state::AppState;
use crate::auth::validate_room_name;
use crate::cluster::{ClusterView, Route};
use crate::hub::HubError;
use crate::media_node::{MediaNodeList, media_node_list};
use crate::policy::{RecordingPolicy, RoomKind, RoomPolicyRequest};
use crate::protocol::{ModerationState, validate_device_id};
use crate::room::{RoomDetail, RoomSummary};

/// The admin API's routes, served by [`crate::server::router`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/rooms", get(list_rooms).post(create_room))
        .route("/v1/rooms/{name}", get(get_room).delete(close_room))
        .route("/v1/rooms/{name}/participants/{device}", delete(kick))
        .route("/v1/rooms/{name}/controls", patch(set_controls))
        .route("/v1/rooms/{name}/end", post(end_call))
        .route("/v1/rooms/{name}/participants/{device}/sever", post(sever))
        .route("/v1/media-nodes", get(list_media_nodes))
        .route("/v1/cluster", get(cluster_view))
}

/// An admin API error: HTTP status, stable code and human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

/// The JSON body of every admin API error.
#[derive(Serialize)]
struct ErrorJson<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 for a request body that does not fit: `unknown_field` (naming the field) when it
    /// has a field the API does not know, `malformed` otherwise.
    fn bad_body(e: &serde_json::Error) -> Self {
        let message = e.to_string();
        match unknown_field_name(&message) {
            Some(field) => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "unknown_field",
                field: Some(field.to_owned()),
                message,
            },
            None => ApiError::new(StatusCode::BAD_REQUEST, "malformed", message),
        }
    }
}

/// The field named by serde's "unknown field `name`, expected …" message.
fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorJson {
            code: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        });
        (self.status, body).into_response()
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let (status, code) = match e {
            HubError::Exists => (StatusCode::CONFLICT, "room_exists"),
            HubError::NotFound => (StatusCode::NOT_FOUND, "room_not_found"),
            HubError::NoParticipant => (StatusCode::NOT_FOUND, "participant_not_found"),
            HubError::Media(_) => (StatusCode::BAD_GATEWAY, "media_error"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "admin_disabled",
            "no admin token is configured",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if bool::from(t.as_bytes().ct_eq(expected.expose().as_bytes())) => Ok(()),
        _ => {
            state.hub.metrics().reject("forbidden");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "admin bearer token required",
            ))
        }
    }
}

/// `POST /v1/rooms` body: the name and the policy's fields side by side. The policy's fields are
/// repeated here rather than flattened, because serde cannot refuse unknown fields through
/// `flatten`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRoom {
    name: String,
    kind: RoomKind,
    #[serde(default)]
    max_callers: Option<u32>,
    #[serde(default)]
    max_presenters: Option<u32>,
    #[serde(default)]
    max_viewers: Option<u32>,
    #[serde(default)]
    e2ee: Option<bool>,
    #[serde(default)]
    recording: Option<RecordingPolicy>,
    #[serde(default)]
    receive_slots: Option<bool>,
    #[serde(default)]
    last_n: Option<u32>,
}

impl CreateRoom {
    /// The room's name and the policy asked for.
    fn into_parts(self) -> (String, RoomPolicyRequest) {
        let policy = RoomPolicyRequest {
            kind: self.kind,
            max_callers: self.max_callers,
            max_presenters: self.max_presenters,
            max_viewers: self.max_viewers,
            e2ee: self.e2ee,
            recording: self.recording,
            receive_slots: self.receive_slots,
            last_n: self.last_n,
        };
        (self.name, policy)
    }
}

/// `GET /v1/rooms` body.
#[derive(Serialize)]
pub(crate) struct RoomList {
    rooms: Vec<RoomSummary>,
}

async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<RoomDetail>), ApiError> {
    authorize(&state, &headers)?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    let (name, policy) = CreateRoom::deserialize(body)
        .map_err(|e| {
            let error = ApiError::bad_body(&e);
            state.hub.metrics().reject(error.code);
            error
        })?
        .into_parts();
    validate_room_name(&name).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "name must be 1-64 characters of [A-Za-z0-9_-]",
        )
    })?;
    let policy = policy.into_policy(&name).map_err(|e| {
        state.hub.metrics().reject("bad_policy");
        ApiError::new(StatusCode::BAD_REQUEST, "bad_policy", e.to_string())
    })?;
    if let Some(cluster) = &state.cluster {
        match cluster.route(&name, &state.hub).await {
            Route::Local => {}
            Route::Remote(owner) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "room_exists",
                    format!("the room exists on replica {owner}"),
                ));
            }
            Route::Unavailable => {
                state.hub.metrics().reject("unavailable");
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the cluster's shared state (Redis) is unreachable; try again",
                ));
            }
        }
    }
    state.hub.create_room(&name, policy, false).await?;
    let detail = state.hub.detail(&name).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

async fn list_rooms(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<RoomList>, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(RoomList {
        rooms: state.hub.list().await,
    }))
}

/// The media nodes: state, the rooms placed on each, and each node's registry record.
async fn list_media_nodes(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<MediaNodeList>, ApiError> {
    authorize(&state, &headers)?;
    let nodes = state
        .hub
        .media()
        .map(|node| node.nodes())
        .unwrap_or_default();
    let rooms = state.hub.list().await;
    Ok(Json(media_node_list(nodes, &rooms)))
}

/// `GET /v1/cluster`: this replica, the live replicas and which replica owns each room
/// (404 `not_clustered` on a single replica).
async fn cluster_view(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ClusterView>, ApiError> {
    authorize(&state, &headers)?;
    let Some(cluster) = &state.cluster else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_clustered",
            "this service runs as a single replica (no cluster.replica_id)",
        ));
    };
    cluster.view().await.map(Json).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the cluster's shared state (Redis) is unreachable; try again",
        )
    })
}

async fn get_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<RoomDetail>, ApiError> {
    authorize(&state, &headers)?;
    Ok(Json(state.hub.detail(&name).await?))
}

async fn close_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    state.hub.close(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Test hook only (`signaling dev --test-hooks sever-connections`): cuts the device's WebSocket
/// without a close frame. Without the hook the route does not exist (404 `not_found`).
async fn sever(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, device)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !state.hub.test_hooks().sever_connections() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route (test hook sever-connections is off)",
        ));
    }
    authorize(&state, &headers)?;
    validate_device_id(&device)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.to_string()))?;
    state.hub.sever(&name, &device).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn kick(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, device)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    validate_device_id(&device)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.to_string()))?;
    state.hub.kick(&name, &device).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /v1/rooms/{name}/controls` body: what to change (a field left out stays as it is).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ControlsChange {
    #[serde(default)]
    locked: Option<bool>,
    #[serde(default)]
    lobby: Option<bool>,
}

/// Locks or unlocks the room, turns its lobby on or off; answers the controls after the change
/// and who waits in the lobby.
async fn set_controls(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ModerationState>, ApiError> {
    authorize(&state, &headers)?;
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    let change = ControlsChange::deserialize(body).map_err(|e| {
        let error = ApiError::bad_body(&e);
        state.hub.metrics().reject(error.code);
        error
    })?;
    Ok(Json(
        state
            .hub
            .set_controls(&name, change.locked, change.lobby)
            .await?,
    ))
}

/// Ends the call for everyone in the room (`left` `call_ended`, waiting joins `join_denied`);
/// the room stays.
async fn end_call(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&state, &headers)?;
    state.hub.end_call(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
