use call_client::keys::{KeyInput, Membership};

use super::{config, started_among};

#[test]
fn a_joiner_during_a_pending_generation_gets_the_ratchet_and_the_pending_key_and_is_awaited() {
    let mut call = started_among(&["a", "b", "c"], &["a", "b"], config());
    call.deliver_acks = false;
    let t = call.at(1_000);
    call.input(
        "a",
        t,
        KeyInput::Membership(Membership::Rekey {
            left: vec!["x".into()],
        }),
    );
    assert_eq!(call.get("a").policy.pending_generation(), Some(1));
    // c joins while generation 1 waits for b's ack.
    call.add_to_roster("a", &["c"], t);
    call.add_to_roster("c", &["a", "b"], t);
    let before = call.sent.len();
    call.input(
        "a",
        t,
        KeyInput::Membership(Membership::Ratchet {
            joined: vec!["c".into()],
        }),
    );
    assert_eq!(call.envelopes_since(before), ["a->c:g0s1", "a->c:g1s0"]);
    // b's ack alone no longer switches: c is awaited too.
    call.input(
        "a",
        t,
        KeyInput::Ack {
            from: "b".into(),
            generation: 1,
            step: 0,
        },
    );
    assert_eq!(call.get("a").policy.current_key(), Some((0, 1)));
    call.input(
        "a",
        t,
        KeyInput::Ack {
            from: "c".into(),
            generation: 1,
            step: 0,
        },
    );
    assert_eq!(call.get("a").policy.current_key(), Some((1, 0)));
    assert!(call.frame_decrypts("a", "c", t));
    assert!(call.frame_decrypts("a", "b", t));
}
