//! The `sfu` binary serving its HTTP port over TLS (`--tls-cert`/`--tls-key`), with a
//! self-signed certificate made here (`rcgen`) and a real HTTPS client (`reqwest` on rustls)
//! trusting only that certificate: probes and the authenticated control API answer over HTTPS;
//! plain HTTP and a client that does not trust the certificate get nothing; `sfu drain` reaches
//! the node over TLS (pinning the node's own certificate); SIGTERM stops it cleanly. A
//! certificate without a key is refused at start.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "tls-test-secret-0123456789abcdef01234567";

/// Kills the child on drop (a failing test must not leave a node running).
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on loopback right now (the binary binds it a moment later).
fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("tcp port");
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("udp port");
    (
        tcp.local_addr().expect("tcp addr").port(),
        udp.local_addr().expect("udp addr").port(),
    )
}

/// Writes a fresh self-signed certificate for `localhost` and its key; returns (cert PEM,
/// cert path, key path).
fn self_signed(dir: &Path) -> (String, PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert generated");
    let cert_pem = certified.cert.pem();
    std::fs::create_dir_all(dir).expect("temp dir");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &cert_pem).expect("cert written");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key written");
    (cert_pem, cert, key)
}

fn sfu(http: u16, udp: u16, cert: &Path, key: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sfu"));
    cmd.args(["--bind-address", "127.0.0.1", "--http-port"])
        .arg(http.to_string())
        .arg("--udp-port")
        .arg(udp.to_string())
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .env("SFU_CONTROL_SECRET", SECRET)
        .env("SFU_LOG", "warn")
        .env("SFU_DRAIN_TIMEOUT_SECONDS", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_over_tls_with_a_self_signed_certificate() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("control_api_tls-{}", std::process::id()));
    let (cert_pem, cert, key) = self_signed(&dir);
    let (http, udp) = free_ports();
    let mut node = Node(sfu(http, udp, &cert, &key).spawn().expect("sfu starts"));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, http));

    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem certificate"),
        )
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client builds");
    let base = format!("https://localhost:{http}");

    // Wait for the node to serve.
    let started = Instant::now();
    let healthz = loop {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) => break r,
            Err(_) if started.elapsed() < Duration::from_secs(15) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("HTTPS /healthz never answered: {e}"),
        }
    };
    assert_eq!(healthz.status(), 200);
    assert_eq!(healthz.text().await.expect("body").trim(), "ok");

    // The control API: refused without the secret, answered with it.
    let unauthenticated = client
        .get(format!("{base}/control/status"))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(unauthenticated.status(), 401);
    let status: serde_json::Value = client
        .get(format!("{base}/control/status"))
        .bearer_auth(SECRET)
        .send()
        .await
        .expect("HTTPS answers")
        .json()
        .await
        .expect("status JSON");
    assert_eq!(status["participants"], 0);
    assert_eq!(status["draining"], false);
    let created = client
        .post(format!("{base}/control/rooms"))
        .bearer_auth(SECRET)
        .json(&serde_json::json!({ "room": "over-tls", "kind": "meeting" }))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(created.status(), 201, "room created over TLS");

    // Plain HTTP on the same port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("plain client")
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP is not served: {plain:?}");

    // A client that does not trust the certificate refuses the connection.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(3))
        .build()
        .expect("untrusting client")
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(untrusting.is_err(), "an untrusted certificate is refused");

    // `sfu drain` talks to the node over TLS; the node then reports draining.
    let drained = sfu(http, udp, &cert, &key)
        .arg("drain")
        .status()
        .expect("sfu drain runs");
    assert!(drained.success(), "sfu drain over TLS succeeds");
    let readyz = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(readyz.status(), 503, "draining after `sfu drain`");

    // SIGTERM: drain (no participants) and exit 0.
    let pid = node.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = node.0.try_wait().expect("child status") {
            break status;
        }
        assert!(Instant::now() < deadline, "the node stops after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "clean exit: {exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_certificate_without_a_key_is_refused_at_start() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("control_api_tls_nokey-{}", std::process::id()));
    let (_, cert, _) = self_signed(&dir);
    let (http, udp) = free_ports();
    let output = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["--bind-address", "127.0.0.1", "--http-port"])
        .arg(http.to_string())
        .arg("--udp-port")
        .arg(udp.to_string())
        .arg("--tls-cert")
        .arg(&cert)
        .env("SFU_CONTROL_SECRET", SECRET)
        .env_remove("SFU_TLS_KEY")
        .output()
        .expect("sfu runs");
    assert_eq!(output.status.code(), Some(2), "configuration error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SFU_TLS_KEY"),
        "names the missing setting: {stderr}"
    );
    // A key file that is not a key is refused before anything binds.
    let output = Command::new(env!("CARGO_BIN_EXE_sfu"))
        .args(["--bind-address", "127.0.0.1", "--http-port"])
        .arg(http.to_string())
        .arg("--udp-port")
        .arg(udp.to_string())
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&cert)
        .env("SFU_CONTROL_SECRET", SECRET)
        .output()
        .expect("sfu runs");
    assert!(!output.status.success(), "a certificate is not a key");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS key"), "names the key file: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_flag_prints_the_package_version() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sfu"))
        .arg("--version")
        .output()
        .expect("sfu runs");
    assert!(output.status.success(), "sfu --version exits 0: {output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("sfu {}", env!("CARGO_PKG_VERSION"))
    );
}
