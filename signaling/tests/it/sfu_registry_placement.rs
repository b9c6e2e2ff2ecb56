//! Rooms placed by the SFU node registry on Redis: a real `redis-server`, two or three real
//! `sfu` processes started with `--redis-url` (each publishes its record every second with a
//! 3 s lease) and signaling's pool reading the registry (what `signaling serve --sfu-url A,B
//! --redis-url …` runs). A new room goes to the node with the fewest participants by its own
//! record, never to one at its `--capacity` or one whose lease ran out, and a Redis that goes
//! away stops nothing: rooms are still placed (by what signaling itself sees) and the registry
//! is read again once Redis is back. With discovery, a node that publishes under an allowed
//! control URL joins the pool as it appears; one under another URL is refused and counted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sfu_registry::{KeySpace, RedisServer, Registry, RegistryConfig};
use signaling::auth::Secret;
use signaling::media_node::{
    MediaNode, NodeFactory, PoolSettings, RemoteSfu, SfuPool, watch_registry,
};

use crate::common::{ADMIN, TestServer, config};
use crate::media_call::{CONTROL_SECRET, Device, Media, publish};
use crate::sfu_failover::{media_node_of, signal};
use crate::sfu_restart::{SfuProcess, free_ports, poll_until, sfu_answers};

/// How often the tests' pools read the registry (the service reads it every second).
const READ_EVERY: Duration = Duration::from_millis(200);

/// One `sfu` process publishing to the registry (the registry, cascade and replica tests').
pub(crate) struct Node {
    pub(crate) process: SfuProcess,
    pub(crate) base: String,
}

