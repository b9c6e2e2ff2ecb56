//! Unit tests of a room's record: what another replica restores when it takes the room over.

use std::time::{Duration, Instant};

use super::resume_tests::resuming;
use super::tests::{join_req, membership, room};
use super::*;
use crate::policy::RoomKind;

const GRACE: Duration = Duration::from_secs(10);

/// A meeting with `a` and `b` joined and a locked door, its record through JSON, restored.
fn restored(t0: Instant) -> (Room, Joined) {
    let mut r = room(RoomKind::Meeting);
    r.timing.resume_grace = GRACE;
    r.join(join_req(1, "a", Role::Caller), t0, false).unwrap();
    let (b, _) = r.join(join_req(2, "b", Role::Caller), t0, false).unwrap();
    assert_eq!(membership(&r.handle_timeout(t0 + GRACE)).len(), 1);
    r.set_controls(Some(true), None);
    let json = serde_json::to_string(&r.record(true, Some("http://sfu-1".into()))).unwrap();
    let record: RoomRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(record.media_node.as_deref(), Some("http://sfu-1"));
    assert!(record.ephemeral);
    let restored = Room::restore(record, r.timing, t0 + GRACE);
    assert_eq!(restored.record_stamp(), r.record_stamp());
    (restored, b)
}

#[test]
fn a_restored_room_resumes_each_member_without_telling_anyone() {
    let t0 = Instant::now();
    let (mut r, b) = restored(t0);
    assert!(
        r.moderation_state().locked,
        "the lock survives the takeover"
    );
    let t1 = t0 + GRACE + Duration::from_secs(1);
    // Both come back on new connections, in either order: each resumes, nobody is told.
    let (joined_b, out) = r
        .join(resuming(12, "b", &b.call, b.slot), t1, false)
        .expect("b resumes");
    assert!(joined_b.resumed);
    assert_eq!(joined_b.slot, b.slot);
    assert_eq!(joined_b.roster.version, b.roster.version);
    assert!(
        out.iter().all(|o| !matches!(o, Output::Send { .. })),
        "nothing sent to anyone: {out:?}"
    );
    let a_slot = joined_b
        .roster
        .devices
        .iter()
        .find(|d| d.device == "a")
        .map(|d| d.slot)
        .expect("a in b's roster");
    let (joined_a, out) = r
        .join(resuming(11, "a", &b.call, a_slot), t1, false)
        .expect("a resumes");
    assert!(joined_a.resumed);
    assert!(out.iter().all(|o| !matches!(o, Output::Send { .. })));
    // No rekey or ratchet comes later either.
    assert!(membership(&r.handle_timeout(t1 + GRACE * 2)).is_empty());
}

#[test]
fn a_restored_member_that_does_not_come_back_departs_after_the_grace_window() {
    let t0 = Instant::now();
    let (mut r, b) = restored(t0);
    let t1 = t0 + GRACE + Duration::from_secs(1);
    r.join(resuming(12, "b", &b.call, b.slot), t1, false)
        .expect("b resumes");
    // a never comes back: when the window ends b hears it left, and rekeys.
    let out = r.handle_timeout(t0 + GRACE * 2 + Duration::from_millis(1));
    let removed: Vec<&ServerMessage> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message } if to.contains(&12) => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        removed
            .iter()
            .any(|m| matches!(m, ServerMessage::Roster(d) if d.removed == ["a"])),
        "{removed:?}"
    );
}
