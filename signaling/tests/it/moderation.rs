//! Moderation against the real service (signaling with an embedded SFU): a device whose token
//! grants `moderator` asks others to mute, removes them, locks the room, runs its lobby and ends
//! the call, through `call_client::session`; every action of a device without the grant is
//! refused by the service (`forbidden`) and counted, and does nothing. The admin API's
//! controls and end routes do the same, their responses checked against `openapi.json`.

use crate::common;

use call_client::protocol::{
    AudioState, ClientMessage, DeviceBundle, ErrorCode, LeaveReason, MediaState, ModerationAction,
    ServerMessage, VideoState,
};
use call_client::session::{Session, SessionConfig, SessionError};
use common::{Client, Seen, TestServer, WAIT, config, join_msg, moderator_token, token};
use serde_json::{Value, json};
use signaling::policy::Role;

async fn session(s: &TestServer, room: &str, device: &str, token: String) -> Session {
    let bundle: DeviceBundle =
        serde_json::from_value(common::bundle(device)).expect("test bundle parses");
    let mut config = SessionConfig::new(s.ws_url(), room, token, bundle);
    // An accepted action is answered by nothing (its effects follow): `request` is `Ok` once
    // no refusal came within this; refusals arrive in milliseconds on loopback.
    config.answer_timeout = std::time::Duration::from_millis(500);
    Session::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{device} joins: {e}"))
}

async fn moderator(s: &TestServer, room: &str, device: &str) -> Session {
    session(s, room, device, moderator_token(room, device)).await
}

async fn caller(s: &TestServer, room: &str, device: &str) -> Session {
    session(s, room, device, token(room, device, Role::Caller)).await
}

/// The next message on `session` that `pick` keeps (others skipped), within [`WAIT`].
async fn next_matching<T>(
    session: &mut Session,
    what: &str,
    mut pick: impl FnMut(ServerMessage) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match session.recv().await {
                Some(m) => {
                    if let Some(t) = pick(m) {
                        return t;
                    }
                }
                None => panic!("connection ended before {what}"),
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("{what} within {WAIT:?}"))
}

/// The next `moderation` a moderator is sent.
async fn next_moderation(session: &mut Session) -> call_client::protocol::ModerationState {
    next_matching(session, "moderation", |m| match m {
        ServerMessage::Moderation(state) => Some(state),
        _ => None,
    })
    .await
}

