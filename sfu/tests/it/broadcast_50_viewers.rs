//! A 50-viewer broadcast through the whole node with real `webrtc` clients on loopback: one
//! presenter publishes Opus audio and a VP8 camera, 50 viewers join with both tracks in their
//! first answer, and every viewer receives both with the payload bytes exactly as sent (audio
//! untouched; VP8 frame bytes after the payload descriptor untouched).

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use crate::common::peers::{
    admit, all_connected, audio_video_subscriber, join, publisher, subscriptions,
};
use call_client::peer::{LocalTrack, Peer, RtpCodecKind, vp8_frame_bytes};
use sfu::node::{NodeConfig, NodeEvent, TrackClass, start_node};
use sfu_forwarding::{Role, RoomPolicy};

const VIEWERS: usize = 50;
/// Packets of each kind every viewer must receive.
const WANTED: usize = 10;
const AUDIO_SSRC: u32 = 0x2222_0001;
const AUDIO_MARK: u8 = 0xA7;

/// The VP8 frame (after the descriptor) of round `r`: keyframe tag, the round, derived bytes.
fn frame(r: u8) -> Vec<u8> {
    let mut f = vec![0x10, 0x02, 0x00, 0x9d, r];
    f.extend((0..200u32).map(|i| (i as u8).wrapping_mul(31) ^ r));
    f
}

fn video_payload(r: u8) -> Vec<u8> {
    let mut p = vec![0x90, 0x80, 0x80, r];
    p.extend(frame(r));
    p
}

fn audio_payload(r: u8) -> Vec<u8> {
    let mut p = vec![AUDIO_MARK, r];
    p.extend((0..80u32).map(|i| (i as u8).wrapping_mul(13).wrapping_add(r)));
    p
}

struct Presenter {
    peer: Peer,
    video: LocalTrack,
    audio: LocalTrack,
    round: u8,
}

impl Presenter {
    async fn send_round(&mut self) {
        self.round = self.round.wrapping_add(1);
        self.video
            .write_next(&video_payload(self.round))
            .await
            .expect("video rtp written");
        self.audio
            .write_next(&audio_payload(self.round))
            .await
            .expect("audio rtp written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_receive_the_presenters_audio_and_video_unchanged() {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let mut events = node.events();
    node.create_room("show", RoomPolicy::broadcast())
        .await
        .expect("room created");

    let (peer, video) = publisher().await;
    let audio = peer
        .add_audio("pub-audio", AUDIO_SSRC)
        .await
        .expect("audio track added");
    join(&node, "show", "presenter", Role::Presenter, &peer, vec![]).await;
    let mut presenter = Presenter {
        peer,
        video,
        audio,
        round: 0,
    };
    let mut tracks: HashMap<TrackClass, String> = HashMap::new();
    for _ in 0..100 {
        presenter.send_round().await;
        while let Ok(e) = events.try_recv() {
            if let NodeEvent::TrackPublished { track, kind, .. } = e {
                tracks.insert(kind, track);
            }
        }
        if tracks.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        tracks.contains_key(&TrackClass::Audio) && tracks.contains_key(&TrackClass::Camera),
        "audio and camera published: {tracks:?}"
    );
    let mut viewers = Vec::with_capacity(VIEWERS);
    for v in 0..VIEWERS {
        let peer = audio_video_subscriber().await;
        let viewer = format!("viewer-{v}");
        let subscribe = subscriptions(tracks.values());
        admit(&node, "show", &viewer, Role::Viewer, &peer, subscribe).await;
        viewers.push(peer);
    }
    all_connected(&viewers).await;
    assert_eq!(node.participant_count(), VIEWERS + 1);

    // (audio, video) packets each viewer received, every byte checked.
    let mut got = vec![(0usize, 0usize); VIEWERS];
    for _ in 0..500 {
        presenter.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (v, peer) in viewers.iter_mut().enumerate() {
            while let Ok(received) = peer.incoming().try_recv() {
                let p = &received.packet.payload[..];
                if received.kind == RtpCodecKind::Audio {
                    assert_eq!(p, &audio_payload(p[1])[..], "audio payload unchanged");
                    got[v].0 += 1;
                } else {
                    let f = vp8_frame_bytes(p);
                    assert_eq!(f, &frame(f[4])[..], "video frame bytes unchanged");
                    got[v].1 += 1;
                }
            }
        }
        if got.iter().all(|(a, v)| *a >= WANTED && *v >= WANTED) {
            break;
        }
    }
    let short: Vec<(usize, (usize, usize))> = got
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, (a, v))| *a < WANTED || *v < WANTED)
        .collect();
    assert!(
        short.is_empty(),
        "every viewer receives audio and video; short (viewer, (audio, video)): {short:?}"
    );
    let snapshot = node.snapshot().await;
    assert_eq!(snapshot.gauges.participants, (VIEWERS + 1) as u64);
    assert!(snapshot.metrics.packets_sent.audio >= (VIEWERS * WANTED) as u64);
    assert!(snapshot.metrics.packets_sent.video >= (VIEWERS * WANTED) as u64);
    presenter.peer.close().await;
    for peer in &viewers {
        peer.close().await;
    }
}
