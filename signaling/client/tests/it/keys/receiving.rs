use call_client::keys::{KeyInput, KeyOutput};
use e2ee_frames::KeyEnvelope;

use super::{config, started_among};

#[test]
fn an_envelope_from_a_device_not_yet_in_the_roster_is_opened_once_the_roster_names_it() {
    // b is in a's roster, but a is not yet in b's (the roster delta is still on its way).
    let mut call = started_among(&["a", "b"], &[], config());
    let t = call.t0;
    call.add_to_roster("a", &["b"], t);
    let a = call.devices.get_mut("a").unwrap();
    a.policy.handle_input(t, KeyInput::Start).unwrap();
    let envelope = std::iter::from_fn(|| a.policy.poll_output())
        .find_map(|o| match o {
            KeyOutput::SendEnvelope { envelope, .. } => Some(envelope),
            _ => None,
        })
        .unwrap();
    let b = call.devices.get_mut("b").unwrap();
    b.policy
        .handle_input(t, KeyInput::Envelope(envelope.clone()))
        .unwrap();
    assert!(b.policy.poll_output().is_none(), "held, not opened");
    // The roster delta arrives: the held envelope is opened, installed and acked.
    call.add_to_roster("b", &["a"], t);
    assert_eq!(call.get("b").received, [("a".to_owned(), 0, 0, 32)]);
    assert!(call.acks.contains(&("b".into(), "a".into(), 0, 0)));

    // A tampered envelope is refused and counted; nothing is installed.
    let mut tampered: KeyEnvelope = envelope;
    tampered.generation = 1;
    let b = call.devices.get_mut("b").unwrap();
    assert!(
        b.policy
            .handle_input(t, KeyInput::Envelope(tampered))
            .is_err()
    );
    assert_eq!(b.policy.refused_envelopes(), 1);
    assert!(b.policy.poll_output().is_none());
}
