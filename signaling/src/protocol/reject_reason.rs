//! Server policy about refusals: the `reason` label of `signaling_rejected_total` each error
//! code is counted under (the codes themselves are protocol, in `call_client::protocol`).

use super::ErrorCode;

/// The `reason` label a refusal with `code` is counted under in `signaling_rejected_total`.
pub fn reject_reason(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::BadToken | ErrorCode::MissingGrant | ErrorCode::WrongRoom => "bad_token",
        ErrorCode::TokenExpired => "expired",
        ErrorCode::TokenNotYetValid => "not_yet_valid",
        ErrorCode::RoomFull => "capacity",
        ErrorCode::Forbidden | ErrorCode::RoleNotAllowed | ErrorCode::NotInRoster => "forbidden",
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
        ErrorCode::RoomLocked => "room_locked",
        ErrorCode::JoinDenied => "join_denied",
        ErrorCode::Unavailable => "unavailable",
        ErrorCode::Internal => "internal",
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
    "bad_policy",
    "media_state_too_frequent",
    "chat_too_frequent",
    "hand_too_frequent",
    "chat_too_large",
    "room_locked",
    "join_denied",
    "unavailable",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_a_counted_reason() {
        for &code in ErrorCode::ALL {
            assert!(REJECT_REASONS.contains(&reject_reason(code)));
        }
    }
}
