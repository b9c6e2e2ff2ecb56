//! Error codes: the stable `code` of every `error` message (also used by the admin API) and
//! the `reason` label each refusal is counted under.

use serde::{Deserialize, Serialize};

/// Body of `error`.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation (may change between versions).
    pub message: String,
}

/// Stable error codes sent to clients (and used by the admin API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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
            ErrorCode::Internal => "internal",
        }
    }

    /// The `reason` label this refusal is counted under in `signaling_rejected_total`.
    pub fn metric_reason(self) -> &'static str {
        match self {
            ErrorCode::BadToken | ErrorCode::MissingGrant | ErrorCode::WrongRoom => "bad_token",
            ErrorCode::TokenExpired => "expired",
            ErrorCode::TokenNotYetValid => "not_yet_valid",
            ErrorCode::RoomFull => "capacity",
            ErrorCode::Forbidden | ErrorCode::RoleNotAllowed | ErrorCode::NotInRoster => {
                "forbidden"
            }
            ErrorCode::Malformed | ErrorCode::BadBundle | ErrorCode::BadEnvelope => "malformed",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::RoomNotFound => "room_not_found",
            ErrorCode::DuplicateDevice => "duplicate_device",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MessageTooBig => "oversized",
            ErrorCode::MediaUnavailable => "media_unavailable",
            ErrorCode::MediaError => "media_error",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Every `reason` label of `signaling_rejected_total` (pre-registered so the series exist at 0).
pub const REJECT_REASONS: &[&str] = &[
    "bad_token",
    "expired",
    "not_yet_valid",
    "capacity",
    "forbidden",
    "malformed",
    "unsupported_version",
    "unknown_type",
    "wrong_state",
    "room_not_found",
    "duplicate_device",
    "rate_limited",
    "oversized",
    "media_unavailable",
    "media_error",
    "internal",
    "idle_timeout",
    "slow_consumer",
    "flood",
    "stats_too_frequent",
    "stats_out_of_bounds",
    "sdp_sends_without_grant",
    "unknown_field",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_a_counted_reason() {
        for &code in ErrorCode::ALL {
            assert!(REJECT_REASONS.contains(&code.metric_reason()));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
    }
}
