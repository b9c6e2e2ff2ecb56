//! Unit tests of suspending a member whose connection was lost and resuming it, on virtual time.

use std::time::{Duration, Instant};

use super::tests::{join_req, membership, room};
use super::*;
use crate::policy::RoomKind;
use crate::protocol::{MembershipAction, ResumeCall};

const GRACE: Duration = Duration::from_secs(10);

fn room_with_grace() -> Room {
    let mut r = room(RoomKind::Meeting);
    r.timing.resume_grace = GRACE;
    r
}

pub(super) fn resuming(conn: ConnId, device: &str, call: &str, slot: u16) -> JoinRequest {
    let mut req = join_req(conn, device, Role::Caller);
    req.resume = Some(ResumeCall {
        call: call.into(),
        slot,
        media_lost: false,
    });
    req
}

fn resume_outcomes(out: &[Output]) -> Vec<ResumeOutcome> {
    out.iter()
        .filter_map(|o| match o {
            Output::Resume(outcome) => Some(*outcome),
            _ => None,
        })
        .collect()
}

/// Every message `out` sends to `conn`.
fn sent_to(out: &[Output], conn: ConnId) -> Vec<&ServerMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, message } if to.contains(&conn) => Some(message),
            _ => None,
        })
        .collect()
}

fn roster_deltas(out: &[Output], conn: ConnId) -> Vec<(Vec<String>, Vec<String>)> {
    sent_to(out, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Roster(d) => Some((
                d.added.iter().map(|e| e.device.clone()).collect(),
                d.removed.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// A room with `a` (conn 1) and `b` (conn 2), the join ratchet sent; returns b's `joined`.
fn two_members(r: &mut Room, t0: Instant) -> Joined {
    r.join(join_req(1, "a", Role::Caller), t0, false).unwrap();
    let (b, _) = r.join(join_req(2, "b", Role::Caller), t0, false).unwrap();
    assert_eq!(membership(&r.handle_timeout(t0 + T_WINDOW)).len(), 1);
    b
}

const T_WINDOW: Duration = Duration::from_millis(100);

#[test]
fn a_dropped_member_is_suspended_and_resumes_without_a_rekey() {
    let t0 = Instant::now();
    let mut r = room_with_grace();
    let b = two_members(&mut r, t0);
    let t1 = t0 + Duration::from_secs(1);

    let out = r.leave(2, "b", Departure::Dropped, t1);
    assert!(
        out.is_empty(),
        "a lost connection tells nobody anything: {out:?}"
    );
    assert_eq!(r.member("b").unwrap().suspended_until, Some(t1 + GRACE));
    assert!(r.is_suspended_conn(2));
    assert_eq!(r.poll_timeout(), Some(t1 + GRACE));
    assert!(r.handle_timeout(t1 + GRACE / 2).is_empty());

    let (again, out) = r
        .join(resuming(3, "b", "c-1", b.slot), t1 + GRACE / 2, false)
        .unwrap();
    assert!(again.resumed);
    assert_eq!(again.slot, b.slot);
    assert_eq!(again.call, b.call);
    assert_eq!(again.roster.version, b.roster.version, "no roster change");
    assert_eq!(again.roster.devices.len(), 2);
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Resumed]);
    assert!(sent_to(&out, 1).is_empty(), "a is told nothing: {out:?}");
    assert!(
        !out.iter().any(|o| matches!(o, Output::MediaRemove { .. })),
        "the media session is kept"
    );
    let m = r.member("b").unwrap();
    assert_eq!((m.conn, m.suspended_until), (3, None));
    assert!(!r.is_suspended_conn(2));

    // Nothing is pending: no expiry, no rekey, no ratchet, ever.
    assert_eq!(r.poll_timeout(), None);
    assert!(r.handle_timeout(t1 + GRACE * 3).is_empty());
    assert_eq!(r.member("a").unwrap().conn, 1);
}

#[test]
fn a_suspended_member_that_does_not_come_back_leaves_after_the_grace_window() {
    let t0 = Instant::now();
    let mut r = room_with_grace();
    let b = two_members(&mut r, t0);
    let t1 = t0 + Duration::from_secs(1);
    assert!(r.leave(2, "b", Departure::Dropped, t1).is_empty());

    assert!(
        r.handle_timeout(t1 + GRACE - Duration::from_millis(1))
            .is_empty()
    );
    let out = r.handle_timeout(t1 + GRACE);
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Expired]);
    assert_eq!(
        roster_deltas(&out, 1),
        vec![(vec![], vec!["b".to_string()])]
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::MediaRemove { device, .. } if device == "b"))
    );
    assert!(r.member("b").is_none());
    let rekey_at = r.poll_timeout().expect("a rekey is scheduled");
    assert_eq!(
        membership(&r.handle_timeout(rekey_at)),
        vec![(vec![1], MembershipAction::Rekey, vec!["b".to_string()])]
    );

    // Coming back later is a fresh join (told to a, ratchet), in its old slot since it is free.
    let t2 = t1 + GRACE * 2;
    let (again, out) = r.join(resuming(3, "b", "c-1", b.slot), t2, false).unwrap();
    assert!(!again.resumed);
    assert_eq!(again.slot, b.slot);
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Restored]);
    assert_eq!(
        roster_deltas(&out, 1),
        vec![(vec!["b".to_string()], vec![])]
    );
    assert_eq!(
        membership(&r.handle_timeout(t2 + T_WINDOW)),
        vec![(vec![1], MembershipAction::Ratchet, vec!["b".to_string()])]
    );
}

