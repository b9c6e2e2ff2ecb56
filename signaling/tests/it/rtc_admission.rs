//! Token and capacity refusals, each with its error code, over real sockets; the 100 callers and
//! 500 viewers that fill the rooms join through the generic Sink/Stream path to stay fast.

use crate::common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{API_KEY, API_SECRET, ChannelClient, TestServer, config, join_msg, token, token_with};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use signaling::auth::{Claims, GrantClaims, sign_claims};
use signaling::policy::Role;

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(room: &str) -> Claims {
    Claims {
        iss: API_KEY.into(),
        exp: now() + 300,
        nbf: Some(now()),
        iat: Some(now()),
        grants: Some(GrantClaims {
            room: Some(room.into()),
            identity: Some("mallory".into()),
            role: Some(Role::Caller),
            can_publish: true,
            can_subscribe: true,
            moderator: false,
            device: None,
        }),
    }
}

async fn refused(s: &TestServer, room: &str, token: &str, code: &str) {
    let mut c = s.connect().await;
    c.send(&join_msg(room, token, "dev-x")).await;
    c.expect_error(code).await;
    // The connection survives a refused join: a good token still works on it.
    c.send(&join_msg(
        room,
        &common::token(room, "ok", Role::Caller),
        "dev-ok",
    ))
    .await;
    assert_eq!(c.recv().await["type"], "joined");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_their_codes() {
    let s = TestServer::start(config()).await;
    s.meeting("t").await;

    let mut expired = claims("t");
    expired.exp = now() - 120;
    expired.nbf = Some(now() - 600);
    refused(&s, "t", &sign_claims(&expired, API_SECRET), "token_expired").await;

    let mut early = claims("t");
    early.nbf = Some(now() + 120);
    refused(
        &s,
        "t",
        &sign_claims(&early, API_SECRET),
        "token_not_yet_valid",
    )
    .await;

    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("t")).expect("json"));
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    refused(&s, "t", &none, "bad_token").await;

    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims("t"),
        &EncodingKey::from_secret(API_SECRET.as_bytes()),
    )
    .expect("sign");
    refused(&s, "t", &hs512, "bad_token").await;

    refused(
        &s,
        "t",
        &sign_claims(&claims("t"), "wrong-secret"),
        "bad_token",
    )
    .await;
    refused(
        &s,
        "t",
        &token("elsewhere", "mallory", Role::Caller),
        "wrong_room",
    )
    .await;

    let mut no_role = claims("t");
    if let Some(g) = no_role.grants.as_mut() {
        g.role = None;
    }
    refused(&s, "t", &sign_claims(&no_role, API_SECRET), "missing_grant").await;
    let mut nothing = claims("t");
    if let Some(g) = nothing.grants.as_mut() {
        g.can_publish = false;
        g.can_subscribe = false;
    }
    refused(&s, "t", &sign_claims(&nothing, API_SECRET), "missing_grant").await;

    // 8 refusals above, counted by reason.
    assert_eq!(
        s.metric("signaling_joins_total{result=\"refused\"}").await,
        8.0
    );
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"expired\"}")
            .await,
        1.0
    );
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"bad_token\"}")
            .await,
        6.0
    );
}

#[tokio::test]
async fn viewer_roles_cannot_publish() {
    let s = TestServer::start(config()).await;
    s.create_room(json!({"name": "b", "kind": "broadcast"}))
        .await;
    let mut c = s.connect().await;
    c.send(&join_msg(
        "b",
        &token_with("b", "v", Role::Viewer, true, true),
        "dev-v",
    ))
    .await;
    c.expect_error("forbidden").await;
    // A caller token cannot enter a broadcast, a presenter token cannot enter a meeting.
    c.send(&join_msg("b", &token("b", "c", Role::Caller), "dev-c"))
        .await;
    c.expect_error("role_not_allowed").await;
    s.meeting("m").await;
    c.send(&join_msg("m", &token("m", "p", Role::Presenter), "dev-p"))
        .await;
    c.expect_error("role_not_allowed").await;
    // No recording policy: no recorder.
    c.send(&join_msg("m", &token("m", "r", Role::Recorder), "dev-r"))
        .await;
    c.expect_error("role_not_allowed").await;
}

#[tokio::test]
async fn the_101st_caller_is_refused() {
    let s = TestServer::start(config()).await;
    s.meeting("full").await;
    let mut callers = Vec::new();
    for i in 0..100 {
        let mut c = ChannelClient::start(&s.server);
        c.send(&join_msg(
            "full",
            &token("full", &format!("u{i}"), Role::Caller),
            &format!("d{i}"),
        ));
        assert_eq!(c.recv().await["type"], "joined", "caller {i}");
        callers.push(c);
    }
    let mut extra = s.connect().await;
    extra
        .send(&join_msg(
            "full",
            &token("full", "u100", Role::Caller),
            "d100",
        ))
        .await;
    let err = extra.expect_error("room_full").await;
    assert!(err["message"].as_str().is_some_and(|m| m.contains("100")));
    assert_eq!(
        s.metric("signaling_participants{role=\"caller\"}").await,
        100.0
    );
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"capacity\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn the_501st_viewer_is_refused() {
    let s = TestServer::start(config()).await;
    s.create_room(json!({"name": "bc", "kind": "broadcast"}))
        .await;
    let mut viewers = Vec::new();
    for i in 0..500 {
        let c = ChannelClient::start(&s.server);
        c.send(&join_msg(
            "bc",
            &token("bc", &format!("v{i}"), Role::Viewer),
            &format!("v{i}"),
        ));
        viewers.push(c);
    }
    for (i, c) in viewers.iter_mut().enumerate() {
        assert_eq!(c.recv().await["type"], "joined", "viewer {i}");
    }
    let mut extra = s.connect().await;
    extra
        .send(&join_msg("bc", &token("bc", "v500", Role::Viewer), "v500"))
        .await;
    extra.expect_error("room_full").await;
    // Presenters have their own capacity: one still gets in.
    let mut p = s.connect().await;
    let j = p
        .join("bc", &token("bc", "host", Role::Presenter), "host")
        .await;
    assert_eq!(j["roster"]["devices"].as_array().map(Vec::len), Some(501));
    assert_eq!(
        s.metric("signaling_participants{role=\"viewer\"}").await,
        500.0
    );
}

#[tokio::test]
async fn rooms_must_exist_unless_auto_created() {
    let s = TestServer::start(config()).await;
    let mut c = s.connect().await;
    c.send(&join_msg(
        "ghost",
        &token("ghost", "a", Role::Caller),
        "dev-a",
    ))
    .await;
    c.expect_error("room_not_found").await;

    let mut auto = config();
    auto.auto_create_rooms = true;
    let s = TestServer::start(auto).await;
    let mut c = s.connect().await;
    let j = c
        .join("ghost", &token("ghost", "a", Role::Caller), "dev-a")
        .await;
    assert_eq!(j["kind"], "meeting");
}
