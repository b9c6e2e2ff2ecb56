//! The control API over real HTTP with a real `webrtc` client: requests without the shared
//! secret are refused, an authenticated client creates a room and adds a participant whose SDP
//! answer connects; `/metrics`, `/healthz` and `/readyz` answer without credentials and
//! `/readyz` turns 503 once the node drains.

use crate::common;

use std::sync::Arc;

use crate::common::peers::{accept_answer, publisher};
use sfu::control::{self, ControlState};
use sfu::node::{NodeConfig, Observer, start_node};
use sfu::ops::{self, OpsState, SfuMetrics};

const SECRET: &str = "test-secret-0123456789abcdef0123456789";

async fn serve() -> String {
    let metrics = Arc::new(SfuMetrics::new().expect("registry builds"));
    let node = start_node(
        NodeConfig::default(),
        Some(metrics.clone() as Arc<dyn Observer>),
    )
    .await
    .expect("node starts");
    let app = ops::router(OpsState {
        node: node.clone(),
        metrics,
    })
    .merge(control::router(ControlState {
        node,
        secret: SECRET.into(),
        node_id: "node-test".into(),
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_are_refused_and_authenticated_join_connects() {
    common::init_tracing();
    let base = serve().await;
    let http = reqwest::Client::new();

    // No credentials, a wrong secret, a wrong scheme: 401, and nothing is created.
    let body = serde_json::json!({"room": "r1", "kind": "meeting"});
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(&*format!("Basic {SECRET}")),
    ] {
        let mut req = http.post(format!("{base}/control/rooms")).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("request sent");
        assert_eq!(resp.status(), 401, "refused with {auth:?}");
    }
    let resp = http
        .get(format!("{base}/control/status"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 401);

    // Authenticated: the room is created once.
    let bearer = format!("Bearer {SECRET}");
    let resp = http
        .post(format!("{base}/control/rooms"))
        .header("authorization", &bearer)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 201);
    let resp = http
        .post(format!("{base}/control/rooms"))
        .header("authorization", &bearer)
        .json(&body)
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 409, "a room name is created once");

    // A real client joins through the API and connects with the answer.
    let (client, _video) = publisher().await;
    let resp = http
        .post(format!("{base}/control/rooms/r1/participants"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({
            "device": "d1",
            "role": "caller",
            "offer": client.offer().await.expect("offer"),
        }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.expect("json answer");
    let answer = answer["answer"].as_str().expect("answer sdp").to_owned();
    assert!(answer.contains("a=ice-lite"));
    accept_answer(&client, &answer, "the client with the API's answer").await;
    let status: serde_json::Value = http
        .get(format!("{base}/control/status"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("json status");
    assert_eq!(status["participants"], 1);
    assert_eq!(status["node_id"], "node-test");

    // Probes and metrics need no credentials.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("request sent")
        .text()
        .await
        .expect("text");
    for name in [
        "sfu_rooms 1",
        "sfu_participants 1",
        "sfu_join_latency_seconds_count",
        "sfu_forwarding_latency_seconds_count",
        "process_resident_memory_bytes",
        "sfu_packets_dropped_total",
    ] {
        assert!(metrics.contains(name), "/metrics has {name}");
    }
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(ready.status(), 200);

    // Removing is idempotent; draining turns /readyz to 503 and refuses new rooms.
    for _ in 0..2 {
        let resp = http
            .delete(format!("{base}/control/rooms/r1/participants/d1"))
            .header("authorization", &bearer)
            .send()
            .await
            .expect("request sent");
        assert_eq!(resp.status(), 204);
    }
    let resp = http
        .post(format!("{base}/control/drain"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 202);
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(ready.status(), 503);
    let resp = http
        .post(format!("{base}/control/rooms"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"room": "r2", "kind": "meeting"}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(resp.status(), 503);
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("request sent");
    assert_eq!(health.status(), 200);
    client.close().await;
}