#[test]
fn resume_with_another_identity_key_is_a_fresh_join() {
    let t0 = Instant::now();
    let mut r = room_with_grace();
    let b = two_members(&mut r, t0);
    let t1 = t0 + Duration::from_secs(1);
    assert!(r.leave(2, "b", Departure::Dropped, t1).is_empty());

    let mut req = resuming(3, "b", "c-1", b.slot);
    req.bundle.identity_key = [9u8; 32];
    let (again, out) = r.join(req, t1, false).unwrap();
    assert!(!again.resumed);
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Refused]);
    assert_eq!(
        roster_deltas(&out, 1),
        vec![
            (vec![], vec!["b".to_string()]),
            (vec!["b".to_string()], vec![])
        ],
        "a sees the old device go and the new one come"
    );
    let m = r.member("b").unwrap();
    assert_eq!(m.entry.bundle.identity_key, [9u8; 32]);
    assert_eq!((m.conn, m.suspended_until), (3, None));
    // The replaced device's keys are retired: a rekey, and a ratchet for the join.
    let mut notices = Vec::new();
    while let Some(due) = r.poll_timeout() {
        notices.extend(membership(&r.handle_timeout(due)));
    }
    assert!(notices.contains(&(vec![1], MembershipAction::Ratchet, vec!["b".to_string()])));
    assert!(notices.contains(&(vec![1, 3], MembershipAction::Rekey, vec!["b".to_string()])));

    // A join without `resume` is no resume either, even of a suspended member.
    assert!(r.leave(3, "b", Departure::Dropped, t1).is_empty());
    let mut plain = join_req(4, "b", Role::Caller);
    plain.bundle.identity_key = [9u8; 32];
    let (plain, out) = r.join(plain, t1, false).unwrap();
    assert!(!plain.resumed);
    assert!(resume_outcomes(&out).is_empty());
    assert_eq!(roster_deltas(&out, 1).len(), 2);
}

#[test]
fn a_resuming_join_creates_a_missing_room_with_its_call_id_and_slot() {
    let call = "c-AAAAAAAAAAAAAAAAAAAAAw";
    let t0 = Instant::now();
    let first = ResumeCall {
        call: call.into(),
        slot: 7,
        media_lost: false,
    };
    // The room does not exist (the service restarted): the resuming join creating it names its
    // call id.
    let named = call_for_new_room(Some(&first)).expect("a call id of the service's shape");
    assert_eq!(named, call);
    let mut r = Room::new(
        "r".into(),
        named,
        room(RoomKind::Meeting).policy().clone(),
        room(RoomKind::Meeting).timing,
        0,
    );
    let (a, out) = r.join(resuming(1, "a", call, 7), t0, false).unwrap();
    assert_eq!((a.call.as_str(), a.slot, a.resumed), (call, 7, false));
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Restored]);
    // The other device of the call comes back to its slot too; a newcomer gets another.
    let (b, _) = r.join(resuming(2, "b", call, 3), t0, false).unwrap();
    assert_eq!((b.call.as_str(), b.slot), (call, 3));
    let (c, _) = r.join(join_req(3, "c", Role::Caller), t0, false).unwrap();
    assert!(![3, 7].contains(&c.slot));
    // A slot taken meanwhile is not given twice.
    let (d, out) = r.join(resuming(4, "d", call, 7), t0, false).unwrap();
    assert_ne!(d.slot, 7);
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Refused]);

    // Only something shaped as the service's call ids names a room.
    for bad in [
        "room-x",
        "c-AAAAAAAAAAAAAAAAAAAAA",
        "c-AAAAAAAAAAAAAAAAAAAAA/",
        "x-AAAAAAAAAAAAAAAAAAAAAw",
    ] {
        let resume = ResumeCall {
            call: bad.into(),
            slot: 0,
            media_lost: false,
        };
        assert_eq!(call_for_new_room(Some(&resume)), None, "{bad}");
    }
    assert_eq!(call_for_new_room(None), None);
}

#[test]
fn resume_cannot_take_an_existing_rooms_call_id() {
    let t0 = Instant::now();
    let mut r = room_with_grace();
    let b = two_members(&mut r, t0);
    let other = "c-BBBBBBBBBBBBBBBBBBBBBw";

    // A newcomer naming another call gets this room's call and no chosen slot.
    let (c, out) = r.join(resuming(3, "c", other, 9), t0, false).unwrap();
    assert_eq!(c.call, "c-1");
    assert_eq!(r.call(), "c-1");
    assert_ne!(c.slot, 9);
    assert!(!c.resumed);
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Refused]);

    // A suspended member naming another call is not resumed: its join replaces it, told to all.
    assert!(r.leave(2, "b", Departure::Dropped, t0).is_empty());
    let (again, out) = r.join(resuming(4, "b", other, b.slot), t0, false).unwrap();
    assert!(!again.resumed);
    assert_eq!(again.call, "c-1");
    assert_eq!(resume_outcomes(&out), vec![ResumeOutcome::Refused]);
    assert_eq!(roster_deltas(&out, 1).len(), 2);
}
