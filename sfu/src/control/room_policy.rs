//! The forwarding policy of a room the control API creates, from the `POST /control/rooms`
//! body: one reading of the body for the HTTP route and for signaling's embedded node, so both
//! kinds of node give a room the same limits.

use sfu_control_api::{CreateRoom, MAX_LAST_N, RoomKindBody};
use sfu_forwarding::RoomPolicy;

/// Why a room's body cannot become a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomPolicyError {
    /// `last_n` is 0 or above [`MAX_LAST_N`].
    #[error("last_n must be between 1 and {MAX_LAST_N}, not {0}")]
    LastN(usize),
}

impl RoomPolicyError {
    /// The control API's error code for it (400).
    pub fn code(&self) -> &'static str {
        match self {
            RoomPolicyError::LastN(_) => "invalid_last_n",
        }
    }
}

/// The core's policy for `body`: the kind's defaults with its `loudest_n` and `last_n`.
pub fn room_policy(body: &CreateRoom) -> Result<RoomPolicy, RoomPolicyError> {
    let mut policy = match body.kind {
        RoomKindBody::Meeting => RoomPolicy::meeting(),
        RoomKindBody::Broadcast => RoomPolicy::broadcast(),
    };
    if let Some(n) = body.loudest_n {
        policy.loudest_n = n;
    }
    if let Some(n) = body.last_n {
        if !(1..=MAX_LAST_N).contains(&n) {
            return Err(RoomPolicyError::LastN(n));
        }
        policy.last_n = n;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(last_n: Option<usize>) -> CreateRoom {
        CreateRoom {
            room: "r".into(),
            kind: RoomKindBody::Meeting,
            loudest_n: None,
            last_n,
            receive_slots: true,
        }
    }

    #[test]
    fn the_largest_last_n_is_the_core_default() {
        assert_eq!(RoomPolicy::meeting().last_n, MAX_LAST_N);
        assert_eq!(RoomPolicy::broadcast().last_n, MAX_LAST_N);
    }

    #[test]
    fn last_n_sets_the_video_slots() {
        let p = room_policy(&body(Some(2))).unwrap();
        assert_eq!((p.last_n, p.slot_counts().video), (2, 2));
        let p = room_policy(&body(None)).unwrap();
        assert_eq!(p.slot_counts().video, MAX_LAST_N);
    }

    #[test]
    fn last_n_out_of_range_is_refused() {
        for n in [0, MAX_LAST_N + 1, usize::MAX] {
            let e = room_policy(&body(Some(n))).unwrap_err();
            assert_eq!(
                (e.clone(), e.code()),
                (RoomPolicyError::LastN(n), "invalid_last_n")
            );
        }
        assert!(room_policy(&body(Some(1))).is_ok());
        assert!(room_policy(&body(Some(MAX_LAST_N))).is_ok());
    }
}
