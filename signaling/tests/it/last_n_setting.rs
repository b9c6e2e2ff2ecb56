//! The number of cameras each device receives (`last_n`; in a room with receive slots, its video
//! slots) is a room setting: the admin API's `last_n` and `signaling dev|serve --last-n` (the
//! rooms a join creates) reach the media node's room policy, embedded or over the control API,
//! and `joined.receive_slots.video` says what the node made of it. Out of range (0, above 25)
//! the admin API refuses the room with `bad_policy` and counts it.

use std::sync::Arc;

use serde_json::{Value, json};
use signaling::config::Config;

use crate::admin_api::check;
use crate::common::{ADMIN, TestServer, config};
use crate::media_call::{Device, node_behind_control_api};

/// A server whose media node is a real SFU reached over its HTTP control API.
async fn with_remote_sfu(cfg: Config) -> TestServer {
    let (_, remote) = node_behind_control_api().await;
    TestServer::start_with_node(cfg, Arc::new(remote)).await
}

/// Creates a slot room with `last_n` 2 by the admin API; a join gets two video slots.
async fn two_video_slots(s: &TestServer) {
    let created = s
        .create_room(json!({"name": "two", "kind": "meeting", "receive_slots": true, "last_n": 2}))
        .await;
    check("RoomDetail", &created);
    assert_eq!(created["policy"]["last_n"], 2, "{created}");
    let dev = Device::join(s, "two", "dev-0").await;
    assert_eq!(
        dev.joined["receive_slots"],
        json!({"audio": 4, "video": 2, "screen": 2}),
        "last_n is the number of video slots"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_room_with_last_n_gives_that_many_video_slots() {
    let (s, _sfu) = TestServer::start_with_sfu(config()).await;
    two_video_slots(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_room_with_last_n_gives_that_many_video_slots_through_a_remote_sfu() {
    two_video_slots(&with_remote_sfu(config()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_a_join_creates_take_last_n_from_the_settings() {
    let mut cfg = config();
    cfg.auto_create_rooms = true;
    cfg.receive_slots = true;
    cfg.last_n = Some(3);
    let (s, _sfu) = TestServer::start_with_sfu(cfg).await;
    let dev = Device::join(&s, "auto", "dev-0").await;
    assert_eq!(dev.joined["receive_slots"]["video"], 3, "{}", dev.joined);
}

#[tokio::test]
async fn last_n_out_of_range_is_refused_and_counted() {
    let s = TestServer::start(config()).await;
    let before = s
        .metric(r#"signaling_rejected_total{reason="bad_policy"}"#)
        .await;
    for last_n in [json!(0), json!(26)] {
        let body = json!({"name": "r", "kind": "meeting", "receive_slots": true, "last_n": last_n});
        let r = s
            .http
            .post(s.url("/v1/rooms"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.expect("json");
        check("Error", &e);
        assert_eq!(e["code"], "bad_policy", "{e}");
        assert!(
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("last_n must be between 1 and 25")),
            "{e}"
        );
    }
    let after = s
        .metric(r#"signaling_rejected_total{reason="bad_policy"}"#)
        .await;
    assert_eq!(after - before, 2.0, "each refusal is counted");
    // A room never came of it.
    let r = s
        .http
        .get(s.url("/v1/rooms/r"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_last_n_setting_out_of_range_stops_the_start() {
    let mut cfg = config();
    cfg.last_n = Some(0);
    let Err(e) = signaling::server::start(&cfg, None).await else {
        panic!("a server with last_n 0 started");
    };
    assert!(e.to_string().contains("last_n must be 1..=25"), "{e}");
}
