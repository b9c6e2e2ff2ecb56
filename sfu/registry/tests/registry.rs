//! The registry against a real `redis-server`.

use std::time::Duration;

use sfu_registry::{KeySpace, NodeRecord, RedisServer, Registry, RegistryConfig};

fn record(id: &str, participants: u64) -> NodeRecord {
    NodeRecord {
        node_id: id.into(),
        instance: format!("{id}-instance"),
        control_url: "http://127.0.0.1:7880".into(),
        media_address: "127.0.0.1:7882".into(),
        participants,
        rooms: 1,
        capacity: Some(20),
        forwarded_packets_per_second: 100.0,
        cpu_cores: 0.25,
        draining: false,
        heartbeat_unix_ms: 1,
    }
}

fn registry(server: &RedisServer, lease: Duration) -> Registry {
    Registry::new(
        &server.url(),
        RegistryConfig {
            keys: KeySpace::new("test"),
            lease,
            timeout: Duration::from_millis(500),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn published_records_are_read_back_sorted_by_node() {
    let server = RedisServer::start().unwrap();
    let registry = registry(&server, Duration::from_secs(5));
    registry.publish(&record("sfu-b", 3)).await.unwrap();
    registry.publish(&record("sfu-a", 7)).await.unwrap();
    // A heartbeat replaces the record.
    registry.publish(&record("sfu-b", 4)).await.unwrap();
    let live = registry.live_nodes().await.unwrap();
    assert_eq!(live.records, vec![record("sfu-a", 7), record("sfu-b", 4)]);
    assert_eq!(live.unreadable, 0);
}

#[tokio::test]
async fn a_node_without_heartbeats_is_gone_after_its_lease() {
    let server = RedisServer::start().unwrap();
    let registry = registry(&server, Duration::from_millis(300));
    registry.publish(&record("sfu-a", 1)).await.unwrap();
    assert_eq!(registry.live_nodes().await.unwrap().records.len(), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(registry.live_nodes().await.unwrap().records.is_empty());
    // The expired id left the set too.
    let mut c = registry.connection().await.unwrap();
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg("test:nodes")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ids.is_empty(), "{ids:?}");
}

#[tokio::test]
async fn a_withdrawn_node_is_gone_at_once() {
    let server = RedisServer::start().unwrap();
    let registry = registry(&server, Duration::from_secs(5));
    registry.publish(&record("sfu-a", 1)).await.unwrap();
    registry.publish(&record("sfu-b", 1)).await.unwrap();
    registry.withdraw("sfu-a").await.unwrap();
    let live = registry.live_nodes().await.unwrap();
    assert_eq!(live.records, vec![record("sfu-b", 1)]);
}

#[tokio::test]
async fn an_unreadable_record_is_skipped_and_counted() {
    let server = RedisServer::start().unwrap();
    let registry = registry(&server, Duration::from_secs(5));
    registry.publish(&record("sfu-a", 1)).await.unwrap();
    let mut c = registry.connection().await.unwrap();
    let _: () = redis::pipe()
        .cmd("SET")
        .arg("test:node:sfu-x")
        .arg("{not json")
        .ignore()
        .cmd("SADD")
        .arg("test:nodes")
        .arg("sfu-x")
        .ignore()
        .query_async(&mut c)
        .await
        .unwrap();
    let live = registry.live_nodes().await.unwrap();
    assert_eq!(live.records, vec![record("sfu-a", 1)]);
    assert_eq!(live.unreadable, 1);
}

#[tokio::test]
async fn redis_away_is_an_error_in_bounded_time_and_calls_work_again_after_it_returns() {
    let mut server = RedisServer::start().unwrap();
    let registry = registry(&server, Duration::from_secs(5));
    registry.publish(&record("sfu-a", 1)).await.unwrap();
    server.kill();
    let started = std::time::Instant::now();
    let failed = registry.publish(&record("sfu-a", 2)).await;
    assert!(failed.is_err(), "publish with Redis down succeeded");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a call with Redis down took {:?}",
        started.elapsed()
    );
    server.restart().unwrap();
    // The restarted server is empty; the next heartbeats publish again.
    let mut published = false;
    for _ in 0..20 {
        if registry.publish(&record("sfu-a", 3)).await.is_ok() {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        published,
        "no publish succeeded within 2 s of Redis returning"
    );
    assert_eq!(
        registry.live_nodes().await.unwrap().records,
        vec![record("sfu-a", 3)]
    );
}

#[test]
fn a_bad_url_is_refused_without_io() {
    let err = Registry::new("not a url", RegistryConfig::default()).unwrap_err();
    assert!(err.to_string().starts_with("Redis URL"), "{err}");
}
