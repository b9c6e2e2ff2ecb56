//! A source asked for after the first answer (architecture §7.53) is refused by the node
//! itself where it must be, over the node API and the control API, with a stable code: a role
//! without the publish right (`403 publish_not_allowed`), an unpublish of a source that is not
//! published (`404 not_published`), a second publish of a published one (`409
//! already_published`), a source other than `screen` (`400 invalid_body`).

use crate::common;

use crate::common::peers::{audio_video_subscriber, publisher};
use sfu::control::{self, ControlState};
use sfu::node::{NodeConfig, NodeError, RequestedSource, start_node};
use sfu_forwarding::{Role, RoomPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_requests_the_node_must_refuse_are_refused_with_a_code() {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts");
    node.create_room("show", RoomPolicy::broadcast())
        .await
        .expect("room created");
    let viewer = audio_video_subscriber().await;
    node.add_participant(
        "show",
        "v1",
        Role::Viewer,
        viewer.offer().await.expect("offer"),
        vec![],
        &[],
        None,
    )
    .await
    .expect("viewer joins");
    let (presenter, _video) = publisher().await;
    node.add_participant(
        "show",
        "p1",
        Role::Presenter,
        presenter.offer().await.expect("offer"),
        vec![],
        &[],
        None,
    )
    .await
    .expect("presenter joins");

    let refused = node
        .publish("show", "v1", RequestedSource::Screen, None)
        .await;
    assert!(
        matches!(refused, Err(NodeError::PublishNotAllowed)),
        "{refused:?}"
    );
    let refused = node
        .unpublish("show", "p1", RequestedSource::Screen, None)
        .await;
    assert!(
        matches!(refused, Err(NodeError::NotPublished)),
        "{refused:?}"
    );

    // The presenter may publish (its peer is not connected here: the node's offer waits for
    // that; the signaling tests answer it with real clients).
    node.publish("show", "p1", RequestedSource::Screen, None)
        .await
        .expect("presenter may publish");

    // The same refusals over the control API, as JSON errors with stable codes.
    let app = control::router(ControlState {
        node: node.clone(),
        secret: "publish-secret".into(),
        node_id: "n".into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::new();
    let publications =
        |device: &str| format!("{base}/control/rooms/show/participants/{device}/publications");
    for (what, request, status, code) in [
        (
            "a viewer's publish",
            http.post(publications("v1"))
                .json(&serde_json::json!({"source": "screen"})),
            403,
            "publish_not_allowed",
        ),
        (
            "a second publish of the screen",
            http.post(publications("p1"))
                .json(&serde_json::json!({"source": "screen"})),
            409,
            "already_published",
        ),
        (
            "an unknown source",
            http.post(publications("p1"))
                .json(&serde_json::json!({"source": "camera"})),
            400,
            "invalid_body",
        ),
        (
            "an unpublish of a viewer's screen",
            http.delete(format!("{}/screen", publications("v1"))),
            403,
            "publish_not_allowed",
        ),
    ] {
        let response = request
            .bearer_auth("publish-secret")
            .send()
            .await
            .expect("control API answers");
        assert_eq!(response.status(), status, "{what}");
        let body: sfu::control::ErrorBody = response.json().await.expect("JSON error body");
        assert_eq!(body.code, code, "{what}");
    }
    // Unpublished over the control API: then it is not published any more.
    let response = http
        .delete(format!("{}/screen", publications("p1")))
        .bearer_auth("publish-secret")
        .send()
        .await
        .expect("control API answers");
    assert_eq!(response.status(), 204);
    let response = http
        .delete(format!("{}/screen", publications("p1")))
        .bearer_auth("publish-secret")
        .send()
        .await
        .expect("control API answers");
    assert_eq!(response.status(), 404);
    let body: sfu::control::ErrorBody = response.json().await.expect("JSON error body");
    assert_eq!(body.code, "not_published");
}
