//! The control API signaling uses to drive this node: JSON over HTTP under `/control/`, every
//! request authenticated with `Authorization: Bearer <SFU_CONTROL_SECRET>` (401 otherwise). Put
//! the port on a private network or enable TLS (`--tls-cert`/`--tls-key`) where it crosses hosts.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `POST /control/rooms` | `{"room": "r1", "kind": "meeting"\|"broadcast", "loudest_n"?, "last_n"?: 1-25, "receive_slots"?: bool}` | 201 `{"receive_slots"?: {"audio", "video", "screen"}}` (the slot counts, for a room with receive slots: `last_n` video slots); 400 `invalid_last_n` outside 1-25, 409 when it exists, 503 while draining |
//! | `DELETE /control/rooms/{room}` | | 204; 404 unknown |
//! | `POST /control/rooms/{room}/participants` | `{"device": "d1", "role": "caller"\|"presenter"\|"viewer"\|"recorder", "offer": "<sdp>", "subscribe": [Subscription], "screen_mids": ["1"], "session"?: u64}` | 200 `{"answer": "<sdp>"}`; with `session`, a device already there under another session is replaced in the same step; 409 `session_ended` for a removed session |
//! | `POST /control/rooms/{room}/participants/{device}/sdp?session=<id>` | `{"type": "offer"\|"answer", "sdp": "<sdp>", "screen_mids": […]}` | 200 `{"answer": "<sdp>"}` for an offer, `{"answer": null}` for an answer |
//! | `PUT /control/rooms/{room}/participants/{device}/subscriptions?session=<id>` | `[Subscription]` (replaces all) | 204 |
//! | `POST /control/rooms/{room}/participants/{device}/publications?session=<id>` | `{"source": "screen"}` | 204: the node adds a section it receives the source on (a new one each share) and offers it (`offer` event); 403 `publish_not_allowed`, 409 `already_published` |
//! | `DELETE /control/rooms/{room}/participants/{device}/publications/{source}?session=<id>` | | 204: the section turns `inactive` (offered) and the source's track is unpublished; 404 `not_published` |
//! | `DELETE /control/rooms/{room}/participants/{device}?session=<id>` | | 204 (idempotent; with `session`, only that session is removed, and it cannot be added again) |
//! | `POST /control/rooms/{room}/relay/exports` | `{"edge_media_address": "ip:port"}` | 201 `RelayExport` `{"link", "origin_media_address", "edge_media_address", "keys": {"profile": "aead_aes128_gcm", "origin_to_edge": {"master_key", "master_salt"}, "edge_to_origin": {…}}, "tracks": [RelayTrack]}` (origin side of an SFU-to-SFU relay, §7.55); 404 `unknown_room`, 400 `invalid_address`, 409 `link_exists` (the room has an export to that address), 503 `draining` |
//! | `GET /control/relay/exports/{link}` | | 200 `{"tracks": [RelayTrack]}`: what the export carries now; 404 `unknown_link` |
//! | `DELETE /control/relay/exports/{link}` | | 204: forwarding on the link stops, and the edge hears it (an authenticated RTCP BYE on the link) and frees its import; 404 `unknown_link` |
//! | `POST /control/rooms/{room}/relay/imports` | the origin's `RelayExport`, unchanged | 201 `{"link", "tracks": [{"origin_track", "track", "publisher"}]}`: the origin's publishers join the room under their own device ids and publish the relayed tracks (`track_published` events); 404 `unknown_room`, 400 `invalid_address`/`invalid_keys`, 409 `link_exists` (that link id, or the room imports from that origin already) or `participant_exists` (a relayed publisher's device id is in the room), 503 `draining` |
//! | `PUT /control/relay/imports/{link}/tracks` | `{"tracks": [RelayTrack]}` (the export's current list) | 200 as the import's answer: new tracks presented, gone ones unpublished; 404 `unknown_link` |
//! | `DELETE /control/relay/imports/{link}` | | 204: the relayed publishers leave the room (`track_unpublished`, `participant_gone` reason `relay_ended`); 404 `unknown_link` |
//! | `GET /control/events?instance=<id>&since=<seq>` | | a never-ending stream of newline-delimited JSON lines (below) |
//! | `POST /control/drain` | | 202: stop admitting rooms and participants (`sfu drain`) |
//! | `GET /control/status` | | `{"node_id", "participants", "draining"}` |
//!
//! A `RelayTrack` is `{"track", "publisher", "kind": audio|camera|screen, "mime", "ssrc",
//! "payload_type"}` (`sfu_control_api::relay`). Every refusal of a relay request is also counted
//! in `sfu_relay_rejected_total{reason}`.
//!
//! A `Subscription` is `{"track": "t…", "max_layer": 0-2?, "width": u32?, "height": u32?,
//! "pinned": bool?}`; track ids come from `track_published` events.
//!
//! `screen_mids` (optional) names the media sections whose video is screen share; it is
//! published with kind `screen` rather than `camera`.
//!
//! Events (`"type"` field): `track_published {room, publisher, track, kind: audio|camera|screen,
//! mid}`, `track_unpublished {room, publisher, track}`, `active_speakers {room, speakers:
//! [{device, level}]}`,
//! `participant_gone {room, device, reason, session?}`, `quality {room, device, direction, kind,
//! loss_ratio, jitter_seconds, rtt_seconds?}`, `offer {room, device, sdp, session?}` (a node-initiated
//! renegotiation: deliver to the client, post its answer to `.../sdp`), `slots {room, device,
//! version, slots: [{slot, mid, track?, publisher?}]}` (rooms with receive slots: which track
//! each of the device's receive slots carries; `PUT …/subscriptions` with a non-empty list
//! answers 409 `receive_slot_room` there).
//!
//! Every line of the event stream is a `sfu_control_api::StreamLine`, tagged by `"line"`:
//! `event {instance, seq, event}` (one of the events above, numbered from 1 per node process),
//! `heartbeat {instance, seq}` (first on every connection, then after 2 s of silence; a client
//! treats a stream silent for much longer as dead) and `reset {instance, seq, reason:
//! instance_changed|events_lost}`. `instance` is a random id drawn when the process starts. The
//! node keeps the last 4096 events: a client that reconnects with the `instance` and the last
//! `seq` it read gets every later event, in order, exactly once; when the buffer no longer
//! reaches back or the instance differs it gets a `reset` first and must treat the node as
//! restarted (its rooms and participants are gone or out of step). Without a query the stream
//! starts with the next event. See [`EventLog`].
//!
//! The bodies are the types of the `sfu-control-api` crate (re-exported here), which signaling's
//! client uses too.
//!
//! Errors are `{"error": "<short reason>", "code": "<stable code>"}` ([`ErrorBody`]) with 400
//! (malformed JSON, wrong types, names over 128 bytes, bad SDP, a viewer's offer that sends),
//! 401, 404 (unknown route, room, participant or track), 409 (exists), 413 (body over 512 KiB),
//! 415, 422 (refused by policy or capacity), 503 (draining); every code is listed in
//! `control/errors.rs`. Unknown routes and methods answer JSON too.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use futures_util::StreamExt as _;
use sfu_control_api::{EventsQuery, PublishBody, PublishSource, SessionQuery};
use sfu_forwarding::Role;

