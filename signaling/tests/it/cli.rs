//! The `signaling` binary: `token` prints a token the service accepts, `serve` reads a config
//! file, and `dev` says plainly that no SFU is embedded yet.

use std::process::Command;
use std::time::Duration;

use signaling::auth::{Secret, TokenVerifier};
use signaling::policy::Role;

const BIN: &str = env!("CARGO_BIN_EXE_signaling");

#[test]
fn token_command_prints_a_verifiable_dev_token() {
    let out = Command::new(BIN)
        .args([
            "token",
            "--room",
            "standup",
            "--identity",
            "alice",
            "--role",
            "viewer",
        ])
        .env_remove("SIGNALING_API_KEY")
        .env_remove("SIGNALING_API_SECRET")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).expect("utf-8");
    let verifier = TokenVerifier::new(&[("devkey".to_string(), Secret::new("devsecret"))].into());
    let g = verifier
        .verify(token.trim())
        .expect("the dev key accepts it");
    assert_eq!(
        (g.room.as_str(), g.identity.as_str(), g.role),
        ("standup", "alice", Role::Viewer)
    );
    assert!(
        !g.can_publish && g.can_subscribe,
        "viewers get subscribe only by default"
    );

    let bad = Command::new(BIN)
        .args(["token", "--room", "r", "--identity", "a", "--role", "admin"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
}

#[test]
fn serve_refuses_a_bad_config_file() {
    let dir = std::env::temp_dir().join(format!("signaling-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nno_such_setting = 1\n").expect("write");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_setting"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dev_runs_signaling_with_an_embedded_sfu_and_prints_join_links() {
    use std::io::BufRead as _;
    // Port 0: the OS picks a free loopback port; the child is killed when the test is done.
    let mut child = Command::new(BIN)
        .args(["dev", "--listen", "127.0.0.1:0", "--room", "standup"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    for reader in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(reader)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    // The links and the listening line come from different tasks, in either order.
    while seen.matches("#room=standup&").count() < 2 || !seen.contains("signaling listening") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("embedded SFU on loopback"), "{seen}");
    assert!(seen.contains("signaling listening"), "{seen}");
    for name in ["alice", "bob"] {
        let link = seen
            .lines()
            .find(|l| l.contains(&format!("&name={name}&")))
            .unwrap_or_else(|| panic!("a join link for {name}: {seen}"));
        assert!(link.trim().starts_with("http://127.0.0.1:"), "{link}");
        assert!(link.contains("&test=1&join=1&token=ey"), "{link}");
    }
}
