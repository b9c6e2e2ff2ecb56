//! Rooms move off a lost SFU node: two real `sfu` processes (the binary, as in `sfu_restart`)
//! serve signaling's `SfuPool` (what `signaling serve --sfu-url A,B` runs) with the default
//! failover delay (3 s). Two real WebRTC clients hold an end-to-end-encrypted call through node
//! A, which is killed with SIGKILL and not restarted: the room is created on node B, both
//! clients get `media_reset` `media_node_lost`, start fresh media sessions with their keys
//! untouched and decrypt each other's audio and video again, through B. Node A restarted on its
//! ports takes nothing back. Placement never picks an unreachable node, and with none reachable
//! a room is refused with a clear error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use call_client::peer::{LocalTrack, Peer};
use e2ee_frames::key::BaseKey;
use e2ee_frames::receiver::KeyStore;
use e2ee_frames::sender::Sender;
use serde_json::{Value, json};
use signaling::auth::Secret;
use signaling::media_node::{MediaNode, PoolSettings, RemoteSfu, SfuPool};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::common::{ADMIN, TestServer, config};
use crate::media_call::{
    CONTROL_SECRET, Device, Media, Receiver, SUITE, publish, receive, send_frames_on, send_key,
    subscribe_all,
};
use crate::sfu_restart::{SfuProcess, exchange, free_ports, media_health, poll_until, sfu_answers};

/// Longest from the kill of a node to the first frame each client decrypts again.
const FAILOVER_BUDGET: Duration = Duration::from_secs(5);

/// One `sfu` process and where it listens.
struct Node {
    process: SfuProcess,
    http_port: u16,
    udp_port: u16,
    base: String,
}

impl Node {
    async fn start(http: &reqwest::Client) -> Node {
        let (http_port, udp_port) = free_ports();
        let node = Node {
            process: SfuProcess::start(http_port, udp_port),
            http_port,
            udp_port,
            base: format!("http://127.0.0.1:{http_port}"),
        };
        node.wait_answering(http).await;
        node
    }

    async fn wait_answering(&self, http: &reqwest::Client) {
        poll_until(Duration::from_secs(20), "the sfu answers", || {
            sfu_answers(http, &self.base)
        })
        .await;
    }

    /// The node's own count of open rooms (`sfu_rooms` on its `/metrics`).
    async fn rooms(&self, http: &reqwest::Client) -> f64 {
        crate::common::metric_of(http, &self.base, "sfu_rooms ").await
    }
}

/// A client of `base` for signaling's pool.
fn remote(base: &str) -> Arc<dyn MediaNode> {
    Arc::new(RemoteSfu::new(base, Secret::new(CONTROL_SECRET), None).expect("client"))
}

/// Signaling over a pool of the nodes at `bases`, with the default failover delay.
async fn pool_server(bases: &[&str]) -> TestServer {
    let pool = SfuPool::new(
        bases.iter().map(|b| remote(b)).collect(),
        PoolSettings::default(),
    )
    .expect("pool");
    TestServer::start_with_node(config(), Arc::new(pool)).await
}

