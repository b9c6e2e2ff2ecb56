//! The tests' WebRTC clients (`call_client::peer`, loopback only) in the shapes the tests use,
//! and joining them to a node or a bare shard: offer, answer, connected.

use std::time::Duration;

use call_client::peer::{LocalTrack, Peer, PeerBuilder, RtpCodecKind, VideoLayer};
use sfu::node::{NodeConfig, NodeEvent, NodeHandle, SubscriptionRequest, start_node};
use sfu::transport::{MediaHandler, OutgoingTrack, PeerId};
use sfu_forwarding::{Role, RoomPolicy};

use super::TestSfu;

/// The SSRC of [`publisher`]'s video track.
pub(crate) const VIDEO_SSRC: u32 = 0x1234_5678;
/// How long a client may take to connect on loopback (the 50-viewer and 20-caller tests
/// connect all their clients at once).
pub(crate) const CONNECT: Duration = Duration::from_secs(20);

/// A node started with `config` on loopback, its event receiver (subscribed before anything
/// happens on it), and a meeting room named `room` on it.
pub(crate) async fn node_with_meeting(
    config: NodeConfig,
    room: &str,
) -> (NodeHandle, tokio::sync::broadcast::Receiver<NodeEvent>) {
    let node = start_node(config, None)
        .await
        .expect("node starts on loopback");
    let events = node.events();
    node.create_room(room, RoomPolicy::meeting())
        .await
        .expect("room created");
    (node, events)
}

/// A VP8 keyframe payload: descriptor with S = 1, frame tag P = 0.
pub(crate) const KEYFRAME: [u8; 10] = [0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 7, 7, 7];

/// Sends [`KEYFRAME`]s on `video` until the node reports a track published; returns its id.
pub(crate) async fn published_track(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    video: &mut LocalTrack,
) -> String {
    for _ in 0..100 {
        video.write_next(&KEYFRAME).await.expect("rtp written");
        while let Ok(e) = events.try_recv() {
            if let NodeEvent::TrackPublished { track, .. } = e {
                return track;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no track published within 100 keyframes");
}

/// Sends [`KEYFRAME`]s on `video` until `viewer` receives a packet; whether it did within
/// about 3 s.
pub(crate) async fn receives(video: &mut LocalTrack, viewer: &mut Peer) -> bool {
    for _ in 0..100 {
        video.write_next(&KEYFRAME).await.expect("rtp written");
        if let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(30), viewer.incoming().recv()).await
        {
            return true;
        }
    }
    false
}

/// A client built with `builder` that publishes one VP8 track with SSRC `ssrc`.
pub(crate) async fn publisher_with(builder: PeerBuilder, ssrc: u32) -> (Peer, LocalTrack) {
    let peer = builder
        .build()
        .await
        .expect("client peer connection builds");
    let video = peer
        .add_video("pub-video", &[VideoLayer::single(ssrc)])
        .await
        .expect("video track added");
    (peer, video)
}

/// A client that publishes one VP8 track with SSRC [`VIDEO_SSRC`].
pub(crate) async fn publisher() -> (Peer, LocalTrack) {
    publisher_with(Peer::builder(), VIDEO_SSRC).await
}

/// A client built with `builder` that only receives, one recvonly section per kind in `kinds`.
pub(crate) async fn receiver_with(builder: PeerBuilder, kinds: &[RtpCodecKind]) -> Peer {
    let peer = builder
        .build()
        .await
        .expect("client peer connection builds");
    for kind in kinds {
        peer.add_recvonly(*kind)
            .await
            .expect("recvonly transceiver added");
    }
    peer
}

/// A client that only receives one video track.
pub(crate) async fn subscriber() -> Peer {
    receiver_with(Peer::builder(), &[RtpCodecKind::Video]).await
}

/// A client that only receives, one video and one audio track.
pub(crate) async fn audio_video_subscriber() -> Peer {
    receiver_with(Peer::builder(), &[RtpCodecKind::Video, RtpCodecKind::Audio]).await
}

/// Subscriptions to `tracks` with default preferences.
pub(crate) fn subscriptions<'a>(
    tracks: impl IntoIterator<Item = &'a String>,
) -> Vec<SubscriptionRequest> {
    tracks
        .into_iter()
        .map(|track| SubscriptionRequest {
            track: track.clone(),
            prefs: Default::default(),
        })
        .collect()
}

/// Adds `peer` to `room` on `node` as `device` and applies the node's answer; the connection
/// may still be on its way (see [`join`]).
pub(crate) async fn admit(
    node: &NodeHandle,
    room: &str,
    device: &str,
    role: Role,
    peer: &Peer,
    subscribe: Vec<SubscriptionRequest>,
) {
    let offer = peer.offer().await.expect("offer");
    let answer = node
        .add_participant(room, device, role, offer, subscribe, &[], None)
        .await
        .unwrap_or_else(|e| panic!("{device} added: {e}"));
    peer.apply_answer(&answer).await.expect("answer applies");
}

/// [`admit`], then waits until `peer` is connected.
pub(crate) async fn join(
    node: &NodeHandle,
    room: &str,
    device: &str,
    role: Role,
    peer: &Peer,
    subscribe: Vec<SubscriptionRequest>,
) {
    admit(node, room, device, role, peer, subscribe).await;
    connected(peer, device).await;
}

/// Applies the SFU's `answer` (from its control API, or a node the test drives itself) and
/// waits until `peer`, called `who`, is connected.
pub(crate) async fn accept_answer(peer: &Peer, answer: &str, who: &str) {
    peer.apply_answer(answer).await.expect("answer applies");
    connected(peer, who).await;
}

/// Waits until `peer`, called `who`, is connected.
async fn connected(peer: &Peer, who: &str) {
    peer.wait_connected(CONNECT)
        .await
        .unwrap_or_else(|e| panic!("{who} connects: {e}"));
}

/// Waits until every one of `peers` is connected.
pub(crate) async fn all_connected<'a>(peers: impl IntoIterator<Item = &'a Peer>) {
    for (n, peer) in peers.into_iter().enumerate() {
        connected(peer, &format!("client {n}")).await;
    }
}

impl<H: MediaHandler> TestSfu<H> {
    /// Adds `peer` to the shard with `outgoing` tracks, applies the answer, waits until the
    /// shard reports it connected, and returns its id.
    pub(crate) async fn connect(&mut self, peer: &Peer, outgoing: Vec<OutgoingTrack>) -> PeerId {
        let added = self
            .handle
            .add_peer(peer.offer().await.expect("offer"), outgoing)
            .await
            .expect("peer added");
        peer.apply_answer(&added.answer)
            .await
            .expect("answer applies");
        assert!(
            self.wait_connected(added.peer, Duration::from_secs(10))
                .await,
            "the shard reports the peer connected"
        );
        added.peer
    }
}