/// The `left` reason the session is sent, then the end of its connection.
async fn left_reason(session: &mut Session) -> LeaveReason {
    let reason = next_matching(session, "left", |m| match m {
        ServerMessage::Left(l) => Some(l.reason),
        _ => None,
    })
    .await;
    let ended = tokio::time::timeout(WAIT, async { while session.recv().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the connection ends after left");
    reason
}

async fn moderate(session: &mut Session, action: ModerationAction) -> Result<(), SessionError> {
    session.request(ClientMessage::Moderate(action)).await
}

fn moderation_series(action: &str, outcome: &str) -> String {
    format!("signaling_moderation_actions_total{{action=\"{action}\",outcome=\"{outcome}\"}}")
}

async fn detail(s: &TestServer, room: &str) -> Value {
    let resp = s
        .http
        .get(s.url(&format!("/v1/rooms/{room}")))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("admin request");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    crate::admin_api::check("RoomDetail", &body);
    body
}

fn devices_in(detail: &Value) -> Vec<String> {
    let mut d: Vec<String> = detail["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["device"].as_str().expect("device").to_owned())
        .collect();
    d.sort();
    d
}

async fn set_controls(s: &TestServer, room: &str, body: Value) -> Value {
    let resp = s
        .http
        .patch(s.url(&format!("/v1/rooms/{room}/controls")))
        .bearer_auth(common::ADMIN)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    assert_eq!(resp.status(), 200);
    let state: Value = resp.json().await.expect("json");
    crate::admin_api::check("Moderation", &state);
    state
}

/// A raw join (request id 7) that must wait in the lobby: the client's `waiting`.
async fn join_and_wait(s: &TestServer, room: &str, device: &str) -> Client {
    let mut c = s.connect().await;
    let mut join = join_msg(room, &token(room, device, Role::Caller), device);
    join["id"] = json!(7);
    c.send(&join).await;
    let waiting = c.recv().await;
    assert_eq!(waiting["type"], "waiting", "{waiting}");
    assert_eq!(waiting["room"], room);
    c
}

#[tokio::test]
async fn non_moderator_actions_are_refused_by_the_service() {
    let s = TestServer::start(config()).await;
    s.meeting("mod-refused").await;
    let mut a = caller(&s, "mod-refused", "dev-a").await;
    assert!(!a.joined().moderator, "no moderator grant, no moderator");
    let mut b = caller(&s, "mod-refused", "dev-b").await;
    let actions = [
        ModerationAction::AskMute {
            device: "dev-b".into(),
        },
        ModerationAction::Remove {
            device: "dev-b".into(),
        },
        ModerationAction::Lock,
        ModerationAction::Unlock,
        ModerationAction::LobbyOn,
        ModerationAction::LobbyOff,
        ModerationAction::Admit {
            device: "dev-b".into(),
        },
        ModerationAction::Deny {
            device: "dev-b".into(),
        },
        ModerationAction::EndCall,
    ];
    let forbidden_before = s
        .metric("signaling_rejected_total{reason=\"forbidden\"}")
        .await;
    for action in actions {
        let name = action.name();
        match moderate(&mut a, action).await {
            Err(SessionError::Refused(e)) => {
                assert_eq!(e.code, ErrorCode::Forbidden, "{name}: {e:?}");
                assert!(e.message.contains("moderator"), "{name}: {}", e.message);
            }
            other => panic!("{name} from a non-moderator: {other:?}"),
        }
        assert_eq!(s.metric(&moderation_series(name, "forbidden")).await, 1.0);
        assert_eq!(s.metric(&moderation_series(name, "ok")).await, 0.0);
    }
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"forbidden\"}")
            .await
            - forbidden_before,
        9.0
    );
    // Nothing happened: both are in, the room is neither locked nor in lobby mode, and b was
    // neither asked to mute nor removed.
    let room = detail(&s, "mod-refused").await;
    assert_eq!(devices_in(&room), ["dev-a", "dev-b"]);
    assert_eq!(
        room["moderation"],
        json!({"locked": false, "lobby": false, "waiting": []})
    );
    let told = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        loop {
            match b.recv().await {
                Some(ServerMessage::MuteRequested(_) | ServerMessage::Left(_)) | None => break,
                Some(_) => {}
            }
        }
    })
    .await;
    assert!(told.is_err(), "b heard nothing of the refused actions");
    let mut late = caller(&s, "mod-refused", "dev-late").await;
    assert!(late.joined().roster.devices.len() == 3, "joins are open");
    late.leave().await;
}

