//! Rooms survive an SFU restart: a real `sfu` process (the binary, `$SFU_BIN` or `sfu` next to
//! the `signaling` binary; `cargo build -p sfu --bin sfu` builds it) serves signaling's
//! `RemoteSfu` (what `signaling serve --sfu-url` runs), two real WebRTC clients hold an
//! end-to-end-encrypted call through it, and the SFU is killed with SIGKILL. Signaling's
//! `/healthz` says `media: detached` while it is down; once it is restarted on the same ports
//! signaling re-creates the room on it and sends `media_reset` to both clients, which start
//! fresh media sessions (new peer connections, a new offer each) with their keys untouched and
//! decrypt each other's media again.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::{TestServer, config};
use crate::media_call::{
    CONTROL_SECRET, Device, Media, Receiver, SUITE, publish, receive, send_frames, send_key,
    subscribe_all,
};
use e2ee_frames::key::BaseKey;
use e2ee_frames::sender::Sender;
use serde_json::Value;
use signaling::auth::Secret;
use signaling::media_node::RemoteSfu;

/// Longest the whole recovery may take, from the kill to decrypted media on both sides.
const RECOVERY: Duration = Duration::from_secs(40);

/// The `sfu` binary.
pub(crate) fn sfu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SFU_BIN") {
        return PathBuf::from(path);
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_signaling"))
        .with_file_name(format!("sfu{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the sfu binary is missing at {} (cargo build -p sfu --bin sfu, or set SFU_BIN)",
        bin.display()
    );
    bin
}

/// Ports free on loopback right now (the node binds them a moment later).
pub(crate) fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("tcp port");
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("udp port");
    (
        tcp.local_addr().expect("tcp addr").port(),
        udp.local_addr().expect("udp addr").port(),
    )
}

/// A running `sfu` process, killed (SIGKILL) on drop.
pub(crate) struct SfuProcess(Child);

impl SfuProcess {
    pub(crate) fn start(http: u16, udp: u16) -> SfuProcess {
        let child = Command::new(sfu_binary())
            .args(["--bind-address", "127.0.0.1", "--http-port"])
            .arg(http.to_string())
            .arg("--udp-port")
            .arg(udp.to_string())
            .env("SFU_CONTROL_SECRET", CONTROL_SECRET)
            .env("SFU_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sfu starts");
        SfuProcess(child)
    }

    /// The process id (to signal it).
    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// `kill -9`, and the process reaped.
    pub(crate) fn kill(&mut self) {
        self.0.kill().expect("SIGKILL sent");
        self.0.wait().expect("sfu reaped");
    }
}

impl Drop for SfuProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `limit`.
pub(crate) async fn poll_until<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn media_health(s: &TestServer) -> String {
    let health: Value = s
        .http
        .get(s.url("/healthz"))
        .send()
        .await
        .expect("healthz answers")
        .json()
        .await
        .expect("healthz JSON");
    health["media"].as_str().unwrap_or_default().to_owned()
}

