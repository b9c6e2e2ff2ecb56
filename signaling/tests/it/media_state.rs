//! `media_state` through the real service: the service stamps the sender's authenticated device
//! (a `device` the client writes is ignored), relays it only to devices that see the sender
//! (a broadcast viewer's to the presenters, not to other viewers), keeps the latest one for
//! late joiners' `joined.media_states`, and refuses bad or too frequent ones, counted, with the
//! room going on.

use crate::common;

use std::time::Duration;

use common::{TestServer, config, join_msg, token};
use serde_json::{Value, json};
use signaling::policy::Role;

fn state(audio: &str, video: &str, screen: bool) -> Value {
    json!({"type": "media_state", "audio": audio, "video": video, "screen": screen})
}

#[tokio::test]
async fn media_state_is_stamped_with_the_senders_device() {
    let s = TestServer::start(config()).await;
    s.meeting("ms").await;
    let mut a = s.connect().await;
    a.join("ms", &token("ms", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("ms", &token("ms", "bob", Role::Caller), "dev-b")
        .await;
    a.recv_type("membership").await;

    // Alice claims to be Bob: the field is not part of the message and the service stamps her.
    let mut spoof = state("muted", "off", false);
    spoof["device"] = json!("dev-b");
    a.send(&spoof).await;
    let got = b.recv_type("media_state").await;
    assert_eq!(
        got,
        json!({"type": "media_state", "device": "dev-a", "audio": "muted", "video": "off", "screen": false})
    );
    // The sender gets no copy.
    a.send(&state("on", "on", true)).await;
    let got = b.recv_type("media_state").await;
    assert_eq!(got["device"], "dev-a");
    assert_eq!(got["screen"], true);
    a.expect_silence(Duration::from_millis(200)).await;

    // Bad input: a clear error, counted, and the room goes on.
    let before = s
        .metric("signaling_rejected_total{reason=\"malformed\"}")
        .await;
    a.send(&state("loud", "on", false)).await;
    let err = a.expect_error("malformed").await;
    assert!(
        err["message"].as_str().unwrap().contains("media_state"),
        "{err}"
    );
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"malformed\"}")
            .await,
        before + 1.0
    );
    b.send(&state("muted", "on", false)).await;
    assert_eq!(a.recv_type("media_state").await["device"], "dev-b");

    // More than the burst at once: the excess is dropped with `rate_limited` and counted.
    for _ in 0..call_client::protocol::MEDIA_STATE_BURST + 3 {
        a.send(&state("on", "on", false)).await;
    }
    a.expect_error("rate_limited").await;
    assert!(
        s.metric("signaling_rejected_total{reason=\"media_state_too_frequent\"}")
            .await
            >= 1.0
    );
}

#[tokio::test]
async fn media_state_reaches_late_joiners_in_joined() {
    let s = TestServer::start(config()).await;
    s.meeting("late").await;
    let mut a = s.connect().await;
    a.join("late", &token("late", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    let joined = b
        .join("late", &token("late", "bob", Role::Caller), "dev-b")
        .await;
    assert!(
        joined.get("media_states").is_none(),
        "nobody has sent a state yet: {joined}"
    );
    a.send(&state("on", "on", false)).await;
    a.send(&state("muted", "off", false)).await;
    b.send(&state("on", "on", true)).await;
    // Both arrived at the room (each side sees the other's).
    assert_eq!(b.recv_type("media_state").await["audio"], "on");
    assert_eq!(b.recv_type("media_state").await["audio"], "muted");
    a.recv_type("media_state").await;

    let mut c = s.connect().await;
    let joined = c
        .join("late", &token("late", "carol", Role::Caller), "dev-c")
        .await;
    let mut states = joined["media_states"]
        .as_array()
        .expect("media_states")
        .clone();
    states.sort_by_key(|v| v["device"].as_str().unwrap().to_owned());
    assert_eq!(
        states,
        vec![
            json!({"device": "dev-a", "audio": "muted", "video": "off", "screen": false}),
            json!({"device": "dev-b", "audio": "on", "video": "on", "screen": true}),
        ],
        "the latest state of each device"
    );

    // A departed device's state is gone with it.
    b.send(&json!({"type": "leave"})).await;
    b.recv_type("left").await;
    let mut d = s.connect().await;
    let joined = d
        .join("late", &token("late", "dave", Role::Caller), "dev-d")
        .await;
    let devices: Vec<&str> = joined["media_states"]
        .as_array()
        .expect("media_states")
        .iter()
        .map(|v| v["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, vec!["dev-a"]);
}

#[tokio::test]
async fn a_viewers_media_state_reaches_presenters_not_other_viewers() {
    let s = TestServer::start(config()).await;
    s.create_room(json!({"name": "bc", "kind": "broadcast"}))
        .await;
    let mut p = s.connect().await;
    p.join("bc", &token("bc", "pres", Role::Presenter), "dev-p")
        .await;
    let mut v1 = s.connect().await;
    v1.join("bc", &token("bc", "v1", Role::Viewer), "dev-v1")
        .await;
    let mut v2 = s.connect().await;
    v2.send(&join_msg("bc", &token("bc", "v2", Role::Viewer), "dev-v2"))
        .await;
    v2.recv_type("joined").await;

    v1.send(&state("muted", "off", false)).await;
    assert_eq!(p.recv_type("media_state").await["device"], "dev-v1");
    v2.expect_silence(Duration::from_millis(300)).await;

    p.send(&state("on", "on", true)).await;
    for v in [&mut v1, &mut v2] {
        let got = v.recv_type("media_state").await;
        assert_eq!(got["device"], "dev-p");
    }
    // A late viewer sees the presenter's state, not the other viewers'.
    let mut v3 = s.connect().await;
    let joined = v3
        .join("bc", &token("bc", "v3", Role::Viewer), "dev-v3")
        .await;
    let devices: Vec<&str> = joined["media_states"]
        .as_array()
        .expect("media_states")
        .iter()
        .map(|v| v["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, vec!["dev-p"]);
}
