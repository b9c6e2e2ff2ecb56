//! Receive slots through the whole node with real `webrtc` clients on loopback: in a room
//! created with receive slots, each caller offers one `recvonly` section per slot at join, so
//! its first answer carries every slot; the node maps the room's tracks onto the slots and
//! reports each map as `NodeEvent::Slots`. Joins and leaves change maps, never an SDP: no
//! participant is offered anything after its join, and each slot delivers the media of the
//! publisher its map names (the test reads the publisher from the payload).

use std::collections::HashMap;
use std::time::Duration;

use call_client::peer::{LocalTrack, Peer, VideoLayer, vp8_frame_bytes};
use sfu::node::{
    NodeConfig, NodeEvent, NodeHandle, Renegotiations, SessionDescription, SlotEntry, start_node,
};
use sfu_forwarding::{Role, RoomPolicy, SlotCounts};
use tokio::sync::broadcast;

use crate::common;
use crate::common::peers::{CONNECT, admit};

const ROOM: &str = "slots";
/// Packets each filled slot must deliver.
const WANTED: usize = 5;

/// The VP8 frame (after the payload descriptor) caller `c` sends in round `r`: a keyframe tag,
/// the caller, the round, and bytes derived from both.
fn frame(c: u8, r: u8) -> Vec<u8> {
    let mut f = vec![0x10, 0x02, 0x00, 0x9d, c, r];
    f.extend((0..40u8).map(|i| i.wrapping_mul(5) ^ c ^ r));
    f
}

/// The video RTP payload: VP8 descriptor (S = 1, 15-bit picture id) and the frame.
fn video_payload(c: u8, r: u8) -> Vec<u8> {
    let mut p = vec![0x90, 0x80, 0x80, r];
    p.extend(frame(c, r));
    p
}

/// The audio RTP payload of caller `c` in round `r`.
fn audio_payload(c: u8, r: u8) -> Vec<u8> {
    vec![0xf8, c, r, 0xa5 ^ c]
}

fn device(c: u8) -> String {
    format!("caller-{c}")
}

fn caller_index(device: &str) -> u8 {
    device
        .strip_prefix("caller-")
        .and_then(|n| n.parse().ok())
        .expect("a caller's device name")
}

/// A caller publishing a microphone and a camera, with one receive section per slot.
struct Caller {
    index: u8,
    peer: Peer,
    mic: LocalTrack,
    camera: LocalTrack,
    /// Packets received per media section.
    got: HashMap<String, usize>,
    /// The caller whose media arrived last per media section.
    last_source: HashMap<String, u8>,
}

impl Caller {
    async fn new(index: u8, counts: SlotCounts) -> Self {
        let peer = Peer::builder().build().await.expect("client builds");
        let mic = peer
            .add_audio("mic", 0x1000 + u32::from(index))
            .await
            .expect("audio track added");
        let camera = peer
            .add_video("camera", &[VideoLayer::single(0x2000 + u32::from(index))])
            .await
            .expect("video track added");
        peer.add_receive_slots(counts.audio, counts.video + counts.screen)
            .await
            .expect("receive sections added");
        Self {
            index,
            peer,
            mic,
            camera,
            got: HashMap::new(),
            last_source: HashMap::new(),
        }
    }

    async fn send(&mut self, round: u8) {
        self.mic
            .write_next(&audio_payload(self.index, round))
            .await
            .expect("audio written");
        self.camera
            .write_next(&video_payload(self.index, round))
            .await
            .expect("video written");
    }

    /// Takes what arrived; every packet must be some other caller's media, unchanged.
    fn receive(&mut self, publishers: &[u8]) {
        while let Ok(incoming) = self.peer.incoming().try_recv() {
            let payload = &incoming.packet.payload;
            let source = if incoming.kind == call_client::peer::RtpCodecKind::Audio {
                let c = payload[1];
                assert_eq!(
                    &payload[..],
                    &audio_payload(c, payload[2])[..],
                    "audio unchanged"
                );
                c
            } else {
                let f = vp8_frame_bytes(payload);
                let c = f[4];
                assert_eq!(f, &frame(c, f[5])[..], "frame bytes unchanged");
                c
            };
            assert!(
                publishers.contains(&source),
                "caller {} got media of {source}, not a publisher in the room",
                self.index
            );
            assert_ne!(source, self.index, "no caller receives itself");
            let mid = incoming.mid.as_deref().unwrap_or("").to_owned();
            *self.got.entry(mid.clone()).or_default() += 1;
            self.last_source.insert(mid, source);
        }
    }
}

