//! Unit tests of node offers held until answered, on virtual time.

use std::time::{Duration, Instant};

use super::tests::{join_req, membership, room};
use super::*;
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
    let out = r.node_offer("b", "v=0 offer-1".into(), t1);
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
    r.node_offer("b", "v=0 offer-1".into(), t1);
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
            .any(|o| matches!(o, Output::MediaRemove { device } if device == "b")),
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
    r.node_offer("b", "v=0 offer-1".into(), t1);
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
