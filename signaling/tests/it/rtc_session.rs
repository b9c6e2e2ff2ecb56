//! Real WebSocket clients against the real service: join, roster, membership notices, key relay,
//! and SDP without a media node.

use crate::common;

use std::time::Duration;

use common::{Seen, TestServer, config, envelope, token};
use serde_json::json;
use signaling::policy::Role;

fn devices(roster: &serde_json::Value) -> Vec<String> {
    let mut d: Vec<String> = roster["devices"]
        .as_array()
        .expect("roster devices")
        .iter()
        .map(|e| e["device"].as_str().expect("device id").to_string())
        .collect();
    d.sort();
    d
}

#[tokio::test]
async fn join_gives_slot_roster_and_notifies_others() {
    let s = TestServer::start(config()).await;
    s.meeting("standup").await;
    let mut a = s.connect().await;
    let ja = a
        .join("standup", &token("standup", "alice", Role::Caller), "dev-a")
        .await;
    assert_eq!(ja["v"], 1);
    assert_eq!(ja["room"], "standup");
    assert_eq!(ja["role"], "caller");
    assert_eq!(ja["media"], true, "the SFU is attached");
    assert!(ja["call"].as_str().is_some_and(|c| c.starts_with("c-")));
    assert_eq!(devices(&ja["roster"]), vec!["dev-a"]);
    let v1 = ja["roster"]["version"].as_u64().expect("version");

    let mut b = s.connect().await;
    let jb = b
        .join("standup", &token("standup", "bob", Role::Caller), "dev-b")
        .await;
    assert_ne!(ja["slot"], jb["slot"], "slots are distinct");
    assert_eq!(devices(&jb["roster"]), vec!["dev-a", "dev-b"]);
    let entry = jb["roster"]["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["device"] == "dev-a"))
        .expect("alice in bob's roster");
    assert_eq!(entry["identity"], "alice");
    assert_eq!(
        entry["bundle"],
        common::bundle("dev-a"),
        "bundle relayed untouched"
    );

    // Alice sees Bob arrive (roster delta) and is told to ratchet for him.
    let delta = a.recv_type("roster").await;
    assert!(delta["version"].as_u64().expect("version") > v1);
    assert_eq!(delta["added"][0]["device"], "dev-b");
    assert_eq!(delta["added"][0]["slot"], jb["slot"]);
    let notice = a.recv_type("membership").await;
    assert_eq!(notice["action"], "ratchet");
    assert_eq!(notice["joined"], json!(["dev-b"]));
    // Bob gets no notice about his own join.
    b.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn leave_updates_roster_and_debounces_one_rekey() {
    // No resume grace window: a lost connection departs at once, within the debounce.
    let mut cfg = config();
    cfg.rekey.resume_grace_ms = 0;
    let s = TestServer::start(cfg).await;
    s.meeting("m").await;
    let mut a = s.connect().await;
    a.join("m", &token("m", "alice", Role::Caller), "dev-a")
        .await;
    let mut others = Vec::new();
    for name in ["b", "c"] {
        let mut c = s.connect().await;
        c.join("m", &token("m", name, Role::Caller), &format!("dev-{name}"))
            .await;
        others.push(c);
    }
    // Drain Alice's join notices (one or two: joins close together share one).
    assert_eq!(a.recv_ratchets_naming(2).await, ["dev-b", "dev-c"]);
    // Bob leaves cleanly, Carol's connection just drops, within the debounce window.
    let mut b = others.remove(0);
    b.send(&json!({"type": "leave"})).await;
    assert_eq!(b.recv_type("left").await["reason"], "leave");
    assert!(matches!(b.next().await, Seen::Closed(Some(1000))));
    let c = others.remove(0);
    drop(c);

    let mut removed = Vec::new();
    while removed.len() < 2 {
        let r = a.recv_type("roster").await;
        removed.extend(r["removed"].as_array().expect("removed").iter().cloned());
    }
    removed.sort_by_key(|v| v.to_string());
    assert_eq!(removed, vec![json!("dev-b"), json!("dev-c")]);
    // One rekey for both leaves, after the debounce.
    let rekey = a.recv().await;
    assert_eq!(rekey["type"], "membership");
    assert_eq!(rekey["action"], "rekey");
    let mut left = rekey["left"].as_array().expect("left").clone();
    left.sort_by_key(|v| v.to_string());
    assert_eq!(left, vec![json!("dev-b"), json!("dev-c")]);
    a.expect_silence(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn broadcast_viewers_see_publishers_and_viewer_leaves_coalesce() {
    let s = TestServer::start(config()).await;
    s.create_room(json!({"name": "town", "kind": "broadcast", "max_viewers": 10}))
        .await;
    let mut p = s.connect().await;
    p.join("town", &token("town", "host", Role::Presenter), "pres")
        .await;
    let mut viewers = Vec::new();
    for i in 0..3 {
        let mut v = s.connect().await;
        let j = v
            .join(
                "town",
                &token("town", &format!("v{i}"), Role::Viewer),
                &format!("view-{i}"),
            )
            .await;
        assert_eq!(
            devices(&j["roster"]),
            vec!["pres".to_string(), format!("view-{i}")]
        );
        assert_eq!(j["can_publish"], false);
        viewers.push(v);
    }
    assert_eq!(
        p.recv_ratchets_naming(3).await,
        ["view-0", "view-1", "view-2"]
    );
    // Viewers are not told about each other.
    viewers[0].expect_silence(Duration::from_millis(100)).await;

    drop(viewers.pop());
    let first = p.recv_type("membership").await;
    assert_eq!(
        (first["action"].clone(), first["left"].clone()),
        (json!("rekey"), json!(["view-2"]))
    );
    let t0 = tokio::time::Instant::now();
    drop(viewers.pop());
    let second = p.recv_type("membership").await;
    assert_eq!(second["left"], json!(["view-1"]));
    // The configured coalescing window (1.5 s here, 30 s by default) separates the two rekeys.
    assert!(
        t0.elapsed() >= Duration::from_millis(1200),
        "rekey waited for the window"
    );
}

#[tokio::test]
async fn envelopes_reach_only_their_recipient() {
    let s = TestServer::start(config()).await;
    s.meeting("k").await;
    let mut a = s.connect().await;
    let ja = a
        .join("k", &token("k", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("k", &token("k", "bob", Role::Caller), "dev-b").await;
    let mut c = s.connect().await;
    c.join("k", &token("k", "carol", Role::Caller), "dev-c")
        .await;
    assert_eq!(a.recv_ratchets_naming(2).await, ["dev-b", "dev-c"]);
    assert_eq!(b.recv_ratchets_naming(1).await, ["dev-c"]);

    let call = ja["call"].as_str().expect("call id");
    let slot = ja["slot"].as_u64().expect("slot");
    let env = envelope("k", call, "dev-a", "dev-b", slot);
    a.send(&json!({"type": "key_envelope", "envelope": env}))
        .await;
    let got = b.recv_type("key_envelope").await;
    assert_eq!(got["envelope"], env, "relayed untouched");
    c.expect_silence(Duration::from_millis(300)).await;
    assert_eq!(s.metric("signaling_key_envelopes_relayed_total").await, 1.0);

    // Spoofed sender, stranger recipient, other room, other call: refused, nothing delivered.
    let spoof = envelope("k", call, "dev-c", "dev-b", slot);
    a.send(&json!({"type": "key_envelope", "envelope": spoof}))
        .await;
    a.expect_error("forbidden").await;
    let stranger = envelope("k", call, "dev-a", "dev-zz", slot);
    a.send(&json!({"type": "key_envelope", "envelope": stranger}))
        .await;
    a.expect_error("not_in_roster").await;
    let other_room = envelope("other", call, "dev-a", "dev-b", slot);
    a.send(&json!({"type": "key_envelope", "envelope": other_room}))
        .await;
    a.expect_error("bad_envelope").await;
    let other_call = envelope("k", "c-old", "dev-a", "dev-b", slot);
    a.send(&json!({"type": "key_envelope", "envelope": other_call}))
        .await;
    a.expect_error("bad_envelope").await;
    let mut short = envelope("k", call, "dev-a", "dev-b", slot);
    short["ct"] = json!("AAAA");
    a.send(&json!({"type": "key_envelope", "envelope": short}))
        .await;
    a.expect_error("bad_envelope").await;
    b.expect_silence(Duration::from_millis(200)).await;
    c.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn envelopes_cannot_cross_into_a_room_not_joined() {
    let s = TestServer::start(config()).await;
    s.meeting("one").await;
    s.meeting("two").await;
    let mut a = s.connect().await;
    let ja = a
        .join("one", &token("one", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("two", &token("two", "bob", Role::Caller), "dev-b")
        .await;
    let env = envelope(
        "two",
        ja["call"].as_str().expect("call"),
        "dev-a",
        "dev-b",
        ja["slot"].as_u64().expect("slot"),
    );
    a.send(&json!({"type": "key_envelope", "envelope": env}))
        .await;
    a.expect_error("bad_envelope").await;
    // Even naming its own room, the recipient is not in Alice's roster.
    let env = envelope(
        "one",
        ja["call"].as_str().expect("call"),
        "dev-a",
        "dev-b",
        ja["slot"].as_u64().expect("slot"),
    );
    a.send(&json!({"type": "key_envelope", "envelope": env}))
        .await;
    a.expect_error("not_in_roster").await;
    b.expect_silence(Duration::from_millis(200)).await;
    // Before joining, nothing can be sent at all.
    let mut lurker = s.connect().await;
    lurker
        .send(&json!({"type": "key_envelope", "envelope": envelope("one", "c", "x", "dev-a", 0)}))
        .await;
    lurker.expect_error("wrong_state").await;
}

#[tokio::test]
async fn acks_and_key_requests_are_routed() {
    let s = TestServer::start(config()).await;
    s.meeting("r").await;
    let mut a = s.connect().await;
    a.join("r", &token("r", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("r", &token("r", "bob", Role::Caller), "dev-b").await;
    a.recv_type("membership").await;

    b.send(&json!({"type": "key_ack", "to": "dev-a", "generation": 4, "step": 2}))
        .await;
    let ack = a.recv_type("key_ack").await;
    assert_eq!(
        ack,
        json!({"type": "key_ack", "from": "dev-b", "generation": 4, "step": 2})
    );
    b.send(&json!({"type": "key_request", "to": "dev-a", "generation": 5}))
        .await;
    let req = a.recv_type("key_request").await;
    assert_eq!(
        req,
        json!({"type": "key_request", "from": "dev-b", "generation": 5})
    );
    b.send(&json!({"type": "key_request", "to": "dev-nobody"}))
        .await;
    b.expect_error("not_in_roster").await;
}

#[tokio::test]
async fn sdp_without_media_node_is_media_unavailable_and_viewers_cannot_publish() {
    let s = TestServer::start_without_media(config()).await;
    s.create_room(json!({"name": "b", "kind": "broadcast"}))
        .await;
    let mut p = s.connect().await;
    p.join("b", &token("b", "host", Role::Presenter), "pres")
        .await;
    let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\n";
    p.send(&json!({"type": "offer", "sdp": offer,
        "tracks": [{"mid": "0", "kind": "audio", "source": "microphone"}]}))
        .await;
    p.expect_error("media_unavailable").await;
    p.send(&json!({"type": "answer", "sdp": "v=0\r\n"})).await;
    p.expect_error("media_unavailable").await;
    p.send(&json!({"type": "subscribe", "subscriptions": [{"track": "t1", "layer": "high", "width": 640, "height": 360}]})).await;
    p.expect_error("media_unavailable").await;

    let mut v = s.connect().await;
    v.join("b", &token("b", "watcher", Role::Viewer), "view")
        .await;
    v.send(&json!({"type": "offer", "sdp": offer})).await;
    v.expect_error("forbidden").await;
    v.send(
        &json!({"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n",
        "tracks": [{"mid": "0", "kind": "video", "source": "camera"}]}),
    )
    .await;
    v.expect_error("forbidden").await;
    // A receive-only offer is allowed; it fails only for want of a media node.
    v.send(
        &json!({"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\n"}),
    )
    .await;
    v.expect_error("media_unavailable").await;
}

#[tokio::test]
async fn stats_feed_the_decrypt_failure_counter() {
    let s = TestServer::start(config()).await;
    s.meeting("st").await;
    let mut a = s.connect().await;
    a.join("st", &token("st", "alice", Role::Caller), "dev-a")
        .await;
    a.send(&json!({"type": "stats", "decrypt_failures": 3, "frames_decrypted": 100, "rtt_seconds": 0.02})).await;
    a.send(&json!({"type": "stats", "decrypt_failures": 4}))
        .await;
    let mut seen = 0.0;
    for _ in 0..50 {
        seen = s.metric("signaling_client_decrypt_failures_total").await;
        if seen >= 7.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 7.0);
    let detail: serde_json::Value = s
        .http
        .get(s.url("/v1/rooms/st"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("inspect")
        .json()
        .await
        .expect("json");
    assert_eq!(
        detail["participants"][0]["client_stats"]["decrypt_failures"],
        4
    );
}

#[tokio::test]
async fn a_reconnecting_device_replaces_its_old_connection() {
    let s = TestServer::start(config()).await;
    s.meeting("re").await;
    let mut a = s.connect().await;
    a.join("re", &token("re", "alice", Role::Caller), "dev-a")
        .await;
    let mut old_b = s.connect().await;
    old_b
        .join("re", &token("re", "bob", Role::Caller), "dev-b")
        .await;
    a.recv_type("membership").await;

    assert_eq!(s.metric("signaling_rejoins_total").await, 0.0);

    // Bob's device comes back on a new connection (same device id, same identity).
    let mut new_b = s.connect().await;
    let j = new_b
        .join("re", &token("re", "bob", Role::Caller), "dev-b")
        .await;
    assert_eq!(devices(&j["roster"]), vec!["dev-a", "dev-b"]);
    assert_eq!(s.metric("signaling_rejoins_total").await, 1.0);
    assert_eq!(old_b.recv_type("left").await["reason"], "replaced");
    assert!(matches!(old_b.next().await, Seen::Closed(Some(1000))));
    // Alice sees the old device leave and the new one join, and rekeys for the departure.
    assert_eq!(a.recv_type("roster").await["removed"], json!(["dev-b"]));
    assert_eq!(a.recv_type("roster").await["added"][0]["device"], "dev-b");
    assert_eq!(a.recv_type("membership").await["action"], "ratchet");
    assert_eq!(a.recv_type("membership").await["action"], "rekey");

    // Another identity cannot take the device id.
    let mut thief = s.connect().await;
    thief
        .send(&common::join_msg(
            "re",
            &token("re", "mallory", Role::Caller),
            "dev-b",
        ))
        .await;
    thief.expect_error("duplicate_device").await;
    assert_eq!(
        s.metric("signaling_rejoins_total").await,
        1.0,
        "a refused join replaces nothing"
    );
}

/// The test hook `sever-connections` (`signaling dev --test-hooks`): the admin API cuts one
/// device's WebSocket without a close frame; the room sees a lost connection (the others get
/// the roster removal and rekey once the resume grace window ends), and the device can join
/// again. Without the hook the route is
/// refused.
#[tokio::test]
async fn sever_hook_cuts_a_connection_without_a_close_frame() {
    let mut cfg = config();
    cfg.test_hooks = signaling::test_hooks::TestHooks::enabled(&[
        signaling::test_hooks::TestHook::SeverConnections,
    ]);
    let s = TestServer::start(cfg).await;
    s.meeting("cut").await;
    let mut a = s.connect().await;
    a.join("cut", &token("cut", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("cut", &token("cut", "bob", Role::Caller), "dev-b")
        .await;
    a.recv_type("membership").await;

    let http = reqwest::Client::new();
    let sever = |device: &str| {
        http.post(s.url(&format!("/v1/rooms/cut/participants/{device}/sever")))
            .bearer_auth(common::ADMIN)
            .send()
    };
    assert_eq!(sever("dev-b").await.expect("request").status(), 204);
    // No `left`, no close frame: the socket just ends.
    assert!(matches!(b.next().await, Seen::Closed(None)));
    assert_eq!(a.recv_type("roster").await["removed"], json!(["dev-b"]));
    assert_eq!(a.recv_type("membership").await["action"], "rekey");
    assert_eq!(sever("dev-b").await.expect("request").status(), 404);

    // The device comes back as itself.
    let mut b2 = s.connect().await;
    let j = b2
        .join("cut", &token("cut", "bob", Role::Caller), "dev-b")
        .await;
    assert_eq!(devices(&j["roster"]), vec!["dev-a", "dev-b"]);

    // Without the hook there is no such route.
    let plain = TestServer::start(config()).await;
    plain.meeting("cut").await;
    let resp = http
        .post(plain.url("/v1/rooms/cut/participants/dev-a/sever"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn a_kick_disconnects_the_device_and_triggers_a_rekey() {
    let s = TestServer::start(config()).await;
    s.meeting("kk").await;
    let mut a = s.connect().await;
    a.join("kk", &token("kk", "alice", Role::Caller), "dev-a")
        .await;
    let mut b = s.connect().await;
    b.join("kk", &token("kk", "bob", Role::Caller), "dev-b")
        .await;
    a.recv_type("membership").await;
    let r = s
        .http
        .delete(s.url("/v1/rooms/kk/participants/dev-b"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("kick");
    assert_eq!(r.status(), 204);
    assert_eq!(b.recv_type("left").await["reason"], "kicked");
    assert_eq!(a.recv_type("roster").await["removed"], json!(["dev-b"]));
    let rekey = a.recv_type("membership").await;
    assert_eq!(
        (rekey["action"].clone(), rekey["left"].clone()),
        (json!("rekey"), json!(["dev-b"]))
    );
}
