//! Safety numbers and call security codes (docs/e2ee.md §4): shape, symmetry, and sensitivity
//! to every input. Agreement with the JS twin is checked by `cross_js.rs`.

use e2ee_frames::{DeviceIdentity, RosterEntry, safety_number, security_code};

#[test]
fn safety_number_is_60_digits_and_symmetric() {
    let (ka, kb) = ([1u8; 32], [2u8; 32]);
    let a = DeviceIdentity {
        device: "dev-A",
        identity_key: &ka,
    };
    let b = DeviceIdentity {
        device: "dev-B",
        identity_key: &kb,
    };
    let n = safety_number(a, b);
    assert_eq!(n.digits().len(), 60);
    assert!(n.digits().bytes().all(|c| c.is_ascii_digit()));
    assert_eq!(n, safety_number(b, a));
    assert_eq!(n.to_string().split(' ').count(), 12);
    // The smaller half comes first.
    let (first, second) = n.digits().split_at(30);
    assert!(first <= second);
    // Any change to a key or a device id changes the number.
    let kc = [3u8; 32];
    assert_ne!(
        n,
        safety_number(
            a,
            DeviceIdentity {
                device: "dev-B",
                identity_key: &kc
            }
        )
    );
    assert_ne!(
        n,
        safety_number(
            a,
            DeviceIdentity {
                device: "dev-C",
                identity_key: &kb
            }
        )
    );
    // A device's half does not depend on its peer.
    let c = DeviceIdentity {
        device: "dev-C",
        identity_key: &kc,
    };
    let half_a = |x: &str| -> String {
        let (p, q) = x.split_at(30);
        [p, q]
            .into_iter()
            .find(|h| safety_number(a, a).digits().contains(*h))
            .unwrap()
            .to_owned()
    };
    assert_eq!(half_a(n.digits()), half_a(safety_number(a, c).digits()));
}

#[test]
fn security_code_is_25_digits_and_independent_of_roster_order() {
    let keys = [[5u8; 32], [6u8; 32], [7u8; 32]];
    let roster = [
        RosterEntry {
            device: "dev-A",
            identity_key: &keys[0],
            role: "caller",
            slot: 1,
        },
        RosterEntry {
            device: "dev-B",
            identity_key: &keys[1],
            role: "presenter",
            slot: 2,
        },
        RosterEntry {
            device: "dev-C",
            identity_key: &keys[2],
            role: "viewer",
            slot: 4095,
        },
    ];
    let code = security_code("standup", "c-1", &roster).unwrap();
    assert_eq!(code.digits().len(), 25);
    assert_eq!(code.to_string().split(' ').count(), 5);
    let mut reversed = roster;
    reversed.reverse();
    assert_eq!(security_code("standup", "c-1", &reversed).unwrap(), code);
    assert_ne!(security_code("standup", "c-2", &roster).unwrap(), code);
    assert_ne!(security_code("standup2", "c-1", &roster).unwrap(), code);
    assert_ne!(security_code("standup", "c-1", &roster[..2]).unwrap(), code);
    let mut changed = roster;
    changed[1].role = "recorder";
    assert_ne!(security_code("standup", "c-1", &changed).unwrap(), code);
    let mut changed = roster;
    changed[2].slot = 3;
    assert_ne!(security_code("standup", "c-1", &changed).unwrap(), code);
    let long = "r".repeat(70_000);
    assert!(security_code(&long, "c", &roster).is_err());
}
