//! The real `sfu` binary as a child process on loopback: free ports, its log output (stdout
//! and stderr) captured line by line, killed on drop so a failing test leaves no node running.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::poll_until;

/// The control secret every test node uses.
pub(crate) const SECRET: &str = "process-test-secret-0123456789abcdef0123";

/// A running `sfu` process.
pub(crate) struct SfuProcess {
    child: Child,
    /// The HTTP port (control API, metrics, probes).
    pub(crate) http: u16,
    /// The media (UDP) port.
    pub(crate) udp: u16,
    lines: Arc<Mutex<Vec<String>>>,
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

/// Appends every line `from` yields to `lines`, on a thread of its own.
fn capture(from: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            lines.lock().expect("log lines lock").push(line);
        }
    });
}

impl SfuProcess {
    /// Starts `sfu` on loopback with `env` set (on top of the secret, the ports and
    /// `NO_COLOR`), and waits until `/healthz` answers.
    pub(crate) async fn start(env: &[(&str, &str)]) -> Self {
        let (http, udp) = free_ports();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sfu"));
        command
            .args(["--bind-address", "127.0.0.1", "--http-port"])
            .arg(http.to_string())
            .arg("--udp-port")
            .arg(udp.to_string())
            .env("SFU_CONTROL_SECRET", SECRET)
            .env("NO_COLOR", "1")
            .env_remove("SFU_LOG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("sfu starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        capture(child.stdout.take().expect("stdout piped"), lines.clone());
        capture(child.stderr.take().expect("stderr piped"), lines.clone());
        let node = Self {
            child,
            http,
            udp,
            lines,
        };
        let http = reqwest::Client::new();
        let url = format!("{}/healthz", node.base());
        poll_until(
            Duration::from_secs(15),
            "the sfu's /healthz",
            async || matches!(http.get(&url).send().await, Ok(r) if r.status() == 200),
        )
        .await;
        node
    }

    /// `http://127.0.0.1:<http port>`.
    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// Every log line written so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("log lines lock").clone()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub(crate) fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
    }

    /// Creates the meeting room `room` through the control API.
    pub(crate) async fn create_room(&self, http: &reqwest::Client, room: &str) {
        let created = http
            .post(format!("{}/control/rooms", self.base()))
            .bearer_auth(SECRET)
            .json(&serde_json::json!({"room": room, "kind": "meeting"}))
            .send()
            .await
            .expect("the control API answers");
        assert_eq!(created.status(), 201, "room {room} created");
    }

    /// Adds `device` to `room` as a caller with `offer` through the control API and returns
    /// the SDP answer.
    pub(crate) async fn add_caller(
        &self,
        http: &reqwest::Client,
        room: &str,
        device: &str,
        offer: &str,
    ) -> String {
        let added = http
            .post(format!("{}/control/rooms/{room}/participants", self.base()))
            .bearer_auth(SECRET)
            .json(&serde_json::json!({"device": device, "role": "caller", "offer": offer}))
            .send()
            .await
            .expect("the control API answers");
        assert_eq!(added.status(), 200, "{device} added");
        let body: serde_json::Value = added.json().await.expect("answer JSON");
        body["answer"].as_str().expect("an SDP answer").to_owned()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status, if the process has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait on the sfu")
    }
}

impl Drop for SfuProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample `name` (with its labels, e.g. `x_total{reason="a"}`) in a
/// Prometheus text exposition.
pub(crate) fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `/metrics` of the node at `base`.
pub(crate) async fn scrape(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text")
}
