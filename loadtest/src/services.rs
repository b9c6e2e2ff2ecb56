//! The services under test: `sfu` and `signaling serve` started as separate processes (so the
//! SFU's CPU time and memory are its own), or services already running at `--url`; and the
//! admin call that creates the run's room.
//!
//! Started services listen on free 127.0.0.1 ports; signaling reaches the SFU through its
//! control API (`--sfu-url`, `--sfu-control-secret`). Signaling gets a configuration with
//! raised per-IP and per-connection rate limits: every simulated client shares 127.0.0.1, and
//! the defaults (10 new connections per second per IP, 50 messages per second per
//! connection) are meant for one person per address, not for 500 on one. The control secret is
//! a fresh random value per run; so are the API key and admin token unless the run names them
//! (`--api-key`, `--admin-token`: another generator process then mints tokens for, and creates
//! rooms on, the same services).

use std::ffi::OsString;
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use rand::RngExt as _;
use thiserror::Error;

use crate::http_client;
use crate::service_process::{ServiceError, ServiceProcess, ServiceSpec, sibling_binary};

/// How long a started service may take to answer its health URL.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// `SO_RCVBUF` asked for the SFU's media socket (the kernel caps it at `net.core.rmem_max`).
const SFU_UDP_RECEIVE_BUFFER_BYTES: usize = 4 << 20;

/// How long a service gets to exit on SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The deadline of the admin call that creates the room.
const ROOM_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Most of a refusal's body quoted in the error.
const MAX_ERROR_BODY: u64 = 10 << 20;

/// Signaling limits for a run where every client shares one address.
const SIGNALING_CONFIG: &str = "\
[limits]
messages_per_second = 2000
message_burst = 4000
flood_close_after = 10000
connections_per_second_per_ip = 2000
connection_burst_per_ip = 2000
outbound_queue = 16384
";

/// Why the services could not be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServicesError {
    /// A service did not start.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A port, file or directory could not be set up.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The room could not be created.
    #[error("creating room {room}: {reason}")]
    Room {
        /// The room.
        room: String,
        /// What went wrong.
        reason: String,
    },
}

/// Where the services are and what the run needs to talk to them.
#[derive(Debug)]
pub struct Services {
    /// Signaling base URL (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// API key id and secret tokens are signed with.
    pub api_key: (String, String),
    /// Admin bearer token, to create the room.
    pub admin_token: Option<String>,
    /// The SFU's process id, for its CPU and memory.
    pub sfu_pid: Option<u32>,
    /// The SFU's `/metrics` URL.
    pub sfu_metrics: Option<String>,
    /// The SFU's media (UDP) address, when loadtest started it.
    pub sfu_media: Option<std::net::SocketAddr>,
    /// Where the started services' logs are.
    pub log_dir: Option<PathBuf>,
    started: Vec<ServiceProcess>,
}

fn free_tcp_port() -> Result<u16, ServicesError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ServicesError::Io("free TCP port", e))
}

fn free_udp_port() -> Result<u16, ServicesError> {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .map_err(|e| ServicesError::Io("free UDP port", e))
}

fn random_secret() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

fn os(s: impl Into<String>) -> OsString {
    OsString::from(s.into())
}

impl Services {
    /// Services already running at `base_url`.
    pub fn external(
        base_url: &str,
        api_key: (String, String),
        admin_token: Option<String>,
        sfu_pid: Option<u32>,
        sfu_metrics: Option<String>,
    ) -> Self {
        Services {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            admin_token,
            sfu_pid,
            sfu_metrics,
            sfu_media: None,
            log_dir: None,
            started: Vec::new(),
        }
    }

