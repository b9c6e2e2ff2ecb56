//! `signaling policy keygen` and `signaling policy sign`, the real binary: the key file is 0600,
//! the printed policy is accepted by the admin API as a room's `recording`, and a native client
//! verifies it with the printed public key and refuses it with another.

use std::process::Command;

use call_client::protocol::{PolicyVerifyError, RecordingPolicy};
use e2ee_frames::DocumentSigner;
use e2ee_frames::wire::{b64_decode, b64_encode};
use serde_json::json;

use crate::common::{self, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_signaling");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("runs")
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

#[tokio::test]
async fn policy_sign_output_is_accepted_and_verifies() {
    let dir = std::env::temp_dir().join(format!("signaling-policy-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("admin.key");
    let key_arg = key.to_str().expect("utf-8 path");

    let public = stdout_of(&run(&["policy", "keygen", "--out", key_arg]));
    let public: [u8; 32] = b64_decode(public.trim())
        .and_then(|b| b.try_into().ok())
        .expect("the public key, base64url of 32 bytes");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    assert!(
        !run(&["policy", "keygen", "--out", key_arg])
            .status
            .success(),
        "an existing key is never overwritten"
    );

    // One recorder by id and key, another by its (self-signed) bundle.
    let rec1_key = common::bundle("rec-1")["identity_key"]
        .as_str()
        .expect("string")
        .to_string();
    let rec2 = e2ee_frames::DeviceKeys::generate(
        e2ee_frames::DeviceId::new("rec-2").expect("valid id"),
        &mut rand::rng(),
    );
    let bundle_file = dir.join("rec-2.json");
    std::fs::write(&bundle_file, rec2.bundle().to_json()).expect("write bundle");
    let recorder_arg = format!("rec-1={rec1_key}");
    let signed = stdout_of(&run(&[
        "policy",
        "sign",
        "--admin-key",
        key_arg,
        "--room",
        "audit",
        "--recorder",
        &recorder_arg,
        "--recorder-bundle",
        bundle_file.to_str().expect("utf-8 path"),
        "--retention-days",
        "90",
    ]));
    let policy: RecordingPolicy = serde_json::from_str(signed.trim()).expect("policy JSON");

    // The admin API takes it as is.
    let s = TestServer::start(common::config()).await;
    let created = s
        .create_room(json!({"name": "audit", "kind": "meeting", "recording": policy}))
        .await;
    assert_eq!(
        created["policy"]["recording"],
        serde_json::to_value(&policy).expect("json")
    );
    // And a recorder it names is admitted.
    let mut rec = s.connect().await;
    let joined = rec
        .join(
            "audit",
            &common::token("audit", "archiver", signaling::policy::Role::Recorder),
            "rec-1",
        )
        .await;
    let from_service: RecordingPolicy =
        serde_json::from_value(joined["recording"].clone()).expect("joined.recording");

    // A native client verifies it with the printed key...
    let doc = from_service.verify(&[public]).expect("verifies");
    assert_eq!(doc.room, "audit");
    assert_eq!(doc.retention_days, 90);
    assert_eq!(
        doc.recorders
            .iter()
            .map(|r| r.device.as_str())
            .collect::<Vec<_>>(),
        ["rec-1", "rec-2"]
    );
    assert_eq!(
        doc.recorders[1].identity_key,
        b64_encode(&rec2.identity_key())
    );
    // ...and refuses it with another.
    let other = DocumentSigner::from_secret(&[1u8; 32]).public_key();
    assert_eq!(
        from_service.verify(&[other]),
        Err(PolicyVerifyError::UntrustedAdminKey)
    );

    // Bad input is refused with a message, never a policy.
    for bad in [
        vec!["--recorder", "rec-1=short"],
        vec!["--recorder", "no spaces=x"],
        vec!["--retention-days", "0", "--recorder", &recorder_arg],
        vec!["--retention-days", "36501", "--recorder", &recorder_arg],
    ] {
        let mut args = vec!["policy", "sign", "--admin-key", key_arg, "--room", "audit"];
        if !bad.contains(&"--retention-days") {
            args.extend(["--retention-days", "90"]);
        }
        args.extend(bad.iter().copied());
        let out = run(&args);
        assert!(!out.status.success(), "{bad:?} refused");
        assert!(out.stdout.is_empty(), "{bad:?}: nothing printed");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn recording_policy_file_makes_rooms_a_join_creates_recorded() {
    let dir = std::env::temp_dir().join(format!("signaling-policy-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let admin = DocumentSigner::from_secret(&[3u8; 32]);
    let rec_key = common::bundle("rec-1")["identity_key"]
        .as_str()
        .expect("string")
        .to_string();
    let policy = signaling::policy_signing::sign(
        &admin,
        "audit",
        vec![signaling::policy_signing::parse_recorder(&format!("rec-1={rec_key}")).expect("ok")],
        30,
        1_700_000_000,
    )
    .expect("signed");
    let file = dir.join("policies.json");
    std::fs::write(&file, serde_json::to_string(&[&policy]).expect("json")).expect("write");
    let mut config = common::config();
    config.auto_create_rooms = true;
    config.recording.policy_file = Some(file);
    let s = TestServer::start(config).await;
    let mut alice = s.connect().await;
    let joined = alice
        .join(
            "audit",
            &common::token("audit", "alice", signaling::policy::Role::Caller),
            "dev-a",
        )
        .await;
    assert_eq!(
        joined["recording"],
        serde_json::to_value(&policy).expect("json")
    );
    let mut bob = s.connect().await;
    let other = bob
        .join(
            "elsewhere",
            &common::token("elsewhere", "bob", signaling::policy::Role::Caller),
            "dev-b",
        )
        .await;
    assert!(
        other.get("recording").is_none(),
        "other rooms are not recorded"
    );
    // The admin API's default is unchanged: a room created there without `recording` is not
    // recorded, whatever its name.
    let created = s
        .create_room(json!({"name": "audit2", "kind": "meeting"}))
        .await;
    assert!(created["policy"].get("recording").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `signaling dev --recording-policy FILE`: the demo room, which `dev` creates itself at start
/// (not a join), is recorded when a policy in the file names it (what `scripts/run --record`
/// relies on).
#[tokio::test]
async fn dev_demo_room_takes_the_recording_policy_naming_it() {
    let dir = std::env::temp_dir().join(format!("signaling-dev-policy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let admin = DocumentSigner::from_secret(&[5u8; 32]);
    let rec_key = common::bundle("rec-1")["identity_key"]
        .as_str()
        .expect("string")
        .to_string();
    let policy = signaling::policy_signing::sign(
        &admin,
        "standup",
        vec![signaling::policy_signing::parse_recorder(&format!("rec-1={rec_key}")).expect("ok")],
        7,
        1_700_000_000,
    )
    .expect("signed");
    let file = dir.join("policy.json");
    std::fs::write(&file, serde_json::to_string(&policy).expect("json")).expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(BIN)
        .args([
            "dev",
            "--room",
            "standup",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--recording-policy")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dev starts");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/rooms/standup");
    let mut room = None;
    for _ in 0..200 {
        if let Ok(resp) = client.get(&url).bearer_auth("devadmin").send().await
            && resp.status() == 200
        {
            room = Some(resp.json::<serde_json::Value>().await.expect("json"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let room = room.expect("the demo room exists within 10 s");
    assert_eq!(
        room["policy"]["recording"],
        serde_json::to_value(&policy).expect("json"),
        "{room}"
    );
}