mod errors;

use errors::{
    MAX_BODY_BYTES, check_items, check_name, check_sdp, json_rejection, node_error, path_rejection,
    query_rejection,
};
pub use errors::{MAX_NAME_BYTES, RejectedCode, error_response, truncate};

use crate::node::{
    LayerPrefs, NodeHandle, RequestedSource, SessionDescription, SubscriptionRequest,
};

mod event_log;
mod room_policy;
pub use room_policy::{RoomPolicyError, room_policy};

pub use event_log::{EventLog, HEARTBEAT_INTERVAL, REPLAY_CAPACITY};
pub use sfu_control_api::{
    AddParticipant, AnswerBody, CreateRoom, ErrorBody, NodeStatus, ReceiveSlotCounts, RoleBody,
    RoomCreated, RoomKindBody, SdpBody, SdpKind, SubscriptionBody,
};
pub use sfu_control_api::{RelayExport, RelayExportRequest, RelayImported, RelayTracks};

/// What the control handlers use.
#[derive(Clone)]
pub struct ControlState {
    /// The node.
    pub node: NodeHandle,
    /// The shared secret (compared in constant time).
    pub secret: Arc<str>,
    /// This node's name, reported by `/control/status`.
    pub node_id: Arc<str>,
}

/// The router of `/control/…`, behind the bearer-secret check. Starts numbering the node's
/// events (a new [`EventLog`] with a fresh instance id); call inside a Tokio runtime, once per
/// node process.
pub fn router(state: ControlState) -> Router {
    let log = EventLog::start(state.node.events(), event_log::REPLAY_CAPACITY);
    router_with_log(state, log)
}

