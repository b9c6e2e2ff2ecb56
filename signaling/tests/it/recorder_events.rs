//! The recorder event stream (`GET /v1/recorder/events`) and the recorded-room compliance gauge,
//! against the real service with an embedded SFU: recorded rooms created through the admin API
//! with policies signed by a real admin key, callers and recorders over real WebSockets, the
//! stream read as NDJSON over HTTP.

use std::time::Duration;

use call_client::protocol::{RecorderDevice, RecorderEvent, RecordingDocument, RecordingPolicy};
use e2ee_frames::DocumentSigner;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use signaling::auth::{Claims, GrantClaims, TokenRequest, issue_token, sign_claims};
use signaling::policy::Role;

use crate::common::{self, API_KEY, API_SECRET, TestServer, WAIT, poll_until, token};

fn admin() -> DocumentSigner {
    DocumentSigner::from_secret(&[42u8; 32])
}

/// A policy for `room` naming `device` with the identity key of `common::bundle(device)`, the
/// bundle the test clients join with.
fn policy(room: &str, device: &str) -> RecordingPolicy {
    let identity_key = common::bundle(device)["identity_key"]
        .as_str()
        .expect("string")
        .to_string();
    let doc = RecordingDocument {
        v: 1,
        room: room.into(),
        recorders: vec![RecorderDevice {
            device: device.into(),
            identity_key,
        }],
        issued_at: 1_700_000_000,
        retention_days: 90,
    };
    RecordingPolicy::sign(&doc, &admin())
}

async fn recorded_meeting(s: &TestServer, room: &str, device: &str) -> RecordingPolicy {
    let p = policy(room, device);
    s.create_room(json!({"name": room, "kind": "meeting", "recording": p}))
        .await;
    p
}

/// A recorder event stream token for `device`.
fn stream_token(device: &str) -> String {
    issue_token(&TokenRequest {
        api_key: API_KEY.into(),
        secret: signaling::auth::Secret::new(API_SECRET),
        grants: GrantClaims {
            role: Some(Role::Recorder),
            device: Some(device.into()),
            ..GrantClaims::default()
        },
        ttl_seconds: 600,
    })
}

/// An open event stream, read line by line.
struct EventStream {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl EventStream {
    async fn open(s: &TestServer, device: &str) -> EventStream {
        let resp = s
            .http
            .get(s.url("/v1/recorder/events"))
            .bearer_auth(stream_token(device))
            .send()
            .await
            .expect("stream request");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "application/x-ndjson",
            "NDJSON"
        );
        EventStream {
            body: resp.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// The next line, `None` when the stream ended; panics after `limit`.
    async fn next_line(&mut self, limit: Duration) -> Option<RecorderEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("a RecorderEvent line"));
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("no recorder event within {limit:?}"),
            }
        }
    }

    /// The next event that is not a `ping`.
    async fn next_event(&mut self) -> RecorderEvent {
        loop {
            match self.next_line(WAIT).await.expect("stream open") {
                RecorderEvent::Ping => continue,
                e => return e,
            }
        }
    }

    /// Asserts that nothing but pings arrives for `d`.
    async fn expect_quiet(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
            let Some(line) = self.buf.iter().position(|b| *b == b'\n') else {
                match tokio::time::timeout(left, self.body.next()).await {
                    Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                    Ok(_) => panic!("the stream ended"),
                    Err(_) => return,
                }
                continue;
            };
            let bytes: Vec<u8> = self.buf.drain(..=line).collect();
            let event: RecorderEvent = serde_json::from_slice(&bytes).expect("a line");
            assert_eq!(event, RecorderEvent::Ping, "expected no recorder event");
        }
    }
}

fn active(room: &str, recording: &RecordingPolicy, participants: u32) -> RecorderEvent {
    serde_json::from_value(json!({
        "type": "room_active", "room": room, "recording": recording, "participants": participants
    }))
    .expect("a room_active")
}

fn idle(room: &str) -> RecorderEvent {
    serde_json::from_value(json!({"type": "room_idle", "room": room})).expect("a room_idle")
}

