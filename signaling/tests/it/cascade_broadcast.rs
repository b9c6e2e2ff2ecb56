//! A broadcast spread over several SFU nodes (docs/architecture.md §7.57): a real
//! `redis-server`, three real `sfu` processes publishing their records with a `--capacity`, two
//! signaling replicas in this process (each with its own pool over the three nodes, reading the
//! registry), one presenter sending SFrame-encrypted audio and video, and viewers connected
//! alternately to each replica. The room's owner seats viewers on the origin while it has room,
//! then on edge nodes it spreads the room to (SFU-to-SFU relay, §7.55); every viewer decrypts the
//! presenter's frames, which no node can read.
//!
//! Sizes: `broadcast_of_60_viewers_spans_three_sfu_nodes` runs 60 viewers over nodes of
//! `--capacity 22`; the edge-kill and late-track tests run 10 viewers over nodes of
//! `--capacity 5` (origin: the presenter and 3 viewers, a place kept for a late publisher;
//! edges: the rest).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use call_client::peer::{Incoming, LocalTrack, Peer, RtpCodecKind, vp8_frame_bytes};
use e2ee_frames::envelope::{KeyEnvelope, KeyGrant};
use e2ee_frames::identity::{DeviceBundle, DeviceId, DeviceKeys};
use e2ee_frames::key::BaseKey;
use e2ee_frames::media::Codec;
use e2ee_frames::receiver::KeyStore;
use e2ee_frames::sender::Sender;
use serde_json::{Value, json};
use sfu_registry::{KeySpace, RedisServer, Registry, RegistryConfig};
use signaling::auth::Secret;
use signaling::config::RedisUrl;
use signaling::media_node::{MediaNode, PoolSettings, RemoteSfu, SfuPool, watch_registry};
use signaling::policy::Role;

use crate::common::{ADMIN, TestServer, config, poll_until, token};
use crate::media_call::{CONTROL_SECRET, Device, Media, SUITE, publish, send_frames_on};
use crate::sfu_registry_placement::Node;

const ROOM: &str = "town-hall";
/// How often the tests' pools read the registry (the service reads it every second).
const READ_EVERY: Duration = Duration::from_millis(200);
/// The pools' failover delay (the service's default is 3 s).
const FAILOVER_AFTER: Duration = Duration::from_millis(1000);
/// How long the pools keep an edge its last viewer left (the service's default is 30 s).
const EDGE_LINGER: Duration = Duration::from_millis(1000);

/// The value of `series` (name and labels) on the `/metrics` of the SFU node at `node_url`.
async fn sfu_metric(node_url: &str, series: &str) -> f64 {
    crate::common::metric_of(&reqwest::Client::new(), node_url, series).await
}

/// Node `id` publishing its record to `redis`, taking at most `capacity` participants.
async fn start_node(redis: &RedisServer, id: &str, capacity: u64) -> Node {
    let capacity = capacity.to_string();
    Node::start(
        &reqwest::Client::new(),
        redis,
        id,
        &["--capacity", &capacity],
    )
    .await
}

fn registry(redis: &RedisServer) -> Registry {
    Registry::new(
        &redis.url(),
        RegistryConfig {
            keys: KeySpace::default(),
            ..RegistryConfig::default()
        },
    )
    .expect("registry client")
}

/// Replica `id` of the cluster on `redis`, its media on a pool over `nodes` placed by the
/// registry.
async fn replica(
    redis: &RedisServer,
    nodes: &[Node],
    id: &str,
    failover_after: Duration,
) -> TestServer {
    let mut cfg = config();
    cfg.media.redis_url = Some(RedisUrl(redis.url()));
    cfg.cluster.replica_id = Some(id.to_owned());
    let remotes: Vec<Arc<dyn MediaNode>> = nodes
        .iter()
        .map(|n| {
            Arc::new(RemoteSfu::new(&n.base, Secret::new(CONTROL_SECRET), None).expect("client"))
                as Arc<dyn MediaNode>
        })
        .collect();
    let pool = SfuPool::new(
        remotes,
        PoolSettings {
            failover_after,
            edge_linger: EDGE_LINGER,
        },
    )
    .expect("pool")
    .with_registry(watch_registry(registry(redis), READ_EVERY))
    .expect("registry link");
    TestServer::start_with_node(cfg, Arc::new(pool)).await
}

