//! `recorder serve`'s supervisor against the real service: the event stream is served by the
//! test (the service's side of it is not in this crate), the rooms, callers and SFU are real.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtest::participant::{LiveCounters, ParticipantSpec, Role as CallerRole, run_participant};
use recorder::live::metrics::{RoomRefusal, SessionOutcome};
use recorder::live::serve::serve;
use recorder::live::{RecorderMetrics, RoomConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, watch};

use crate::live_service::{
    MemoryArchive, Service, caller_token, recorder_keys, rogue_admin, signed_policy,
    signed_policy_by, trusted_admin,
};

const RECORDER: &str = "rec-1";

async fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recorder_serve_records_active_rooms_and_stops_on_idle() {
    let service = Service::start().await;
    let me = recorder_keys(RECORDER);
    let named = [(RECORDER, me.identity_key())];
    for room in ["a", "b"] {
        service.recorded_meeting(room, &named).await;
    }

    // The event stream: one connection, lines as the test sends them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let events = format!(
        "http://{}/v1/recorder/events",
        listener.local_addr().expect("addr")
    );
    let (lines, mut lines_rx) = mpsc::unbounded_channel::<String>();
    let stream = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("the recorder connects");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.expect("request");
            assert!(n > 0, "request head");
            head.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        assert!(head.starts_with("get /v1/recorder/events "), "{head}");
        assert!(head.contains("authorization: bearer "), "{head}");
        s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("head written");
        while let Some(line) = lines_rx.recv().await {
            s.write_all(line.as_bytes()).await.expect("line written");
        }
    });
    let active = |room: &str| {
        format!(
            "{}\n",
            serde_json::json!({"type": "room_active", "room": room,
                "recording": signed_policy(room, &named), "participants": 1})
        )
    };

    // One caller in each room.
    let counters = Arc::new(LiveCounters::default());
    let (stop_callers, stop_rx) = watch::channel(false);
    let callers: Vec<_> = [("a", 0u16), ("b", 1)]
        .into_iter()
        .map(|(room, index)| {
            let spec = ParticipantSpec {
                index,
                role: CallerRole::Caller,
                room: room.into(),
                ws_url: service.ws_url(),
                token: caller_token(room, &format!("caller-{index}")),
                epoch: Instant::now(),
                seed: 5,
                media_via: None,
                miss_keys_until_request: false,
            };
            tokio::spawn(run_participant(spec, counters.clone(), stop_rx.clone()))
        })
        .collect();

    let archive = MemoryArchive::default();
    let metrics = RecorderMetrics::new();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut template = RoomConfig::new(
        &service.ws_url(),
        "",
        service.credentials(),
        trusted_admin(),
    );
    template.video_layer = call_client::protocol::Layer::Low;
    let served = tokio::spawn(serve(
        template,
        events,
        me,
        Arc::new(archive.clone()),
        metrics.clone(),
        shutdown_rx,
        Duration::from_secs(10),
    ));
    // A room whose policy (naming this recorder) another admin key signed: refused from the
    // event, never joined (the service has no room "rogue": a join would fail, not be refused).
    let rogue = format!(
        "{}\n",
        serde_json::json!({"type": "room_active", "room": "rogue",
            "recording": signed_policy_by("rogue", &named, &rogue_admin()), "participants": 1})
    );
    lines.send(rogue).expect("stream open");
    wait_until(Duration::from_secs(5), "the rogue room refused", || {
        metrics.rooms_refused(RoomRefusal::UntrustedPolicy) == 1
    })
    .await;
    assert_eq!(metrics.sessions(SessionOutcome::RefusedPolicy), 1);
    assert_eq!(metrics.sessions(SessionOutcome::Failed), 0, "no join tried");
    lines.send(active("a")).expect("stream open");
    lines.send(active("b")).expect("stream open");
    // A repeated `room_active` (as after a reconnect) starts nothing new.
    lines.send(active("b")).expect("stream open");
    lines
        .send("{\"type\":\"ping\"}\n".into())
        .expect("stream open");
    wait_until(Duration::from_secs(15), "two rooms recording", || {
        metrics.active_sessions() == 2
    })
    .await;
    wait_until(Duration::from_secs(15), "frames of both rooms", || {
        let sessions = archive.sessions.lock().expect("not poisoned");
        sessions.len() == 2
            && sessions
                .iter()
                .all(|s| s.tracks.values().map(|t| t.frames).sum::<u64>() > 50)
    })
    .await;

    // `room_idle` stops one room; the other goes on.
    lines
        .send("{\"type\":\"room_idle\",\"room\":\"a\"}\n".into())
        .expect("stream open");
    wait_until(Duration::from_secs(15), "room a finished", || {
        metrics.sessions(SessionOutcome::Finished) == 1
    })
    .await;
    assert_eq!(metrics.active_sessions(), 1);
    let room_of = |i: usize| archive.session(i).start.expect("started").room;
    let a = (0..2)
        .find(|i| room_of(*i) == "a")
        .expect("room a recorded");
    assert!(archive.session(a).finished);
    assert!(!archive.session(1 - a).finished, "room b still recording");

    // Shutdown (SIGTERM) finishes every session.
    shutdown.send(true).expect("serve runs");
    tokio::time::timeout(Duration::from_secs(20), served)
        .await
        .expect("serve stops within its shutdown timeout")
        .expect("serve task");
    assert_eq!(archive.count(), 2);
    assert!((0..2).all(|i| archive.session(i).finished));
    assert_eq!(metrics.sessions(SessionOutcome::Finished), 2);
    assert_eq!(metrics.sessions(SessionOutcome::Failed), 0);
    assert_eq!(metrics.active_sessions(), 0);
    drop(lines);
    stream.await.expect("event stream task");
    stop_callers.send(true).expect("callers run");
    for c in callers {
        c.await.expect("caller task");
    }
}
