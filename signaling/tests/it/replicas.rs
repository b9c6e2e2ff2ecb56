//! Several signaling replicas serving one deployment on Redis (docs/architecture.md §7.56): a
//! real `redis-server`, a real `sfu` process, and two replicas of the service (each with its own
//! `RemoteSfu` to the node, as `signaling serve --replica-id … --redis-url …` runs). A client may
//! connect to either replica: the room's owner runs its session, the other carries the
//! connection over Redis pub/sub. Clients are the native library's sessions and key managers
//! (real HPKE envelopes) and a real WebRTC peer whose audio drives the SFU's speaker detection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use call_client::protocol::{ClientMessage, ErrorCode, KeyRequest, ServerMessage};
use call_client::session::{Session, SessionError};
use e2ee_frames::key::BaseKey;
use e2ee_frames::sender::Sender;
use e2ee_frames::{Codec, Stream};
use futures_util::StreamExt as _;
use serde_json::Value;
use sfu_registry::RedisServer;
use signaling::auth::Secret;
use signaling::config::RedisUrl;
use signaling::media_node::RemoteSfu;
use signaling::policy::Role;

use crate::common::{ADMIN, API_KEY, API_SECRET, TestServer, config, poll_until, session_config};
use crate::key_peer::KeyPeer;
use crate::media_call::{
    CONTROL_SECRET, Device, Receiver, SUITE, publish, receive, send_frames, send_key_in,
    subscribe_all,
};
use crate::sfu_registry_placement::Node;
use crate::sfu_restart::{SfuProcess, free_ports, sfu_answers};

/// One `sfu` process and its control URL.
pub(crate) struct SfuNode {
    _process: SfuProcess,
    pub(crate) base: String,
}

impl SfuNode {
    pub(crate) async fn start() -> SfuNode {
        let (http_port, udp_port) = free_ports();
        let node = SfuNode {
            _process: SfuProcess::start(http_port, udp_port),
            base: format!("http://127.0.0.1:{http_port}"),
        };
        let http = reqwest::Client::new();
        crate::sfu_restart::poll_until(Duration::from_secs(20), "the sfu answers", || {
            sfu_answers(&http, &node.base)
        })
        .await;
        node
    }
}

/// A replica named `id` in the cluster on `redis`, its media on `sfu`.
async fn replica(redis: &RedisServer, sfu: &SfuNode, id: &str) -> TestServer {
    let mut cfg = config();
    cfg.auto_create_rooms = true;
    cfg.media.redis_url = Some(RedisUrl(redis.url()));
    cfg.cluster.replica_id = Some(id.to_owned());
    let node = RemoteSfu::new(&sfu.base, Secret::new(CONTROL_SECRET), None).expect("sfu client");
    TestServer::start_with_node(cfg, Arc::new(node)).await
}

