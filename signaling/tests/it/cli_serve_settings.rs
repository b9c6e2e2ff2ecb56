//! The `signaling` binary's start-up checks: `--version` prints the version, and `serve` refuses
//! to start without API keys or without a media node unless it is a development run.

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_signaling");

/// `signaling serve` with `args`, none of its settings taken from this process's environment.
fn serve(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").args(args);
    for var in [
        "SIGNALING_CONFIG",
        "SIGNALING_API_KEYS",
        "SIGNALING_SFU_URL",
        "SIGNALING_SFU_CONTROL_SECRET",
        "SIGNALING_DEVELOPMENT",
        "SIGNALING_LOG",
        "SIGNALING_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn version_prints_the_package_version() {
    let out = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("signaling {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn serve_without_api_keys_refuses_to_start() {
    let out = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--sfu-url",
        "http://127.0.0.1:9",
        "--sfu-control-secret",
        "s",
    ])
    .output()
    .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no API keys"), "{stderr}");
    assert!(stderr.contains("--api-keys"), "{stderr}");
    assert!(stderr.contains("SIGNALING_API_KEYS"), "{stderr}");
    assert!(stderr.contains("--development"), "{stderr}");
    assert!(!stderr.contains("no media node"), "{stderr}");
}

#[test]
fn serve_without_a_media_node_refuses_to_start() {
    let out = serve(&["--listen", "127.0.0.1:0", "--api-keys", "k:s"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no media node"), "{stderr}");
    assert!(stderr.contains("--sfu-url"), "{stderr}");
    assert!(stderr.contains("--development"), "{stderr}");
    assert!(!stderr.contains("no API keys"), "{stderr}");
}

#[test]
fn a_development_run_starts_with_warnings() {
    // Port 0: the OS picks a free loopback port; the child is killed when the test is done.
    let mut child = serve(&["--listen", "127.0.0.1:0", "--log", "info"])
        .env("SIGNALING_DEVELOPMENT", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let done = line.contains("signaling listening");
                seen.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = seen.join("\n");
    assert!(listening, "never listened:\n{log}");
    assert!(
        log.contains("development run") && log.contains("no API keys"),
        "{log}"
    );
    assert!(log.contains("no media node"), "{log}");
}