#[tokio::test]
async fn moderator_asks_a_participant_to_mute_and_it_says_so() {
    let s = TestServer::start(config()).await;
    s.meeting("mod-mute").await;
    let mut m = moderator(&s, "mod-mute", "dev-m").await;
    assert!(m.joined().moderator);
    let mut b = caller(&s, "mod-mute", "dev-b").await;
    moderate(
        &mut m,
        ModerationAction::AskMute {
            device: "dev-b".into(),
        },
    )
    .await
    .expect("a moderator may ask to mute");
    let by = next_matching(&mut b, "mute_requested", |msg| match msg {
        ServerMessage::MuteRequested(r) => Some(r.by),
        _ => None,
    })
    .await;
    assert_eq!(by, "dev-m", "stamped with the moderator's device");
    // The client mutes itself (the service cannot reach into an encrypted client) and says so.
    b.send(ClientMessage::MediaState(MediaState {
        audio: AudioState::Muted,
        video: VideoState::Off,
        screen: false,
    }))
    .expect("queued");
    let state = next_matching(&mut m, "b's media_state", |msg| match msg {
        ServerMessage::MediaState(s) if s.device == "dev-b" => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(state.state.audio, AudioState::Muted);
    assert_eq!(s.metric(&moderation_series("ask_mute", "ok")).await, 1.0);
    match moderate(
        &mut m,
        ModerationAction::AskMute {
            device: "dev-gone".into(),
        },
    )
    .await
    {
        Err(SessionError::Refused(e)) => assert_eq!(e.code, ErrorCode::NotInRoster),
        other => panic!("asking a device not in the room: {other:?}"),
    }
    assert_eq!(
        s.metric(&moderation_series("ask_mute", "not_found")).await,
        1.0
    );
}

#[tokio::test]
async fn moderator_removes_a_participant() {
    let s = TestServer::start(config()).await;
    s.meeting("mod-remove").await;
    let mut m = moderator(&s, "mod-remove", "dev-m").await;
    let mut b = caller(&s, "mod-remove", "dev-b").await;
    let mut c = caller(&s, "mod-remove", "dev-c").await;
    moderate(
        &mut m,
        ModerationAction::Remove {
            device: "dev-b".into(),
        },
    )
    .await
    .expect("a moderator may remove");
    assert_eq!(left_reason(&mut b).await, LeaveReason::Kicked);
    let removed = next_matching(&mut c, "roster without b", |msg| match msg {
        ServerMessage::Roster(d) if !d.removed.is_empty() => Some(d.removed),
        _ => None,
    })
    .await;
    assert_eq!(removed, ["dev-b"]);
    assert_eq!(
        devices_in(&detail(&s, "mod-remove").await),
        ["dev-c", "dev-m"]
    );
    assert_eq!(s.metric(&moderation_series("remove", "ok")).await, 1.0);
    match moderate(
        &mut m,
        ModerationAction::Remove {
            device: "dev-b".into(),
        },
    )
    .await
    {
        Err(SessionError::Refused(e)) => assert_eq!(e.code, ErrorCode::NotInRoster),
        other => panic!("removing a device no longer there: {other:?}"),
    }
    assert_eq!(
        s.metric(&moderation_series("remove", "not_found")).await,
        1.0
    );
}

#[tokio::test]
async fn locked_room_refuses_new_joins() {
    let s = TestServer::start(config()).await;
    s.meeting("mod-lock").await;
    let mut m = moderator(&s, "mod-lock", "dev-m").await;
    let first = next_moderation(&mut m).await;
    assert!(!first.locked && !first.lobby, "{first:?}");
    moderate(&mut m, ModerationAction::Lock)
        .await
        .expect("a moderator may lock");
    assert!(next_moderation(&mut m).await.locked);
    let locked_before = s
        .metric("signaling_rejected_total{reason=\"room_locked\"}")
        .await;
    let mut late = s.connect().await;
    late.send(&join_msg(
        "mod-lock",
        &token("mod-lock", "late", Role::Caller),
        "dev-late",
    ))
    .await;
    let refusal = late.expect_error("room_locked").await;
    assert!(refusal["message"].as_str().unwrap().contains("locked"));
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"room_locked\"}")
            .await
            - locked_before,
        1.0
    );
    // A moderator passes the lock.
    let m2 = moderator(&s, "mod-lock", "dev-m2").await;
    assert!(m2.joined().moderator);
    // The admin API unlocks; the late device gets in.
    let state = set_controls(&s, "mod-lock", json!({"locked": false})).await;
    assert_eq!(state["locked"], false);
    let mut late = s.connect().await;
    late.join(
        "mod-lock",
        &token("mod-lock", "late", Role::Caller),
        "dev-late",
    )
    .await;
    // And locks again: refused again, counted under the admin's action too.
    set_controls(&s, "mod-lock", json!({"locked": true})).await;
    let mut later = s.connect().await;
    later
        .send(&join_msg(
            "mod-lock",
            &token("mod-lock", "later", Role::Caller),
            "dev-later",
        ))
        .await;
    later.expect_error("room_locked").await;
    assert_eq!(s.metric(&moderation_series("lock", "ok")).await, 2.0);
    assert_eq!(s.metric(&moderation_series("unlock", "ok")).await, 1.0);
    assert_eq!(detail(&s, "mod-lock").await["moderation"]["locked"], true);
}