impl Node {
    /// Node `id` publishing to `redis` under its control URL, with `extra` arguments
    /// (`--capacity`, ...); returns once its control API answers.
    pub(crate) async fn start(
        http: &reqwest::Client,
        redis: &RedisServer,
        id: &str,
        extra: &[&str],
    ) -> Node {
        let (http_port, udp_port) = free_ports();
        let base = format!("http://127.0.0.1:{http_port}");
        let mut args: Vec<String> = vec![
            "--node-id".into(),
            id.into(),
            "--redis-url".into(),
            redis.url(),
            "--control-url".into(),
            base.clone(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let node = Node {
            process: SfuProcess::start_with(http_port, udp_port, &args),
            base,
        };
        poll_until(Duration::from_secs(20), "the sfu answers", || {
            sfu_answers(http, &node.base)
        })
        .await;
        node
    }
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

/// Signaling over a pool of `nodes` that places rooms by the registry in `redis`.
async fn registry_pool_server(nodes: &[&Node], redis: &RedisServer) -> TestServer {
    let remotes: Vec<Arc<dyn MediaNode>> = nodes
        .iter()
        .map(|n| {
            Arc::new(RemoteSfu::new(&n.base, Secret::new(CONTROL_SECRET), None).expect("client"))
                as Arc<dyn MediaNode>
        })
        .collect();
    let pool = SfuPool::new(remotes, PoolSettings::default())
        .expect("pool")
        .with_registry(watch_registry(registry(redis), READ_EVERY))
        .expect("registry link");
    TestServer::start_with_node(config(), Arc::new(pool)).await
}

/// Signaling whose pool starts empty and takes the nodes the registry announces under a control
/// URL starting with `allowed`.
async fn discovering_server(redis: &RedisServer, allowed: &str) -> TestServer {
    let make: NodeFactory = Arc::new(|url: &str| {
        Ok(Arc::new(RemoteSfu::new(url, Secret::new(CONTROL_SECRET), None)?) as Arc<dyn MediaNode>)
    });
    let pool = SfuPool::discovering(
        PoolSettings::default(),
        watch_registry(registry(redis), READ_EVERY),
        vec![allowed.to_owned()],
        make,
    )
    .expect("discovering pool");
    TestServer::start_with_node(config(), Arc::new(pool)).await
}

/// Waits until the registry holds a record for `node` whose participants are `participants`
/// (and one read later, so signaling's view has it too).
async fn registered_with(redis: &RedisServer, node: &Node, participants: u64) {
    let registry = registry(redis);
    poll_until(
        Duration::from_secs(10),
        &format!("{} registered with {participants} participants", node.base),
        || async {
            registry.live_nodes().await.is_ok_and(|live| {
                live.records
                    .iter()
                    .any(|r| r.control_url == node.base && r.participants == participants)
            })
        },
    )
    .await;
    tokio::time::sleep(READ_EVERY * 2).await;
}

/// Waits until the registry holds no record for `node`.
async fn unregistered(redis: &RedisServer, node: &Node, within: Duration) {
    let registry = registry(redis);
    poll_until(
        within,
        &format!("{} gone from the registry", node.base),
        || async {
            registry
                .live_nodes()
                .await
                .is_ok_and(|live| live.records.iter().all(|r| r.control_url != node.base))
        },
    )
    .await;
    tokio::time::sleep(READ_EVERY * 2).await;
}

/// `GET /v1/media-nodes`, checked against `openapi.json`.
async fn media_nodes(s: &TestServer) -> Value {
    let body: Value = s
        .http
        .get(s.url("/v1/media-nodes"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("media nodes JSON");
    crate::admin_api::check("MediaNodeList", &body);
    body
}

/// `id` joins `room` and publishes (a participant of the room's SFU node).
async fn participant(s: &TestServer, room: &str, id: &str, ssrc: u32) -> (Device, Media) {
    let mut dev = Device::join(s, room, id).await;
    let media = publish(&mut dev, ssrc, 10).await;
    (dev, media)
}

/// A real Redis, two `sfu` nodes publishing to it (node A with `a_args`), both registered
/// empty, and signaling's pool over them reading the registry.
struct Setup {
    redis: RedisServer,
    a: Node,
    b: Node,
    s: TestServer,
}

impl Setup {
    async fn start(a_args: &[&str]) -> Setup {
        let redis = RedisServer::start().expect("redis-server starts");
        let http = reqwest::Client::new();
        let a = Node::start(&http, &redis, "node-a", a_args).await;
        let b = Node::start(&http, &redis, "node-b", &[]).await;
        registered_with(&redis, &a, 0).await;
        registered_with(&redis, &b, 0).await;
        let s = registry_pool_server(&[&a, &b], &redis).await;
        Setup { redis, a, b, s }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_go_to_the_node_with_fewest_participants_in_the_registry() {
    let Setup { redis, a, b, s } = Setup::start(&[]).await;

    // Both empty: the first listed. Two participants there.
    s.meeting("busy").await;
    assert_eq!(media_node_of(&s, "busy").await, json!(a.base));
    let _alice = participant(&s, "busy", "alice-dev", 0x0a11_ce00).await;
    let _bob = participant(&s, "busy", "bob-dev", 0x0b0b_0000).await;
    registered_with(&redis, &a, 2).await;

    // A room on each node now; by rooms alone the next would tie and go to A. By the
    // registry B holds no participant: both go to B.
    s.meeting("second").await;
    assert_eq!(media_node_of(&s, "second").await, json!(b.base));
    s.meeting("third").await;
    assert_eq!(
        media_node_of(&s, "third").await,
        json!(b.base),
        "A holds two participants, B none"
    );
    assert!(
        s.metric("signaling_registry_reads_total{result=\"ok\"}")
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_capacity_takes_no_new_rooms() {
    let Setup { redis, a, b, s } = Setup::start(&["--capacity", "1"]).await;

    s.meeting("small").await;
    assert_eq!(media_node_of(&s, "small").await, json!(a.base));
    let _alice = participant(&s, "small", "alice-dev", 0x0a11_ce00).await;
    registered_with(&redis, &a, 1).await;
    s.meeting("large").await;
    assert_eq!(media_node_of(&s, "large").await, json!(b.base));
    let _bob = participant(&s, "large", "bob-dev", 0x0b0b_0000).await;
    let _carol = participant(&s, "large", "carol-dev", 0x0ca7_0000).await;
    registered_with(&redis, &b, 2).await;

    // A holds fewer participants (1 against 2) but is at its capacity of 1.
    s.meeting("next").await;
    assert_eq!(
        media_node_of(&s, "next").await,
        json!(b.base),
        "the full node is skipped"
    );
    let nodes = media_nodes(&s).await;
    assert_eq!(nodes["nodes"][0]["registry"]["capacity"], 1);
    assert_eq!(nodes["nodes"][0]["registry"]["participants"], 1);
    assert!(
        nodes["nodes"][1]["registry"].get("capacity").is_none(),
        "no capacity: unlimited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_ran_out_takes_no_new_rooms() {
    let Setup { redis, a, b, s } = Setup::start(&[]).await;

    // A frozen node (SIGSTOP) still has an open event stream, so by it alone it looks attached
    // for seconds; its record's lease (3 s) runs out first.
    signal(&a.process, "-STOP");
    unregistered(&redis, &a, Duration::from_secs(6)).await;
    s.meeting("after-freeze").await;
    assert_eq!(
        media_node_of(&s, "after-freeze").await,
        json!(b.base),
        "the node without a live record is skipped"
    );
    signal(&a.process, "-CONT");
    registered_with(&redis, &a, 0).await;
    s.meeting("after-thaw").await;
    assert_eq!(
        media_node_of(&s, "after-thaw").await,
        json!(a.base),
        "back in the registry with fewer rooms placed: it takes the next"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_keeps_placing_rooms() {
    let Setup {
        mut redis, a, b, s, ..
    } = Setup::start(&[]).await;
    s.meeting("before").await;
    assert_eq!(media_node_of(&s, "before").await, json!(a.base));

    redis.kill();
    poll_until(Duration::from_secs(5), "a failed registry read", || async {
        s.metric("signaling_registry_reads_total{result=\"error\"}")
            .await
            > 0.0
    })
    .await;
    // By what signaling sees (fewest rooms placed here): B.
    s.meeting("during").await;
    assert_eq!(media_node_of(&s, "during").await, json!(b.base));
    let _alice = participant(&s, "during", "alice-dev", 0x0a11_ce00).await;

    redis.restart().expect("redis-server restarts");
    // The nodes publish again on their next heartbeat; signaling reads them.
    registered_with(&redis, &a, 0).await;
    registered_with(&redis, &b, 1).await;
    let ok_before = s
        .metric("signaling_registry_reads_total{result=\"ok\"}")
        .await;
    poll_until(
        Duration::from_secs(5),
        "the registry read again",
        || async {
            s.metric("signaling_registry_reads_total{result=\"ok\"}")
                .await
                > ok_before
        },
    )
    .await;
    // A room each; B holds a participant: A.
    s.meeting("after").await;
    assert_eq!(media_node_of(&s, "after").await, json!(a.base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_discovered_in_the_registry_join_the_pool() {
    let redis = RedisServer::start().expect("redis-server starts");
    let http = reqwest::Client::new();
    let s = discovering_server(&redis, "http://127.0.0.1:").await;
    assert_eq!(media_nodes(&s).await, json!({"nodes": []}), "no node yet");
    let refused = s
        .http
        .post(s.url("/v1/rooms"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "early", "kind": "meeting"}))
        .send()
        .await
        .expect("admin answers");
    assert_eq!(refused.status(), 502, "no node to place a room on");

    let a = Node::start(&http, &redis, "node-a", &[]).await;
    poll_until(Duration::from_secs(10), "node A discovered", || async {
        media_nodes(&s).await["nodes"][0]["url"] == json!(a.base)
    })
    .await;
    poll_until(Duration::from_secs(10), "node A attached", || async {
        media_nodes(&s).await["nodes"][0]["state"] == "attached"
    })
    .await;
    s.meeting("first").await;
    assert_eq!(media_node_of(&s, "first").await, json!(a.base));
    // Media flows through a discovered node: a participant's offer is answered there.
    let _alice = participant(&s, "first", "alice-dev", 0x0a11_ce00).await;
    registered_with(&redis, &a, 1).await;

    let b = Node::start(&http, &redis, "node-b", &[]).await;
    poll_until(
        Duration::from_secs(10),
        "node B discovered and attached",
        || async {
            let nodes = media_nodes(&s).await;
            nodes["nodes"][1]["url"] == json!(b.base) && nodes["nodes"][1]["state"] == "attached"
        },
    )
    .await;
    registered_with(&redis, &b, 0).await;
    s.meeting("second").await;
    assert_eq!(
        media_node_of(&s, "second").await,
        json!(b.base),
        "the new node, with no participant"
    );
    assert_eq!(
        s.metric("signaling_registry_nodes_refused_total").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_record_under_a_url_not_allowed_is_refused() {
    let redis = RedisServer::start().expect("redis-server starts");
    let http = reqwest::Client::new();
    let s = discovering_server(&redis, "https://sfu-").await;
    let _a = Node::start(&http, &redis, "node-a", &[]).await;
    poll_until(
        Duration::from_secs(10),
        "the record refused and counted",
        || async { s.metric("signaling_registry_nodes_refused_total").await >= 1.0 },
    )
    .await;
    assert_eq!(
        media_nodes(&s).await,
        json!({"nodes": []}),
        "signaling sends its control secret to no node it was not told to trust"
    );
    // Counted once, not at every read.
    tokio::time::sleep(READ_EVERY * 5).await;
    assert_eq!(
        s.metric("signaling_registry_nodes_refused_total").await,
        1.0
    );
}