/// What the node reported: offers per device and each device's slot maps, in order.
#[derive(Default)]
struct Reports {
    offers: Vec<String>,
    /// The SDP of each offer, with its device, until a test answers it.
    offer_sdps: Vec<(String, String)>,
    maps: HashMap<String, Vec<(u64, Vec<SlotEntry>)>>,
}

impl Reports {
    fn take(&mut self, events: &mut broadcast::Receiver<NodeEvent>) {
        while let Ok(e) = events.try_recv() {
            match e {
                NodeEvent::Offer { device, sdp, .. } => {
                    self.offers.push(device.clone());
                    self.offer_sdps.push((device, sdp));
                }
                NodeEvent::Slots {
                    device,
                    version,
                    slots,
                    ..
                } => {
                    let maps = self.maps.entry(device.clone()).or_default();
                    if let Some((last, _)) = maps.last() {
                        assert!(version > *last, "{device}: slot map versions grow");
                    }
                    maps.push((version, slots));
                }
                _ => {}
            }
        }
    }

    fn latest(&self, device: &str) -> &[SlotEntry] {
        self.maps
            .get(device)
            .and_then(|m| m.last())
            .map(|(_, slots)| slots.as_slice())
            .unwrap_or(&[])
    }
}

async fn slot_room(policy: RoomPolicy) -> (NodeHandle, SlotCounts) {
    common::init_tracing();
    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts on loopback");
    let counts = node
        .create_room_with(ROOM, policy, true)
        .await
        .expect("room created")
        .expect("a room with receive slots answers its slot counts");
    (node, counts)
}

/// Adds caller `c` and waits until it is connected.
async fn join(node: &NodeHandle, c: &Caller) {
    admit(node, ROOM, &device(c.index), Role::Caller, &c.peer, vec![]).await;
    c.peer
        .wait_connected(CONNECT)
        .await
        .unwrap_or_else(|e| panic!("caller {} connects: {e}", c.index));
}

