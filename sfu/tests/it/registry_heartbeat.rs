//! The `sfu` process publishes its record to the node registry on a real `redis-server`:
//! load and drain state while it runs, withdrawn at once on SIGTERM, gone by its lease after
//! `kill -9`, and a Redis that goes away never stops the node.

use std::time::{Duration, Instant};

use sfu_registry::{KeySpace, NodeRecord, RedisServer, Registry, RegistryConfig};

use crate::common::peers::publisher;
use crate::common::poll_until;
use crate::common::sfu_process::{SfuProcess, metric, scrape};

fn reader(redis: &RedisServer) -> Registry {
    Registry::new(
        &redis.url(),
        RegistryConfig {
            keys: KeySpace::new("it"),
            ..Default::default()
        },
    )
    .expect("registry URL")
}

async fn record_of(registry: &Registry, node: &str) -> Option<NodeRecord> {
    registry
        .live_nodes()
        .await
        .ok()?
        .records
        .into_iter()
        .find(|r| r.node_id == node)
}

fn env<'a>(
    redis_url: &'a str,
    node: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("SFU_REDIS_URL", redis_url),
        ("SFU_REGISTRY_PREFIX", "it"),
        ("SFU_NODE_ID", node),
        ("SFU_CAPACITY", "20"),
    ];
    env.extend_from_slice(extra);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_publishes_its_load_and_withdraws_its_record_on_sigterm() {
    let redis = RedisServer::start().expect("redis-server starts");
    let url = redis.url();
    let mut node =
        SfuProcess::start(&env(&url, "sfu-hb", &[("SFU_DRAIN_TIMEOUT_SECONDS", "4")])).await;
    let registry = reader(&redis);

    let mut first = None;
    poll_until(
        Duration::from_secs(5),
        "the node's first record",
        async || {
            first = record_of(&registry, "sfu-hb").await;
            first.is_some()
        },
    )
    .await;
    let first = first.expect("record");
    assert_eq!(first.control_url, node.base(), "the default control URL");
    assert_eq!(first.capacity, Some(20));
    assert!(!first.draining);
    assert_eq!((first.participants, first.rooms), (0, 0));
    assert!(!first.instance.is_empty());

    // A room and a participant show in the next heartbeats.
    let http = reqwest::Client::new();
    node.create_room(&http, "r1").await;
    let (peer, _video) = publisher().await;
    node.add_caller(&http, "r1", "d1", &peer.offer().await.expect("offer"))
        .await;
    poll_until(
        Duration::from_secs(4),
        "participants = 1 in the record",
        async || {
            record_of(&registry, "sfu-hb")
                .await
                .is_some_and(|r| r.participants == 1 && r.rooms == 1)
        },
    )
    .await;

    // SIGTERM: the record says draining while the participant stays, then is withdrawn.
    node.sigterm();
    poll_until(
        Duration::from_secs(3),
        "draining = true in the record",
        async || {
            record_of(&registry, "sfu-hb")
                .await
                .is_some_and(|r| r.draining)
        },
    )
    .await;
    poll_until(Duration::from_secs(8), "the sfu to exit", async || {
        node.exited().is_some()
    })
    .await;
    assert!(
        record_of(&registry, "sfu-hb").await.is_none(),
        "the record is withdrawn when the node exits, not left to its lease"
    );
    assert!(
        node.lines()
            .iter()
            .any(|l| l.contains("node record withdrawn")),
        "the withdrawal is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_leaves_the_registry_within_its_lease() {
    let redis = RedisServer::start().expect("redis-server starts");
    let url = redis.url();
    let mut node = SfuProcess::start(&env(&url, "sfu-k9", &[])).await;
    let registry = reader(&redis);
    poll_until(Duration::from_secs(5), "the node's record", async || {
        record_of(&registry, "sfu-k9").await.is_some()
    })
    .await;
    node.kill9();
    let killed = Instant::now();
    poll_until(Duration::from_secs(5), "the record to expire", async || {
        record_of(&registry, "sfu-k9").await.is_none()
    })
    .await;
    let gone = killed.elapsed();
    eprintln!("record gone {} ms after kill -9", gone.as_millis());
    // The lease is 3 s from the last heartbeat, which was at most 1 s before the kill.
    assert!(gone <= Duration::from_millis(3500), "gone after {gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_keeps_serving_while_redis_is_away_and_publishes_again_after() {
    let mut redis = RedisServer::start().expect("redis-server starts");
    let url = redis.url();
    let node = SfuProcess::start(&env(&url, "sfu-away", &[])).await;
    let http = reqwest::Client::new();
    let registry = reader(&redis);
    poll_until(Duration::from_secs(5), "the node's record", async || {
        record_of(&registry, "sfu-away").await.is_some()
    })
    .await;

    redis.kill();
    poll_until(
        Duration::from_secs(5),
        "a failed heartbeat counted",
        async || {
            let text = scrape(&http, &node.base()).await;
            metric(&text, "sfu_registry_heartbeats_total{result=\"error\"}").unwrap_or(0.0) >= 1.0
        },
    )
    .await;
    // Still serving: health and the control API answer, a room can be created.
    let health = http
        .get(format!("{}/healthz", node.base()))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    node.create_room(&http, "while-redis-away").await;

    // The restarted Redis is empty; the next heartbeats fill it again.
    redis.restart().expect("redis-server restarts");
    let registry = reader(&redis);
    poll_until(
        Duration::from_secs(5),
        "the record back after Redis returns",
        async || {
            record_of(&registry, "sfu-away")
                .await
                .is_some_and(|r| r.rooms == 1)
        },
    )
    .await;
    let text = scrape(&http, &node.base()).await;
    assert!(metric(&text, "sfu_registry_heartbeats_total{result=\"ok\"}").unwrap_or(0.0) >= 2.0);
}