#[tokio::test]
async fn lobby_joiner_waits_until_admitted() {
    let s = TestServer::start(config()).await;
    s.meeting("mod-lobby").await;
    let mut m = moderator(&s, "mod-lobby", "dev-m").await;
    next_moderation(&mut m).await;
    moderate(&mut m, ModerationAction::LobbyOn)
        .await
        .expect("a moderator may turn the lobby on");
    assert!(next_moderation(&mut m).await.lobby);
    let waiting_before = s.metric("signaling_joins_total{result=\"waiting\"}").await;
    let mut w = join_and_wait(&s, "mod-lobby", "dev-w").await;
    let list = next_moderation(&mut m).await;
    assert_eq!(list.waiting.len(), 1);
    assert_eq!(list.waiting[0].device, "dev-w");
    assert_eq!(list.waiting[0].identity, "dev-w");
    assert_eq!(
        s.metric("signaling_joins_total{result=\"waiting\"}").await - waiting_before,
        1.0
    );
    // Waiting is not being in: not in the roster, and nothing but leave is accepted.
    assert_eq!(devices_in(&detail(&s, "mod-lobby").await), ["dev-m"]);
    w.send(&json!({"type": "media_state", "audio": "on", "video": "on", "screen": false}))
        .await;
    w.expect_error("wrong_state").await;
    w.expect_silence(std::time::Duration::from_millis(200))
        .await;
    let ok_before = s.metric("signaling_joins_total{result=\"ok\"}").await;
    moderate(
        &mut m,
        ModerationAction::Admit {
            device: "dev-w".into(),
        },
    )
    .await
    .expect("a moderator may admit");
    let joined = w.recv().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["device"], "dev-w");
    let added = next_matching(&mut m, "roster with w", |msg| match msg {
        ServerMessage::Roster(d) if !d.added.is_empty() => Some(d.added),
        _ => None,
    })
    .await;
    assert_eq!(added[0].device, "dev-w");
    assert!(next_moderation(&mut m).await.waiting.is_empty());
    assert_eq!(
        s.metric("signaling_joins_total{result=\"ok\"}").await - ok_before,
        1.0
    );
    assert_eq!(s.metric(&moderation_series("admit", "ok")).await, 1.0);
    // Admitted, it is an ordinary member: its media state reaches the moderator.
    w.send(&json!({"type": "media_state", "audio": "muted", "video": "off", "screen": false}))
        .await;
    let state = next_matching(&mut m, "w's media_state", |msg| match msg {
        ServerMessage::MediaState(s) if s.device == "dev-w" => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(state.state.audio, AudioState::Muted);
    // A moderator joining meanwhile passes the lobby.
    let m2 = moderator(&s, "mod-lobby", "dev-m2").await;
    assert_eq!(m2.joined().roster.devices.len(), 3);
}

#[tokio::test]
async fn denied_lobby_joiner_is_told_and_counted() {
    let s = TestServer::start(config()).await;
    s.meeting("mod-deny").await;
    let mut m = moderator(&s, "mod-deny", "dev-m").await;
    next_moderation(&mut m).await;
    // The admin API turns the lobby on; the moderator hears it.
    let state = set_controls(&s, "mod-deny", json!({"lobby": true})).await;
    assert_eq!(
        state,
        json!({"locked": false, "lobby": true, "waiting": []})
    );
    assert!(next_moderation(&mut m).await.lobby);
    let mut w = join_and_wait(&s, "mod-deny", "dev-w").await;
    let waiting = detail(&s, "mod-deny").await["moderation"]["waiting"].clone();
    assert_eq!(waiting[0]["device"], "dev-w");
    assert_eq!(next_moderation(&mut m).await.waiting.len(), 1);
    let refused_before = s.metric("signaling_joins_total{result=\"refused\"}").await;
    moderate(
        &mut m,
        ModerationAction::Deny {
            device: "dev-w".into(),
        },
    )
    .await
    .expect("a moderator may deny");
    let told = w.expect_error("join_denied").await;
    assert_eq!(told["request_id"], 7, "the refusal names the join: {told}");
    match w.next().await {
        Seen::Closed(code) => assert_eq!(code, Some(1000)),
        Seen::Json(v) => panic!("expected the close after join_denied, got {v}"),
    }
    assert!(next_moderation(&mut m).await.waiting.is_empty());
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"join_denied\"}")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("signaling_joins_total{result=\"refused\"}").await - refused_before,
        1.0
    );
    assert_eq!(s.metric(&moderation_series("deny", "ok")).await, 1.0);
    assert_eq!(devices_in(&detail(&s, "mod-deny").await), ["dev-m"]);
    // Denying again: nobody waits by that name.
    match moderate(
        &mut m,
        ModerationAction::Deny {
            device: "dev-w".into(),
        },
    )
    .await
    {
        Err(SessionError::Refused(e)) => assert_eq!(e.code, ErrorCode::NotInRoster),
        other => panic!("denying a device not waiting: {other:?}"),
    }
    // A native client that waits and is denied gets the refusal from `Session::connect`.
    let bundle: DeviceBundle =
        serde_json::from_value(common::bundle("dev-x")).expect("bundle parses");
    let cfg = SessionConfig::new(
        s.ws_url(),
        "mod-deny",
        token("mod-deny", "dev-x", Role::Caller),
        bundle,
    );
    let connecting = tokio::spawn(Session::connect(cfg));
    assert_eq!(next_moderation(&mut m).await.waiting[0].device, "dev-x");
    moderate(
        &mut m,
        ModerationAction::Deny {
            device: "dev-x".into(),
        },
    )
    .await
    .expect("deny");
    match connecting.await.expect("task") {
        Err(SessionError::Refused(e)) => assert_eq!(e.code, ErrorCode::JoinDenied),
        other => panic!("a denied native client: {other:?}"),
    }
}