/// Sends `rounds` rounds of media from every caller, taking what arrives and what the node
/// reports.
async fn exchange(
    callers: &mut [Caller],
    round: &mut u8,
    rounds: usize,
    events: &mut broadcast::Receiver<NodeEvent>,
    reports: &mut Reports,
) {
    let publishers: Vec<u8> = callers.iter().map(|c| c.index).collect();
    for _ in 0..rounds {
        *round = round.wrapping_add(1);
        for c in callers.iter_mut() {
            c.send(*round).await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        for c in callers.iter_mut() {
            c.receive(&publishers);
        }
        reports.take(events);
    }
}

/// Whether every filled slot of `c`'s latest map delivered [`WANTED`] packets since `got` was
/// last cleared, the last of them from the publisher the map names.
fn slots_deliver(c: &Caller, reports: &Reports) -> bool {
    let map = reports.latest(&device(c.index));
    !map.is_empty()
        && map.iter().filter(|s| s.track.is_some()).all(|s| {
            c.got.get(&s.mid).copied().unwrap_or(0) >= WANTED
                && c.last_source.get(&s.mid).copied() == s.publisher.as_deref().map(caller_index)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_join_one_by_one_without_offers_to_existing_peers() {
    const CALLERS: u8 = 30;
    let policy = RoomPolicy {
        last_n: 4,
        loudest_n: 2,
        ..RoomPolicy::meeting()
    };
    let (node, counts) = slot_room(policy).await;
    assert_eq!(
        counts,
        SlotCounts {
            audio: 3,
            video: 4,
            screen: 2
        }
    );
    let mut events = node.events();
    let mut reports = Reports::default();
    let mut callers: Vec<Caller> = Vec::new();
    let mut round = 0u8;
    for c in 0..CALLERS {
        let caller = Caller::new(c, counts).await;
        join(&node, &caller).await;
        callers.push(caller);
        exchange(&mut callers, &mut round, 3, &mut events, &mut reports).await;
        assert!(
            reports.offers.is_empty(),
            "no offer after caller {c} joined; offered to {:?}",
            reports.offers
        );
    }

    for c in &mut callers {
        c.got.clear();
    }
    for _ in 0..300 {
        exchange(&mut callers, &mut round, 1, &mut events, &mut reports).await;
        if callers.iter().all(|c| slots_deliver(c, &reports)) {
            break;
        }
    }
    for c in &callers {
        let map = reports.latest(&device(c.index));
        let names: Vec<&str> = map.iter().map(|s| s.slot.as_str()).collect();
        assert_eq!(
            names,
            ["a0", "a1", "a2", "v0", "v1", "v2", "v3", "s0", "s1"],
            "caller {}: every slot in its map",
            c.index
        );
        let filled: Vec<&str> = map
            .iter()
            .filter(|s| s.track.is_some())
            .map(|s| s.slot.as_str())
            .collect();
        assert_eq!(
            filled,
            ["a0", "a1", "a2", "v0", "v1", "v2", "v3"],
            "caller {}: audio and video slots carry other callers, screen slots are empty",
            c.index
        );
        assert!(
            slots_deliver(c, &reports),
            "caller {}: every filled slot delivers its publisher's media (got {:?}, last \
             sources {:?}, map {map:?})",
            c.index,
            c.got,
            c.last_source
        );
    }
    reports.take(&mut events);
    assert!(reports.offers.is_empty(), "offers: {:?}", reports.offers);
    let snapshot = node.snapshot().await;
    assert_eq!(
        snapshot.renegotiations,
        Renegotiations::default(),
        "no join renegotiated anyone"
    );
    let slots = u64::from(CALLERS);
    assert_eq!(
        (snapshot.gauges.slots.audio, snapshot.gauges.slots.video),
        (3 * slots, 4 * slots)
    );
    assert_eq!(
        (
            snapshot.gauges.slots_occupied.audio,
            snapshot.gauges.slots_occupied.video
        ),
        (3 * slots, 4 * slots)
    );
    for c in &callers {
        c.peer.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaving_publishers_slots_are_reassigned_in_a_new_slots_map() {
    let policy = RoomPolicy {
        last_n: 2,
        loudest_n: 1,
        ..RoomPolicy::meeting()
    };
    let (node, counts) = slot_room(policy).await;
    assert_eq!((counts.audio, counts.video), (2, 2));
    let mut events = node.events();
    let mut reports = Reports::default();
    let mut callers: Vec<Caller> = Vec::new();
    let mut round = 0u8;
    // Callers 0, 1, 2, then 3: caller 0's two video slots carry 1 and 2 (the first in the
    // speaker order); 3 finds them taken.
    for c in 0..4 {
        let caller = Caller::new(c, counts).await;
        join(&node, &caller).await;
        callers.push(caller);
        exchange(&mut callers, &mut round, 3, &mut events, &mut reports).await;
    }
    let video_publishers = |reports: &Reports| -> Vec<Option<String>> {
        reports
            .latest(&device(0))
            .iter()
            .filter(|s| s.slot.starts_with('v'))
            .map(|s| s.publisher.clone())
            .collect()
    };
    for _ in 0..100 {
        if callers.iter().all(|c| slots_deliver(c, &reports)) {
            break;
        }
        exchange(&mut callers, &mut round, 1, &mut events, &mut reports).await;
    }
    assert_eq!(
        video_publishers(&reports),
        [Some(device(1)), Some(device(2))]
    );
    let before = reports.maps[&device(0)].last().map(|(v, _)| *v).unwrap();
    let (v0_mid, v1_mid) = {
        let map = reports.latest(&device(0));
        (map[2].mid.clone(), map[3].mid.clone())
    };

    // Caller 1 leaves: its video slot at caller 0 now carries caller 3, the other keeps 2.
    node.remove_participant(ROOM, &device(1), None)
        .await
        .expect("caller 1 removed");
    let gone = callers.remove(1);
    gone.peer.close().await;
    for c in &mut callers {
        c.got.clear();
    }
    for _ in 0..150 {
        exchange(&mut callers, &mut round, 1, &mut events, &mut reports).await;
        if video_publishers(&reports) == [Some(device(3)), Some(device(2))]
            && callers.iter().all(|c| slots_deliver(c, &reports))
        {
            break;
        }
    }
    let after = reports.maps[&device(0)].last().map(|(v, _)| *v).unwrap();
    assert!(
        after > before,
        "a new map after the leave ({before} → {after})"
    );
    assert_eq!(
        video_publishers(&reports),
        [Some(device(3)), Some(device(2))],
        "the leaver's slot is reassigned, the other slot keeps its publisher"
    );
    let map = reports.latest(&device(0)).to_vec();
    assert_eq!(
        (map[2].mid.clone(), map[3].mid.clone()),
        (v0_mid, v1_mid),
        "slots keep their media sections"
    );
    assert!(
        map.iter()
            .all(|s| s.publisher.as_deref() != Some(device(1).as_str())),
        "nothing of the leaver stays in a map: {map:?}"
    );
    assert!(
        callers.iter().all(|c| slots_deliver(c, &reports)),
        "every remaining slot delivers its new publisher's media"
    );
    assert!(reports.offers.is_empty(), "offers: {:?}", reports.offers);
    let snapshot = node.snapshot().await;
    assert!(snapshot.metrics.slot_reassignments.video >= 1);
    assert_eq!(snapshot.renegotiations, Renegotiations::default());
    for c in &callers {
        c.peer.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_without_receive_sections_gets_its_slots_in_one_offer_after_connecting() {
    let policy = RoomPolicy {
        last_n: 2,
        loudest_n: 1,
        ..RoomPolicy::meeting()
    };
    let (node, counts) = slot_room(policy).await;
    let mut events = node.events();
    let mut reports = Reports::default();
    let mut round = 0u8;
    let mut callers = vec![Caller::new(0, counts).await];
    join(&node, &callers[0]).await;
    exchange(&mut callers, &mut round, 3, &mut events, &mut reports).await;

    // Caller 1 offers only what it sends: its slots come in one node offer once connected.
    let late = {
        let peer = Peer::builder().build().await.expect("client builds");
        let mic = peer.add_audio("mic", 0x1001).await.expect("audio track");
        let camera = peer
            .add_video("camera", &[VideoLayer::single(0x2001)])
            .await
            .expect("video track");
        Caller {
            index: 1,
            peer,
            mic,
            camera,
            got: HashMap::new(),
            last_source: HashMap::new(),
        }
    };
    join(&node, &late).await;
    callers.push(late);
    let mut offers = 0;
    for _ in 0..100 {
        exchange(&mut callers, &mut round, 1, &mut events, &mut reports).await;
        for (offered, sdp) in std::mem::take(&mut reports.offer_sdps) {
            assert_eq!(offered, device(1), "only the joiner is offered anything");
            let answer = callers[1].peer.answer(&sdp).await.expect("answer");
            node.renegotiate(
                ROOM,
                &offered,
                SessionDescription::Answer(answer),
                &[],
                None,
            )
            .await
            .expect("answer applied");
            offers += 1;
        }
        if offers > 0 && callers.iter().all(|c| slots_deliver(c, &reports)) {
            break;
        }
    }
    assert_eq!(offers, 1, "one offer carries every slot");
    assert!(
        callers.iter().all(|c| slots_deliver(c, &reports)),
        "both callers receive each other on their slots"
    );
    let snapshot = node.snapshot().await;
    assert_eq!(
        snapshot.renegotiations,
        Renegotiations {
            slots_at_join: 1,
            ..Renegotiations::default()
        }
    );
    for c in &callers {
        c.peer.close().await;
    }
}
