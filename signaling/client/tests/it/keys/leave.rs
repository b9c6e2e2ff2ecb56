use std::time::Duration;

use call_client::keys::{GenerationCause, KeyChange, KeyInput, Membership, Switch};

use super::{config, started};

/// Signaling's rekey debounce (`RekeyTiming::default()` in `signaling/src/room/rekey.rs`,
/// protocol §4): the `rekey` notice goes out after 1 s of quiet, at most 5 s after the first
/// leave, naming every device that left.
const DEBOUNCE: Duration = Duration::from_secs(1);

#[test]
fn leave_starts_one_new_generation_after_the_debounce() {
    let mut call = started(&["a", "b", "c", "d"], config());
    let before = call.sent.len();

    // d leaves at 10 s and c at 10.4 s: the roster deltas come at once; no key changes yet.
    let t_d = call.at(10_000);
    for name in ["a", "b", "c"] {
        call.input(name, t_d, KeyInput::RosterRemoved(vec!["d".into()]));
    }
    let t_c = call.at(10_400);
    for name in ["a", "b"] {
        call.input(name, t_c, KeyInput::RosterRemoved(vec!["c".into()]));
    }
    assert_eq!(call.envelopes_since(before), Vec::<String>::new());
    for name in ["a", "b"] {
        assert_eq!(call.get(name).policy.current_key(), Some((0, 0)));
        assert_eq!(call.get(name).policy.pending_generation(), None);
        // Nothing is due before the rotation: the policy waits for signaling's notice.
        assert_eq!(
            call.get(name).policy.poll_timeout(),
            Some(call.t0 + Duration::from_secs(300))
        );
    }

    // The debounced notice names both; each remaining sender makes exactly one generation,
    // wrapped to the remaining device only, and uses it once acked.
    let t_rekey = t_c + DEBOUNCE;
    call.membership(
        &["a", "b"],
        Membership::Rekey {
            left: vec!["d".into(), "c".into()],
        },
        t_rekey,
    );
    assert_eq!(call.envelopes_since(before), ["a->b:g1s0", "b->a:g1s0"]);
    for name in ["a", "b"] {
        let d = call.get(name);
        assert_eq!(d.policy.current_key(), Some((1, 0)));
        assert_eq!(
            d.sender_keys.last().unwrap().change,
            KeyChange::NewGeneration {
                cause: GenerationCause::Rekey,
                switch: Switch::Acked,
            }
        );
    }
    assert!(call.frame_decrypts("a", "b", t_rekey));
    assert!(call.frame_decrypts("b", "a", t_rekey));
    // The devices that left got nothing of generation 1.
    for gone in ["c", "d"] {
        assert!(call.get(gone).received.iter().all(|r| r.1 == 0), "{gone}");
    }
    // No second generation follows: the next change is the rotation, 5 min after the switch.
    assert_eq!(
        call.get("a").policy.poll_timeout(),
        Some(t_rekey + Duration::from_secs(300))
    );
    call.timeout("a", t_rekey + Duration::from_secs(299));
    assert_eq!(call.envelopes_since(before).len(), 2);
}
