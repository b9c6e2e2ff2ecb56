//! A simulcast publisher for the node tests: a real `webrtc` client sending one VP8 track as
//! three rid layers announced highest first (`f;h;q`), frames whose bytes say their layer and
//! number, and a recorder of what a subscriber receives.

use std::time::Duration;

use super::test_peer::TestPeer;
use rtc::peer_connection::state::RTCPeerConnectionState;
use sfu::node::{NodeEvent, NodeHandle, TrackClass};
use sfu_forwarding::Role;
use tokio::sync::broadcast;

pub(crate) const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub(crate) const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// The rids as the publisher announces them (highest first) and their quality rank.
pub(crate) const RIDS: [&str; 3] = ["f", "h", "q"];
pub(crate) const RANK: [u8; 3] = [2, 1, 0];

/// The `a=extmap` id of `uri` and the first video section's mid in the client's offer.
pub(crate) fn offer_facts(sdp: &str) -> ((u8, u8), String) {
    let id = |uri: &str| {
        sdp.lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=extmap:"))
            .find(|l| l.ends_with(uri))
            .and_then(|l| l.split(['/', ' ']).next())
            .and_then(|id| id.parse::<u8>().ok())
            .unwrap_or_else(|| panic!("offer maps {uri}"))
    };
    let video = sdp.split("m=video").nth(1).expect("offer has video");
    let mid = video
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .expect("video section has a mid")
        .to_owned();
    ((id(MID_URI), id(RID_URI)), mid)
}

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

/// The VP8 frame after the payload descriptor (RFC 7741 §4.2), read independently of the SFU's
/// parser.
pub(crate) fn frame_of(p: &[u8]) -> &[u8] {
    &p[super::test_peer::vp8_descriptor_len(p)..]
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
    pub(crate) peer: TestPeer,
    pub(crate) ext: (u8, u8),
    pub(crate) mid: String,
    pub(crate) frame: u16,
}

impl Source {
    pub(crate) async fn send_frame(&mut self) {
        self.frame += 1;
        for (index, rank) in RANK.iter().enumerate() {
            let p = payload(*rank, self.frame, self.frame % 10 == 1);
            self.peer
                .send_layer(index, self.ext, &self.mid, u32::from(self.frame) * 3000, &p)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Sends frames until `enough` says the packets seen so far suffice (at most `frames`),
/// recording and checking what the subscriber receives. Returns whether it sufficed.
pub(crate) async fn run(
    source: &mut Source,
    subscriber: &mut TestPeer,
    seen: &mut Vec<Seen>,
    frames: usize,
    enough: impl Fn(&[Seen]) -> bool,
) -> bool {
    for _ in 0..frames {
        source.send_frame().await;
        while let Ok(packet) = subscriber.rtp.try_recv() {
            let f = frame_of(&packet.payload);
            let rank = f[4];
            let number = u16::from_be_bytes([f[5], f[6]]);
            let keyframe = f[0] & 1 == 0;
            assert_eq!(
                f,
                frame_of(&payload(rank, number, keyframe)),
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
    /// Joins `device` to `room` as a caller publishing the three layers, sends until the node
    /// reports the track published, and returns the source and the track id.
    pub(crate) async fn join(
        node: &NodeHandle,
        events: &mut broadcast::Receiver<NodeEvent>,
        room: &str,
        device: &str,
    ) -> (Self, String) {
        let peer = TestPeer::simulcast_publisher(&RIDS).await;
        let offer = peer.offer().await;
        let (ext, mid) = offer_facts(&offer);
        let answer = node
            .add_participant(room, device, Role::Caller, offer, vec![], &[])
            .await
            .expect("publisher added");
        peer.apply_answer(answer).await;
        assert!(
            peer.wait_state(RTCPeerConnectionState::Connected, Duration::from_secs(10))
                .await,
            "publisher connects"
        );
        let mut source = Source {
            peer,
            ext,
            mid,
            frame: 0,
        };
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
