//! Unit tests of the join window: a burst of joins is one ratchet notice (§7.24).

use std::time::{Duration, Instant};

use super::tests::{join_req, membership, room};
use super::*;
use crate::policy::RoomKind;
use crate::protocol::MembershipAction;

fn names(devices: &[&str]) -> Vec<String> {
    devices.iter().map(|d| d.to_string()).collect()
}

#[test]
fn joins_within_the_window_share_one_ratchet_notice() {
    let start = Instant::now();
    let mut r = room(RoomKind::Meeting);
    r.join(join_req(1, "a", Role::Caller), start, false)
        .unwrap();
    assert!(membership(&r.handle_timeout(start + Duration::from_millis(100))).is_empty());
    let t0 = start + Duration::from_secs(1);
    let mut out = Vec::new();
    for (i, d) in ["b", "c", "d"].iter().enumerate() {
        let at = t0 + Duration::from_millis(10 * i as u64);
        out.extend(
            r.join(join_req(2 + i as u64, d, Role::Caller), at, false)
                .unwrap()
                .1,
        );
    }
    assert!(
        membership(&out).is_empty(),
        "no notice before the window closes"
    );
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_millis(100)));
    assert!(r.handle_timeout(t0 + Duration::from_millis(99)).is_empty());
    let mut notices = membership(&r.handle_timeout(t0 + Duration::from_millis(100)));
    notices.sort_by(|x, y| x.0.cmp(&y.0));
    // a hears all three joiners at once; each joiner hears those who came after it (its own
    // first key went to those before).
    assert_eq!(
        notices,
        vec![
            (vec![1], MembershipAction::Ratchet, names(&["b", "c", "d"])),
            (vec![2], MembershipAction::Ratchet, names(&["c", "d"])),
            (vec![3], MembershipAction::Ratchet, names(&["d"])),
        ]
    );
    assert_eq!(r.poll_timeout(), None);
    // A join after the window opens a new one.
    let later = t0 + Duration::from_millis(150);
    r.join(join_req(9, "e", Role::Caller), later, false)
        .unwrap();
    assert_eq!(r.poll_timeout(), Some(later + Duration::from_millis(100)));
}

#[test]
fn a_full_window_is_announced_at_once() {
    let start = Instant::now();
    let mut r = room(RoomKind::Broadcast);
    r.join(join_req(1, "p", Role::Presenter), start, false)
        .unwrap();
    r.handle_timeout(start + Duration::from_millis(100));
    let t0 = start + Duration::from_secs(1);
    let mut out = Vec::new();
    for (i, d) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        out.extend(
            r.join(join_req(2 + i as u64, d, Role::Viewer), t0, false)
                .unwrap()
                .1,
        );
    }
    // T.join_batch_max is 4: the fourth viewer closes the window; viewers publish nothing.
    assert_eq!(
        membership(&out),
        vec![(
            vec![1],
            MembershipAction::Ratchet,
            names(&["v1", "v2", "v3", "v4"])
        )]
    );
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_joiner_gone_before_its_notice_is_not_named() {
    let t0 = Instant::now();
    let mut r = room(RoomKind::Meeting);
    r.join(join_req(1, "a", Role::Caller), t0, false).unwrap();
    r.join(join_req(2, "b", Role::Caller), t0, false).unwrap();
    r.join(join_req(3, "c", Role::Caller), t0, false).unwrap();
    r.leave(3, "c", Departure::Left, t0);
    let notices: Vec<_> = membership(&r.handle_timeout(t0 + Duration::from_millis(100)))
        .into_iter()
        .filter(|(_, action, _)| *action == MembershipAction::Ratchet)
        .collect();
    assert!(notices.contains(&(vec![1], MembershipAction::Ratchet, names(&["b"]))));
    assert!(
        notices
            .iter()
            .all(|(_, _, joined)| !joined.contains(&"c".to_string()))
    );
}
