//! A simulcast publisher for the node tests: a real `webrtc` client sending one VP8 track as
//! three rid layers announced highest first (`f;h;q`), frames whose bytes say their layer and
//! number, and a recorder of what a subscriber receives.

use std::time::Duration;

use bytes::Bytes;
use call_client::peer::{LocalTrack, Peer, VideoLayer, vp8_frame_bytes};
use sfu::node::{NodeEvent, NodeHandle, TrackClass};
use sfu_forwarding::Role;
use tokio::sync::broadcast;

use super::peers::join;

/// The rids as the publisher announces them (highest first) and their quality rank.
pub(crate) const RIDS: [&str; 3] = ["f", "h", "q"];
pub(crate) const RANK: [u8; 3] = [2, 1, 0];
/// The SSRC of the first announced layer; the others follow.
const FIRST_SSRC: u32 = 0x5100_0000;

/// A VP8 payload for frame `frame` of the layer ranked `rank`: descriptor (S = 1, PID 0,
/// 15-bit picture id), then the frame: tag (P = 0 for keyframes), rank, frame number, filler
/// of 100, 350 or 800 bytes by rank (about 35, 110 and 250 kbit/s at the senders' ~35 frames
/// per second).
pub(crate) fn payload(rank: u8, frame: u16, keyframe: bool) -> Vec<u8> {
    let picture_id = 0x8000 | (frame & 0x7fff);
    let mut p = vec![0x90, 0x80, (picture_id >> 8) as u8, picture_id as u8];
    p.extend_from_slice(&[if keyframe { 0x10 } else { 0x11 }, 0x02, 0x00, 0x9d, rank]);
    p.extend_from_slice(&frame.to_be_bytes());
    let filler = [100u32, 350, 800][usize::from(rank.min(2))];
    p.extend((0..filler).map(|b| (b as u8) ^ rank));
    p
}

/// What the subscriber saw of one received packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub(crate) ssrc: u32,
    pub(crate) seq: u16,
    pub(crate) rank: u8,
    pub(crate) keyframe: bool,
}

/// The publisher and its frame counter: one frame on every layer per round, a keyframe on
/// every layer each 10th frame.
pub(crate) struct Source {
    pub(crate) peer: Peer,
    video: LocalTrack,
    frame: u16,
}

impl Source {
    pub(crate) async fn send_frame(&mut self) {
        self.frame += 1;
        for (index, rank) in RANK.iter().enumerate() {
            let p = payload(*rank, self.frame, self.frame % 10 == 1);
            self.video
                .write(index, u32::from(self.frame) * 3000, true, Bytes::from(p))
                .await
                .expect("layer rtp written");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Sends frames until `enough` says the packets seen so far suffice (at most `frames`),
/// recording and checking what the subscriber receives. Returns whether it sufficed.
pub(crate) async fn run(
    source: &mut Source,
    subscriber: &mut Peer,
    seen: &mut Vec<Seen>,
    frames: usize,
    enough: impl Fn(&[Seen]) -> bool,
) -> bool {
    for _ in 0..frames {
        source.send_frame().await;
        while let Ok(received) = subscriber.incoming().try_recv() {
            let packet = received.packet;
            let f = vp8_frame_bytes(&packet.payload);
            let rank = f[4];
            let number = u16::from_be_bytes([f[5], f[6]]);
            let keyframe = f[0] & 1 == 0;
            assert_eq!(
                f,
                vp8_frame_bytes(&payload(rank, number, keyframe)),
                "frame bytes unchanged"
            );
            seen.push(Seen {
                ssrc: packet.header.ssrc,
                seq: packet.header.sequence_number,
                rank,
                keyframe,
            });
        }
        if enough(seen) {
            return true;
        }
    }
    false
}

impl Source {
    /// The publisher of the three layers, not joined anywhere yet (its offer is the caller's
    /// to deliver).
    pub(crate) async fn unjoined() -> Self {
        let peer = Peer::builder()
            .simulcast_extensions()
            .build()
            .await
            .expect("client peer connection builds");
        let layers: Vec<VideoLayer> = (FIRST_SSRC..)
            .zip(RIDS)
            .map(|(ssrc, rid)| VideoLayer::simulcast(rid, ssrc))
            .collect();
        let video = peer
            .add_video("pub-simulcast", &layers)
            .await
            .expect("simulcast track added");
        Source {
            peer,
            video,
            frame: 0,
        }
    }

    /// Joins `device` to `room` as a caller publishing the three layers, sends until the node
    /// reports the track published, and returns the source and the track id.
    pub(crate) async fn join(
        node: &NodeHandle,
        events: &mut broadcast::Receiver<NodeEvent>,
        room: &str,
        device: &str,
    ) -> (Self, String) {
        let mut source = Self::unjoined().await;
        join(node, room, device, Role::Caller, &source.peer, vec![]).await;
        for _ in 0..100 {
            source.send_frame().await;
            while let Ok(e) = events.try_recv() {
                if let NodeEvent::TrackPublished {
                    track,
                    kind,
                    publisher,
                    ..
                } = e
                    && publisher == device
                {
                    assert_eq!(kind, TrackClass::Camera);
                    return (source, track);
                }
            }
        }
        panic!("simulcast track of {device} published");
    }
}
