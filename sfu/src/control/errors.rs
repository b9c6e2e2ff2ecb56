//! Every refusal of the control API as a JSON [`ErrorBody`] with a stable code, and the input
//! limits: malformed JSON, wrong types, oversized bodies and names, unknown routes and the
//! node's own refusals all answer `{"error": "<short reason>", "code": "<code>"}`. A reason
//! never repeats more than [`MAX_ECHO_CHARS`] characters of what the client sent, so neither
//! the answer nor a log line grows with the request.
//!
//! | status | codes |
//! |---|---|
//! | 400 | `malformed_json`, `invalid_body` (wrong type, missing field, unknown variant), `invalid_name` (room or device empty, longer than [`MAX_NAME_BYTES`], or with control characters), `invalid_path`, `invalid_query` (`?session=` not a number), `too_many_items`, `sdp_too_large`, `bad_sdp` (the transport refused the SDP), `sends_without_publish_right`, `invalid_last_n` (a room's `last_n` outside 1–25), `invalid_address` (a relay's media address not `ip:port`), `invalid_keys` (a relay import's keys not hex of the profile's lengths) |
//! | 401 | `unauthorized` |
//! | 403 | `publish_not_allowed` (a role that may not publish asked to publish a source) |
//! | 404 | `not_found` (route), `unknown_room`, `unknown_participant`, `unknown_track`, `not_published` (unpublish of a source that is not published), `unknown_link` (relay link) |
//! | 405 | `method_not_allowed` |
//! | 408 | `request_timeout` |
//! | 409 | `room_exists`, `participant_exists`, `session_ended` (a removed media session added again), `receive_slot_room` (per-track subscriptions in a room with receive slots), `already_published` (publish of a source that is published), `link_exists` (a relay link of that id, or with that address, exists) |
//! | 413 | `body_too_large` (over [`MAX_BODY_BYTES`]) |
//! | 415 | `unsupported_media_type` (no `Content-Type: application/json`) |
//! | 422 | `refused` (policy or capacity) |
//! | 503 | `draining`, `shard_stopped` |

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sfu_control_api::ErrorBody;

use crate::node::NodeError;
use crate::transport::TransportError;

/// Longest room or device name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Largest SDP accepted in a request, in bytes.
pub(super) const MAX_SDP_BYTES: usize = 256 * 1024;
/// Largest request body, in bytes.
pub(super) const MAX_BODY_BYTES: usize = 512 * 1024;
/// Most subscriptions or screen sections in one request.
pub(super) const MAX_ITEMS: usize = 1024;
/// Most characters of client input an error reason repeats.
pub(super) const MAX_ECHO_CHARS: usize = 80;

/// The error code of a refusal, attached to the response so the HTTP layer can count it
/// (`sfu_control_requests_rejected_total{code}`).
#[derive(Debug, Clone, Copy)]
pub struct RejectedCode(pub &'static str);

/// A JSON error answer: `status`, stable `code`, short human `reason`.
pub fn error_response(status: StatusCode, code: &'static str, reason: &str) -> Response {
    let body = ErrorBody {
        error: truncate(reason, 2 * MAX_ECHO_CHARS).into_owned(),
        code: code.to_owned(),
    };
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(RejectedCode(code));
    response
}

/// `text` cut to at most `max` characters (on a character boundary), marked with `…` when cut.
pub fn truncate(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// A body that is not the expected JSON.
pub(super) fn json_rejection(rejection: JsonRejection) -> Response {
    let (status, code) = match &rejection {
        JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
        JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
        JsonRejection::MissingJsonContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
        }
        JsonRejection::BytesRejection(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        _ => (StatusCode::BAD_REQUEST, "invalid_body"),
    };
    // serde's message quotes the offending value (possibly megabytes of it): cut it short.
    let mut response = error_response(
        status,
        code,
        &truncate(&rejection.body_text(), MAX_ECHO_CHARS),
    );
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body is never read, so the connection cannot carry another request:
        // say so, or a client reuses it and its next request fails half-sent.
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// A path that does not decode (invalid percent-encoding, not UTF-8).
pub(super) fn path_rejection(rejection: PathRejection) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "invalid_path",
        &truncate(&rejection.body_text(), MAX_ECHO_CHARS),
    )
}

/// The refusal of a query string that does not parse (e.g. `?session=` not a number).
pub(super) fn query_rejection(rejection: QueryRejection) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        &truncate(&rejection.body_text(), MAX_ECHO_CHARS),
    )
}