#[tokio::test]
async fn end_for_all_ends_every_session() {
    let s = TestServer::start(config()).await;
    s.meeting("mod-end").await;
    let mut m = moderator(&s, "mod-end", "dev-m").await;
    let mut a = caller(&s, "mod-end", "dev-a").await;
    let mut b = caller(&s, "mod-end", "dev-b").await;
    set_controls(&s, "mod-end", json!({"lobby": true})).await;
    let mut w = join_and_wait(&s, "mod-end", "dev-w").await;
    // Not `request`: the moderator's own connection ends with the call before any answer.
    m.send(ClientMessage::Moderate(ModerationAction::EndCall))
        .expect("queued");
    for (name, session) in [("m", &mut m), ("a", &mut a), ("b", &mut b)] {
        assert_eq!(
            left_reason(session).await,
            LeaveReason::CallEnded,
            "{name} is told the call ended"
        );
    }
    let told = w.expect_error("join_denied").await;
    assert!(told["message"].as_str().unwrap().contains("ended"));
    let room = detail(&s, "mod-end").await;
    assert!(devices_in(&room).is_empty(), "{room}");
    assert_eq!(room["moderation"]["waiting"], json!([]));
    assert_eq!(s.metric(&moderation_series("end_call", "ok")).await, 1.0);
    // The room stays (an admin created it): the admin API opens it and ends the next call.
    set_controls(&s, "mod-end", json!({"lobby": false})).await;
    let mut a = caller(&s, "mod-end", "dev-a").await;
    let mut b = caller(&s, "mod-end", "dev-b").await;
    let resp = s
        .http
        .post(s.url("/v1/rooms/mod-end/end"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("admin request");
    assert_eq!(resp.status(), 204);
    assert_eq!(left_reason(&mut a).await, LeaveReason::CallEnded);
    assert_eq!(left_reason(&mut b).await, LeaveReason::CallEnded);
    assert_eq!(s.metric(&moderation_series("end_call", "ok")).await, 2.0);
    let missing = s
        .http
        .post(s.url("/v1/rooms/no-such-room/end"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .expect("admin request");
    assert_eq!(missing.status(), 404);
    let unauthorized = s
        .http
        .patch(s.url("/v1/rooms/mod-end/controls"))
        .json(&json!({"locked": true}))
        .send()
        .await
        .expect("admin request");
    assert_eq!(unauthorized.status(), 401);
    let typo = s
        .http
        .patch(s.url("/v1/rooms/mod-end/controls"))
        .bearer_auth(common::ADMIN)
        .json(&json!({"lock": true}))
        .send()
        .await
        .expect("admin request");
    assert_eq!(typo.status(), 400);
    let body: Value = typo.json().await.expect("json");
    assert_eq!(body["code"], "unknown_field");
    assert_eq!(detail(&s, "mod-end").await["moderation"]["locked"], false);
}
