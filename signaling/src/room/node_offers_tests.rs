//! Unit tests of node offers held until answered, on virtual time.

use std::time::{Duration, Instant};

use super::tests::{join_req, membership, room};
use super::*;
use crate::media_node::MediaSessionId;
use crate::policy::RoomKind;
use crate::protocol::{MediaResetReason, ResumeCall};

const T_WINDOW: Duration = Duration::from_millis(100);

/// A room with `a` (conn 1) and `b` (conn 2), the join ratchet sent.
fn two_members(t0: Instant) -> Room {
    let mut r = room(RoomKind::Meeting);
    r.timing.resume_grace = Duration::from_secs(10);
    r.join(join_req(1, "a", Role::Caller), t0, true).unwrap();
    r.join(join_req(2, "b", Role::Caller), t0, true).unwrap();
    assert_eq!(membership(&r.handle_timeout(t0 + T_WINDOW)).len(), 1);
    r
}

/// The offers `out` sends to `conn`.
fn offers_to(out: &[Output], conn: ConnId) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::Offer(body),
            } if to.contains(&conn) => Some(body.sdp.clone()),
            _ => None,
        })
        .collect()
}

fn outcomes(out: &[Output]) -> Vec<OfferOutcome> {
    out.iter()
        .filter_map(|o| match o {
            Output::NodeOffer(outcome) => Some(*outcome),
            _ => None,
        })
        .collect()
}

#[test]
fn an_answered_node_offer_is_not_sent_again() {
    let t0 = Instant::now();
    let mut r = two_members(t0);
    let t1 = t0 + Duration::from_secs(1);
    let out = r.node_offer("b", None, "v=0 offer-1".into(), t1);
    assert_eq!(offers_to(&out, 2), vec!["v=0 offer-1".to_owned()]);
    assert_eq!(r.poll_timeout(), Some(t1 + OFFER_ANSWER_TIMEOUT));
    r.sdp_from_device("b");
    assert_eq!(r.poll_timeout(), None);
    assert!(r.handle_timeout(t1 + OFFER_ANSWER_TIMEOUT * 3).is_empty());
}

#[test]
fn an_unanswered_node_offer_is_sent_again_then_the_session_is_reset() {
    let t0 = Instant::now();
    let mut r = two_members(t0);
    let t1 = t0 + Duration::from_secs(1);
    r.node_offer("b", None, "v=0 offer-1".into(), t1);
    assert!(
        r.handle_timeout(t1 + OFFER_ANSWER_TIMEOUT - Duration::from_millis(1))
            .is_empty()
    );
    let mut at = t1;
    for _ in 0..OFFER_RESENDS {
        at += OFFER_ANSWER_TIMEOUT;
        let out = r.handle_timeout(at);
        assert_eq!(
            offers_to(&out, 2),
            vec!["v=0 offer-1".to_owned()],
            "the same offer again"
        );
        assert_eq!(outcomes(&out), vec![OfferOutcome::ResentAfterTimeout]);
        assert!(offers_to(&out, 1).is_empty(), "a is told nothing");
    }
    at += OFFER_ANSWER_TIMEOUT;
    let out = r.handle_timeout(at);
    assert_eq!(outcomes(&out), vec![OfferOutcome::SessionReset]);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::MediaRemove { device, .. } if device == "b")),
        "the node drops b's session: {out:?}"
    );
    let resets: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: ServerMessage::MediaReset(n),
            } => Some((to.clone(), n.reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        resets,
        vec![(vec![2], MediaResetReason::OfferUnanswered)],
        "b only"
    );
    assert_eq!(r.poll_timeout(), None, "given up: nothing pending");
}