/// `media_node` of the admin API's view of `room`.
pub(crate) async fn media_node_of(s: &TestServer, room: &str) -> Value {
    let detail: Value = s
        .http
        .get(s.url(&format!("/v1/rooms/{room}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("room JSON");
    detail["media_node"].clone()
}

async fn nodes_in_state(s: &TestServer, state: &str) -> f64 {
    s.metric(&format!("signaling_media_nodes{{state=\"{state}\"}}"))
        .await
}

/// A client's media after `media_reset`: a fresh session whose frames a task sends every 20 ms
/// until told to stop, and what it receives.
struct Live {
    /// Kept open for the call's length.
    _peer: Peer,
    rx: Receiver,
    stop: Arc<AtomicBool>,
    sending: JoinHandle<()>,
}

impl Live {
    /// Starts a fresh media session for `dev` (new peer connection, new offer), keeps its keys
    /// (`store`, `sender`), sends from frame `first_frame` on and subscribes to `other`.
    async fn start(
        dev: &mut Device,
        other: &str,
        audio_ssrc: u32,
        store: KeyStore,
        sender: Sender,
        first_frame: u32,
    ) -> Live {
        let Media {
            mut peer,
            camera,
            audio,
            ..
        } = publish(dev, audio_ssrc, 10).await;
        let rx = Receiver {
            rtp: peer.take_incoming(),
            store,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let sending = tokio::spawn(send_until(camera, audio, sender, first_frame, stop.clone()));
        let mut ignored = Vec::new();
        subscribe_all(dev, &peer, other, &mut ignored).await;
        Live {
            _peer: peer,
            rx,
            stop,
            sending,
        }
    }

    /// Decrypts 30 frames of each kind from `slot` that arrive from now on (what was queued
    /// before is dropped).
    async fn receives_fresh(&mut self, slot: u16) {
        while self.rx.rtp.try_recv().is_ok() {}
        receive(&mut self.rx, slot, 30).await;
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.sending.await.expect("sending task");
    }
}

/// Sends a frame of each track every 20 ms from `first` until `stop` (at most 60 s).
async fn send_until(
    mut camera: LocalTrack,
    mut audio: LocalTrack,
    mut sender: Sender,
    first: u32,
    stop: Arc<AtomicBool>,
) {
    for i in first..first + 3000 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        send_frames_on(&mut camera, &mut audio, &mut sender, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `sig` (`-STOP`, `-CONT`) to the node's process.
pub(crate) fn signal(process: &SfuProcess, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(sig)
        .arg(process.pid().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {sig}");
}

/// The messages `dev` receives within `d`.
async fn messages_within(dev: &mut Device, d: Duration) -> Vec<Value> {
    let deadline = Instant::now() + d;
    let mut seen = Vec::new();
    while let Ok(m) = tokio::time::timeout_at(deadline, dev.ws.recv()).await {
        seen.push(m);
    }
    seen
}

/// What [`call_moved_off_a_killed_node`] leaves: the call on node B, node A dead.
struct MovedCall {
    s: TestServer,
    http: reqwest::Client,
    a: Node,
    b: Node,
    alice: Device,
    bob: Device,
    alice_media: Live,
    bob_media: Live,
}

/// How node A is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// `kill -9`: its connections are refused at once.
    Kill,
    /// `kill -STOP`: it answers nothing, its event stream goes silent (found after the 8 s
    /// heartbeat timeout), and it still holds the room when it is continued.
    Stop,
}

impl Loss {
    /// Longest from the loss to the first frame each client decrypts again.
    fn budget(self) -> Duration {
        match self {
            Loss::Kill => FAILOVER_BUDGET,
            // The silence must first last the event stream's idle timeout.
            Loss::Stop => FAILOVER_BUDGET + Duration::from_secs(8),
        }
    }
}

/// Two nodes, an encrypted call placed on A, A killed: both clients told `media_node_lost`,
/// both decrypting the other again within [`FAILOVER_BUDGET`] of the kill, through B.
async fn call_moved_off_a_killed_node() -> MovedCall {
    call_moved_off_a_lost_node(Loss::Kill).await
}

/// Two nodes, an encrypted call placed on A, A lost as `loss` says: both clients told
/// `media_node_lost`, both decrypting the other again within `loss.budget()`, through B.
async fn call_moved_off_a_lost_node(loss: Loss) -> MovedCall {
    let http = reqwest::Client::new();
    let (mut a, b) = tokio::join!(Node::start(&http), Node::start(&http));
    let s = pool_server(&[&a.base, &b.base]).await;
    assert_eq!(nodes_in_state(&s, "attached").await, 2.0);

    // Both nodes empty: the room goes to the first listed.
    s.meeting("call").await;
    assert_eq!(
        media_node_of(&s, "call").await,
        json!(a.base),
        "placed on A"
    );
    let mut alice = Device::join(&s, "call", "alice-dev").await;
    let mut bob = Device::join(&s, "call", "bob-dev").await;
    let mut am = publish(&mut alice, 0x4444_0001, 10).await;
    let mut bm = publish(&mut bob, 0x4444_0002, 50).await;
    let (alice_key, bob_key) = (
        BaseKey::random(&mut rand::rng()),
        BaseKey::random(&mut rand::rng()),
    );
    send_key(&mut alice, &mut bob, &alice_key, &mut bm.store).await;
    send_key(&mut bob, &mut alice, &bob_key, &mut am.store).await;
    let a_sender = Sender::new(SUITE, alice.slot(), 1, alice_key).expect("sender");
    let b_sender = Sender::new(SUITE, bob.slot(), 1, bob_key).expect("sender");
    let (a_rx, b_rx, a_sender, b_sender) =
        exchange(&mut alice, &mut bob, am, bm, (a_sender, b_sender), 0).await;
    assert_eq!(b.rooms(&http).await, 0.0, "B holds no room before the move");

    // Lost, not restarted.
    let killed = Instant::now();
    match loss {
        Loss::Kill => a.process.kill(),
        Loss::Stop => signal(&a.process, "-STOP"),
    }
    for dev in [&mut alice, &mut bob] {
        let reset = dev.ws.recv_type_within("media_reset", loss.budget()).await;
        assert_eq!(reset["reason"], "media_node_lost", "{reset}");
    }
    let told = killed.elapsed();

    // Fresh media sessions on B, the keys where they were.
    let (mut alice_media, mut bob_media) = {
        let (alice_slot, bob_slot) = (alice.slot(), bob.slot());
        let alice_side = async {
            let mut live = Live::start(
                &mut alice,
                "bob-dev",
                0x4444_0011,
                a_rx.store,
                a_sender,
                2000,
            )
            .await;
            let first = receive(&mut live.rx, bob_slot, 30).await;
            (live, first)
        };
        let bob_side = async {
            let mut live = Live::start(
                &mut bob,
                "alice-dev",
                0x4444_0012,
                b_rx.store,
                b_sender,
                2000,
            )
            .await;
            let first = receive(&mut live.rx, alice_slot, 30).await;
            (live, first)
        };
        let ((alice_live, alice_first), (bob_live, bob_first)) = tokio::join!(alice_side, bob_side);
        let (alice_after, bob_after) = (
            alice_first.duration_since(killed),
            bob_first.duration_since(killed),
        );
        println!(
            "failover ({loss:?}): loss -> media_reset {told:?}; loss -> first decrypted frame: alice {alice_after:?}, bob {bob_after:?}"
        );
        let budget = loss.budget();
        for (who, after) in [("alice", alice_after), ("bob", bob_after)] {
            assert!(
                after < budget,
                "{who} decrypts again within {budget:?} of the loss ({loss:?}): {after:?}"
            );
        }
        (alice_live, bob_live)
    };

    // The admin API names B, the move is counted once, one node is attached and one not.
    assert_eq!(media_node_of(&s, "call").await, json!(b.base), "moved to B");
    assert_eq!(
        s.metric("signaling_media_resets_total{reason=\"media_node_lost\"}")
            .await,
        1.0,
        "one room moved"
    );
    assert_eq!(nodes_in_state(&s, "attached").await, 1.0);
    assert_eq!(nodes_in_state(&s, "detached").await, 1.0);
    assert_eq!(b.rooms(&http).await, 1.0, "B holds the room");
    // Still flowing both ways.
    alice_media.receives_fresh(bob.slot()).await;
    bob_media.receives_fresh(alice.slot()).await;
    MovedCall {
        s,
        http,
        a,
        b,
        alice,
        bob,
        alice_media,
        bob_media,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_moves_when_its_sfu_node_is_killed() {
    let call = call_moved_off_a_killed_node().await;
    call.alice_media.stop().await;
    call.bob_media.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_does_not_take_back_a_moved_room() {
    let MovedCall {
        s,
        http,
        mut a,
        b,
        mut alice,
        mut bob,
        mut alice_media,
        mut bob_media,
    } = call_moved_off_a_killed_node().await;

    // A back on the same ports; signaling follows it again.
    a.process = SfuProcess::start(a.http_port, a.udp_port);
    a.wait_answering(&http).await;
    poll_until(
        Duration::from_secs(15),
        "both nodes attached again",
        || async { nodes_in_state(&s, "attached").await == 2.0 },
    )
    .await;
    // A heartbeat or two on the resumed event stream (every 2 s), time for a stale copy to be
    // closed, for a wrong re-creation to happen, and for any `media_reset` to arrive.
    let (alice_seen, bob_seen) = tokio::join!(
        messages_within(&mut alice, Duration::from_secs(3)),
        messages_within(&mut bob, Duration::from_secs(3)),
    );
    for seen in [alice_seen, bob_seen] {
        assert!(
            !seen.iter().any(|m| m["type"] == "media_reset"),
            "no media_reset after the node came back: {seen:?}"
        );
    }
    assert_eq!(media_node_of(&s, "call").await, json!(b.base), "stays on B");
    assert_eq!(a.rooms(&http).await, 0.0, "A holds no copy of the room");
    assert_eq!(b.rooms(&http).await, 1.0, "B still holds it");
    assert_eq!(
        s.metric("signaling_media_resets_total{reason=\"media_node_restarted\"}")
            .await,
        0.0,
        "A's return reset nothing"
    );
    // Media keeps flowing through B.
    alice_media.receives_fresh(bob.slot()).await;
    bob_media.receives_fresh(alice.slot()).await;
    alice_media.stop().await;
    bob_media.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attached_node_refuses_new_rooms_clearly() {
    // Two nodes nothing listens on.
    let (dead_1, _) = free_ports();
    let (dead_2, _) = free_ports();
    let s = pool_server(&[
        &format!("http://127.0.0.1:{dead_1}"),
        &format!("http://127.0.0.1:{dead_2}"),
    ])
    .await;
    poll_until(Duration::from_secs(10), "healthz says detached", || async {
        media_health(&s).await == "detached"
    })
    .await;
    assert_eq!(nodes_in_state(&s, "detached").await, 2.0);
    let readyz = s
        .http
        .get(s.url("/readyz"))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(readyz.status(), 503);
    let resp = s
        .http
        .post(s.url("/v1/rooms"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "nowhere", "kind": "meeting"}))
        .send()
        .await
        .expect("admin answers");
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.expect("error JSON");
    assert_eq!(body["code"], "media_error", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("no SFU node of the pool is attached")),
        "{body}"
    );
    let gone = s
        .http
        .get(s.url("/v1/rooms/nowhere"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin answers");
    assert_eq!(gone.status(), 404, "the refused room does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_rooms_are_not_placed_on_a_detached_node() {
    let http = reqwest::Client::new();
    // The first listed node (the one an empty pool would choose) is unreachable.
    let (dead, _) = free_ports();
    let dead = format!("http://127.0.0.1:{dead}");
    let live = Node::start(&http).await;
    let s = pool_server(&[&dead, &live.base]).await;
    poll_until(Duration::from_secs(10), "one node detached", || async {
        nodes_in_state(&s, "detached").await == 1.0
    })
    .await;
    assert_eq!(media_health(&s).await, "attached", "one node is enough");
    for room in ["first", "second"] {
        s.meeting(room).await;
        assert_eq!(media_node_of(&s, room).await, json!(live.base), "{room}");
    }
    assert_eq!(live.rooms(&http).await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_node_closes_its_stale_copy_when_it_returns() {
    let MovedCall {
        s,
        http,
        a,
        b,
        mut alice,
        mut bob,
        mut alice_media,
        mut bob_media,
    } = call_moved_off_a_lost_node(Loss::Stop).await;

    // A continues: the same process, still holding the room it had when it stopped.
    signal(&a.process, "-CONT");
    poll_until(
        Duration::from_secs(20),
        "both nodes attached again",
        || async { nodes_in_state(&s, "attached").await == 2.0 },
    )
    .await;
    poll_until(Duration::from_secs(10), "A's stale copy closed", || async {
        a.rooms(&http).await == 0.0
    })
    .await;
    let (alice_seen, bob_seen) = tokio::join!(
        messages_within(&mut alice, Duration::from_secs(3)),
        messages_within(&mut bob, Duration::from_secs(3)),
    );
    for seen in [alice_seen, bob_seen] {
        assert!(
            !seen.iter().any(|m| m["type"] == "media_reset"),
            "no media_reset after the node came back: {seen:?}"
        );
    }
    assert_eq!(media_node_of(&s, "call").await, json!(b.base), "stays on B");
    assert_eq!(b.rooms(&http).await, 1.0, "B still holds it");
    alice_media.receives_fresh(bob.slot()).await;
    bob_media.receives_fresh(alice.slot()).await;
    alice_media.stop().await;
    bob_media.stop().await;
}
