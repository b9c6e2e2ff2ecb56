//! `loadtest meeting --receive-slots`: the room has receive slots, every caller offers its
//! receive sections up front (`joined.receive_slots`) and subscribes to nothing, and the SFU
//! maps everyone's tracks onto those slots; joins renegotiate no one already there.

use std::collections::BTreeMap;

use crate::scenarios_cli::{run, u};

#[test]
fn meeting_in_a_slot_room_renegotiates_no_one() {
    let report = run(
        &[
            "meeting",
            "--callers",
            "6",
            "--receive-slots",
            "--duration",
            "3",
        ],
        "slot-meeting",
    );
    // Everyone joined, every receiver decrypted frames, none failed authentication. (Per-layer
    // loss is not checked: the SFU moves slots between camera layers, and the frames of a
    // layer sent while a receiver was on another one count as lost in that layer's range.)
    assert_eq!(u(&report, "joined"), 6, "{report}");
    assert_eq!(u(&report, "decrypt_failures"), 0, "{report}");
    assert_eq!(u(&report, "receivers_without_frames"), 0, "{report}");
    assert!(u(&report, "frames_received") > 0, "{report}");
    let r = &report["renegotiation"];
    assert_eq!(r["receive_slots"], true, "{report}");
    assert_eq!(
        u(r, "offers_to_existing_participants_after_join"),
        0,
        "{report}"
    );
    // The SFU's counters were read: it offered no one slots after the join (every caller's
    // first offer carried them) and filled the slots.
    assert!(r["sfu_renegotiations"].is_object(), "{report}");
    assert!(
        r["sfu_renegotiations"]["slots_at_join"].is_null(),
        "{report}"
    );
    assert!(u(&r["sfu_slot_reassignments"], "video") > 0, "{report}");
    // Frames from every caller reached the five others on their slots (6 callers fit the
    // room's video slots, so every stream has all five receivers).
    let mut receivers_by_sender: BTreeMap<u64, u64> = BTreeMap::new();
    for s in report["streams"].as_array().expect("streams") {
        let sender = u(s, "sender");
        let receivers = u(s, "receivers");
        let e = receivers_by_sender.entry(sender).or_default();
        *e = (*e).max(receivers);
    }
    assert_eq!(receivers_by_sender.len(), 6, "{report}");
    assert!(
        receivers_by_sender.values().all(|&n| n == 5),
        "{receivers_by_sender:?}"
    );
}

#[test]
fn a_per_track_meeting_counts_the_offers_joins_cost_the_others() {
    let report = run(
        &["meeting", "--callers", "3", "--duration", "2"],
        "track-meeting",
    );
    let r = &report["renegotiation"];
    assert_eq!(r["receive_slots"], false, "{report}");
    // Without slots each later join and publication reaches the others as an SFU offer.
    assert!(
        u(r, "offers_to_existing_participants_after_join") > 0,
        "{report}"
    );
}
