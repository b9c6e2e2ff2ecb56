use call_client::keys::{KeyChange, KeyInput, Membership};

use super::{config, started_among};

#[test]
fn join_sends_one_ratchet_envelope_per_sender_to_the_joiner_only() {
    // a and b are in the call; c (not yet joined) joins at 1 s, as signaling orders it: the
    // others get the roster delta, c gets `joined` with the roster and sends its own
    // generation 0, then the others get `membership ratchet`.
    let mut call = started_among(&["a", "b", "c"], &["a", "b"], config());
    let t = call.at(1_000);
    call.add_to_roster("a", &["c"], t);
    call.add_to_roster("b", &["c"], t);
    call.add_to_roster("c", &["a", "b"], t);
    call.input("c", t, KeyInput::Start);
    let before = call.sent.len();
    call.membership(
        &["a", "b"],
        Membership::Ratchet {
            joined: vec!["c".into()],
        },
        t,
    );

    // Exactly one envelope per sender, to the joiner only, at step 1 of generation 0.
    assert_eq!(call.envelopes_since(before), ["a->c:g0s1", "b->c:g0s1"]);
    for name in ["a", "b"] {
        let d = call.get(name);
        assert_eq!(d.policy.current_key(), Some((0, 1)), "{name} ratcheted");
        assert_eq!(
            d.policy.pending_generation(),
            None,
            "{name}: no new generation"
        );
        assert_eq!(d.sender_keys.last().unwrap().change, KeyChange::Ratchet);
        assert_eq!(d.sender_keys.last().unwrap().suite.id(), 0x0005);
    }
    // The joiner opened both and decrypts both senders' frames.
    let c = call.get("c");
    assert_eq!(
        c.received
            .iter()
            .map(|r| (r.0.as_str(), r.1, r.2))
            .collect::<Vec<_>>(),
        [("a", 0, 1), ("b", 0, 1)]
    );
    assert!(call.frame_decrypts("a", "c", t));
    assert!(call.frame_decrypts("b", "c", t));
    // The existing receivers follow the ratchet by themselves.
    assert!(call.frame_decrypts("a", "b", t));
    assert!(call.frame_decrypts("b", "a", t));
    // The joiner's own generation 0 reached a and b.
    assert!(call.frame_decrypts("c", "a", t));
    assert!(call.frame_decrypts("c", "b", t));
}