/// The refusal of a bad room or device name, if it is bad. A name is 1 to [`MAX_NAME_BYTES`]
/// bytes without control characters (names go into log lines).
pub(super) fn check_name(what: &str, name: &str) -> Option<Response> {
    let problem = if name.is_empty() {
        "is empty"
    } else if name.len() > MAX_NAME_BYTES {
        "is longer than 128 bytes"
    } else if name.chars().any(char::is_control) {
        "has control characters"
    } else {
        return None;
    };
    Some(error_response(
        StatusCode::BAD_REQUEST,
        "invalid_name",
        &format!("{what} name {problem}"),
    ))
}

/// The refusal of an oversized SDP, if it is.
pub(super) fn check_sdp(sdp: &str) -> Option<Response> {
    if sdp.len() > MAX_SDP_BYTES {
        return Some(error_response(
            StatusCode::BAD_REQUEST,
            "sdp_too_large",
            "SDP is larger than 256 KiB",
        ));
    }
    None
}

/// The refusal of a list in a request that is too long, if it is.
pub(super) fn check_items(what: &str, count: usize) -> Option<Response> {
    if count > MAX_ITEMS {
        return Some(error_response(
            StatusCode::BAD_REQUEST,
            "too_many_items",
            &format!("more than {MAX_ITEMS} {what}"),
        ));
    }
    None
}

/// The node's refusal as a JSON error.
pub(super) fn node_error(e: NodeError) -> Response {
    let (status, code) = match &e {
        NodeError::UnknownRoom => (StatusCode::NOT_FOUND, "unknown_room"),
        NodeError::UnknownParticipant => (StatusCode::NOT_FOUND, "unknown_participant"),
        NodeError::UnknownTrack => (StatusCode::NOT_FOUND, "unknown_track"),
        NodeError::RoomExists => (StatusCode::CONFLICT, "room_exists"),
        NodeError::ParticipantExists => (StatusCode::CONFLICT, "participant_exists"),
        NodeError::SessionEnded => (StatusCode::CONFLICT, "session_ended"),
        NodeError::SlotRoom => (StatusCode::CONFLICT, "receive_slot_room"),
        NodeError::PublishNotAllowed => (StatusCode::FORBIDDEN, "publish_not_allowed"),
        NodeError::AlreadyPublished => (StatusCode::CONFLICT, "already_published"),
        NodeError::NotPublished => (StatusCode::NOT_FOUND, "not_published"),
        NodeError::Draining => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        NodeError::UnknownLink => (StatusCode::NOT_FOUND, "unknown_link"),
        NodeError::LinkExists => (StatusCode::CONFLICT, "link_exists"),
        NodeError::BadRelayAddress => (StatusCode::BAD_REQUEST, "invalid_address"),
        NodeError::BadRelayKeys | NodeError::RelayCrypto(_) => {
            (StatusCode::BAD_REQUEST, "invalid_keys")
        }
        NodeError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
        NodeError::SendsWithoutPublishRight(_) => {
            (StatusCode::BAD_REQUEST, "sends_without_publish_right")
        }
        NodeError::Transport(TransportError::ShardStopped) => {
            (StatusCode::SERVICE_UNAVAILABLE, "shard_stopped")
        }
        NodeError::Transport(_) => (StatusCode::BAD_REQUEST, "bad_sdp"),
    };
    error_response(status, code, &e.to_string())
}

/// No route for the path.
pub(super) async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The route exists, not with this method.
pub(super) async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(1000);
        let cut = truncate(&long, 10);
        assert_eq!(cut.chars().count(), 11);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn names_are_bounded_and_printable() {
        assert!(check_name("room", "r1").is_none());
        assert!(check_name("room", "").is_some());
        assert!(check_name("room", &"x".repeat(MAX_NAME_BYTES + 1)).is_some());
        assert!(check_name("device", "a\nb").is_some());
    }
}