/// [`router`] serving the events of `log` on `GET /control/events`.
pub fn router_with_log(state: ControlState, log: EventLog) -> Router {
    Router::new()
        .route("/control/rooms", post(create_room))
        .route("/control/rooms/{room}", delete(close_room))
        .route("/control/rooms/{room}/participants", post(add_participant))
        .route(
            "/control/rooms/{room}/participants/{device}",
            delete(remove_participant),
        )
        .route(
            "/control/rooms/{room}/participants/{device}/sdp",
            post(renegotiate),
        )
        .route(
            "/control/rooms/{room}/participants/{device}/subscriptions",
            put(set_subscriptions),
        )
        .route(
            "/control/rooms/{room}/participants/{device}/publications",
            post(publish),
        )
        .route(
            "/control/rooms/{room}/participants/{device}/publications/{source}",
            delete(unpublish),
        )
        .route("/control/rooms/{room}/relay/exports", post(relay_export))
        .route(
            "/control/relay/exports/{link}",
            get(relay_export_tracks).delete(relay_delete_export),
        )
        .route("/control/rooms/{room}/relay/imports", post(relay_import))
        .route(
            "/control/relay/imports/{link}/tracks",
            put(relay_sync_import),
        )
        .route("/control/relay/imports/{link}", delete(relay_delete_import))
        .route("/control/events", get(events))
        .route("/control/drain", post(drain))
        .route("/control/status", get(status))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .method_not_allowed_fallback(errors::method_not_allowed)
        .fallback(errors::not_found)
        .layer(Extension(log))
        .with_state(state)
}

/// Equal-length byte strings compared without an early exit (the secret's length is not
/// secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(State(s): State<ControlState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), s.secret.as_bytes()) => {
            next.run(request).await
        }
        _ => error_response(StatusCode::UNAUTHORIZED, "unauthorized", "unauthorized"),
    }
}

impl From<SubscriptionBody> for SubscriptionRequest {
    fn from(b: SubscriptionBody) -> Self {
        SubscriptionRequest {
            track: b.track,
            prefs: LayerPrefs {
                max_layer: b.max_layer,
                size: b.height.map(|h| (b.width.unwrap_or(0), h)),
                pinned: b.pinned,
            },
        }
    }
}

/// Unwraps an extractor's result or returns its JSON refusal.
macro_rules! accept {
    ($extracted:expr, $reject:path) => {
        match $extracted {
            Ok(value) => value,
            Err(rejection) => return $reject(rejection),
        }
    };
}

/// Returns the refusal of a failed input check.
macro_rules! check {
    ($checked:expr) => {
        if let Some(refusal) = $checked {
            return refusal;
        }
    };
}

async fn create_room(
    State(s): State<ControlState>,
    body: Result<Json<CreateRoom>, JsonRejection>,
) -> Response {
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("room", &b.room));
    let policy = match room_policy(&b) {
        Ok(policy) => policy,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    };
    match s
        .node
        .create_room_with(&b.room, policy, b.receive_slots)
        .await
    {
        Ok(counts) => (
            StatusCode::CREATED,
            Json(RoomCreated {
                receive_slots: counts.map(|c| ReceiveSlotCounts {
                    audio: c.audio,
                    video: c.video,
                    screen: c.screen,
                }),
            }),
        )
            .into_response(),
        Err(e) => node_error(e),
    }
}