/// Waits until every node has a live record (and the pools have read it).
async fn all_registered(redis: &RedisServer, nodes: &[Node]) {
    let registry = registry(redis);
    poll_until(
        Duration::from_secs(10),
        "every node registered",
        async || {
            registry.live_nodes().await.is_ok_and(|live| {
                nodes
                    .iter()
                    .all(|n| live.records.iter().any(|r| r.control_url == n.base))
            })
        },
    )
    .await;
    tokio::time::sleep(READ_EVERY * 2).await;
}

/// A viewer: its signaling connection, its media session's frames, its key.
struct Viewer {
    dev: Device,
    /// Decrypted frames of the first presenter, from every media session it had.
    frames: Arc<AtomicU64>,
    /// Decrypted frames of any other publisher.
    other_frames: Arc<AtomicU64>,
    /// When the last frame of the first presenter was decrypted.
    last_frame: Arc<Mutex<Option<Instant>>>,
    /// The longest time between two frames of the first presenter (since set to zero).
    max_gap: Arc<Mutex<Duration>>,
    /// When the current media session's first frame of the first presenter was decrypted.
    session_first: Arc<Mutex<Option<Instant>>>,
    store: Arc<Mutex<KeyStore>>,
    /// The current session's peer connection (kept open).
    peer: Option<Peer>,
}

impl Viewer {
    async fn join(s: &TestServer, id: &str) -> Viewer {
        let dev = Device::join_at(&s.ws_url(), ROOM, id, Role::Viewer, None, None).await;
        assert_eq!(dev.joined["media"], true, "{}", dev.joined);
        Viewer {
            dev,
            frames: Arc::default(),
            other_frames: Arc::default(),
            last_frame: Arc::default(),
            max_gap: Arc::default(),
            session_first: Arc::default(),
            store: Arc::new(Mutex::new(KeyStore::new())),
            peer: None,
        }
    }

    fn name(&self) -> String {
        self.dev.joined["device"]
            .as_str()
            .expect("device")
            .to_owned()
    }

    /// After its node was lost: the viewer's `media_reset` (`media_node_lost`), a fresh media
    /// session, and the time from `since` until it decrypted the presenter's first frame again.
    async fn media_back_after_reset(
        &mut self,
        tracks: &[String],
        presenter_slot: u16,
        since: Instant,
    ) -> Duration {
        let reset = self.dev.ws.recv_type("media_reset").await;
        assert_eq!(reset["reason"], "media_node_lost", "{reset}");
        self.peer = None;
        self.start_media(tracks, presenter_slot).await;
        let name = self.name();
        poll_until(
            Duration::from_secs(10),
            &format!("{name} decrypts again"),
            async || self.session_first.lock().expect("first").is_some(),
        )
        .await;
        let again = self.session_first.lock().expect("first").expect("a frame");
        again.saturating_duration_since(since)
    }

    /// A fresh media session: receive-only offer, answer, subscriptions to `tracks` (origin
    /// ids), the SFU's offer answered; a task decrypts what arrives.
    async fn start_media(&mut self, tracks: &[String], presenter_slot: u16) {
        let mut peer = Peer::builder().build().await.expect("peer builds");
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            peer.add_recvonly(kind).await.expect("recvonly");
        }
        let offer = peer.offer().await.expect("offer");
        self.dev
            .ws
            .send(&json!({"type": "offer", "sdp": offer, "tracks": []}))
            .await;
        let answer = self.dev.ws.recv_type("answer").await;
        peer.apply_answer(answer["sdp"].as_str().expect("answer sdp"))
            .await
            .expect("answer applies");
        peer.wait_connected(Duration::from_secs(10))
            .await
            .expect("viewer connects to its SFU node");
        let rx = peer.take_incoming();
        self.session_first = Arc::default();
        tokio::spawn(decrypt_all(
            rx,
            self.store.clone(),
            presenter_slot,
            [self.frames.clone(), self.other_frames.clone()],
            [self.last_frame.clone(), self.session_first.clone()],
            self.max_gap.clone(),
        ));
        let subs: Vec<Value> = tracks.iter().map(|t| json!({"track": t})).collect();
        self.dev
            .ws
            .send(&json!({"type": "subscribe", "subscriptions": subs}))
            .await;
        let offer = self.dev.ws.recv_type("offer").await;
        let answer = peer
            .answer(offer["sdp"].as_str().expect("offer sdp"))
            .await
            .expect("answer");
        self.dev
            .ws
            .send(&json!({"type": "answer", "sdp": answer}))
            .await;
        self.peer = Some(peer);
    }

    async fn frames_reach(&self, n: u64, within: Duration, what: &str) {
        poll_until(within, what, async || {
            self.frames.load(Ordering::Relaxed) >= n
        })
        .await;
    }
}

