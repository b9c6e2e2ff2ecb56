//! Unit tests of the lock, the lobby and moderators' actions, on virtual time.

use std::time::Instant;

use super::tests::{join_req, room};
use super::*;
use crate::policy::RoomKind;
use crate::protocol::{ErrorCode, ModerationAction};

fn moderator_req(conn: ConnId, device: &str) -> JoinRequest {
    let mut req = join_req(conn, device, Role::Caller);
    req.grants.moderator = true;
    req
}

fn joined(r: &mut Room, req: JoinRequest, now: Instant) -> (Box<Joined>, Vec<Output>) {
    match r.request_join(req, now, true) {
        Ok(JoinAnswer::Joined(j, out)) => (j, out),
        other => panic!("expected joined, got {other:?}"),
    }
}

fn sent_to(out: &[Output], conn: ConnId) -> Vec<&ServerMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, message } if to.contains(&conn) => Some(message),
            _ => None,
        })
        .collect()
}

#[test]
fn a_member_without_the_moderator_grant_is_refused_every_action() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    joined(&mut r, join_req(1, "a", Role::Caller), now);
    joined(&mut r, join_req(2, "b", Role::Caller), now);
    for action in [
        ModerationAction::AskMute { device: "b".into() },
        ModerationAction::Remove { device: "b".into() },
        ModerationAction::Lock,
        ModerationAction::LobbyOn,
        ModerationAction::EndCall,
    ] {
        let name = action.name();
        assert_eq!(
            r.moderate(1, "a", action, now, true).unwrap_err(),
            ModerationError::NotModerator(name)
        );
    }
    // A moderator's device id on another connection is not the moderator either.
    let mut m = room(RoomKind::Meeting);
    joined(&mut m, moderator_req(1, "m"), now);
    let e = m
        .moderate(9, "m", ModerationAction::Lock, now, true)
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert!(!m.moderation_state().locked);
    assert_eq!(r.counts().values().sum::<u32>(), 2, "nobody was removed");
}

#[test]
fn locked_room_refuses_others_but_admits_moderators_and_rejoins() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    let (j, _) = joined(&mut r, moderator_req(1, "m"), now);
    assert!(j.moderator);
    joined(&mut r, join_req(2, "a", Role::Caller), now);
    r.moderate(1, "m", ModerationAction::Lock, now, true)
        .unwrap();
    let e = r
        .request_join(join_req(3, "late", Role::Caller), now, true)
        .unwrap_err();
    assert_eq!(e, JoinError::Locked);
    assert_eq!(e.code(), ErrorCode::RoomLocked);
    joined(&mut r, join_req(4, "a", Role::Caller), now);
    joined(&mut r, moderator_req(5, "m2"), now);
    r.moderate(1, "m", ModerationAction::Unlock, now, true)
        .unwrap();
    joined(&mut r, join_req(6, "late", Role::Caller), now);
}

#[test]
fn lobby_join_waits_until_admitted_and_moderators_see_the_list() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    joined(&mut r, moderator_req(1, "m"), now);
    let out = r
        .moderate(1, "m", ModerationAction::LobbyOn, now, true)
        .unwrap();
    assert!(matches!(sent_to(&out, 1)[..], [ServerMessage::Moderation(s)] if s.lobby));
    let out = match r.request_join(join_req(2, "w", Role::Caller), now, true) {
        Ok(JoinAnswer::Waiting(out)) => out,
        other => panic!("expected waiting, got {other:?}"),
    };
    assert!(matches!(sent_to(&out, 2)[..], [ServerMessage::Waiting(_)]));
    match sent_to(&out, 1)[..] {
        [ServerMessage::Moderation(s)] => {
            assert_eq!(s.waiting.len(), 1);
            assert_eq!(s.waiting[0].device, "w");
        }
        ref other => panic!("moderator told {other:?}"),
    }
    assert!(
        r.member("w").is_none(),
        "a waiting device is not in the roster"
    );
    let out = r
        .moderate(
            1,
            "m",
            ModerationAction::Admit { device: "w".into() },
            now,
            true,
        )
        .unwrap();
    assert!(
        matches!(&out[0], Output::Admitted { conn: 2, joined } if joined.device == "w"),
        "the admitted device's joined comes first: {out:?}"
    );
    assert!(r.member("w").is_some());
    assert!(r.moderation_state().waiting.is_empty());
}

#[test]
fn denied_and_departed_lobby_joins_leave_the_list() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    joined(&mut r, moderator_req(1, "m"), now);
    r.set_controls(None, Some(true));
    r.request_join(join_req(2, "w1", Role::Caller), now, true)
        .unwrap();
    r.request_join(join_req(3, "w2", Role::Caller), now, true)
        .unwrap();
    let out = r
        .moderate(
            1,
            "m",
            ModerationAction::Deny {
                device: "w1".into(),
            },
            now,
            true,
        )
        .unwrap();
    assert!(matches!(
        &out[0],
        Output::Refused {
            conn: 2,
            code: ErrorCode::JoinDenied,
            ..
        }
    ));
    let out = r.leave(3, "w2", Departure::Dropped, now);
    assert!(matches!(sent_to(&out, 1)[..], [ServerMessage::Moderation(s)] if s.waiting.is_empty()));
    let e = r
        .moderate(
            1,
            "m",
            ModerationAction::Admit {
                device: "w2".into(),
            },
            now,
            true,
        )
        .unwrap_err();
    assert_eq!(e, ModerationError::NotWaiting("w2".into()));
    assert_eq!(r.counts().values().sum::<u32>(), 1);
}

#[test]
fn ask_mute_remove_and_end_call() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    joined(&mut r, moderator_req(1, "m"), now);
    joined(&mut r, join_req(2, "a", Role::Caller), now);
    joined(&mut r, join_req(3, "b", Role::Caller), now);
    let out = r
        .moderate(
            1,
            "m",
            ModerationAction::AskMute { device: "a".into() },
            now,
            true,
        )
        .unwrap();
    assert!(matches!(sent_to(&out, 2)[..], [ServerMessage::MuteRequested(m)] if m.by == "m"));
    let e = r
        .moderate(
            1,
            "m",
            ModerationAction::AskMute {
                device: "zz".into(),
            },
            now,
            true,
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotInRoster);
    let out = r
        .moderate(
            1,
            "m",
            ModerationAction::Remove { device: "a".into() },
            now,
            true,
        )
        .unwrap();
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Close {
            conn: 2,
            reason: LeaveReason::Kicked
        }
    )));
    r.set_controls(None, Some(true));
    r.request_join(join_req(4, "w", Role::Caller), now, true)
        .unwrap();
    let out = r
        .moderate(1, "m", ModerationAction::EndCall, now, true)
        .unwrap();
    for conn in [1, 3] {
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Close { conn: c, reason: LeaveReason::CallEnded } if *c == conn
        )));
    }
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Refused {
            conn: 4,
            code: ErrorCode::JoinDenied,
            ..
        }
    )));
    assert!(r.is_empty());
    assert!(!r.is_closed(), "ending the call keeps the room");
}
