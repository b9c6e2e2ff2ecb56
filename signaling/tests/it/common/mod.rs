//! Shared helpers for the integration tests: a real server on 127.0.0.1:0, real WebSocket
//! clients (tokio-tungstenite), tokens signed with the crate's own issuer, and sessions driven
//! over channels through the generic Sink/Stream path.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::convert::Infallible;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use signaling::auth::{GrantClaims, Secret, TokenRequest, issue_token};
use signaling::config::Config;
use signaling::policy::Role;
use signaling::server::RunningServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const API_KEY: &str = "tk";
pub const API_SECRET: &str = "test-secret";
pub const ADMIN: &str = "test-admin";
/// Longest any single expected message may take to arrive.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn config() -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        admin_token: Some(Secret::new(ADMIN)),
        api_keys: [(API_KEY.to_string(), Secret::new(API_SECRET))].into(),
        ..Config::default()
    };
    c.limits.connections_per_second_per_ip = 1000;
    c.limits.connection_burst_per_ip = 1000;
    c.limits.messages_per_second = 500;
    c.limits.message_burst = 500;
    c.rekey.debounce_ms = 150;
    c.rekey.max_delay_ms = 1000;
    c.rekey.broadcast_viewer_interval_ms = 1500;
    // A lost connection's device departs soon after (tests of resuming set their own window).
    c.rekey.resume_grace_ms = 300;
    c
}

