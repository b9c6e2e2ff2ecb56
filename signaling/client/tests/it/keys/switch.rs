use std::time::Duration;

use call_client::keys::{GenerationCause, KeyChange, KeyInput, Membership, Switch};

use super::{config, started};

fn rekey() -> KeyInput {
    KeyInput::Membership(Membership::Rekey {
        left: vec!["gone".into()],
    })
}

fn ack(from: &str, generation: u16) -> KeyInput {
    KeyInput::Ack {
        from: from.into(),
        generation,
        step: 0,
    }
}

#[test]
fn switch_on_all_acked_or_timeout() {
    let mut call = started(&["a", "b", "c"], config());
    call.deliver_acks = false;

    // All acked: the new generation is used at the last ack, not before.
    let t = call.at(1_000);
    call.input("a", t, rekey());
    assert_eq!(call.get("a").policy.pending_generation(), Some(1));
    assert_eq!(call.get("a").policy.current_key(), Some((0, 0)));
    call.input("a", t, ack("b", 1));
    call.input("a", t, ack("c", 0)); // another generation's ack does not count
    assert_eq!(call.get("a").policy.current_key(), Some((0, 0)));
    call.input("a", call.at(1_200), ack("c", 1));
    assert_eq!(call.get("a").policy.current_key(), Some((1, 0)));
    assert_eq!(
        call.get("a").sender_keys.last().unwrap().change,
        KeyChange::NewGeneration {
            cause: GenerationCause::Rekey,
            switch: Switch::Acked
        }
    );
    // b and c installed generation 1 on arrival, so the switch costs no frame.
    assert!(call.frame_decrypts("a", "b", call.at(1_200)));
    assert!(call.frame_decrypts("a", "c", call.at(1_200)));

    // Not all acked: used at the ack timeout (3 s), not a millisecond before.
    let t = call.at(5_000);
    call.input("a", t, rekey());
    call.input("a", t, ack("b", 2));
    let deadline = t + Duration::from_secs(3);
    assert_eq!(call.get("a").policy.poll_timeout(), Some(deadline));
    call.timeout("a", deadline - Duration::from_millis(1));
    assert_eq!(call.get("a").policy.current_key(), Some((1, 0)));
    call.timeout("a", deadline);
    assert_eq!(call.get("a").policy.current_key(), Some((2, 0)));
    assert_eq!(
        call.get("a").sender_keys.last().unwrap().change,
        KeyChange::NewGeneration {
            cause: GenerationCause::Rekey,
            switch: Switch::AckTimeout
        }
    );
    assert!(call.frame_decrypts("a", "c", deadline));
    // The next deadline is the rotation, 5 min after the switch.
    assert_eq!(
        call.get("a").policy.poll_timeout(),
        Some(deadline + Duration::from_secs(300))
    );
}
