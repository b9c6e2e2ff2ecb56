//! `recorder enroll` and `recorder org-keygen` keep their private keys to their owner.

use std::os::unix::fs::PermissionsExt as _;

use crate::common::recorder;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn enroll_writes_private_keys_0600() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = recorder()
        .args(["enroll", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("identity.json")), 0o600);

    // Line 1: the public bundle, verifiable; line 2: the policy entry naming the same keys.
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let bundle = e2ee_frames::identity::DeviceBundle::from_json(lines.next().unwrap()).unwrap();
    let verified = bundle.verify().unwrap();
    assert!(verified.device().as_str().starts_with("recorder-"));
    let entry: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(entry["device"], verified.device().as_str());
    use base64::Engine as _;
    assert_eq!(
        entry["identity_key"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(verified.identity_key())
    );
    // No secret on stdout.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("identity.json")).unwrap()).unwrap();
    assert!(!stdout.contains(file["identity_secret"].as_str().unwrap()));
    assert!(!stdout.contains(file["hpke_secret"].as_str().unwrap()));

    // Enrolling again never overwrites; a given device id is used as given.
    let again = recorder()
        .args(["enroll", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let named = recorder()
        .args(["enroll", "--device", "recorder-eu-1", "--state-dir"])
        .arg(dir.path().join("named"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8(named.stdout)
            .unwrap()
            .contains("\"recorder-eu-1\"")
    );

    // A state file others can read is refused.
    std::fs::set_permissions(
        state.join("identity.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(recorder::identity::load(&state).is_err());

    // The organization's key file.
    let key = dir.path().join("org.key");
    let out = recorder()
        .args(["org-keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(mode(&key), 0o600);
    let recipient = String::from_utf8(out.stdout).unwrap();
    assert!(recipient.trim().starts_with("age1"), "{recipient}");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.contains("AGE-SECRET-KEY-1"));
    assert!(!recipient.contains("AGE-SECRET-KEY"));
    // Never over an existing file.
    let again = recorder()
        .args(["org-keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
}
