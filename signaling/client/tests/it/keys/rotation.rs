use std::time::Duration;

use call_client::keys::{GenerationCause, KeyChange, KeyInput, Membership, Switch};

use super::{config, started_among};

const FIVE_MINUTES: Duration = Duration::from_secs(300);

#[test]
fn rotation_every_five_minutes() {
    let mut call = started_among(&["a", "b", "c"], &["a", "b"], config());
    let t0 = call.t0;
    assert_eq!(call.get("a").policy.poll_timeout(), Some(t0 + FIVE_MINUTES));

    // Nothing a millisecond before; a new generation for everyone at 5 min, used once acked.
    let before = call.sent.len();
    call.timeout("a", t0 + FIVE_MINUTES - Duration::from_millis(1));
    assert_eq!(call.sent.len(), before);
    call.timeout("a", t0 + FIVE_MINUTES);
    assert_eq!(call.envelopes_since(before), ["a->b:g1s0"]);
    assert_eq!(call.get("a").policy.current_key(), Some((1, 0)));
    assert_eq!(
        call.get("a").sender_keys.last().unwrap().change,
        KeyChange::NewGeneration {
            cause: GenerationCause::Rotation,
            switch: Switch::Acked
        }
    );
    assert!(call.frame_decrypts("a", "b", t0 + FIVE_MINUTES));

    // A join ratchets but does not restart the period.
    let t_join = t0 + FIVE_MINUTES + Duration::from_secs(60);
    call.add_to_roster("a", &["c"], t_join);
    call.add_to_roster("c", &["a"], t_join);
    call.input(
        "a",
        t_join,
        KeyInput::Membership(Membership::Ratchet {
            joined: vec!["c".into()],
        }),
    );
    assert_eq!(call.get("a").policy.current_key(), Some((1, 1)));
    assert_eq!(
        call.get("a").policy.poll_timeout(),
        Some(t0 + 2 * FIVE_MINUTES)
    );

    // The next rotation, 5 min after the previous one, reaches b and c.
    let before = call.sent.len();
    call.timeout("a", t0 + 2 * FIVE_MINUTES);
    assert_eq!(call.envelopes_since(before), ["a->b:g2s0", "a->c:g2s0"]);
    assert_eq!(call.get("a").policy.current_key(), Some((2, 0)));
    assert!(call.frame_decrypts("a", "c", t0 + 2 * FIVE_MINUTES));
    assert_eq!(
        call.get("a").policy.poll_timeout(),
        Some(t0 + 3 * FIVE_MINUTES)
    );
}