async fn close_room(
    State(s): State<ControlState>,
    room: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(room) = accept!(room, path_rejection);
    check!(check_name("room", &room));
    match s.node.close_room(&room).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

async fn add_participant(
    State(s): State<ControlState>,
    room: Result<Path<String>, PathRejection>,
    body: Result<Json<AddParticipant>, JsonRejection>,
) -> Response {
    let Path(room) = accept!(room, path_rejection);
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("room", &room));
    check!(check_name("device", &b.device));
    check!(check_sdp(&b.offer));
    check!(check_items("subscriptions", b.subscribe.len()));
    check!(check_items("screen sections", b.screen_mids.len()));
    let role = match b.role {
        RoleBody::Caller => Role::Caller,
        RoleBody::Presenter => Role::Presenter,
        RoleBody::Viewer => Role::Viewer,
        RoleBody::Recorder => Role::Recorder,
    };
    let subscribe = b.subscribe.into_iter().map(Into::into).collect();
    match s
        .node
        .add_participant(
            &room,
            &b.device,
            role,
            b.offer,
            subscribe,
            &b.screen_mids,
            b.session,
        )
        .await
    {
        Ok(answer) => Json(AnswerBody {
            answer: Some(answer),
        })
        .into_response(),
        Err(e) => node_error(e),
    }
}

async fn renegotiate(
    State(s): State<ControlState>,
    names: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<SessionQuery>, QueryRejection>,
    body: Result<Json<SdpBody>, JsonRejection>,
) -> Response {
    let Path((room, device)) = accept!(names, path_rejection);
    let Query(q) = accept!(query, query_rejection);
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("room", &room));
    check!(check_name("device", &device));
    check!(check_sdp(&b.sdp));
    check!(check_items("screen sections", b.screen_mids.len()));
    let description = match b.kind {
        SdpKind::Offer => SessionDescription::Offer(b.sdp),
        SdpKind::Answer => SessionDescription::Answer(b.sdp),
    };
    match s
        .node
        .renegotiate(&room, &device, description, &b.screen_mids, q.session)
        .await
    {
        Ok(answer) => Json(AnswerBody { answer }).into_response(),
        Err(e) => node_error(e),
    }
}

async fn set_subscriptions(
    State(s): State<ControlState>,
    names: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<SessionQuery>, QueryRejection>,
    body: Result<Json<Vec<SubscriptionBody>>, JsonRejection>,
) -> Response {
    let Path((room, device)) = accept!(names, path_rejection);
    let Query(q) = accept!(query, query_rejection);
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("room", &room));
    check!(check_name("device", &device));
    check!(check_items("subscriptions", b.len()));
    let subs = b.into_iter().map(Into::into).collect();
    match s
        .node
        .set_subscriptions(&room, &device, subs, q.session)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

fn requested(source: PublishSource) -> RequestedSource {
    match source {
        PublishSource::Screen => RequestedSource::Screen,
    }
}

async fn publish(
    State(s): State<ControlState>,
    names: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<SessionQuery>, QueryRejection>,
    body: Result<Json<PublishBody>, JsonRejection>,
) -> Response {
    let Path((room, device)) = accept!(names, path_rejection);
    let Query(q) = accept!(query, query_rejection);
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("room", &room));
    check!(check_name("device", &device));
    match s
        .node
        .publish(&room, &device, requested(b.source), q.session)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