pub(crate) async fn sfu_answers(http: &reqwest::Client, base: &str) -> bool {
    http.get(format!("{base}/control/status"))
        .bearer_auth(CONTROL_SECRET)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Both publish (`a`, `b` hold the keys each received), subscribe to each other and decrypt 30
/// frames of each kind from the other. Frames are numbered from `first_frame`; the senders come
/// back (their frame counters go on) with the receive halves.
pub(crate) async fn exchange(
    alice: &mut Device,
    bob: &mut Device,
    mut a: Media,
    mut b: Media,
    senders: (Sender, Sender),
    first_frame: u32,
) -> (Receiver, Receiver, Sender, Sender) {
    let (mut a_sender, mut b_sender) = senders;
    for i in first_frame..first_frame + 50 {
        send_frames(&mut a, &mut a_sender, i).await;
        send_frames(&mut b, &mut b_sender, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ignored = Vec::new();
    subscribe_all(alice, &a.peer, "bob-dev", &mut ignored).await;
    subscribe_all(bob, &b.peer, "alice-dev", &mut ignored).await;
    let mut a_rx = Receiver {
        rtp: a.peer.take_incoming(),
        store: std::mem::take(&mut a.store),
    };
    let mut b_rx = Receiver {
        rtp: b.peer.take_incoming(),
        store: std::mem::take(&mut b.store),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sending = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut i = first_frame + 50;
            while !stop.load(Ordering::Relaxed) && i < first_frame + 1500 {
                send_frames(&mut a, &mut a_sender, i).await;
                send_frames(&mut b, &mut b_sender, i).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                i += 1;
            }
            (a_sender, b_sender)
        }
    });
    receive(&mut a_rx, bob.slot(), 30).await;
    receive(&mut b_rx, alice.slot(), 30).await;
    stop.store(true, Ordering::Relaxed);
    let (a_sender, b_sender) = sending.await.expect("sending task");
    (a_rx, b_rx, a_sender, b_sender)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_restart_rooms_recovered() {
    let (http_port, udp_port) = free_ports();
    let base = format!("http://127.0.0.1:{http_port}");
    let http = reqwest::Client::new();
    let mut sfu = SfuProcess::start(http_port, udp_port);
    poll_until(Duration::from_secs(20), "the sfu answers", || {
        sfu_answers(&http, &base)
    })
    .await;
    let remote = RemoteSfu::new(&base, Secret::new(CONTROL_SECRET), None).expect("client");
    let s = TestServer::start_with_node(config(), Arc::new(remote)).await;
    assert_eq!(media_health(&s).await, "attached");

    // An encrypted call through the SFU process.
    s.meeting("call").await;
    let mut alice = Device::join(&s, "call", "alice-dev").await;
    let mut bob = Device::join(&s, "call", "bob-dev").await;
    let mut a = publish(&mut alice, 0x3333_0001, 10).await;
    let mut b = publish(&mut bob, 0x3333_0002, 50).await;
    let (alice_key, bob_key) = (
        BaseKey::random(&mut rand::rng()),
        BaseKey::random(&mut rand::rng()),
    );
    let mut a_store = e2ee_frames::receiver::KeyStore::new();
    let mut b_store = e2ee_frames::receiver::KeyStore::new();
    send_key(&mut alice, &mut bob, &alice_key, &mut b_store).await;
    send_key(&mut bob, &mut alice, &bob_key, &mut a_store).await;
    let a_sender = Sender::new(SUITE, alice.slot(), 1, alice_key).expect("sender");
    let b_sender = Sender::new(SUITE, bob.slot(), 1, bob_key).expect("sender");
    a.store = a_store;
    b.store = b_store;
    let (a_rx, b_rx, a_sender, b_sender) =
        exchange(&mut alice, &mut bob, a, b, (a_sender, b_sender), 0).await;

    // kill -9: signaling reports the node detached.
    let killed = tokio::time::Instant::now();
    sfu.kill();
    poll_until(Duration::from_secs(15), "healthz says detached", || async {
        media_health(&s).await == "detached"
    })
    .await;

    // Restarted on the same ports: both clients are told, and healthz recovers.
    let _sfu = SfuProcess::start(http_port, udp_port);
    for dev in [&mut alice, &mut bob] {
        let reset = dev.ws.recv_type_within("media_reset", RECOVERY).await;
        assert_eq!(reset["reason"], "media_node_restarted", "{reset}");
    }
    // One room reset: counted once, whatever the number of its clients.
    assert_eq!(
        s.metric("signaling_media_resets_total{reason=\"media_node_restarted\"}")
            .await,
        1.0
    );
    poll_until(Duration::from_secs(10), "healthz says attached", || async {
        media_health(&s).await == "attached"
    })
    .await;

    // Fresh media sessions (new peer connections, new offers); the keys stay where they were.
    let mut a = publish(&mut alice, 0x3333_0011, 10).await;
    let mut b = publish(&mut bob, 0x3333_0012, 50).await;
    a.store = a_rx.store;
    b.store = b_rx.store;
    exchange(&mut alice, &mut bob, a, b, (a_sender, b_sender), 2000).await;
    assert!(
        killed.elapsed() < RECOVERY,
        "media decrypts again within {RECOVERY:?} of the kill: {:?}",
        killed.elapsed()
    );
}