    /// Starts `sfu` and `signaling serve` from the directory of the running executable; signaling
    /// accepts tokens signed with `api_key` and admin calls with `admin_token` (each a fresh
    /// random value when `None`).
    pub fn start(
        api_key: Option<(String, String)>,
        admin_token: Option<String>,
    ) -> Result<Self, ServicesError> {
        let log_dir = std::env::temp_dir().join(format!("loadtest-{}", std::process::id()));
        std::fs::create_dir_all(&log_dir).map_err(|e| ServicesError::Io("log directory", e))?;
        let control_secret = random_secret();
        let (sfu_http, sfu_udp) = (free_tcp_port()?, free_udp_port()?);
        let sfu = ServiceProcess::spawn(&ServiceSpec {
            name: "sfu".into(),
            program: sibling_binary("sfu")?,
            args: [
                "--bind-address",
                "127.0.0.1",
                "--advertised-address",
                "127.0.0.1",
            ]
            .into_iter()
            .map(os)
            .chain([
                os("--http-port"),
                os(sfu_http.to_string()),
                os("--udp-port"),
                os(sfu_udp.to_string()),
                os("--control-secret"),
                os(control_secret.clone()),
                // 4 MiB (what a tuned host gives, capped by `net.core.rmem_max`): with the
                // system's 208 KiB a 20-caller meeting overflowed the socket thousands of times
                // per run while the SFU waited for a core, and that loss was the callers'.
                os("--udp-receive-buffer"),
                os(SFU_UDP_RECEIVE_BUFFER_BYTES.to_string()),
            ])
            .collect(),
            env: vec![],
            health_url: format!("http://127.0.0.1:{sfu_http}/healthz"),
            startup_timeout: STARTUP_TIMEOUT,
            log: Some(log_dir.join("sfu.log")),
        })?;
        let sfu_pid = sfu.pid();
        let config = log_dir.join("signaling.toml");
        std::fs::write(&config, SIGNALING_CONFIG)
            .map_err(|e| ServicesError::Io("signaling config", e))?;
        let api_key = api_key.unwrap_or_else(|| ("loadtest".to_owned(), random_secret()));
        let admin_token = admin_token.unwrap_or_else(random_secret);
        let port = free_tcp_port()?;
        let signaling = ServiceProcess::spawn(&ServiceSpec {
            name: "signaling".into(),
            program: sibling_binary("signaling")?,
            args: vec![
                os("serve"),
                os("--config"),
                config.into_os_string(),
                os("--listen"),
                os(format!("127.0.0.1:{port}")),
            ],
            // Secrets go through the environment, not the command line others can read.
            env: vec![
                (
                    os("SIGNALING_API_KEYS"),
                    os(format!("{}:{}", api_key.0, api_key.1)),
                ),
                (os("SIGNALING_ADMIN_TOKEN"), os(admin_token.clone())),
                (
                    os("SIGNALING_SFU_URL"),
                    os(format!("http://127.0.0.1:{sfu_http}")),
                ),
                (os("SIGNALING_SFU_CONTROL_SECRET"), os(control_secret)),
            ],
            health_url: format!("http://127.0.0.1:{port}/healthz"),
            startup_timeout: STARTUP_TIMEOUT,
            log: Some(log_dir.join("signaling.log")),
        })?;
        Ok(Services {
            base_url: format!("http://127.0.0.1:{port}"),
            api_key,
            admin_token: Some(admin_token),
            sfu_pid,
            sfu_metrics: Some(format!("http://127.0.0.1:{sfu_http}/metrics")),
            sfu_media: Some(std::net::SocketAddr::from(([127, 0, 0, 1], sfu_udp))),
            log_dir: Some(log_dir),
            started: vec![sfu, signaling],
        })
    }

    /// The WebSocket URL of the client protocol.
    pub fn ws_url(&self) -> String {
        let rest = self
            .base_url
            .strip_prefix("http://")
            .map(|r| format!("ws://{r}"))
            .or_else(|| {
                self.base_url
                    .strip_prefix("https://")
                    .map(|r| format!("wss://{r}"))
            })
            .unwrap_or_else(|| self.base_url.clone());
        format!("{rest}/v1/rtc")
    }

    /// Creates room `name` of `kind` (`meeting`/`broadcast`) on the admin API, with receive
    /// slots when `receive_slots` and the signed recording policy `recording` if any. Without an admin token the room must exist already (or be
    /// auto-created by the service).
    pub fn create_room(
        &self,
        name: &str,
        kind: &str,
        receive_slots: bool,
        recording: Option<&serde_json::Value>,
    ) -> Result<(), ServicesError> {
        let Some(token) = &self.admin_token else {
            return Ok(());
        };
        let fail = |reason: String| ServicesError::Room {
            room: name.to_owned(),
            reason,
        };
        let mut body =
            serde_json::json!({ "name": name, "kind": kind, "receive_slots": receive_slots });
        if let Some(policy) = recording {
            body["recording"] = policy.clone();
        }
        let body = body.to_string();
        let response = http_client::client(ROOM_REQUEST_TIMEOUT)
            .and_then(|client| {
                Ok(client
                    .post(format!("{}/v1/rooms", self.base_url))
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()?)
            })
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) || status == 409 {
            Ok(())
        } else {
            let text = http_client::read_text(response, MAX_ERROR_BODY).unwrap_or_default();
            Err(fail(format!("HTTP {status}: {text}")))
        }
    }

    /// Stops the started services (signaling first).
    pub fn stop(mut self) {
        while let Some(service) = self.started.pop() {
            let _ = service.stop(STOP_GRACE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_follows_the_scheme() {
        let s = |url: &str| Services::external(url, ("k".into(), "s".into()), None, None, None);
        assert_eq!(
            s("http://127.0.0.1:8080/").ws_url(),
            "ws://127.0.0.1:8080/v1/rtc"
        );
        assert_eq!(
            s("https://example.test").ws_url(),
            "wss://example.test/v1/rtc"
        );
    }

    #[test]
    fn secrets_are_fresh_and_long() {
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