#[tokio::test]
async fn recorder_events_announce_active_recorded_rooms() {
    let s = TestServer::start(common::config()).await;
    let policy_a = recorded_meeting(&s, "rec-a", "rec-1").await;
    let policy_b = recorded_meeting(&s, "rec-b", "rec-2").await;
    s.meeting("plain").await;

    let mut rec1 = EventStream::open(&s, "rec-1").await;
    let mut rec2 = EventStream::open(&s, "rec-2").await;
    rec1.expect_quiet(Duration::from_millis(200)).await;

    // A caller in a room whose policy names rec-1.
    let mut alice = s.connect().await;
    alice
        .join("rec-a", &token("rec-a", "alice", Role::Caller), "dev-a")
        .await;
    assert_eq!(rec1.next_event().await, active("rec-a", &policy_a, 1));
    // A second caller does not announce the room again.
    let mut carol = s.connect().await;
    carol
        .join("rec-a", &token("rec-a", "carol", Role::Caller), "dev-c")
        .await;

    // Another recorded room, naming another device, and an unrecorded room: nothing for rec-1.
    let mut bob = s.connect().await;
    bob.join("rec-b", &token("rec-b", "bob", Role::Caller), "dev-b")
        .await;
    let mut dave = s.connect().await;
    dave.join("plain", &token("plain", "dave", Role::Caller), "dev-d")
        .await;
    assert_eq!(rec2.next_event().await, active("rec-b", &policy_b, 1));
    rec1.expect_quiet(Duration::from_millis(300)).await;

    // Reconnecting gets the current state: rec-a with both callers.
    drop(rec1);
    let mut rec1 = EventStream::open(&s, "rec-1").await;
    assert_eq!(rec1.next_event().await, active("rec-a", &policy_a, 2));

    // The recorder joining does not count as a participant.
    let mut recorder = s.connect().await;
    recorder
        .join(
            "rec-a",
            &token("rec-a", "archiver", Role::Recorder),
            "rec-1",
        )
        .await;
    rec1.expect_quiet(Duration::from_millis(200)).await;

    // The callers leave: idle, although the recorder is still there.
    alice.send(&json!({"type": "leave"})).await;
    rec1.expect_quiet(Duration::from_millis(200)).await;
    drop(carol);
    assert_eq!(rec1.next_event().await, idle("rec-a"));

    // A room closing while active is idle too.
    let closed = s
        .http
        .delete(s.url("/v1/rooms/rec-b"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("close");
    assert!(closed.status().is_success());
    assert_eq!(rec2.next_event().await, idle("rec-b"));

    // Reconnecting now: nothing is active.
    drop(rec1);
    let mut rec1 = EventStream::open(&s, "rec-1").await;
    rec1.expect_quiet(Duration::from_millis(200)).await;
    assert_eq!(s.metric("signaling_recorder_streams").await, 2.0);
    drop((rec1, rec2, recorder, bob, dave));
}

#[tokio::test]
async fn recorder_events_send_a_ping_every_five_seconds() {
    let s = TestServer::start(common::config()).await;
    let mut stream = EventStream::open(&s, "rec-1").await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        stream.next_line(Duration::from_secs(7)).await,
        Some(RecorderEvent::Ping)
    );
    assert!(started.elapsed() >= Duration::from_secs(4));
}

#[tokio::test]
async fn recorder_events_refuse_tokens_without_recorder_grant() {
    let s = TestServer::start(common::config()).await;
    let refused_before = refusals(&s).await;
    let now = jsonwebtoken_now();
    let claims = |grants: GrantClaims| Claims::new(API_KEY, grants, now, 600);
    let recorder = GrantClaims {
        role: Some(Role::Recorder),
        device: Some("rec-1".into()),
        ..GrantClaims::default()
    };
    let mut expired = claims(recorder.clone());
    expired.exp = now - 600;
    expired.nbf = Some(now - 1200);
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no Authorization header", None, 401),
        ("not a JWT", Some("garbage".into()), 401),
        (
            "signed with another secret",
            Some(sign_claims(&claims(recorder.clone()), "wrong-secret")),
            401,
        ),
        ("expired", Some(sign_claims(&expired, API_SECRET)), 401),
        (
            "a join token (names a room)",
            Some(token("rec-a", "archiver", Role::Recorder)),
            403,
        ),
        (
            "role recorder, no device",
            Some(sign_claims(
                &claims(GrantClaims {
                    device: None,
                    ..recorder.clone()
                }),
                API_SECRET,
            )),
            403,
        ),
        (
            "a device but role caller",
            Some(sign_claims(
                &claims(GrantClaims {
                    role: Some(Role::Caller),
                    ..recorder.clone()
                }),
                API_SECRET,
            )),
            403,
        ),
        (
            "a device but no role",
            Some(sign_claims(
                &claims(GrantClaims {
                    role: None,
                    ..recorder.clone()
                }),
                API_SECRET,
            )),
            403,
        ),
        (
            "no grants at all",
            Some(sign_claims(
                &Claims {
                    grants: None,
                    ..claims(recorder.clone())
                },
                API_SECRET,
            )),
            403,
        ),
    ];
    for (what, token, status) in &cases {
        let mut req = s.http.get(s.url("/v1/recorder/events"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), *status, "{what}");
        let body: Value = resp.json().await.expect("a JSON error");
        assert!(body["code"].is_string(), "{what}: {body}");
        assert!(body["message"].is_string(), "{what}: {body}");
    }
    let refused_after = refusals(&s).await;
    assert_eq!(
        refused_after - refused_before,
        cases.len() as f64,
        "every refusal is counted"
    );
    assert_eq!(s.metric("signaling_recorder_streams").await, 0.0);
}

