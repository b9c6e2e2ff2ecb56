//! The admin REST API against the running service, every response validated against the
//! component schemas of `openapi.json`; and `/metrics` carrying every name of docs/metrics.md.

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ADMIN, Seen, TestServer, config, token};
use serde_json::{Value, json};
use signaling::policy::Role;

/// What is wrong with `instance` against `#/components/schemas/<name>` of the OpenAPI document
/// (nothing when it fits).
pub(crate) fn schema_errors(name: &str, instance: &Value) -> Vec<String> {
    let doc: Value =
        serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json parses");
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

/// Validates `instance` against `#/components/schemas/<name>` of the OpenAPI document.
pub(crate) fn check(name: &str, instance: &Value) {
    let errors = schema_errors(name, instance);
    assert!(
        errors.is_empty(),
        "{name} does not match openapi.json: {errors:?}\n{instance}"
    );
}

fn recording(room: &str, device: &str, identity_key: &str) -> Value {
    let doc = json!({"v": 1, "room": room, "issued_at": 1_700_000_000u64, "retention_days": 90,
        "recorders": [{"device": device, "identity_key": identity_key}]});
    json!({
        "v": 1,
        "document": URL_SAFE_NO_PAD.encode(serde_json::to_vec(&doc).expect("json")),
        "admin_key": URL_SAFE_NO_PAD.encode([9u8; 32]),
        "sig": URL_SAFE_NO_PAD.encode([8u8; 64]),
    })
}

#[tokio::test]
async fn rooms_lifecycle_matches_the_openapi_document() {
    let s = TestServer::start(config()).await;
    let created = s
        .create_room(json!({"name": "standup", "kind": "meeting", "max_callers": 5}))
        .await;
    check("RoomDetail", &created);
    assert_eq!(created["policy"]["max_callers"], 5);
    // The node in this process holds it (no URL, no registry).
    let nodes: Value = s
        .http
        .get(s.url("/v1/media-nodes"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("media nodes answer")
        .json()
        .await
        .expect("media nodes JSON");
    check("MediaNodeList", &nodes);
    assert_eq!(
        nodes,
        json!({"nodes": [{"state": "attached", "participants": 0,
            "rooms": [{"name": "standup", "participants": 0}]}]})
    );
    assert_eq!(created["policy"]["e2ee"], true);

    let rec_ik = common::bundle("rec-1")["identity_key"].clone();
    let rec_ik = rec_ik.as_str().expect("string");
    let bc = s
        .create_room(
            json!({"name": "town", "kind": "broadcast", "max_viewers": 50,
            "recording": recording("town", "rec-1", rec_ik)}),
        )
        .await;
    check("RoomDetail", &bc);

    // Participants, including the recorder named by the signed policy.
    let mut a = s.connect().await;
    a.join("standup", &token("standup", "alice", Role::Caller), "dev-a")
        .await;
    a.send(&json!({"type": "stats", "decrypt_failures": 1, "frames_decrypted": 10, "rtt_seconds": 0.05})).await;
    let mut p = s.connect().await;
    p.join("town", &token("town", "host", Role::Presenter), "pres")
        .await;
    let mut rec = s.connect().await;
    let j = rec
        .join("town", &token("town", "archiver", Role::Recorder), "rec-1")
        .await;
    assert_eq!(
        j["recording"]["admin_key"],
        bc["policy"]["recording"]["admin_key"]
    );
    // The presenter sees the recorder announced in its roster.
    let delta = p.recv_type("roster").await;
    assert_eq!(delta["added"][0]["role"], "recorder");
    // A recorder device not named by the policy is refused.
    let mut fake = s.connect().await;
    fake.send(&common::join_msg(
        "town",
        &token("town", "x", Role::Recorder),
        "rec-2",
    ))
    .await;
    fake.expect_error("role_not_allowed").await;

    let list: Value = s
        .http
        .get(s.url("/v1/rooms"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    check("RoomList", &list);
    let names: Vec<&str> = list["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, vec!["standup", "town"]);
    assert_eq!(list["rooms"][1]["recorded"], true);

    let detail: Value = s
        .http
        .get(s.url("/v1/rooms/standup"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    check("RoomDetail", &detail);
    assert_eq!(detail["participants"][0]["device"], "dev-a");
    let town: Value = s
        .http
        .get(s.url("/v1/rooms/town"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    check("RoomDetail", &town);
    assert_eq!(town["participants"].as_array().map(Vec::len), Some(2));

    // Kick: the device is told and disconnected, others see it leave.
    let r = s
        .http
        .delete(s.url("/v1/rooms/town/participants/rec-1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("kick");
    assert_eq!(r.status(), 204);
    assert_eq!(
        rec.recv().await,
        json!({"type": "left", "reason": "kicked"})
    );
    assert!(matches!(rec.next().await, Seen::Closed(Some(1000))));
    assert_eq!(p.recv_type("roster").await["removed"], json!(["rec-1"]));
    assert_eq!(p.recv_type("membership").await["action"], "rekey");
    let r = s
        .http
        .delete(s.url("/v1/rooms/town/participants/rec-1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("kick");
    assert_eq!(r.status(), 404);
    check("Error", &r.json().await.expect("json"));

    // Close: everyone is told; the room is gone.
    let r = s
        .http
        .delete(s.url("/v1/rooms/standup"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("close");
    assert_eq!(r.status(), 204);
    assert_eq!(a.recv_type("left").await["reason"], "room_closed");
    let r = s
        .http
        .get(s.url("/v1/rooms/standup"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.expect("json");
    check("Error", &body);
    assert_eq!(body["code"], "room_not_found");
}

#[tokio::test]
async fn admin_requests_are_checked() {
    let s = TestServer::start(config()).await;
    let r = s.http.get(s.url("/v1/rooms")).send().await.expect("list");
    assert_eq!(r.status(), 401);
    check("Error", &r.json().await.expect("json"));
    let r = s
        .http
        .get(s.url("/v1/rooms"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 401);
    for path in ["/v1/media-nodes"] {
        let r = s.http.get(s.url(path)).send().await.expect("answer");
        assert_eq!(r.status(), 401, "{path} without a token");
        let r = s
            .http
            .get(s.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 401, "{path} with a wrong token");
    }

    let bad = [
        json!({"name": "a", "kind": "meeting", "max_callers": 101}),
        json!({"name": "a", "kind": "broadcast", "max_viewers": 10_001}),
        json!({"name": "a", "kind": "meeting", "e2ee": false}),
        json!({"name": "a", "kind": "meeting", "max_viewers": 3}),
        json!({"name": "a b", "kind": "meeting"}),
        json!({"name": "a", "kind": "webinar"}),
        json!({"name": "a", "kind": "meeting", "recording": recording("other", "rec", &URL_SAFE_NO_PAD.encode([1u8; 32]))}),
    ];
    for body in bad {
        let r = s
            .http
            .post(s.url("/v1/rooms"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 400, "{body}");
        check("Error", &r.json().await.expect("json"));
    }
    s.create_room(json!({"name": "a", "kind": "meeting"})).await;
    let r = s
        .http
        .post(s.url("/v1/rooms"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "a", "kind": "meeting"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 409);
    check("Error", &r.json().await.expect("json"));
}

#[tokio::test]
async fn metrics_and_health() {
    let s = TestServer::start(config()).await;
    let health: Value = s
        .http
        .get(s.url("/healthz"))
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(health, json!({"status": "ok", "media": "attached"}));

    s.meeting("m").await;
    let mut a = s.connect().await;
    a.join("m", &token("m", "alice", Role::Caller), "dev-a")
        .await;
    let text = s.metrics().await;
    let doc = include_str!("../../../docs/metrics.md");
    let names: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `signaling_"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    assert!(
        names.len() >= 10,
        "found the signaling table in docs/metrics.md"
    );
    for name in names {
        let full = format!("signaling_{name}");
        assert!(
            text.contains(&format!("\n{full}")),
            "{full} missing from /metrics"
        );
    }
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes"] {
        assert!(text.contains(name), "{name} missing");
    }
    assert_eq!(s.metric("signaling_rooms").await, 1.0);
    assert_eq!(s.metric("signaling_connections").await, 1.0);
    assert_eq!(s.metric("signaling_joins_total{result=\"ok\"}").await, 1.0);
    assert_eq!(
        s.metric("signaling_messages_sent_total{type=\"joined\"}")
            .await,
        1.0
    );
    assert!(
        !text.contains("dev-a") && !text.contains("alice"),
        "no ids in labels"
    );
}