async fn cluster_view(s: &TestServer) -> Value {
    let resp = s
        .http
        .get(s.url("/v1/cluster"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("cluster view answers");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("cluster view JSON")
}

/// The devices a peer's roster holds at the end: its `joined` roster with every delta applied.
fn final_roster(peer: &KeyPeer) -> Vec<String> {
    let mut devices: Vec<String> = peer
        .session
        .joined()
        .roster
        .devices
        .iter()
        .map(|d| d.device.clone())
        .collect();
    for message in &peer.seen {
        if let ServerMessage::Roster(delta) = message {
            devices.retain(|d| !delta.removed.contains(d));
            devices.extend(delta.added.iter().map(|d| d.device.clone()));
        }
    }
    devices.sort();
    devices.dedup();
    devices
}

/// Each peer seals one frame with its current key; every other peer opens it.
fn every_key_reaches_every_other(peers: &mut [KeyPeer]) {
    let frame = [0xfcu8, 9, 8, 7];
    let sealed: Vec<(String, Vec<u8>)> = peers
        .iter()
        .map(|q| {
            let key = q.sending.clone().expect("each caller sends");
            let mut sealer = key.sender(q.slot()).expect("sender");
            let mut wire = Vec::new();
            sealer
                .encrypt_media(Stream::Audio, Codec::Opus, &frame, &mut wire)
                .expect("seals");
            (q.name(), wire)
        })
        .collect();
    for p in peers {
        for (sender, wire) in &sealed {
            if *sender == p.name() {
                continue;
            }
            let mut out = Vec::new();
            p.store
                .decrypt_media(Instant::now(), Codec::Opus, wire, &mut out)
                .unwrap_or_else(|e| panic!("{} opens {sender}'s frame: {e}", p.name()));
            assert_eq!(out, frame);
        }
    }
}

/// Ten callers of one meeting, connected alternately to two replicas: every roster holds all
/// ten, every caller's key reaches every other (each opens a frame each other one sealed), and
/// the SFU's speaker detection of a caller on the other replica reaches everyone.
#[tokio::test]
async fn meeting_of_ten_across_two_replicas_reaches_everyone() {
    const ROOM: &str = "across";
    let redis = RedisServer::start().expect("redis-server starts");
    let sfu = SfuNode::start().await;
    let a = replica(&redis, &sfu, "replica-a").await;
    let b = replica(&redis, &sfu, "replica-b").await;
    a.meeting(ROOM).await;

    // The speaker connects to replica b: its whole session runs at a, the room's owner.
    let mut speaker = Device::join(&b, ROOM, "speaker").await;
    let mut media = publish(&mut speaker, 0x3333_0001, 10).await;
    let mut sender =
        Sender::new(SUITE, speaker.slot(), 1, BaseKey::random(&mut rand::rng())).expect("sender");
    let speaking = tokio::spawn(async move {
        for i in 0..300 {
            send_frames(&mut media, &mut sender, i).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        media
    });

    // Nine callers with keys, alternately on a and b.
    let mut peers = Vec::new();
    for i in 0..9 {
        let at = if i % 2 == 0 { &a } else { &b };
        peers.push(KeyPeer::join(&at.ws_url(), ROOM, &format!("caller-{i}"), true).await);
    }
    // Five connections (the speaker and four callers) are carried from b to a.
    poll_until(
        Duration::from_secs(5),
        "b proxies five connections to a",
        async || {
            b.metric(r#"signaling_cluster_connections{side="proxied"}"#)
                .await
                == 5.0
                && a.metric(r#"signaling_cluster_connections{side="served"}"#)
                    .await
                    == 5.0
        },
    )
    .await;
    // The admin API of either replica shows the room's owner, its participants (by the room's
    // record, written by the owner soon after each join) and its SFU node.
    let expected = serde_json::json!([{"room": ROOM, "replica": "replica-a", "participants": 10,
        "media_node": sfu.base}]);
    poll_until(
        Duration::from_secs(5),
        "the admin API shows the placement",
        async || {
            let view = cluster_view(&b).await;
            view["replica"] == "replica-b"
                && view["replicas"] == serde_json::json!(["replica-a", "replica-b"])
                && view["rooms"] == expected
        },
    )
    .await;
    let served: Vec<_> = peers
        .into_iter()
        .map(|p| tokio::spawn(p.serve(Duration::from_secs(4))))
        .collect();
    let mut peers = Vec::new();
    for task in served {
        peers.push(task.await.expect("peer task"));
    }
    let _media = speaking.await.expect("speaker task");

    let mut everyone: Vec<String> = (0..9).map(|i| format!("caller-{i}")).collect();
    everyone.push("speaker".into());
    everyone.sort();
    every_key_reaches_every_other(&mut peers);
    for p in &peers {
        assert_eq!(final_roster(p), everyone, "{}'s roster", p.name());
        let heard = p.seen.iter().any(|m| {
            matches!(m, ServerMessage::Speakers(s)
                if s.speakers.first().is_some_and(|s| s.device == "speaker"))
        });
        assert!(heard, "{} got the speaker in a speakers update", p.name());
    }
    assert_eq!(
        a.metric(r#"signaling_cluster_bus_dropped_total{reason="malformed"}"#)
            .await,
        0.0
    );
}

/// While Redis is away a replica's calls in progress go on (their sessions are local), a new
/// join is refused with `unavailable` (counted), and once Redis is back joins work again.
#[tokio::test]
async fn redis_restart_keeps_calls_and_refuses_joins_meanwhile() {
    const ROOM: &str = "steady";
    let mut redis = RedisServer::start().expect("redis-server starts");
    let sfu = SfuNode::start().await;
    let a = replica(&redis, &sfu, "replica-a").await;
    let mut alice = Session::connect(session_config(&a, ROOM, "alice", "dev-a"))
        .await
        .expect("alice joins");
    let mut bob = Session::connect(session_config(&a, ROOM, "bob", "dev-b"))
        .await
        .expect("bob joins");

    redis.kill();
    // A join now cannot be routed: refused clearly.
    let refused = Session::connect(session_config(&a, "another", "carol", "dev-c")).await;
    match refused {
        Err(SessionError::Refused(e)) => assert_eq!(e.code, ErrorCode::Unavailable),
        other => panic!(
            "a join while Redis is away is refused: {:?}",
            other.map(|_| ())
        ),
    }
    assert!(
        a.metric(r#"signaling_rejected_total{reason="unavailable"}"#)
            .await
            >= 1.0
    );
    // The call in progress goes on: alice's request reaches bob.
    alice
        .send(ClientMessage::KeyRequest(KeyRequest {
            to: "dev-b".into(),
            generation: None,
        }))
        .expect("queued");
    let relayed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match bob.recv().await.expect("bob stays connected") {
                ServerMessage::KeyRequest(r) => return r,
                _ => continue,
            }
        }
    })
    .await
    .expect("relayed while Redis is away");
    assert_eq!(relayed.from, "dev-a");

    redis.restart().expect("redis-server restarts");
    // Joins work again once the connection is back; the room's lease is written again.
    let mut carol = None;
    poll_until(
        Duration::from_secs(10),
        "a join succeeds after Redis is back",
        async || match Session::connect(session_config(&a, ROOM, "carol", "dev-c")).await {
            Ok(s) => {
                carol = Some(s);
                true
            }
            Err(_) => false,
        },
    )
    .await;
    let carol = carol.expect("carol joined");
    assert_eq!(carol.joined().roster.devices.len(), 3);
    poll_until(
        Duration::from_secs(5),
        "the room's owner lease is back",
        async || {
            let view = cluster_view(&a).await;
            view["rooms"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|o| o["room"] == ROOM && o["replica"] == "replica-a")
            })
        },
    )
    .await;
    assert!(
        a.metric(r#"signaling_cluster_redis_errors_total{op="claim"}"#)
            .await
            >= 1.0
    );
}

/// A Redis, a registered `sfu` node and two `signaling serve` replicas on them, `replica-a` and
/// `replica-b`, each reading the node's record.
async fn two_replica_processes() -> (RedisServer, Node, ReplicaProcess, ReplicaProcess) {
    let redis = RedisServer::start().expect("redis-server starts");
    let sfu = Node::start(&reqwest::Client::new(), &redis, "node-1", &[]).await;
    let a = ReplicaProcess::start(&redis, &sfu, "replica-a");
    let b = ReplicaProcess::start(&redis, &sfu, "replica-b");
    a.sees_the_node().await;
    b.sees_the_node().await;
    (redis, sfu, a, b)
}

/// A `signaling serve` process that is one replica of the cluster (killed with SIGKILL on drop).
struct ReplicaProcess {
    child: std::process::Child,
    addr: String,
}

impl ReplicaProcess {
    fn start(redis: &RedisServer, sfu: &Node, id: &str) -> ReplicaProcess {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_signaling"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log", "info"])
            .args(["--api-keys", &format!("{API_KEY}:{API_SECRET}")])
            .args(["--auto-create-rooms", "true", "--sfu-url", &sfu.base])
            .args(["--redis-url", &redis.url(), "--replica-id", id])
            .env("SIGNALING_ADMIN_TOKEN", ADMIN)
            .env("SIGNALING_SFU_CONTROL_SECRET", CONTROL_SECRET)
            .env_remove("SIGNALING_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("signaling starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("signaling listening") && tx.send(line.clone()).is_err() {
                    break;
                }
                if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("[replica] {line}");
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the replica listens within 20 s");
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("an address")
            .to_owned();
        ReplicaProcess { child, addr }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/v1/rtc", self.addr)
    }

    /// Waits until the replica reads the SFU node's record in the registry (it places rooms
    /// only on nodes with a live record).
    async fn sees_the_node(&self) {
        let http = reqwest::Client::new();
        let url = format!("http://{}/v1/media-nodes", self.addr);
        poll_until(
            Duration::from_secs(10),
            "the replica reads the node's record",
            async || {
                let Ok(resp) = http.get(&url).bearer_auth(ADMIN).send().await else {
                    return false;
                };
                let list: Value = resp.json().await.unwrap_or_default();
                list["nodes"][0]["registry"].is_object() && list["nodes"][0]["state"] == "attached"
            },
        )
        .await;
    }

    /// `kill -9`, and the process reaped.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL sent");
        self.child.wait().expect("reaped");
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The replica that owns a room is killed (`kill -9`): the clients connected to it lose their
/// socket, those connected to the other replica have theirs closed (1012) as soon as nobody
/// reads the killed replica's inbox, and all of them are back in the call on the other replica
/// within 5 s of the kill: it restored the room from its record, so each *resumes* (same call,
/// slot and roster) and nobody is told anything (no roster change, no rekey); every caller's
/// key still reaches every other afterwards.
#[tokio::test]
async fn killed_owner_replica_its_clients_are_back_on_the_other_within_5_s() {
    const ROOM: &str = "failover";
    // Redis and the node live to the end of the test.
    let (_redis, _sfu, mut a, b) = two_replica_processes().await;

    // The first join, at a, makes a the owner; the others join alternately at a and b.
    let mut peers = Vec::new();
    for i in 0..4 {
        let at = if i % 2 == 0 { &a } else { &b };
        peers.push(KeyPeer::join(&at.ws_url(), ROOM, &format!("caller-{i}"), true).await);
    }
    let served: Vec<_> = peers
        .into_iter()
        .map(|p| tokio::spawn(p.serve(Duration::from_millis(1500))))
        .collect();
    let mut peers = Vec::new();
    for task in served {
        peers.push(task.await.expect("peer task"));
    }
    // Where each stands before the kill: its call, slot and the room's roster version.
    let before: Vec<(String, u16, u64)> = peers
        .iter()
        .map(|p| {
            let version = p
                .seen
                .iter()
                .filter_map(|m| match m {
                    ServerMessage::Roster(d) => Some(d.version),
                    _ => None,
                })
                .max()
                .unwrap_or(p.session.joined().roster.version);
            (p.session.joined().call.clone(), p.slot(), version)
        })
        .collect();

    a.kill();
    let killed = tokio::time::Instant::now();
    // Each client notices its connection end and reconnects to b (a client retries with a
    // short backoff while the room is being taken over).
    let back = peers.into_iter().map(|mut p| {
        let url = b.ws_url();
        async move {
            let noticed = tokio::time::timeout(Duration::from_secs(5), async {
                while p.session.recv().await.is_some() {}
            })
            .await;
            assert!(noticed.is_ok(), "{} notices its connection end", p.name());
            loop {
                match p.session.reconnect_to(&url).await {
                    Ok(_) => break,
                    Err(e) => {
                        assert!(
                            killed.elapsed() < Duration::from_secs(10),
                            "{} reconnects: {e}",
                            p.name()
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (killed.elapsed(), p)
        }
    });
    let back = futures_util::future::join_all(back).await;
    let worst = back.iter().map(|(t, _)| *t).max().expect("four clients");
    eprintln!(
        "owner replica killed: clients back in the call after {:?} (worst {worst:?})",
        back.iter().map(|(t, _)| *t).collect::<Vec<_>>()
    );
    assert!(
        worst <= Duration::from_secs(5),
        "every client is back within 5 s of the kill: worst {worst:?}"
    );
    for ((_, p), (call, slot, version)) in back.iter().zip(&before) {
        let joined = p.session.joined();
        assert_eq!(&joined.call, call, "{}: same call", p.name());
        assert_eq!(p.slot(), *slot, "{}: same slot", p.name());
        assert!(joined.resumed, "{}: resumed, not joined again", p.name());
        assert_eq!(
            joined.roster.version,
            *version,
            "{}: the same roster",
            p.name()
        );
    }
    // The call goes on at b: the keys the callers send after the takeover reach everyone.
    let served: Vec<_> = back
        .into_iter()
        .map(|(_, p)| {
            let mut p = p;
            p.seen.clear();
            tokio::spawn(p.serve(Duration::from_millis(1500)))
        })
        .collect();
    let mut peers = Vec::new();
    for task in served {
        peers.push(task.await.expect("peer task"));
    }
    every_key_reaches_every_other(&mut peers);
    // Nobody was told anything: no roster change, no rekey or ratchet.
    for p in &peers {
        let told: Vec<&ServerMessage> = p
            .seen
            .iter()
            .filter(|m| matches!(m, ServerMessage::Membership(_) | ServerMessage::Roster(_)))
            .collect();
        assert!(told.is_empty(), "{} was told {told:?}", p.name());
    }
}

/// A replica named `id` without a media node (the control plane alone).
async fn control_replica(redis: &RedisServer, id: &str) -> TestServer {
    let mut cfg = config();
    cfg.auto_create_rooms = true;
    cfg.media.redis_url = Some(RedisUrl(redis.url()));
    cfg.cluster.replica_id = Some(id.to_owned());
    cfg.limits.max_connections_per_ip = 20_000;
    cfg.limits.max_connections = 20_000;
    // The default message limits: a presenter's key envelopes have a budget of their own,
    // sized for a rekey of the largest audience.
    let defaults = signaling::config::LimitsConfig::default();
    cfg.limits.messages_per_second = defaults.messages_per_second;
    cfg.limits.message_burst = defaults.message_burst;
    cfg.limits.key_envelopes_per_second = defaults.key_envelopes_per_second;
    cfg.limits.key_envelope_burst = defaults.key_envelope_burst;
    TestServer::start_without_media(cfg).await
}

/// The control plane of a broadcast across two replicas (no media): viewers (native sessions
/// with key managers, `CONTROL_PLANE_VIEWERS`, 200 by default) join alternately through each
/// replica, 50 at a time, besides one that leaves after: the presenter rekeys, and the new key
/// reaches every other viewer. Prints the join time and the rekey's spread; the test command runs
/// the small version, the benchmark `CONTROL_PLANE_VIEWERS=4999` (5,000 with the one that
/// leaves; viewers take receive-only slots, so the KID's 4,096 sender slots do not cap them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_control_plane_across_two_replicas() {
    const ROOM: &str = "audience";
    let viewers: usize = std::env::var("CONTROL_PLANE_VIEWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let redis = RedisServer::start().expect("redis-server starts");
    let a = control_replica(&redis, "replica-a").await;
    let b = control_replica(&redis, "replica-b").await;
    let resp = a
        .http
        .post(a.url("/v1/rooms"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": ROOM, "kind": "broadcast", "max_viewers": viewers + 1}))
        .send()
        .await
        .expect("admin answers");
    assert_eq!(resp.status(), 201, "{:?}", resp.text().await);

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let far = tokio::time::Instant::now() + Duration::from_secs(600);
    let presenter = KeyPeer::join_as(&a.ws_url(), ROOM, "presenter", Role::Presenter, true).await;
    let presenter_slot = presenter.slot();
    let presenter = tokio::spawn(presenter.serve_until(far, stopped.clone()));
    let mut leaver = KeyPeer::join_as(&b.ws_url(), ROOM, "leaver", Role::Viewer, false).await;
    // The presenter sends under one of the KID's 4,096 sender slots; a viewer, who never
    // sends, holds a receive-only slot above them.
    assert!(presenter_slot < 4096, "presenter slot {presenter_slot}");
    assert!(leaver.slot() >= 4096, "viewer slot {}", leaver.slot());

    let urls = [a.ws_url(), b.ws_url()];
    let started = Instant::now();
    let tasks: Vec<(usize, _)> = futures_util::stream::iter(0..viewers)
        .map(|i| {
            let url = urls[i % 2].clone();
            let stopped = stopped.clone();
            async move {
                let p =
                    KeyPeer::join_as(&url, ROOM, &format!("viewer-{i}"), Role::Viewer, false).await;
                // Numbered: the serving task is awaited later, not here.
                (i, tokio::spawn(p.serve_until(far, stopped)))
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let joined_in = started.elapsed();
    eprintln!("control plane: {viewers} viewers joined across two replicas in {joined_in:?}");
    assert!(
        joined_in < Duration::from_secs(60),
        "joins within 60 s: {joined_in:?}"
    );
    // Half the viewers (and the leaver) reached the room through replica b, which carries
    // their connections to the owner, a.
    let carried = b
        .metric(r#"signaling_cluster_connections{side="proxied"}"#)
        .await;
    assert!(
        carried >= (viewers / 2) as f64,
        "b carries its {} viewers to the owner: {carried}",
        viewers / 2
    );

    // Let the keys of the joins settle, then one viewer leaves: the presenter rekeys.
    tokio::time::sleep(Duration::from_secs(2)).await;
    leaver.session.leave().await;
    let left = Instant::now();
    tokio::time::sleep(Duration::from_secs(7)).await;
    stop.send_replace(true);
    let presenter = presenter.await.expect("presenter task");
    let generation = presenter
        .sending
        .as_ref()
        .expect("presenter sends")
        .generation;
    assert!(generation >= 1, "the leave made the presenter rekey");
    let mut spread = Vec::with_capacity(viewers);
    for (_, task) in tasks {
        let v = task.await.expect("viewer task");
        let got = v
            .installed
            .iter()
            .find(|(slot, g, _)| *slot == presenter_slot && *g == generation)
            .map(|(_, _, at)| at.duration_since(left))
            .unwrap_or_else(|| panic!("{} got the presenter's new key", v.name()));
        spread.push(got);
    }
    spread.sort();
    let worst = *spread.last().expect("viewers");
    eprintln!(
        "control plane: rekey (generation {generation}) reached {} viewers, from the leave: median {:?}, worst {worst:?} (the room waits out its rekey debounce first)",
        spread.len(),
        spread[spread.len() / 2]
    );
    assert!(
        worst <= Duration::from_secs(5),
        "the rekey reaches everyone within 5 s: {worst:?}"
    );
}

/// Media does not depend on signaling: when the replica owning a call is killed, both callers'
/// audio and video (SFrame-encrypted, through one `sfu` process) keep arriving and decrypting,
/// and when their sockets come back on the other replica, which took the room over from its
/// record and kept the SFU's copy of it, both resume (same call, same slot) and their media is
/// still the same media sessions.
#[tokio::test]
async fn media_flows_through_an_owner_replica_kill_and_both_callers_resume() {
    const ROOM: &str = "steady-media";
    // Redis and the node live to the end of the test.
    let (_redis, _sfu, mut a, b) = two_replica_processes().await;

    // Alice joins at a (its owner from here on), Bob at b (carried to a).
    let mut alice = Device::join_at(&a.ws_url(), ROOM, "alice-dev", Role::Caller, None, None).await;
    let mut bob = Device::join_at(&b.ws_url(), ROOM, "bob-dev", Role::Caller, None, None).await;
    let mut am = publish(&mut alice, 0x4444_0001, 10).await;
    let mut bm = publish(&mut bob, 0x4444_0002, 30).await;
    let (alice_key, bob_key) = (
        BaseKey::random(&mut rand::rng()),
        BaseKey::random(&mut rand::rng()),
    );
    send_key_in(ROOM, &mut alice, &mut bob, &alice_key, &mut bm.store).await;
    send_key_in(ROOM, &mut bob, &mut alice, &bob_key, &mut am.store).await;
    let mut a_sender = Sender::new(SUITE, alice.slot(), 1, alice_key).expect("sender");
    let mut b_sender = Sender::new(SUITE, bob.slot(), 1, bob_key).expect("sender");
    for i in 0..50 {
        send_frames(&mut am, &mut a_sender, i).await;
        send_frames(&mut bm, &mut b_sender, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut speakers = Vec::new();
    subscribe_all(&mut alice, &am.peer, "bob-dev", &mut speakers).await;
    subscribe_all(&mut bob, &bm.peer, "alice-dev", &mut speakers).await;
    let mut a_rx = Receiver {
        rtp: am.peer.take_incoming(),
        store: std::mem::take(&mut am.store),
    };
    let mut b_rx = Receiver {
        rtp: bm.peer.take_incoming(),
        store: std::mem::take(&mut bm.store),
    };
    let sending = tokio::spawn(async move {
        for i in 50..650 {
            send_frames(&mut am, &mut a_sender, i).await;
            send_frames(&mut bm, &mut b_sender, i).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (am, bm)
    });
    receive(&mut a_rx, bob.slot(), 20).await;
    receive(&mut b_rx, alice.slot(), 20).await;

    a.kill();
    // A second after the kill (what was queued before it read away), media still arrives.
    tokio::time::sleep(Duration::from_secs(1)).await;
    while a_rx.rtp.try_recv().is_ok() {}
    while b_rx.rtp.try_recv().is_ok() {}
    receive(&mut a_rx, bob.slot(), 20).await;
    receive(&mut b_rx, alice.slot(), 20).await;

    // Both sockets come back on b: the room was restored there, both resume.
    let resume = |d: &Device| Some((d.call(), d.slot()));
    let (alice_back, bob_back) = (resume(&alice), resume(&bob));
    let alice_again = Device::join_at(
        &b.ws_url(),
        ROOM,
        "alice-dev",
        Role::Caller,
        Some(alice.keys),
        alice_back.clone(),
    )
    .await;
    let bob_again = Device::join_at(
        &b.ws_url(),
        ROOM,
        "bob-dev",
        Role::Caller,
        Some(bob.keys),
        bob_back.clone(),
    )
    .await;
    for (again, before) in [(&alice_again, &alice_back), (&bob_again, &bob_back)] {
        let (call, slot) = before.clone().expect("resume");
        assert_eq!(again.joined["resumed"], true, "{}", again.joined);
        assert_eq!(again.call(), call);
        assert_eq!(again.slot(), slot);
    }
    // The same media sessions carry on after the resume.
    receive(&mut a_rx, bob_again.slot(), 20).await;
    receive(&mut b_rx, alice_again.slot(), 20).await;
    sending.abort();
}

/// After a Redis that lost its data, a join on the other replica claims a room a replica still
/// holds: the room exists twice (split brain). At its next lease renewal the replica that lost
/// the lease yields its copy: its connections there are cut without a close frame (no `left`:
/// their clients reconnect), it deletes neither the record nor anything on the media node, and
/// a returning client lands in the one room left, the new owner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_data_loss_the_replica_that_lost_a_rooms_lease_yields_it() {
    use crate::common::{Seen, token};
    let redis = RedisServer::start().expect("redis-server starts");
    let a = control_replica(&redis, "replica-a").await;
    let b = control_replica(&redis, "replica-b").await;
    let flush = async || {
        let client = redis::Client::open(redis.url()).expect("redis client");
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection");
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut c)
            .await
            .expect("FLUSHALL");
    };
    // a renews its leases every second: a join on b right after the flush usually claims the
    // room first; when a's renewal came first, bob simply joined a's room (no split): again.
    for attempt in 0..5 {
        let room = format!("split-{attempt}");
        let mut alice = a.connect().await;
        alice
            .join(&room, &token(&room, "alice", Role::Caller), "dev-alice")
            .await;
        flush().await;
        let mut bob = b.connect().await;
        let joined = bob
            .join(&room, &token(&room, "bob", Role::Caller), "dev-bob")
            .await;
        let with_alice = joined["roster"]["devices"]
            .as_array()
            .expect("roster")
            .iter()
            .any(|d| d["device"] == "dev-alice");
        if with_alice {
            continue;
        }
        // Split: a still holds its copy with alice; b owns the lease and its own copy.
        let cut = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match alice.next().await {
                    Seen::Closed(code) => return code,
                    Seen::Json(m) => assert_ne!(m["type"], "left", "no `left`: {m}"),
                }
            }
        })
        .await
        .expect("a yields the room within a renewal or two");
        assert_eq!(
            cut, None,
            "cut without a close frame, so the client reconnects"
        );
        assert!(
            a.metric("signaling_cluster_leases_lost_total").await >= 1.0,
            "the lost lease is counted"
        );
        // alice comes back through a, which carries her to b's room: bob sees her join.
        let mut again = a.connect().await;
        let back = again
            .join(&room, &token(&room, "alice", Role::Caller), "dev-alice")
            .await;
        let roster: Vec<&str> = back["roster"]["devices"]
            .as_array()
            .expect("roster")
            .iter()
            .filter_map(|d| d["device"].as_str())
            .collect();
        assert!(roster.contains(&"dev-bob"), "one room, b's: {back}");
        let added = bob.recv_type("roster").await;
        assert_eq!(added["added"][0]["device"], "dev-alice", "{added}");
        // One owner, b, and b's record of the room is kept (a did not delete it).
        let view = cluster_view(&a).await;
        let owners: Vec<&Value> = view["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .filter(|o| o["room"] == room.as_str())
            .collect();
        assert_eq!(owners.len(), 1, "{view}");
        assert_eq!(owners[0]["replica"], "replica-b", "{view}");
        return;
    }
    panic!("five attempts without a split: a renewed its lease first every time");
}
