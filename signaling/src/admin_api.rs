//! Admin REST API under `/v1/rooms` (bearer token): create, list, inspect, kick, close.
//! `signaling/openapi.json` describes it; a test validates real responses against it.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::app_state::AppState;
use crate::auth::validate_room_name;
use crate::hub::HubError;
use crate::policy::RoomPolicyRequest;
use crate::room::{RoomDetail, RoomSummary};
use crate::shape::validate_device_id;

/// The admin API's routes, served by [`crate::server::router`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/rooms", get(list_rooms).post(create_room))
        .route("/v1/rooms/{name}", get(get_room).delete(close_room))
        .route("/v1/rooms/{name}/participants/{device}", delete(kick))
}

/// An admin API error: HTTP status, stable code and human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of every admin API error.
#[derive(Serialize)]
struct ErrorJson<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorJson {
            code: self.code,
            message: &self.message,
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

/// `POST /v1/rooms` body.
#[derive(Deserialize)]
pub(crate) struct CreateRoom {
    name: String,
    #[serde(flatten)]
    policy: RoomPolicyRequest,
}

/// `GET /v1/rooms` body.
#[derive(Serialize)]
pub(crate) struct RoomList {
    rooms: Vec<RoomSummary>,
}

async fn create_room(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateRoom>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<RoomDetail>), ApiError> {
    authorize(&state, &headers)?;
    let Json(req) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    validate_room_name(&req.name).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "name must be 1-64 characters of [A-Za-z0-9_-]",
        )
    })?;
    let policy = req
        .policy
        .into_policy(&req.name)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_policy", e.to_string()))?;
    state.hub.create_room(&req.name, policy, false).await?;
    let detail = state.hub.detail(&req.name).await?;
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