fn jsonwebtoken_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The sum of `signaling_rejected_total` over every reason.
async fn refusals(s: &TestServer) -> f64 {
    s.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("signaling_rejected_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn recorder_not_named_in_policy_is_refused() {
    let s = TestServer::start(common::config()).await;
    recorded_meeting(&s, "rec-a", "rec-1").await;
    let mut caller = s.connect().await;
    caller
        .join("rec-a", &token("rec-a", "alice", Role::Caller), "dev-a")
        .await;
    // A device the policy does not name.
    let mut other = s.connect().await;
    other
        .send(&common::join_msg(
            "rec-a",
            &token("rec-a", "x", Role::Recorder),
            "rec-2",
        ))
        .await;
    other.expect_error("role_not_allowed").await;
    // The named device id with another identity key.
    let mut impostor = s.connect().await;
    let mut join = common::join_msg("rec-a", &token("rec-a", "x", Role::Recorder), "rec-1");
    join["device"]["identity_key"] = common::bundle("rec-9")["identity_key"].clone();
    impostor.send(&join).await;
    impostor.expect_error("role_not_allowed").await;
    // A recorder token in an unrecorded room.
    s.meeting("plain").await;
    let mut plain = s.connect().await;
    plain
        .send(&common::join_msg(
            "plain",
            &token("plain", "x", Role::Recorder),
            "rec-1",
        ))
        .await;
    plain.expect_error("role_not_allowed").await;
    // The named one is admitted.
    let mut named = s.connect().await;
    named
        .join(
            "rec-a",
            &token("rec-a", "archiver", Role::Recorder),
            "rec-1",
        )
        .await;
}

#[tokio::test]
async fn recorded_room_without_recorder_raises_the_gauge() {
    let mut config = common::config();
    config.recording.alert_without_recorder_ms = 300;
    let s = TestServer::start(config).await;
    recorded_meeting(&s, "rec-a", "rec-1").await;
    recorded_meeting(&s, "rec-b", "rec-1").await;
    s.meeting("plain").await;
    const GAUGE: &str = "signaling_recorded_rooms_without_recorder";

    // An unrecorded room never counts; a recorded one counts once its delay has passed.
    let mut dave = s.connect().await;
    dave.join("plain", &token("plain", "dave", Role::Caller), "dev-d")
        .await;
    let mut alice = s.connect().await;
    alice
        .join("rec-a", &token("rec-a", "alice", Role::Caller), "dev-a")
        .await;
    assert_eq!(s.metric(GAUGE).await, 0.0, "not before the delay");
    poll_until(WAIT, "rec-a counted", async || s.metric(GAUGE).await == 1.0).await;

    // A room whose recorder joins within the delay never counts.
    let mut recorder_b = s.connect().await;
    recorder_b
        .join(
            "rec-b",
            &token("rec-b", "archiver", Role::Recorder),
            "rec-1",
        )
        .await;
    let mut bob = s.connect().await;
    bob.join("rec-b", &token("rec-b", "bob", Role::Caller), "dev-b")
        .await;

    // The recorder joins rec-a: no longer counted.
    let mut recorder = s.connect().await;
    recorder
        .join(
            "rec-a",
            &token("rec-a", "archiver", Role::Recorder),
            "rec-1",
        )
        .await;
    poll_until(WAIT, "rec-a recorded again", async || {
        s.metric(GAUGE).await == 0.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s.metric(GAUGE).await, 0.0, "rec-b was recorded in time");

    // The recorder drops out: counted again after the delay; the callers leave: not counted.
    drop(recorder);
    poll_until(WAIT, "rec-a counted again", async || {
        s.metric(GAUGE).await == 1.0
    })
    .await;
    drop(alice);
    poll_until(WAIT, "an empty room is not counted", async || {
        s.metric(GAUGE).await == 0.0
    })
    .await;
    drop((dave, bob, recorder_b));
}

#[tokio::test]
async fn recorder_stream_ends_when_the_server_drains() {
    let s = TestServer::start(common::config()).await;
    let mut stream = EventStream::open(&s, "rec-1").await;
    let TestServer { server, http: _ } = s;
    let drained = tokio::spawn(server.drain(Duration::from_secs(5)));
    assert_eq!(
        stream.next_line(WAIT).await,
        None,
        "the stream ends on drain"
    );
    let outcome = drained.await.expect("drain task");
    assert!(outcome.complete(), "{outcome:?}");
}
