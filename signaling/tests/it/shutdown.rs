//! Shutdown and readiness: SIGTERM makes the real `signaling` binary close its WebSockets with
//! 1001 and the documented reason, close its rooms on the SFU (a restarted service creates the
//! same room name again on the same SFU) and exit 0 within its shutdown timeout; `/readyz`
//! answers 200 while serving with a media node, 503 while draining or without a media node.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sfu::control::ControlState;
use sfu::node::{NodeConfig, start_node};
use signaling::policy::Role;
use signaling::session::{CLOSE_GOING_AWAY, CLOSE_REASON_SHUTDOWN};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{ADMIN, API_KEY, API_SECRET, Client, TestServer, config, join_msg, token};

const BIN: &str = env!("CARGO_BIN_EXE_signaling");
const CONTROL_SECRET: &str = "control-secret-for-the-test-0123456789";
/// The shutdown timeout the spawned service runs with.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// A real SFU node with its control API on 127.0.0.1:0, in this process; returns its URL.
async fn start_sfu() -> String {
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let app = sfu::control::router(ControlState {
        node,
        secret: CONTROL_SECRET.into(),
        node_id: "sfu-test".into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("control port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `signaling serve` on 127.0.0.1:0 against the SFU at `sfu_url`, and the address it listens on.
struct Service {
    child: Child,
    addr: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Service {
    fn start(sfu_url: &str) -> Service {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--log", "info"])
            .args(["--api-keys", &format!("{API_KEY}:{API_SECRET}")])
            .env("SIGNALING_ADMIN_TOKEN", ADMIN)
            .args(["--auto-create-rooms", "true", "--sfu-url", sfu_url])
            .args([
                "--shutdown-timeout-ms",
                &SHUTDOWN_TIMEOUT.as_millis().to_string(),
            ])
            .env("SIGNALING_SFU_CONTROL_SECRET", CONTROL_SECRET)
            .env_remove("SIGNALING_CONFIG")
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
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("never listened:\n{}", seen.join("\n")));
            if line.contains("signaling listening")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_owned();
            }
            seen.push(line);
        };
        Service {
            child,
            addr,
            log: rx,
        }
    }

    async fn connect(&self) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/rtc", self.addr))
            .await
            .expect("ws connect");
        Client {
            ws,
            transcript: Vec::new(),
        }
    }

    /// Creates a persistent meeting through the admin API; returns the HTTP status.
    async fn create_meeting(&self, name: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("http://{}/v1/rooms", self.addr))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"name": name, "kind": "meeting"}))
            .send()
            .await
            .expect("admin request")
            .status()
            .as_u16()
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// The exit status, once the process ends within `limit`.
    async fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "still running {limit:?} after SIGTERM:\n{}",
                self.log.try_iter().collect::<Vec<_>>().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The close frame the client gets next (skipping messages), as (code, reason).
async fn close_frame(client: &mut Client) -> (u16, String) {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(5), client.ws.next())
            .await
            .expect("a close within 5 s");
        match item {
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.as_str().to_owned());
            }
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("connection failed instead of closing: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_sigterm_closes_1001_and_exits_0() {
    let sfu = start_sfu().await;
    let mut first = Service::start(&sfu);
    // A persistent room (it outlives its last participant, so only the drain closes it) and an
    // ephemeral one (auto-created by a join).
    assert_eq!(first.create_meeting("standup").await, 201);
    let mut alice = first.connect().await;
    alice
        .join("standup", &token("standup", "alice", Role::Caller), "dev-a")
        .await;
    let mut carol = first.connect().await;
    carol
        .join("adhoc", &token("adhoc", "carol", Role::Caller), "dev-c")
        .await;

    first.sigterm();
    let (code, reason) = close_frame(&mut alice).await;
    assert_eq!(code, CLOSE_GOING_AWAY);
    assert_eq!(reason, CLOSE_REASON_SHUTDOWN);
    assert_eq!(close_frame(&mut carol).await.0, CLOSE_GOING_AWAY);
    let status = first
        .exit_within(SHUTDOWN_TIMEOUT + Duration::from_secs(2))
        .await;
    assert_eq!(status.code(), Some(0), "exits 0");

    // The SFU kept no room of the stopped service: a new one creates the same names on it.
    let second = Service::start(&sfu);
    assert_eq!(
        second.create_meeting("standup").await,
        201,
        "the SFU still had the persistent room"
    );
    let mut bob = second.connect().await;
    bob.send(&join_msg(
        "adhoc",
        &token("adhoc", "bob", Role::Caller),
        "dev-b",
    ))
    .await;
    let joined = bob.recv().await;
    assert_eq!(
        joined["type"], "joined",
        "the SFU still had the ephemeral room: {joined}"
    );
    assert_eq!(joined["media"], true, "{joined}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_draining_and_media_detached() {
    let s = TestServer::start(config()).await;
    let ready = s.http.get(s.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready", "{body}");

    s.meeting("r").await;
    let mut alice = s.connect().await;
    alice
        .join("r", &token("r", "alice", Role::Caller), "dev-a")
        .await;
    s.server.begin_drain();
    let draining = s.http.get(s.url("/readyz")).send().await.expect("readyz");
    assert_eq!(draining.status(), 503);
    let body: serde_json::Value = draining.json().await.expect("json");
    assert_eq!(body["status"], "draining", "{body}");
    assert_eq!(
        s.http
            .get(s.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200,
        "liveness is not readiness"
    );
    let (code, reason) = close_frame(&mut alice).await;
    assert_eq!(
        (code, reason.as_str()),
        (CLOSE_GOING_AWAY, CLOSE_REASON_SHUTDOWN)
    );
    // A client that connects while the service drains is sent away the same way.
    let mut late = s.connect().await;
    let (code, _) = close_frame(&mut late).await;
    assert_eq!(code, CLOSE_GOING_AWAY);
    let outcome = s.server.drain(Duration::from_secs(3)).await;
    assert!(outcome.complete(), "{outcome:?}");

    let alone = TestServer::start_without_media(config()).await;
    let detached = alone
        .http
        .get(alone.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(detached.status(), 503);
    let body: serde_json::Value = detached.json().await.expect("json");
    assert_eq!(body["status"], "no_media", "{body}");
}
