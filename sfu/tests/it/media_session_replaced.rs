//! A device's media sessions on the node are named by the ids their caller gives them. A new
//! session of a device replaces its old one in one step (a reconnect: no moment with both or
//! neither), a late removal of the old session leaves the new one alone, the old session cannot
//! be added again, and calls about it are refused. Real `webrtc` clients; the whole node.

use crate::common;
use crate::common::peers::node_with_meeting;

use crate::common::peers::{
    accept_answer, join, published_track, publisher, receives, subscriber, subscriptions,
};
use call_client::peer::Peer;
use sfu::node::{NodeConfig, NodeError, NodeHandle, SessionDescription};
use sfu_forwarding::Role;

/// Adds a fresh subscriber of `track` as `device` in media session `session` and waits until it
/// is connected.
async fn viewer_session(node: &NodeHandle, track: &String, session: u64) -> Peer {
    let viewer = subscriber().await;
    let answer = node
        .add_participant(
            "room",
            "bob",
            Role::Caller,
            viewer.offer().await.expect("offer"),
            subscriptions([track]),
            &[],
            Some(session),
        )
        .await
        .unwrap_or_else(|e| panic!("session {session} added: {e}"));
    accept_answer(&viewer, &answer, &format!("bob's session {session}")).await;
    viewer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_replaces_the_media_session_and_a_late_removal_of_the_old_one_is_ignored() {
    common::init_tracing();
    let (node, mut events) = node_with_meeting(NodeConfig::default(), "room").await;
    let (alice, mut video) = publisher().await;
    join(&node, "room", "alice", Role::Caller, &alice, vec![]).await;
    let track = published_track(&mut events, &mut video).await;

    let mut first = viewer_session(&node, &track, 1).await;
    assert!(receives(&mut video, &mut first).await, "session 1 receives");
    assert_eq!(node.participant_count(), 2);

    // The device reconnects with a new peer connection: session 2 replaces session 1.
    let mut second = viewer_session(&node, &track, 2).await;
    assert_eq!(node.participant_count(), 2, "replaced, not added");
    assert!(
        receives(&mut video, &mut second).await,
        "session 2 receives"
    );
    assert_eq!(node.snapshot().await.sessions_replaced, 1);

    // The removal signaling sent for session 1 arrives late: it must not touch session 2.
    node.remove_participant("room", "bob", Some(1))
        .await
        .expect("a removal is idempotent");
    assert_eq!(node.participant_count(), 2, "session 2 stays");
    assert!(
        receives(&mut video, &mut second).await,
        "session 2 still receives after session 1's late removal"
    );

    // Session 1 is over for good: it cannot come back, and calls about it are refused.
    let late_add = node
        .add_participant(
            "room",
            "bob",
            Role::Caller,
            subscriber().await.offer().await.expect("offer"),
            vec![],
            &[],
            Some(1),
        )
        .await;
    assert!(
        matches!(late_add, Err(NodeError::SessionEnded)),
        "{late_add:?}"
    );
    let stale_sdp = node
        .renegotiate(
            "room",
            "bob",
            SessionDescription::Offer(second.offer().await.expect("offer")),
            &[],
            Some(1),
        )
        .await;
    assert!(
        matches!(stale_sdp, Err(NodeError::UnknownParticipant)),
        "{stale_sdp:?}"
    );
    let stale_subscriptions = node.set_subscriptions("room", "bob", vec![], Some(1)).await;
    assert!(
        matches!(stale_subscriptions, Err(NodeError::UnknownParticipant)),
        "{stale_subscriptions:?}"
    );
    assert!(
        receives(&mut video, &mut second).await,
        "session 2 untouched"
    );

    // Removing the current session removes the device.
    node.remove_participant("room", "bob", Some(2))
        .await
        .expect("session 2 removed");
    assert_eq!(node.participant_count(), 1);
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_id_a_second_add_of_the_device_is_refused() {
    common::init_tracing();
    let (node, _events) = node_with_meeting(NodeConfig::default(), "room").await;
    let offer = || async { subscriber().await.offer().await.expect("offer") };
    node.add_participant(
        "room",
        "bob",
        Role::Caller,
        offer().await,
        vec![],
        &[],
        None,
    )
    .await
    .expect("first add");
    let second = node
        .add_participant(
            "room",
            "bob",
            Role::Caller,
            offer().await,
            vec![],
            &[],
            None,
        )
        .await;
    assert!(
        matches!(second, Err(NodeError::ParticipantExists)),
        "{second:?}"
    );
}
