//! TURN through a real coturn (Debian's `coturn`, `turnserver` started here on loopback with
//! `use-auth-secret`): the credentials `joined` carries get a relay allocation that relays data;
//! an expired one, a forged credential and a username with a moved expiry are refused. Skipped,
//! saying how to install it, when `turnserver` is missing.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use rtc::sansio::Protocol as _;
use rtc::shared::{TransportContext, TransportMessage, TransportProtocol};
use rtc::turn::client::{Client as TurnClient, ClientConfig, Event};
use signaling::auth::Secret;
use signaling::policy::Role;
use signaling::turn_credentials::{TurnCredentials, turn_rest_credential};

use crate::common::{TestServer, config, token};

/// Longest a TURN exchange (allocation, permission, one datagram) may take on loopback.
const TURN_WAIT: Duration = Duration::from_secs(10);

/// `turnserver` on `$PATH`, or `None` (the test then says how to install it and returns).
fn turnserver() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("turnserver"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!(
            "SKIPPED: turnserver (coturn) is not installed: run scripts/install-deps or \
             `apt-get install -y coturn`"
        );
    }
    found
}

/// A coturn on 127.0.0.1 with a shared secret, no TLS, loopback peers allowed, stopped on drop.
struct Coturn {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Coturn {
    fn start(bin: &Path, secret: &str) -> Coturn {
        let dir = std::env::temp_dir().join(format!(
            "coturn-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        // The secret goes in a config file, not on the command line. coturn refuses loopback
        // peers unless told (`allow-loopback-peers`); no daemon mode (no `-o`).
        let conf = dir.join("turnserver.conf");
        std::fs::write(
            &conf,
            format!(
                "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\n\
                 allow-loopback-peers\nno-tls\nno-dtls\nno-cli\nuse-auth-secret\n\
                 static-auth-secret={secret}\nrealm=e2ee-sfu.test\n\
                 pidfile={pid}\nuserdb={db}\nlog-file=stdout\nsimple-log\n",
                pid = dir.join("turnserver.pid").display(),
                db = dir.join("turndb").display(),
            ),
        )
        .expect("coturn config");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        let coturn = Coturn {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        coturn.wait_ready();
        coturn
    }

    /// Polls with STUN Binding requests until coturn answers.
    fn wait_ready(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        // RFC 8489 §5: Binding request, no attributes, magic cookie, random transaction id.
        let mut binding = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        binding.extend(rand::random::<[u8; 12]>());
        let deadline = Instant::now() + TURN_WAIT;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            socket.send_to(&binding, self.addr).expect("send binding");
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                assert!(
                    n >= 20 && buf[..2] == [0x01, 0x01],
                    "a Binding success response"
                );
                return;
            }
        }
        panic!(
            "coturn did not answer on {} within {TURN_WAIT:?}",
            self.addr
        );
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Allocates a relay on `server` with these credentials, permits a peer on loopback, and checks
/// that a datagram the peer sends to the relayed address arrives. Returns the relayed address,
/// or why the TURN server refused.
fn allocate_and_relay(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Result<SocketAddr, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let peer = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let local_addr = socket.local_addr().map_err(|e| e.to_string())?;
    let peer_addr = peer.local_addr().map_err(|e| e.to_string())?;
    let provider = rtc::crypto::default_provider().map_err(|e| e.to_string())?;
    let mut client = TurnClient::new(
        ClientConfig {
            stun_serv_addr: String::new(),
            turn_serv_addr: server.to_string(),
            local_addr,
            transport_protocol: TransportProtocol::UDP,
            username: username.to_string(),
            password: password.to_string(),
            // Learnt from the server's 401 (the realm is coturn's, not the client's).
            realm: String::new(),
            software: String::new(),
            rto_in_ms: 0,
            allocation_refresh_interval_cap: None,
        },
        provider,
    )
    .map_err(|e| e.to_string())?;
    client.allocate(Instant::now()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TURN_WAIT;
    let mut relayed = None;
    let mut buf = vec![0u8; 2048];
    while Instant::now() < deadline {
        while let Some(t) = client.poll_write() {
            socket
                .send_to(&t.message, t.transport.peer_addr)
                .map_err(|e| e.to_string())?;
        }
        while let Some(event) = client.poll_event() {
            match event {
                Event::AllocateResponse(_, addr) => {
                    relayed = Some(addr);
                    client
                        .relay(addr)
                        .and_then(|mut r| r.create_permission(Instant::now(), peer_addr))
                        .map_err(|e| format!("create permission: {e}"))?;
                }
                Event::CreatePermissionResponse(..) => {
                    let addr = relayed.ok_or("permission before allocation")?;
                    peer.send_to(b"through the relay", addr)
                        .map_err(|e| e.to_string())?;
                }
                Event::DataIndicationOrChannelData(_, from, data) => {
                    assert_eq!(from, peer_addr, "data from the permitted peer");
                    assert_eq!(&data[..], b"through the relay");
                    return relayed.ok_or_else(|| "data before allocation".to_string());
                }
                Event::AllocateError(_, e) => return Err(format!("allocate refused: {e}")),
                Event::CreatePermissionError(_, e) => {
                    return Err(format!("permission refused: {e}"));
                }
                Event::TransactionTimeout(_) => return Err("TURN transaction timed out".into()),
                _ => {}
            }
        }
        let wait = client
            .poll_timeout()
            .map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => client
                .handle_read(TransportMessage {
                    now: Instant::now(),
                    transport: TransportContext {
                        local_addr,
                        peer_addr: from,
                        transport_protocol: TransportProtocol::UDP,
                        ecn: None,
                    },
                    message: BytesMut::from(&buf[..n]),
                })
                .map_err(|e| e.to_string())?,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(e.to_string()),
        }
        client
            .handle_timeout(Instant::now())
            .map_err(|e| e.to_string())?;
    }
    Err(format!("no relay within {TURN_WAIT:?}"))
}

/// Runs [`allocate_and_relay`] off the async runtime.
async fn allocate(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Result<SocketAddr, String> {
    let (u, p) = (username.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || allocate_and_relay(server, &u, &p))
        .await
        .expect("allocation task")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[tokio::test]
async fn turn_credentials_accepted_by_coturn() {
    let Some(bin) = turnserver() else { return };
    let secret = format!("turn-{}", rand::random::<u64>());
    let coturn = Coturn::start(&bin, &secret);
    let url = format!("turn:{}?transport=udp", coturn.addr);

    let mut cfg = config();
    cfg.turn.urls = vec![url.clone()];
    cfg.turn.secret = Some(Secret::new(&secret));
    cfg.turn.ttl_seconds = 600;
    let server = TestServer::start(cfg).await;
    server.meeting("turn").await;
    let mut alice = server.connect().await;
    let joined = alice
        .join("turn", &token("turn", "alice", Role::Caller), "dev-alice")
        .await;

    // `joined` carries one ICE server: the TURN URL and a credential minted for this join.
    let ice = &joined["ice_servers"];
    assert_eq!(ice.as_array().map(Vec::len), Some(1), "{joined}");
    assert_eq!(ice[0]["urls"], serde_json::json!([url]));
    assert_eq!(ice[0]["ttl"], 600);
    let username = ice[0]["username"].as_str().expect("username");
    let credential = ice[0]["credential"].as_str().expect("credential");
    let (expiry, id) = username.split_once(':').expect("<expiry>:<id>");
    let expiry: u64 = expiry.parse().expect("unix expiry");
    assert!(expiry.abs_diff(unix_now() + 600) <= 5, "expiry {expiry}");
    assert!(
        !username.contains("alice") && !id.is_empty(),
        "opaque id: {username}"
    );

    let relayed = allocate(coturn.addr, username, credential)
        .await
        .expect("coturn accepts the minted credential and relays");
    assert!(relayed.ip().is_loopback(), "relayed on {relayed}");

    // Expired: minted with the same secret an hour ago, for ten minutes.
    let minter = TurnCredentials::new(
        vec![url.clone()],
        Secret::new(&secret),
        Duration::from_secs(600),
    )
    .expect("valid TURN settings");
    let expired = minter.mint(unix_now() - 3600);
    let refused = allocate(coturn.addr, &expired.username, &expired.credential).await;
    assert!(
        refused.is_err(),
        "an expired credential is refused: {refused:?}"
    );

    // Forged: the same username signed with another secret.
    let forged = turn_rest_credential(b"not-the-secret", username);
    let refused = allocate(coturn.addr, username, &forged).await;
    assert!(
        refused.is_err(),
        "a forged credential is refused: {refused:?}"
    );

    // A moved expiry: the username no longer matches its credential.
    let later = format!("{}:{id}", expiry + 86_400);
    let refused = allocate(coturn.addr, &later, credential).await;
    assert!(refused.is_err(), "a moved expiry is refused: {refused:?}");
}

#[tokio::test]
async fn joined_has_no_ice_servers_without_turn() {
    let server = TestServer::start(config()).await;
    server.meeting("no-turn").await;
    let mut bob = server.connect().await;
    let joined = bob
        .join("no-turn", &token("no-turn", "bob", Role::Caller), "dev-bob")
        .await;
    assert_eq!(joined["media"], true);
    assert!(joined.get("ice_servers").is_none(), "{joined}");
}

/// `signaling serve --development` with `args`, no setting from this process's environment;
/// returns its exit status and standard error once it exits (killed after 10 s).
fn serve_exit(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signaling"));
    cmd.args(["serve", "--development", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (var, _) in std::env::vars() {
        if var.starts_with("SIGNALING_") {
            cmd.env_remove(var);
        }
    }
    let mut child = cmd.spawn().expect("signaling starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("signaling serve {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("stderr");
    (status, stderr)
}

#[test]
fn serve_refuses_turn_settings_without_a_secret_or_urls() {
    let (status, stderr) = serve_exit(&["--turn-urls", "turn:127.0.0.1:3478?transport=udp"]);
    assert!(!status.success());
    assert!(stderr.contains("--turn-secret-file"), "{stderr}");
    assert!(stderr.contains("SIGNALING_TURN_SECRET"), "{stderr}");

    let (status, stderr) = serve_exit(&["--turn-secret", "s3cret-value"]);
    assert!(!status.success());
    assert!(stderr.contains("--turn-urls"), "{stderr}");
    assert!(
        !stderr.contains("s3cret-value"),
        "the secret stays out of the message"
    );

    let (status, stderr) = serve_exit(&[
        "--turn-urls",
        "http://turn.example.com",
        "--turn-secret",
        "s",
    ]);
    assert!(!status.success());
    assert!(
        stderr.contains("not a turn:, turns: or stun: URL"),
        "{stderr}"
    );
}
