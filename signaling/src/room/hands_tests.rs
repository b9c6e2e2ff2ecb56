//! Unit tests of the raised-hand rules, on virtual time.

use std::time::Instant;

use super::tests::{join_req, room};
use super::*;
use crate::policy::RoomKind;
use crate::protocol::{DeviceHand, ModerationAction};

fn join(r: &mut Room, conn: ConnId, device: &str, now: Instant) -> Joined {
    r.join(join_req(conn, device, Role::Caller), now, true)
        .expect("join")
        .0
}

/// The `hand` messages in `out`, each with its recipients (sorted).
fn hands(out: &[Output]) -> Vec<(Vec<ConnId>, DeviceHand)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::Hand(h),
            } => {
                let mut to = to.clone();
                to.sort_unstable();
                Some((to, h.clone()))
            }
            _ => None,
        })
        .collect()
}

fn queue(j: &Joined) -> Vec<(&str, u64)> {
    j.hands
        .iter()
        .map(|h| (h.device.as_str(), h.order))
        .collect()
}

#[test]
fn raised_hand_is_stamped_with_the_senders_device_and_goes_to_everyone() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    join(&mut r, 1, "a", now);
    join(&mut r, 2, "b", now);
    join(&mut r, 3, "c", now);
    let out = r.set_hand(2, "b", true);
    assert_eq!(
        hands(&out),
        vec![(
            vec![1, 2, 3],
            DeviceHand {
                device: "b".into(),
                raised: true,
                order: Some(1),
                lowered_by: None,
            }
        )],
        "the sender hears its own hand back with its place"
    );
    // Another connection cannot move b's hand: the session stamps its own device, and a stale
    // or foreign connection claiming b's device id changes nothing.
    assert!(r.set_hand(1, "b", false).is_empty());
    assert_eq!(r.member("b").unwrap().hand, Some(1));
    // Raising again keeps the place in the queue and tells nobody.
    assert!(r.set_hand(2, "b", true).is_empty());
    let out = r.set_hand(2, "b", false);
    assert!(
        matches!(&hands(&out)[..], [(_, h)] if !h.raised && h.order.is_none() && h.lowered_by.is_none())
    );
    assert!(
        r.set_hand(2, "b", false).is_empty(),
        "a lowered hand stays down"
    );
}

#[test]
fn joiner_gets_the_raised_hands_in_the_order_they_went_up() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    join(&mut r, 1, "a", now);
    join(&mut r, 2, "b", now);
    join(&mut r, 3, "c", now);
    r.set_hand(3, "c", true);
    r.set_hand(1, "a", true);
    r.set_hand(2, "b", true);
    r.set_hand(1, "a", false);
    let late = join(&mut r, 4, "d", now);
    assert_eq!(queue(&late), vec![("c", 1), ("b", 3)]);
    r.set_hand(1, "a", true);
    let later = join(&mut r, 5, "e", now);
    assert_eq!(queue(&later), vec![("c", 1), ("b", 3), ("a", 4)]);
}

#[test]
fn leaving_lowers_the_hand() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    join(&mut r, 1, "a", now);
    join(&mut r, 2, "b", now);
    r.set_hand(2, "b", true);
    let out = r.leave(2, "b", Departure::Left, now);
    assert!(
        out.iter().any(|o| matches!(o, Output::Send { message: ServerMessage::Roster(d), .. } if d.removed == ["b"])),
        "the others drop the hand with the roster removal"
    );
    let late = join(&mut r, 3, "c", now);
    assert!(
        late.hands.is_empty(),
        "no hand of a departed device: {:?}",
        late.hands
    );
    // The same device back (a reconnect) starts with its hand down.
    let back = join(&mut r, 4, "b", now);
    assert!(back.hands.is_empty());
    assert_eq!(r.member("b").unwrap().hand, None);
    // A device replaced on a new connection loses its hand too.
    r.set_hand(4, "b", true);
    join(&mut r, 5, "b", now);
    assert_eq!(r.member("b").unwrap().hand, None);
}

#[test]
fn lower_hand_is_for_moderators_only() {
    let now = Instant::now();
    let mut r = room(RoomKind::Meeting);
    let mut m = join_req(1, "m", Role::Caller);
    m.grants.moderator = true;
    r.join(m, now, true).unwrap();
    join(&mut r, 2, "a", now);
    join(&mut r, 3, "b", now);
    r.set_hand(2, "a", true);
    let lower = |d: &str| ModerationAction::LowerHand { device: d.into() };
    let e = r.moderate(3, "b", lower("a"), now, true).unwrap_err();
    assert_eq!(e, ModerationError::NotModerator("lower_hand"));
    assert_eq!(e.code(), ErrorCode::Forbidden);
    assert_eq!(
        r.member("a").unwrap().hand,
        Some(1),
        "still up after the refusal"
    );
    let out = r.moderate(1, "m", lower("a"), now, true).unwrap();
    assert_eq!(
        hands(&out),
        vec![(
            vec![1, 2, 3],
            DeviceHand {
                device: "a".into(),
                raised: false,
                order: None,
                lowered_by: Some("m".into()),
            }
        )]
    );
    assert_eq!(r.member("a").unwrap().hand, None);
    assert!(
        r.moderate(1, "m", lower("a"), now, true)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        r.moderate(1, "m", lower("gone"), now, true).unwrap_err(),
        ModerationError::NotInRoom("gone".into())
    );
}

#[test]
fn broadcast_viewers_hand_reaches_those_who_see_the_viewer() {
    let now = Instant::now();
    let mut r = room(RoomKind::Broadcast);
    r.join(join_req(1, "p", Role::Presenter), now, true)
        .unwrap();
    r.join(join_req(2, "v1", Role::Viewer), now, true).unwrap();
    r.join(join_req(3, "v2", Role::Viewer), now, true).unwrap();
    let out = r.set_hand(2, "v1", true);
    assert_eq!(
        hands(&out)[0].0,
        vec![1, 2],
        "the presenter and v1 itself, not v2"
    );
    let v3 = r
        .join(join_req(4, "v3", Role::Viewer), now, true)
        .unwrap()
        .0;
    assert!(
        v3.hands.is_empty(),
        "a viewer does not see another viewer's hand"
    );
}