/// Decrypts every frame `rx` receives with the keys in `store`; counts those that open, from
/// `slot` in `frames[0]` (with the instants of the last one and of the first one, in `at`),
/// from other slots in `frames[1]`.
async fn decrypt_all(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Incoming>,
    store: Arc<Mutex<KeyStore>>,
    slot: u16,
    [frames, other]: [Arc<AtomicU64>; 2],
    [last, first]: [Arc<Mutex<Option<Instant>>>; 2],
    max_gap: Arc<Mutex<Duration>>,
) {
    let mut out = Vec::new();
    while let Some(Incoming { kind, packet, .. }) = rx.recv().await {
        let (codec, wire) = if kind == RtpCodecKind::Audio {
            (Codec::Opus, &packet.payload[..])
        } else {
            (Codec::Vp8, vp8_frame_bytes(&packet.payload))
        };
        let opened =
            store
                .lock()
                .expect("store")
                .decrypt_media(Instant::now(), codec, wire, &mut out);
        match opened {
            Ok(received) if received.kid.slot() == slot => {
                frames.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if let Some(previous) = last.lock().expect("last").replace(now) {
                    let mut max = max_gap.lock().expect("gap");
                    *max = (*max).max(now.saturating_duration_since(previous));
                }
                first.lock().expect("first").get_or_insert(now);
            }
            Ok(_) => {
                other.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }
}

/// Seals the presenter's key for `to` and installs it in `to`'s store when it arrives.
async fn send_key(from: &mut Device, to: &mut Viewer, base: &BaseKey) {
    let to_bundle = DeviceBundle::from_json(&to.dev.keys.bundle().to_json())
        .expect("bundle")
        .verify()
        .expect("self-signed");
    let grant = KeyGrant {
        slot: from.slot(),
        generation: 1,
        step: 0,
        suite: SUITE,
    };
    let call = from.joined["call"].as_str().expect("call").to_owned();
    let envelope = KeyEnvelope::seal(
        &from.keys,
        &to_bundle,
        ROOM,
        &call,
        grant,
        base,
        &mut rand::rng(),
    )
    .expect("seals");
    from.ws
        .send(&json!({"type": "key_envelope", "envelope": serde_json::to_value(&envelope).expect("json")}))
        .await;
    let relayed = to.dev.ws.recv_type("key_envelope").await;
    let relayed: KeyEnvelope = serde_json::from_value(relayed["envelope"].clone()).expect("parses");
    let from_bundle = DeviceBundle::from_json(&from.keys.bundle().to_json())
        .expect("bundle")
        .verify()
        .expect("self-signed");
    let (got, key) = relayed
        .open(&to.dev.keys, &from_bundle, ROOM, &call)
        .expect("the viewer opens the envelope");
    to.store
        .lock()
        .expect("store")
        .install(Instant::now(), got.slot, 1, 0, SUITE, key)
        .expect("key installs");
}

/// Sends a frame of each track every 20 ms until `stop`; returns the sender (its SFrame
/// counter goes on in a next media session).
async fn send_until(
    mut camera: LocalTrack,
    mut audio: LocalTrack,
    mut sender: Sender,
    stop: Arc<AtomicBool>,
) -> Sender {
    for i in 0..10_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        send_frames_on(&mut camera, &mut audio, &mut sender, i).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sender
}

/// The ids of the presenter's camera and microphone tracks, from its next two
/// `track_published`.
async fn published_tracks(presenter: &mut Device) -> Vec<String> {
    let mut tracks = Vec::new();
    while tracks.len() < 2 {
        let m = presenter.ws.recv_type("track_published").await;
        tracks.push(m["track"]["id"].as_str().expect("track id").to_owned());
    }
    tracks
}

/// The broadcast under test.
struct Broadcast {
    nodes: Vec<Node>,
    replicas: Vec<TestServer>,
    presenter: Device,
    _presenter_peer: Peer,
    base: BaseKey,
    tracks: Vec<String>,
    viewers: Vec<Viewer>,
    stop: Arc<AtomicBool>,
    /// The presenter's sending task.
    sending: tokio::task::JoinHandle<Sender>,
    _redis: RedisServer,
}

impl Broadcast {
    /// `nodes` nodes of `capacity`, two replicas, a presenter sending, `viewers` viewers each
    /// decrypting its frames; the pools' failover delay is the tests' short one.
    async fn start(nodes: usize, viewers: usize, capacity: u64) -> Broadcast {
        Broadcast::start_with(nodes, viewers, capacity, FAILOVER_AFTER).await
    }

    /// [`Broadcast::start`] with the pools' failover delay `failover_after`.
    async fn start_with(
        nodes: usize,
        viewers: usize,
        capacity: u64,
        failover_after: Duration,
    ) -> Broadcast {
        let redis = RedisServer::start().expect("redis-server starts");
        let count = nodes;
        let mut nodes = Vec::new();
        for i in 0..count {
            nodes.push(start_node(&redis, &format!("node-{i}"), capacity).await);
        }
        all_registered(&redis, &nodes).await;
        let a = replica(&redis, &nodes, "replica-a", failover_after).await;
        let b = replica(&redis, &nodes, "replica-b", failover_after).await;
        a.create_room(json!({"name": ROOM, "kind": "broadcast", "max_viewers": 100}))
            .await;

        let mut presenter = Device::join_as(&a, ROOM, "presenter", Role::Presenter).await;
        let Media {
            mut peer,
            camera,
            audio,
            ..
        } = publish(&mut presenter, 0x5151_0001, 10).await;
        let _ = peer.take_incoming();
        let base = BaseKey::random(&mut rand::rng());
        let sender = Sender::new(SUITE, presenter.slot(), 1, base.clone()).expect("sender");
        let stop = Arc::new(AtomicBool::new(false));
        let sending = tokio::spawn(send_until(camera, audio, sender, stop.clone()));
        let tracks = published_tracks(&mut presenter).await;
        let mut broadcast = Broadcast {
            nodes,
            replicas: vec![a, b],
            presenter,
            _presenter_peer: peer,
            base,
            tracks,
            viewers: Vec::new(),
            stop,
            sending,
            _redis: redis,
        };
        for i in 0..viewers {
            broadcast.add_viewer(&format!("viewer-{i:02}")).await;
        }
        broadcast
    }

    /// A viewer on replica `i % 2`, with the presenter's key and its media session started.
    async fn add_viewer(&mut self, id: &str) {
        let at = &self.replicas[self.viewers.len() % 2];
        let mut v = Viewer::join(at, id).await;
        send_key(&mut self.presenter, &mut v, &self.base).await;
        v.start_media(&self.tracks, self.presenter.slot()).await;
        self.viewers.push(v);
    }

    /// `GET /v1/media-nodes` of the room's owner.
    async fn media_nodes(&self) -> Value {
        let s = &self.replicas[0];
        let resp = s
            .http
            .get(s.url("/v1/media-nodes"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("admin answers");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("JSON");
        crate::admin_api::check("MediaNodeList", &body);
        body
    }

    /// Per node (by control URL): the room's role there and the devices seated there.
    async fn seating(&self) -> Vec<(String, String, Vec<String>)> {
        let view = self.media_nodes().await;
        let mut out = Vec::new();
        for node in view["nodes"].as_array().expect("nodes") {
            for room in node["rooms"].as_array().expect("rooms") {
                if room["name"] == ROOM {
                    out.push((
                        node["url"].as_str().expect("url").to_owned(),
                        room["role"].as_str().unwrap_or("none").to_owned(),
                        room["media_sessions"]
                            .as_array()
                            .map(|d| {
                                d.iter()
                                    .map(|v| v.as_str().expect("device").to_owned())
                                    .collect()
                            })
                            .unwrap_or_default(),
                    ));
                }
            }
        }
        out
    }

    async fn every_viewer_decrypts(&self, n: u64) {
        for v in &self.viewers {
            v.frames_reach(
                n,
                Duration::from_secs(15),
                &format!("{} decrypts {n} frames", v.name()),
            )
            .await;
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The room on the origin and two edges, each node holding media sessions; the presenter on
/// the origin; every viewer seated once.
fn assert_spans_three_nodes(seating: &[(String, String, Vec<String>)], viewers: usize) {
    let roles: Vec<&str> = seating.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(seating.len(), 3, "the room on all three nodes: {seating:?}");
    assert_eq!(
        roles.iter().filter(|r| **r == "origin").count(),
        1,
        "{seating:?}"
    );
    assert_eq!(
        roles.iter().filter(|r| **r == "edge").count(),
        2,
        "{seating:?}"
    );
    let origin = seating
        .iter()
        .find(|(_, r, _)| r == "origin")
        .expect("origin");
    assert!(origin.2.contains(&"presenter".to_owned()), "{seating:?}");
    let mut seated: Vec<&String> = seating.iter().flat_map(|(_, _, d)| d).collect();
    seated.sort();
    seated.dedup();
    assert_eq!(
        seated.len(),
        viewers + 1,
        "every device seated once: {seating:?}"
    );
    assert!(
        seating.iter().all(|(_, _, d)| !d.is_empty()),
        "every node holds sessions: {seating:?}"
    );
}

async fn broadcast_spans_three_nodes(viewers: usize, capacity: u64) {
    let started = Instant::now();
    let b = Broadcast::start(3, viewers, capacity).await;
    b.every_viewer_decrypts(50).await;
    let seating = b.seating().await;
    println!(
        "{viewers} viewers over three nodes of capacity {capacity} in {:.1} s: {seating:?}",
        started.elapsed().as_secs_f64()
    );
    assert_spans_three_nodes(&seating, viewers);
    assert_eq!(
        b.replicas[0].metric("signaling_relay_links").await,
        2.0,
        "two relay links driven"
    );
    assert_eq!(
        b.replicas[0]
            .metric(r#"signaling_relay_setups_total{result="ok"}"#)
            .await,
        2.0
    );
    b.stop();
}

/// Sixty viewers over three nodes of capacity 22 (with `--capacity 20` three nodes hold 60
/// media sessions, short of the presenter, the place the origin keeps for a late publisher and
/// each edge's relayed publisher): 17 s on 2 cores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_of_60_viewers_spans_three_sfu_nodes() {
    broadcast_spans_three_nodes(60, 22).await;
}

/// `kill -9` of an edge during the 60-viewer broadcast, with the service's default failover
/// delay (3 s): each of its viewers decrypts again within 5 s of the kill (seated again: on
/// the other edge's free places and a new edge on the fourth node, a spare that the
/// broadcast did not need), the viewers on the other nodes see no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_sfu_killed_its_viewers_receive_again_within_5_s() {
    const VIEWERS: usize = 60;
    // Three nodes of 22 hold the broadcast; the fourth stays free until the kill, so the
    // killed edge's viewers have somewhere to go (three full nodes less one cannot hold 61).
    let mut b = Broadcast::start_with(4, VIEWERS, 22, PoolSettings::default().failover_after).await;
    b.every_viewer_decrypts(50).await;
    let seating = b.seating().await;
    assert_spans_three_nodes(&seating, VIEWERS);
    // The edge with the most viewers.
    let (edge_url, _, edge_viewers) = seating
        .iter()
        .filter(|(_, r, _)| r == "edge")
        .max_by_key(|(_, _, d)| d.len())
        .cloned()
        .expect("an edge");
    let killed = b
        .nodes
        .iter()
        .position(|n| n.base == edge_url)
        .expect("the edge is one of the nodes");
    let others: Vec<usize> = (0..b.viewers.len())
        .filter(|&i| !edge_viewers.contains(&b.viewers[i].name()))
        .collect();
    let before: Vec<u64> = others
        .iter()
        .map(|&i| b.viewers[i].frames.load(Ordering::Relaxed))
        .collect();

    for &i in &others {
        *b.viewers[i].max_gap.lock().expect("gap") = Duration::ZERO;
    }
    let kill = Instant::now();
    b.nodes[killed].process.kill();
    // Its viewers get media_reset and start fresh sessions; the others are not told anything.
    let tracks = b.tracks.clone();
    let slot = b.presenter.slot();
    let restarts = b
        .viewers
        .iter_mut()
        .filter(|v| edge_viewers.contains(&v.name()))
        .map(|v| {
            let tracks = tracks.clone();
            async move {
                let took = v.media_back_after_reset(&tracks, slot, kill).await;
                (v.name(), took)
            }
        });
    let times = futures_util::future::join_all(restarts).await;
    let mut worst = Duration::ZERO;
    for (name, took) in &times {
        println!(
            "{name}: first frame decrypted again {:.2} s after the kill",
            took.as_secs_f64()
        );
        worst = worst.max(*took);
    }
    let moved = times;
    println!(
        "worst of {} edge viewers: {:.2} s",
        moved.len(),
        worst.as_secs_f64()
    );
    assert!(worst <= Duration::from_secs(5), "worst {worst:?}");
    // No gap elsewhere: each other viewer's count kept growing through the kill, and each has
    // decrypted a frame in the last half second.
    for (&i, n) in others.iter().zip(before) {
        let v = &b.viewers[i];
        assert!(
            v.frames.load(Ordering::Relaxed) > n + 50,
            "{} kept receiving",
            v.name()
        );
        let last = v.last_frame.lock().expect("last").expect("a frame");
        assert!(
            last.elapsed() < Duration::from_millis(500),
            "{} still receives",
            v.name()
        );
        let gap = *v.max_gap.lock().expect("gap");
        println!(
            "{}: longest time between two frames through the kill {:.0} ms",
            v.name(),
            gap.as_secs_f64() * 1000.0
        );
        assert!(
            gap < Duration::from_millis(500),
            "{} saw a gap of {gap:?}",
            v.name()
        );
    }
    let seating = b.seating().await;
    println!("after the kill: {seating:?}");
    assert!(
        seating.iter().all(|(url, _, _)| *url != edge_url),
        "the killed edge holds nothing: {seating:?}"
    );
    assert_spans_three_nodes(&seating, VIEWERS);
    assert_eq!(
        b.replicas[0].metric("signaling_edge_failovers_total").await,
        1.0
    );
    // The lost edge's export was deleted on the origin: it sends on two links (the other
    // edge's and the new edge's), not three.
    let origin_url = &seating
        .iter()
        .find(|(_, r, _)| r == "origin")
        .expect("origin")
        .0;
    let exports = sfu_metric(origin_url, r#"sfu_relay_links{role="origin"} "#).await;
    assert_eq!(exports, 2.0, "the lost edge's export deleted");
    b.stop();
}

/// The viewers of one edge all leave: once the linger time has passed with nobody seated
/// there again, the edge is closed — its copy of the room on the node (and the import with
/// it) and the origin's export to it — while the viewers on the other nodes keep receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_its_last_viewer_left_is_closed_after_the_linger() {
    let mut b = Broadcast::start(3, 10, 5).await;
    b.every_viewer_decrypts(20).await;
    let seating = b.seating().await;
    assert_spans_three_nodes(&seating, 10);
    let (edge_url, _, leaving) = seating
        .iter()
        .filter(|(_, r, _)| r == "edge")
        .min_by_key(|(_, _, d)| d.len())
        .cloned()
        .expect("an edge");
    let origin_url = seating
        .iter()
        .find(|(_, r, _)| r == "origin")
        .expect("origin")
        .0
        .clone();
    assert_eq!(sfu_metric(&edge_url, "sfu_rooms ").await, 1.0);
    for v in b.viewers.iter_mut().filter(|v| leaving.contains(&v.name())) {
        v.dev.ws.send(&json!({"type": "leave"})).await;
    }
    let staying: Vec<usize> = (0..b.viewers.len())
        .filter(|&i| !leaving.contains(&b.viewers[i].name()))
        .collect();
    let before: Vec<u64> = staying
        .iter()
        .map(|&i| b.viewers[i].frames.load(Ordering::Relaxed))
        .collect();

    // Still there within the linger time (the seats are given up at once).
    tokio::time::sleep(EDGE_LINGER / 2).await;
    assert_eq!(b.replicas[0].metric("signaling_relay_links").await, 2.0);
    poll_until(
        EDGE_LINGER + Duration::from_secs(5),
        "the empty edge closed",
        async || b.replicas[0].metric("signaling_relay_links").await == 1.0,
    )
    .await;
    assert_eq!(
        b.replicas[0]
            .metric("signaling_relay_edges_closed_total")
            .await,
        1.0
    );
    poll_until(
        Duration::from_secs(5),
        "the edge node closed its copy and the origin its export",
        async || {
            sfu_metric(&edge_url, "sfu_rooms ").await == 0.0
                && sfu_metric(&origin_url, r#"sfu_relay_links{role="origin"} "#).await == 1.0
        },
    )
    .await;
    let seating = b.seating().await;
    assert_eq!(seating.len(), 2, "the room on two nodes now: {seating:?}");
    assert!(
        seating.iter().all(|(url, _, _)| *url != edge_url),
        "{seating:?}"
    );
    // Nobody else lost anything.
    for (&i, n) in staying.iter().zip(before) {
        let v = &b.viewers[i];
        poll_until(
            Duration::from_secs(5),
            &format!("{} keeps receiving", v.name()),
            async || v.frames.load(Ordering::Relaxed) > n + 50,
        )
        .await;
    }
    b.stop();
}

/// A second presenter publishing after the edges exist reaches the edge viewers (the origin's
/// `track_published` drives a sync of each edge's import), and every track is announced once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_published_after_the_edges_exist_reaches_edge_viewers() {
    let mut b = Broadcast::start(3, 10, 5).await;
    b.every_viewer_decrypts(20).await;
    let seating = b.seating().await;
    assert_spans_three_nodes(&seating, 10);
    let edge_devices: Vec<String> = seating
        .iter()
        .filter(|(_, r, _)| r == "edge")
        .flat_map(|(_, _, d)| d.clone())
        .collect();

    // The second presenter, on the origin like every publisher.
    let mut second = Device::join_as(&b.replicas[1], ROOM, "presenter-2", Role::Presenter).await;
    let Media {
        mut peer,
        camera,
        audio,
        ..
    } = publish(&mut second, 0x5151_0002, 10).await;
    let _ = peer.take_incoming();
    let base = BaseKey::random(&mut rand::rng());
    let sender = Sender::new(SUITE, second.slot(), 1, base.clone()).expect("sender");
    tokio::spawn(send_until(camera, audio, sender, b.stop.clone()));
    // An edge viewer hears of the new tracks once each (the edge's own announcements of them
    // are dropped), gets the key and subscribes to them, by the origin's ids.
    let v = b
        .viewers
        .iter_mut()
        .find(|v| edge_devices.contains(&v.name()))
        .expect("an edge viewer");
    let mut new_tracks: Vec<String> = Vec::new();
    let mut quiet_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < quiet_until {
        let Ok(m) = tokio::time::timeout_at(quiet_until.into(), v.dev.ws.recv()).await else {
            break;
        };
        if m["type"] == "track_published" && m["track"]["publisher"] == "presenter-2" {
            new_tracks.push(m["track"]["id"].as_str().expect("id").to_owned());
            if new_tracks.len() == 2 {
                // A second announcement of either would come within a second.
                quiet_until = Instant::now() + Duration::from_secs(1);
            }
        }
    }
    new_tracks.sort();
    let mut once = new_tracks.clone();
    once.dedup();
    assert_eq!(
        new_tracks.len(),
        2,
        "two new tracks, each announced once: {new_tracks:?}"
    );
    assert_eq!(once, new_tracks);
    // The second presenter's key for the edge viewer.
    let to_bundle = DeviceBundle::from_json(&v.dev.keys.bundle().to_json())
        .expect("bundle")
        .verify()
        .expect("self-signed");
    let call = second.joined["call"].as_str().expect("call").to_owned();
    let grant = KeyGrant {
        slot: second.slot(),
        generation: 1,
        step: 0,
        suite: SUITE,
    };
    let envelope = KeyEnvelope::seal(
        &second.keys,
        &to_bundle,
        ROOM,
        &call,
        grant,
        &base,
        &mut rand::rng(),
    )
    .expect("seals");
    second
        .ws
        .send(&json!({"type": "key_envelope", "envelope": serde_json::to_value(&envelope).expect("json")}))
        .await;
    let relayed = v.dev.ws.recv_type("key_envelope").await;
    let relayed: KeyEnvelope = serde_json::from_value(relayed["envelope"].clone()).expect("parses");
    let from_bundle = DeviceBundle::from_json(&second.keys.bundle().to_json())
        .expect("bundle")
        .verify()
        .expect("self-signed");
    let (got, key) = relayed
        .open(&v.dev.keys, &from_bundle, ROOM, &call)
        .expect("opens");
    v.store
        .lock()
        .expect("store")
        .install(Instant::now(), got.slot, 1, 0, SUITE, key)
        .expect("installs");
    // It subscribes to all four tracks by the origin's ids; its edge node offers the new ones.
    let mut all = b.tracks.clone();
    all.extend(new_tracks);
    let subs: Vec<Value> = all.iter().map(|t| json!({"track": t})).collect();
    v.dev
        .ws
        .send(&json!({"type": "subscribe", "subscriptions": subs}))
        .await;
    let offer = v.dev.ws.recv_type("offer").await;
    let answer = v
        .peer
        .as_ref()
        .expect("viewer peer")
        .answer(offer["sdp"].as_str().expect("offer sdp"))
        .await
        .expect("answer");
    v.dev
        .ws
        .send(&json!({"type": "answer", "sdp": answer}))
        .await;
    let name = v.name();
    let other = v.other_frames.clone();
    poll_until(
        Duration::from_secs(10),
        &format!("{name} on an edge decrypts the second presenter's frames"),
        async || other.load(Ordering::Relaxed) >= 20,
    )
    .await;
    assert!(
        b.replicas[0]
            .metric(r#"signaling_relay_syncs_total{result="ok"}"#)
            .await
            >= 2.0,
        "the edges were synced"
    );
    b.stop();
    drop(peer);
}

impl Device {
    /// Joins `room` as `id` with `role`.
    pub(crate) async fn join_as(s: &TestServer, room: &str, id: &str, role: Role) -> Device {
        let keys = DeviceKeys::generate(DeviceId::new(id).expect("valid id"), &mut rand::rng());
        let bundle: Value = serde_json::from_str(&keys.bundle().to_json()).expect("bundle JSON");
        let mut ws = s.connect().await;
        ws.send(
            &json!({"type": "join", "v": 1, "room": room, "device": bundle,
            "token": token(room, id, role), "name": id}),
        )
        .await;
        let joined = ws.recv_type("joined").await;
        assert_eq!(joined["media"], true, "{joined}");
        Device { keys, ws, joined }
    }
}

/// `kill -9` of the origin: today's behaviour (docs/architecture.md §7.44) — the room moves to
/// another node, everyone (presenter included) gets `media_reset` — and the edge copies are
/// closed first; after their fresh sessions every viewer decrypts again and the room spans
/// three live nodes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_sfu_killed_the_room_moves_its_edges_close_and_everyone_receives_again() {
    let mut b = Broadcast::start(4, 10, 5).await;
    b.every_viewer_decrypts(20).await;
    let seating = b.seating().await;
    assert_spans_three_nodes(&seating, 10);
    let origin_url = seating
        .iter()
        .find(|(_, r, _)| r == "origin")
        .expect("origin")
        .0
        .clone();
    let killed = b
        .nodes
        .iter()
        .position(|n| n.base == origin_url)
        .expect("the origin is one of the nodes");
    let kill = Instant::now();
    b.nodes[killed].process.kill();

    // The presenter starts a fresh session and publishes again, with the same key.
    let reset = b.presenter.ws.recv_type("media_reset").await;
    assert_eq!(reset["reason"], "media_node_lost", "{reset}");
    b.stop.store(true, Ordering::Relaxed);
    let sending = std::mem::replace(&mut b.sending, tokio::spawn(std::future::pending()));
    let sender = sending.await.expect("sending task");
    let Media {
        mut peer,
        camera,
        audio,
        ..
    } = publish(&mut b.presenter, 0x5151_0003, 10).await;
    let _ = peer.take_incoming();
    b._presenter_peer = peer;
    b.stop = Arc::new(AtomicBool::new(false));
    b.sending = tokio::spawn(send_until(camera, audio, sender, b.stop.clone()));
    let tracks = published_tracks(&mut b.presenter).await;
    b.tracks = tracks.clone();

    let slot = b.presenter.slot();
    let restarts = b.viewers.iter_mut().map(|v| {
        let tracks = tracks.clone();
        async move { v.media_back_after_reset(&tracks, slot, kill).await }
    });
    let times = futures_util::future::join_all(restarts).await;
    let worst = times.iter().max().copied().unwrap_or_default();
    println!(
        "origin killed: 10 viewers decrypt again {:.2}–{:.2} s after the kill",
        times
            .iter()
            .min()
            .copied()
            .unwrap_or_default()
            .as_secs_f64(),
        worst.as_secs_f64()
    );
    let seating = b.seating().await;
    println!("after the kill: {seating:?}");
    assert!(
        seating.iter().all(|(url, _, _)| *url != origin_url),
        "the killed origin holds nothing: {seating:?}"
    );
    assert_spans_three_nodes(&seating, 10);
    b.stop();
}