async fn unpublish(
    State(s): State<ControlState>,
    names: Result<Path<(String, String, PublishSource)>, PathRejection>,
    query: Result<Query<SessionQuery>, QueryRejection>,
) -> Response {
    let Path((room, device, source)) = accept!(names, path_rejection);
    let Query(q) = accept!(query, query_rejection);
    check!(check_name("room", &room));
    check!(check_name("device", &device));
    match s
        .node
        .unpublish(&room, &device, requested(source), q.session)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

async fn remove_participant(
    State(s): State<ControlState>,
    names: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<SessionQuery>, QueryRejection>,
) -> Response {
    let Path((room, device)) = accept!(names, path_rejection);
    let Query(q) = accept!(query, query_rejection);
    check!(check_name("room", &room));
    check!(check_name("device", &device));
    match s.node.remove_participant(&room, &device, q.session).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

async fn events(
    State(s): State<ControlState>,
    Extension(log): Extension<EventLog>,
    Query(query): Query<EventsQuery>,
) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(
            log.stream(&query, event_log::HEARTBEAT_INTERVAL)
                .map(Ok::<_, std::convert::Infallible>)
                // The stream ends when the process shuts down, so no listener holds the drain open.
                .take_until(s.node.event_streams_stopped()),
        ),
    )
        .into_response()
}

async fn drain(State(s): State<ControlState>) -> StatusCode {
    s.node.start_drain();
    tracing::info!("draining on request");
    StatusCode::ACCEPTED
}

async fn status(State(s): State<ControlState>) -> Json<NodeStatus> {
    Json(NodeStatus {
        draining: s.node.is_draining(),
        node_id: s.node_id.to_string(),
        participants: s.node.participant_count(),
    })
}

async fn relay_export(
    State(s): State<ControlState>,
    room: Result<Path<String>, PathRejection>,
    body: Result<Json<RelayExportRequest>, JsonRejection>,
) -> Response {
    let Path(room) = accept!(room, path_rejection);
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("room", &room));
    check!(check_name("address", &b.edge_media_address));
    match s.node.relay_export(&room, &b.edge_media_address).await {
        Ok(export) => (StatusCode::CREATED, Json(export)).into_response(),
        Err(e) => node_error(e),
    }
}

async fn relay_export_tracks(
    State(s): State<ControlState>,
    link: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(link) = accept!(link, path_rejection);
    check!(check_name("link", &link));
    match s.node.relay_export_tracks(&link).await {
        Ok(tracks) => Json(tracks).into_response(),
        Err(e) => node_error(e),
    }
}

async fn relay_delete_export(
    State(s): State<ControlState>,
    link: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(link) = accept!(link, path_rejection);
    check!(check_name("link", &link));
    match s.node.relay_delete(&link, true).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

async fn relay_import(
    State(s): State<ControlState>,
    room: Result<Path<String>, PathRejection>,
    body: Result<Json<RelayExport>, JsonRejection>,
) -> Response {
    let Path(room) = accept!(room, path_rejection);
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("room", &room));
    check!(check_name("link", &b.link));
    check!(check_relay_tracks(&b.tracks));
    match s.node.relay_import(&room, b).await {
        Ok(imported) => (StatusCode::CREATED, Json(imported)).into_response(),
        Err(e) => node_error(e),
    }
}

async fn relay_sync_import(
    State(s): State<ControlState>,
    link: Result<Path<String>, PathRejection>,
    body: Result<Json<RelayTracks>, JsonRejection>,
) -> Response {
    let Path(link) = accept!(link, path_rejection);
    let Json(b) = accept!(body, json_rejection);
    check!(check_name("link", &link));
    check!(check_relay_tracks(&b.tracks));
    match s.node.relay_sync_import(&link, b).await {
        Ok(imported) => Json(imported).into_response(),
        Err(e) => node_error(e),
    }
}

async fn relay_delete_import(
    State(s): State<ControlState>,
    link: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(link) = accept!(link, path_rejection);
    check!(check_name("link", &link));
    match s.node.relay_delete(&link, false).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => node_error(e),
    }
}

/// The refusal of a relayed track list that is too long or names a publisher badly.
fn check_relay_tracks(tracks: &[sfu_control_api::RelayTrack]) -> Option<Response> {
    check_items("tracks", tracks.len()).or_else(|| {
        tracks.iter().find_map(|t| {
            check_name("device", &t.publisher).or_else(|| check_name("track", &t.track))
        })
    })
}