#[test]
fn a_node_offer_lost_while_suspended_goes_to_the_resumed_connection() {
    let t0 = Instant::now();
    let mut r = two_members(t0);
    let t1 = t0 + Duration::from_secs(1);
    let b_slot = r.member("b").unwrap().entry.slot;
    let call = r.call().to_owned();
    assert!(r.leave(2, "b", Departure::Dropped, t1).is_empty());
    // The offer goes to the lost connection (dropped there) and is held.
    r.node_offer("b", None, "v=0 offer-1".into(), t1);
    // A suspended device's offer waits for its resume, not for the timeout.
    assert!(
        offers_to(
            &r.handle_timeout(t1 + OFFER_ANSWER_TIMEOUT + Duration::from_secs(1)),
            2
        )
        .is_empty(),
        "nothing re-sent to the lost connection"
    );
    let mut req = join_req(3, "b", Role::Caller);
    req.resume = Some(ResumeCall {
        call,
        slot: b_slot,
        media_lost: false,
    });
    let t2 = t1 + OFFER_ANSWER_TIMEOUT + Duration::from_secs(2);
    let (joined, out) = r.join(req, t2, true).unwrap();
    assert!(joined.resumed);
    assert_eq!(offers_to(&out, 3), vec!["v=0 offer-1".to_owned()]);
    assert_eq!(outcomes(&out), vec![OfferOutcome::ResentOnResume]);
    assert_eq!(r.poll_timeout(), Some(t2 + OFFER_ANSWER_TIMEOUT));
    r.sdp_from_device("b");
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn a_reset_media_session_is_removed_by_its_id_and_the_next_one_gets_a_new_id() {
    let t0 = Instant::now();
    let mut r = two_members(t0);
    let before = r.member("b").unwrap().media_session;
    let a_session = r.member("a").unwrap().media_session;
    assert_ne!(a_session, before, "every member has its own");
    let t1 = t0 + Duration::from_secs(1);
    r.node_offer("b", Some(before), "v=0 offer-1".into(), t1);
    let mut at = t1;
    for _ in 0..=OFFER_RESENDS {
        at += OFFER_ANSWER_TIMEOUT;
        r.handle_timeout(at);
    }
    assert!(r.handle_timeout(at).is_empty(), "reset once");
    let after = r.member("b").unwrap().media_session;
    assert_ne!(after, before, "the next offer starts a new session");
    assert_eq!(
        r.sdp_from_device("b"),
        Some(after),
        "the SDP is for the new one"
    );
    assert_eq!(r.sdp_from_device("a"), Some(a_session), "a's is untouched");
}

#[test]
fn the_reset_names_the_old_session_for_removal() {
    let t0 = Instant::now();
    let mut r = two_members(t0);
    let old = r.member("b").unwrap().media_session;
    let t1 = t0 + Duration::from_secs(1);
    r.node_offer("b", None, "v=0 offer-1".into(), t1);
    let mut out = Vec::new();
    let mut at = t1;
    for _ in 0..=OFFER_RESENDS {
        at += OFFER_ANSWER_TIMEOUT;
        out = r.handle_timeout(at);
    }
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::MediaRemove { device, session } if device == "b" && *session == old
        )),
        "{out:?}"
    );
}

#[test]
fn a_node_offer_for_a_session_the_device_no_longer_has_is_dropped() {
    let t0 = Instant::now();
    let mut r = two_members(t0);
    let current = r.member("b").unwrap().media_session;
    let t1 = t0 + Duration::from_secs(1);
    let stale = MediaSessionId(current.0.wrapping_add(1));
    let out = r.node_offer("b", Some(stale), "v=0 old".into(), t1);
    assert!(offers_to(&out, 2).is_empty(), "not sent: {out:?}");
    assert_eq!(outcomes(&out), vec![OfferOutcome::StaleSession]);
    assert_eq!(r.poll_timeout(), None, "nothing held");
    let out = r.node_offer("b", Some(current), "v=0 new".into(), t1);
    assert_eq!(offers_to(&out, 2), vec!["v=0 new".to_owned()]);
    assert!(!r.is_current_session("b", Some(stale)));
    assert!(r.is_current_session("b", Some(current)));
    assert!(r.is_current_session("b", None), "unnamed: whatever it has");
}

#[test]
fn a_resumed_device_keeps_its_media_session_and_a_replacing_join_gets_a_new_one() {
    let t0 = Instant::now();
    let mut r = two_members(t0);
    let first = r.member("b").unwrap().media_session;
    let t1 = t0 + Duration::from_secs(1);
    let b_slot = r.member("b").unwrap().entry.slot;
    let call = r.call().to_owned();
    assert!(r.leave(2, "b", Departure::Dropped, t1).is_empty());
    let mut req = join_req(3, "b", Role::Caller);
    req.resume = Some(ResumeCall {
        call,
        slot: b_slot,
        media_lost: true,
    });
    let (joined, _) = r.join(req, t1, true).unwrap();
    assert!(joined.resumed);
    assert_eq!(
        r.member("b").unwrap().media_session,
        first,
        "resumed: the next offer replaces the node's session under the same id"
    );
    // A fresh join of the same device (not a resume) replaces the member and its session.
    let (_, out) = r.join(join_req(4, "b", Role::Caller), t1, true).unwrap();
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::MediaRemove { device, session } if device == "b" && *session == first
        )),
        "the replaced member's session is removed by its id: {out:?}"
    );
    assert_ne!(r.member("b").unwrap().media_session, first);
}
