//! Error codes: the stable `code` of every `error` message (also used by the admin API).

use serde::{Deserialize, Serialize};

/// Body of `error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation (may change between versions).
    pub message: String,
    /// The `id` of the client message this error answers; absent when that message carried
    /// none, or the error answers no message (e.g. a media session that ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<super::client::RequestId>,
}

/// Stable error codes sent to clients (and used by the admin API). Exhaustive on purpose: a
/// new code must be given its metric label in the service (`reject_reason`) to compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not valid JSON or does not fit its type's shape.
    Malformed,
    /// The `type` is not one this server knows.
    UnknownType,
    /// `join.v` names a protocol version this server does not speak.
    UnsupportedVersion,
    /// The message is not valid in the connection's state (e.g. `offer` before `join`).
    WrongState,
    /// The token is malformed, badly signed, of a refused algorithm or from an unknown key.
    BadToken,
    /// The token's `exp` has passed.
    TokenExpired,
    /// The token's `nbf` is in the future.
    TokenNotYetValid,
    /// The token grants a different room than `join.room`.
    WrongRoom,
    /// The token lacks a required grant.
    MissingGrant,
    /// The grants do not allow this (e.g. a viewer publishing).
    Forbidden,
    /// The room does not exist.
    RoomNotFound,
    /// The room has no capacity left for this role.
    RoomFull,
    /// This role cannot join this kind of room (or is not named by the recording policy).
    RoleNotAllowed,
    /// The device bundle has the wrong shape.
    BadBundle,
    /// The key envelope has the wrong shape or names another room or call.
    BadEnvelope,
    /// The addressed device is not in this device's roster.
    NotInRoster,
    /// Another connection of a different identity holds this device id.
    DuplicateDevice,
    /// Too many messages; this one was dropped.
    RateLimited,
    /// The message exceeds the size cap (the connection closes with 1009).
    MessageTooBig,
    /// No media node (SFU) is attached, so SDP and subscriptions cannot be handled.
    MediaUnavailable,
    /// The media node refused or failed the request.
    MediaError,
    /// The room is locked: only moderators may join.
    RoomLocked,
    /// A moderator turned this join away from the lobby (or ended the call while it waited).
    JoinDenied,
    /// The service cannot take this join for a moment (the replicas' shared state, Redis, is
    /// unreachable); calls in progress go on. Try again.
    Unavailable,
    /// Something failed inside the server.
    Internal,
}

impl ErrorCode {
    /// Every code, for tests and documentation.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Malformed,
        ErrorCode::UnknownType,
        ErrorCode::UnsupportedVersion,
        ErrorCode::WrongState,
        ErrorCode::BadToken,
        ErrorCode::TokenExpired,
        ErrorCode::TokenNotYetValid,
        ErrorCode::WrongRoom,
        ErrorCode::MissingGrant,
        ErrorCode::Forbidden,
        ErrorCode::RoomNotFound,
        ErrorCode::RoomFull,
        ErrorCode::RoleNotAllowed,
        ErrorCode::BadBundle,
        ErrorCode::BadEnvelope,
        ErrorCode::NotInRoster,
        ErrorCode::DuplicateDevice,
        ErrorCode::RateLimited,
        ErrorCode::MessageTooBig,
        ErrorCode::MediaUnavailable,
        ErrorCode::MediaError,
        ErrorCode::RoomLocked,
        ErrorCode::JoinDenied,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenNotYetValid => "token_not_yet_valid",
            ErrorCode::WrongRoom => "wrong_room",
            ErrorCode::MissingGrant => "missing_grant",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RoomNotFound => "room_not_found",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::RoleNotAllowed => "role_not_allowed",
            ErrorCode::BadBundle => "bad_bundle",
            ErrorCode::BadEnvelope => "bad_envelope",
            ErrorCode::NotInRoster => "not_in_roster",
            ErrorCode::DuplicateDevice => "duplicate_device",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MessageTooBig => "message_too_big",
            ErrorCode::MediaUnavailable => "media_unavailable",
            ErrorCode::MediaError => "media_error",
            ErrorCode::RoomLocked => "room_locked",
            ErrorCode::JoinDenied => "join_denied",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_sent_as_its_name() {
        for &code in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
    }
}
