//! The SFU enforces media direction itself, so a client that gets past signaling's publish
//! check still cannot send: a viewer's offer with a sending section (a real `webrtc` client's
//! `sendonly` track, `a=sendonly` followed by `a=recvonly`, a port-0 `bundle-only` `sendonly`
//! section, a section with no direction at all) is refused with a clear error before anything
//! is created, over the node API and over the control API (400 `sends_without_publish_right`);
//! so is a later renegotiation offer that sends. A clean `recvonly` viewer joins, and no track
//! of any viewer is ever published.

use crate::common;

use crate::common::peers::{audio_video_subscriber, publisher};
use sfu::control::{self, ControlState};
use sfu::node::{NodeConfig, NodeError, SessionDescription, start_node};
use sfu_forwarding::{Role, RoomPolicy};

/// Inserts `lines` right after the `a=mid:<mid>` line of `sdp`.
fn after_mid(sdp: &str, mid: &str, lines: &str) -> String {
    let marker = format!("a=mid:{mid}\r\n");
    let at = sdp.find(&marker).expect("section with that mid") + marker.len();
    format!("{}{lines}{}", &sdp[..at], &sdp[at..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_sendonly_sdp_variants_refused_by_sfu() {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts");
    node.create_room("show", RoomPolicy::broadcast())
        .await
        .expect("room created");

    let viewer = audio_video_subscriber().await;
    let clean = viewer.offer().await.expect("offer");
    assert!(clean.contains("a=recvonly") && !clean.contains("a=sendonly"));
    let first_mid = clean
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .expect("a mid")
        .trim()
        .to_owned();

    // A real client that publishes: its section is sendonly.
    let (sender, _video) = publisher().await;
    let real_sender = sender.offer().await.expect("offer");
    // A sending direction before the recvonly one.
    let two_directions = after_mid(&clean, &first_mid, "a=sendonly\r\n");
    // An extra bundled section on port 0, bundle-only, sendonly.
    let bundle_only = format!(
        "{clean}m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=bundle-only\r\na=mid:9\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n"
    );
    // The direction lines removed: the default is sendrecv.
    let no_direction = clean.replace("a=recvonly\r\n", "");

    for (what, offer) in [
        ("a real client's sendonly track", &real_sender),
        ("a=sendonly then a=recvonly", &two_directions),
        ("a port-0 bundle-only sendonly section", &bundle_only),
        ("sections without a direction", &no_direction),
    ] {
        for role in [Role::Viewer, Role::Recorder] {
            let refused = node
                .add_participant("show", "v1", role, offer.clone(), vec![], &[], None)
                .await;
            assert!(
                matches!(refused, Err(NodeError::SendsWithoutPublishRight(_))),
                "{what} as {role:?}: {refused:?}"
            );
        }
    }
    assert_eq!(node.participant_count(), 0, "nothing was created");

    // The same over the control API: a JSON error with a stable code.
    let app = control::router(ControlState {
        node: node.clone(),
        secret: "direction-secret".into(),
        node_id: "n".into(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let response = reqwest::Client::new()
        .post(format!("{base}/control/rooms/show/participants"))
        .bearer_auth("direction-secret")
        .json(&serde_json::json!({"device": "v1", "role": "viewer", "offer": two_directions}))
        .send()
        .await
        .expect("control API answers");
    assert_eq!(response.status(), 400);
    let body: sfu::control::ErrorBody = response.json().await.expect("JSON error body");
    assert_eq!(body.code, "sends_without_publish_right");

    // The clean viewer joins; its later offer that sends is refused too.
    let answer = node
        .add_participant("show", "v1", Role::Viewer, clean.clone(), vec![], &[], None)
        .await
        .expect("recvonly viewer joins");
    assert!(
        !answer.contains("a=recvonly"),
        "the SFU never answers that it receives"
    );
    let renegotiated = node
        .renegotiate(
            "show",
            "v1",
            SessionDescription::Offer(two_directions.clone()),
            &[],
            None,
        )
        .await;
    assert!(
        matches!(renegotiated, Err(NodeError::SendsWithoutPublishRight(_))),
        "{renegotiated:?}"
    );

    // A presenter may send.
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
    assert_eq!(node.participant_count(), 2);
    let gauges = node.snapshot().await.gauges;
    assert_eq!(
        gauges.tracks.audio + gauges.tracks.video,
        0,
        "no viewer track was published"
    );
}