/// How often [`poll_until`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Waits until `condition` holds, looking every few milliseconds, for at most `limit`; panics
/// naming `awaited` when it still does not hold by then (instead of sleeping a guessed time).
pub async fn poll_until(limit: Duration, awaited: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting for: {awaited}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

pub struct TestServer {
    pub server: RunningServer,
    pub http: reqwest::Client,
}

impl TestServer {
    /// A server with an SFU node embedded in the test process (loopback only).
    pub async fn start_with_sfu(config: Config) -> (Self, signaling::media_node::EmbeddedSfu) {
        let sfu =
            signaling::media_node::EmbeddedSfu::start(sfu::transport::TransportConfig::loopback())
                .await
                .expect("embedded SFU starts on loopback");
        let server = signaling::server::start_with_routes(
            &config,
            Some(std::sync::Arc::new(sfu.clone())),
            axum::Router::new().nest("/sfu", sfu.ops_router()),
        )
        .await
        .expect("server starts");
        (
            TestServer {
                server,
                http: reqwest::Client::new(),
            },
            sfu,
        )
    }

    /// A server with `node` as its media node.
    pub async fn start_with_node(
        config: Config,
        node: std::sync::Arc<dyn signaling::media_node::MediaNode>,
    ) -> Self {
        let server = signaling::server::start(&config, Some(node))
            .await
            .expect("server starts");
        TestServer {
            server,
            http: reqwest::Client::new(),
        }
    }

    /// The real service: signaling with an SFU node embedded (loopback only), as `signaling
    /// dev` runs it.
    pub async fn start(config: Config) -> Self {
        Self::start_with_sfu(config).await.0
    }

    /// Signaling with no media node attached.
    pub async fn start_without_media(config: Config) -> Self {
        let server = signaling::server::start(&config, None)
            .await
            .expect("server starts");
        TestServer {
            server,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.server.local_addr(), path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/rtc", self.server.local_addr())
    }

    pub async fn create_room(&self, body: Value) -> Value {
        let resp = self
            .http
            .post(self.url("/v1/rooms"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("admin request");
        assert_eq!(resp.status(), 201, "room created");
        resp.json().await.expect("json body")
    }

    pub async fn meeting(&self, name: &str) {
        self.create_room(json!({"name": name, "kind": "meeting"}))
            .await;
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics request")
            .text()
            .await
            .expect("metrics body")
    }

    /// The value of a metric series line such as `signaling_rejected_total{reason="oversized"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("series {series} not in /metrics"))
    }

    pub async fn connect(&self) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(self.ws_url())
            .await
            .expect("ws connect");
        Client {
            ws,
            transcript: Vec::new(),
        }
    }
}

/// The value of the metric line starting with `series` (its name and labels, then a space)
/// on the `/metrics` of the service at `base` (an SFU node's, for one).
pub async fn metric_of(http: &reqwest::Client, base: &str, series: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} on {base}/metrics"))
}

pub fn token_with(
    room: &str,
    identity: &str,
    role: Role,
    can_publish: bool,
    can_subscribe: bool,
) -> String {
    issue_token(&TokenRequest {
        api_key: API_KEY.into(),
        secret: Secret::new(API_SECRET),
        grants: GrantClaims {
            room: Some(room.into()),
            identity: Some(identity.into()),
            role: Some(role),
            can_publish,
            can_subscribe,
            moderator: false,
            device: None,
        },
        ttl_seconds: 600,
    })
}

pub fn token(room: &str, identity: &str, role: Role) -> String {
    token_with(
        room,
        identity,
        role,
        role == Role::Caller || role == Role::Presenter,
        true,
    )
}

/// A caller's token that grants `moderator`.
pub fn moderator_token(room: &str, identity: &str) -> String {
    issue_token(&TokenRequest {
        api_key: API_KEY.into(),
        secret: Secret::new(API_SECRET),
        grants: GrantClaims {
            room: Some(room.into()),
            identity: Some(identity.into()),
            role: Some(Role::Caller),
            can_publish: true,
            can_subscribe: true,
            moderator: true,
            device: None,
        },
        ttl_seconds: 600,
    })
}

/// A native client's session config: a caller's token for `room` and a test bundle for `device`.
pub fn session_config(
    s: &TestServer,
    room: &str,
    identity: &str,
    device: &str,
) -> call_client::session::SessionConfig {
    let bundle: call_client::protocol::DeviceBundle =
        serde_json::from_value(bundle(device)).expect("test bundle parses");
    call_client::session::SessionConfig::new(
        s.ws_url(),
        room,
        token(room, identity, Role::Caller),
        bundle,
    )
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A device bundle of the right shape with per-device distinct key bytes.
pub fn bundle(device: &str) -> Value {
    let seed = device
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    json!({
        "v": 1, "device": device,
        "identity_key": b64(&[seed; 32]), "hpke_key": b64(&[seed ^ 0x55; 32]),
        "sig": b64(&[seed ^ 0xaa; 64]),
    })
}

pub fn join_msg(room: &str, token: &str, device: &str) -> Value {
    json!({"type": "join", "v": 1, "room": room, "token": token, "device": bundle(device), "name": device})
}

/// A key envelope of the right shape.
pub fn envelope(room: &str, call: &str, sender: &str, recipient: &str, slot: u64) -> Value {
    json!({
        "v": 1, "room": room, "call": call, "sender": sender, "recipient": recipient,
        "slot": slot, "generation": 1, "step": 0, "suite": 5,
        "enc": b64(&[1; 32]), "ct": b64(&[2; 48]), "sig": b64(&[3; 64]),
    })
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every text message this client sent and received, in order (what the service saw of it).
    pub transcript: Vec<String>,
}

/// What a client saw instead of a JSON message.
#[derive(Debug)]
pub enum Seen {
    Json(Value),
    Closed(Option<u16>),
}

impl Client {
    pub async fn send(&mut self, v: &Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_text(&mut self, s: String) {
        self.transcript.push(s.clone());
        self.ws.send(Message::text(s)).await.expect("ws send");
    }

    /// Next JSON message or close, skipping pings.
    pub async fn next(&mut self) -> Seen {
        loop {
            let item = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("message within 5 s");
            match item {
                Some(Ok(Message::Text(t))) => {
                    self.transcript.push(t.as_str().to_owned());
                    return Seen::Json(
                        serde_json::from_str(t.as_str()).expect("server sends JSON"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return Seen::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Seen::Closed(None),
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Seen::Json(v) => v,
            Seen::Closed(c) => panic!("expected a message, connection closed ({c:?})"),
        }
    }

    /// Next message of `ty`, skipping others.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// `membership ratchet` notices until they named `n` joiners (joins close together share
    /// one notice, architecture.md §7.24); the joiners named, in order.
    pub async fn recv_ratchets_naming(&mut self, n: usize) -> Vec<String> {
        let mut named = Vec::new();
        while named.len() < n {
            let notice = self.recv_type("membership").await;
            assert_eq!(notice["action"], "ratchet", "{notice}");
            for d in notice["joined"].as_array().expect("joined list") {
                named.push(d.as_str().expect("device id").to_owned());
            }
        }
        named
    }

    /// Next message of `ty` within `limit`, skipping others (for waits longer than [`WAIT`]).
    pub async fn recv_type_within(&mut self, ty: &str, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let item = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{ty} within {limit:?}"));
            match item {
                Some(Ok(Message::Text(t))) => {
                    self.transcript.push(t.as_str().to_owned());
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                    if v["type"] == ty {
                        return v;
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    panic!("connection closed while waiting for {ty}")
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Asserts that nothing but pings arrives for `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => panic!("unexpected message: {t}"),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("unexpected: {other:?}"),
            }
        }
    }

    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], "error", "expected error {code}, got {v}");
        assert_eq!(v["code"], code, "got {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        v
    }

    /// Joins and returns the `joined` message.
    pub async fn join(&mut self, room: &str, token: &str, device: &str) -> Value {
        self.send(&join_msg(room, token, device)).await;
        let v = self.recv().await;
        assert_eq!(v["type"], "joined", "join of {device} refused: {v}");
        v
    }
}

/// A session run over channels (the generic Sink/Stream path), sharing the server's state.
pub struct ChannelClient {
    pub to_server: futures_channel::mpsc::UnboundedSender<axum::extract::ws::Message>,
    pub from_server: futures_channel::mpsc::UnboundedReceiver<axum::extract::ws::Message>,
}

impl ChannelClient {
    pub fn start(server: &RunningServer) -> Self {
        let (to_server, server_in) = futures_channel::mpsc::unbounded();
        let (server_out, from_server) = futures_channel::mpsc::unbounded();
        let ctx = server.session_context();
        tokio::spawn(signaling::session::run_session(
            server_out,
            server_in.map(Ok::<_, Infallible>),
            ctx,
            None,
        ));
        ChannelClient {
            to_server,
            from_server,
        }
    }

    pub fn send(&self, v: &Value) {
        self.to_server
            .unbounded_send(axum::extract::ws::Message::Text(v.to_string().into()))
            .expect("session running");
    }

    pub async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(WAIT, self.from_server.next())
                .await
                .expect("message within 5 s")
                .expect("session open");
            if let axum::extract::ws::Message::Text(t) = m {
                return serde_json::from_str(t.as_str()).expect("server sends JSON");
            }
        }
    }
}

/// A recording policy for `room` naming the recorder `device` with `keys`' identity key, kept
/// 30 days, signed by a fixed admin key.
pub fn recording_policy(
    room: &str,
    device: &str,
    keys: &e2ee_frames::identity::DeviceKeys,
) -> call_client::protocol::RecordingPolicy {
    use call_client::protocol::{RecorderDevice, RecordingDocument, RecordingPolicy};
    let doc = RecordingDocument {
        v: 1,
        room: room.into(),
        recorders: vec![RecorderDevice {
            device: device.into(),
            identity_key: e2ee_frames::wire::b64_encode(&keys.identity_key()),
        }],
        issued_at: 1_700_000_000,
        retention_days: 30,
    };
    RecordingPolicy::sign(&doc, &e2ee_frames::DocumentSigner::from_secret(&[42u8; 32]))
}
