//! A receiver that fell behind the sender's ratchet by more than the look-ahead recovers by
//! asking for the key (docs/architecture.md §7.24).

use std::time::Duration;

use call_client::keys::{KeyInput, Membership, REQUEST_INTERVAL};
use e2ee_frames::ReceiveError;

use super::{config, started};

#[test]
fn a_receiver_beyond_the_ratchet_window_recovers_by_key_request() {
    let mut call = started(&["a", "b"], config());
    let t = call.at(1_000);
    assert!(call.frame_decrypts("a", "b", t));
    // a ratchets 20 times (20 join notices whose joiners left at once) while b sees no frame.
    for _ in 0..20 {
        call.membership(&["a"], Membership::Ratchet { joined: vec![] }, t);
    }
    assert_eq!(call.get("a").policy.current_key(), Some((0, 20)));
    let refused = call.open_frame("a", "b", t);
    assert!(
        matches!(refused, Err(Some(ReceiveError::RatchetBeyondBound { .. }))),
        "{refused:?}"
    );
    // b reports the refused frame: one key_request to a, which sends its current key to b.
    let slot = call.get("a").slot;
    let undecryptable = KeyInput::Undecryptable {
        slot,
        generation: 0,
    };
    call.input("b", t, undecryptable.clone());
    assert_eq!(call.requests, [("b".to_owned(), "a".to_owned())]);
    assert!(call.frame_decrypts("a", "b", t), "b opens a's frames again");
    // Another refused frame within the interval asks nothing more; after it, it asks again.
    call.input("b", t + Duration::from_millis(500), undecryptable.clone());
    assert_eq!(call.requests.len(), 1);
    call.input("b", t + REQUEST_INTERVAL, undecryptable);
    assert_eq!(call.requests.len(), 2);
}
