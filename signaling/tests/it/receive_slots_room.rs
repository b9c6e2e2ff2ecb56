//! A room with receive slots through the real service and an SFU (embedded, as `signaling dev
//! --receive-slots` runs it, or reached over its control API) (rooms a join creates are slot rooms): each native client learns its
//! slot counts from `joined.receive_slots`, offers that many receive sections with its own
//! tracks, and then only ever gets `slots` maps — nobody already in the room is sent an `offer`
//! when another joins, and the SFU counts no renegotiation at all.

use std::sync::Arc;
use std::time::Duration;

use call_client::peer::{LocalTrack, Peer, VideoLayer, first_mid_of_kind};
use serde_json::{Value, json};
use sfu::node::{NodeHandle, Renegotiations};
use signaling::config::Config;

use crate::common::{ADMIN, TestServer, config};
use crate::media_call::{Device, node_behind_control_api};

const ROOM: &str = "slot-room";
const CALLERS: usize = 4;
/// How long a map naming a newcomer's tracks may take to arrive.
const SLOTS_WITHIN: Duration = Duration::from_secs(15);

/// A caller's media session: its peer connection and the tracks it sends.
struct Session {
    peer: Peer,
    audio: LocalTrack,
    camera: LocalTrack,
}

impl Session {
    /// Sends one (unencrypted: the SFU does not read it) audio and camera frame.
    async fn send(&mut self, i: u8) {
        self.audio
            .write_next(&[0x78, i, 0x01, 0x02])
            .await
            .expect("audio written");
        let mut keyframe = vec![0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
        keyframe.extend([i; 32]);
        self.camera
            .write_next(&keyframe)
            .await
            .expect("video written");
    }
}

/// Offers the device's microphone and camera plus one receive section per slot `joined`
/// announced, applies the answer and waits until connected.
async fn start_media(dev: &mut Device, index: u32) -> Session {
    let counts = &dev.joined["receive_slots"];
    let count = |kind: &str| counts[kind].as_u64().expect("slot count") as usize;
    let peer = Peer::builder().build().await.expect("client peer builds");
    let audio = peer
        .add_audio("microphone", 0x100 + index)
        .await
        .expect("audio track");
    let camera = peer
        .add_video("camera", &[VideoLayer::single(0x200 + index)])
        .await
        .expect("camera track");
    peer.add_receive_slots(count("audio"), count("video") + count("screen"))
        .await
        .expect("receive sections");
    let sdp = peer.offer().await.expect("offer");
    let mid = |kind| first_mid_of_kind(&sdp, kind).expect("a sending section of the kind");
    let tracks = json!([
        {"mid": mid("audio"), "kind": "audio", "source": "microphone"},
        {"mid": mid("video"), "kind": "video", "source": "camera"},
    ]);
    dev.ws
        .send(&json!({"type": "offer", "sdp": sdp, "tracks": tracks}))
        .await;
    let answer = dev.ws.recv_type("answer").await;
    peer.apply_answer(answer["sdp"].as_str().expect("answer sdp"))
        .await
        .expect("answer applies");
    peer.wait_connected(Duration::from_secs(10))
        .await
        .expect("connects to the SFU");
    Session {
        peer,
        audio,
        camera,
    }
}

/// The sources of a `slots` message's filled slots of `kind`.
fn sources(slots: &Value, kind: &str) -> Vec<String> {
    slots["slots"]
        .as_array()
        .expect("slots array")
        .iter()
        .filter(|s| s["kind"] == kind)
        .filter_map(|s| s["source"].as_str().map(str::to_owned))
        .collect()
}

/// Reads `dev`'s messages until a `slots` map carries the audio and the camera of every device
/// in `publishers`; fails on any `offer`. Returns the map.
async fn await_slots_naming(dev: &mut Device, publishers: &[String]) -> Value {
    let deadline = tokio::time::Instant::now() + SLOTS_WITHIN;
    let mut last_version = 0;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a slots map naming {publishers:?} within {SLOTS_WITHIN:?}"
        );
        let m = dev.ws.recv().await;
        assert_ne!(m["type"], "offer", "no offer after the join: {m}");
        if m["type"] != "slots" {
            continue;
        }
        assert_eq!(m["v"], 1);
        let version = m["version"].as_u64().expect("version");
        assert!(version > last_version, "slot map versions grow: {m}");
        last_version = version;
        let (audio, video) = (sources(&m, "audio"), sources(&m, "video"));
        if publishers
            .iter()
            .all(|p| audio.contains(p) && video.contains(p))
        {
            return m;
        }
    }
}

/// `signaling dev --receive-slots`: rooms a join creates are slot rooms.
fn slot_config() -> Config {
    let mut cfg = config();
    cfg.auto_create_rooms = true;
    cfg.receive_slots = true;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_room_join_sends_slots_and_renegotiates_no_one() {
    let (s, sfu) = TestServer::start_with_sfu(slot_config()).await;
    slot_room_call(&s, sfu.node()).await;
}

/// The same through the SFU's HTTP control API: the slot counts come from its `POST
/// /control/rooms` answer and the maps from its event stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_room_join_through_a_remote_sfu_sends_slots_and_renegotiates_no_one() {
    let (node, remote) = node_behind_control_api().await;
    let s = TestServer::start_with_node(slot_config(), Arc::new(remote)).await;
    slot_room_call(&s, &node).await;
}

/// Four callers join the slot room one by one (see the module docs); `node` is the SFU.
async fn slot_room_call(s: &TestServer, node: &NodeHandle) {
    let mut devices: Vec<Device> = Vec::new();
    let mut sessions: Vec<Session> = Vec::new();
    let names: Vec<String> = (0..CALLERS).map(|i| format!("dev-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let mut dev = Device::join(s, ROOM, name).await;
        assert_eq!(
            dev.joined["receive_slots"],
            json!({"audio": 4, "video": 25, "screen": 2}),
            "joined carries the slot counts of the default meeting policy"
        );
        let mut session = start_media(&mut dev, i as u32).await;
        for round in 0..5 {
            session.send(round).await;
        }
        // The newcomer's first map names everyone already in, each of the others gets a map
        // naming the newcomer; nobody is offered anything.
        let earlier: Vec<String> = names[..i].to_vec();
        let own = await_slots_naming(&mut dev, &earlier).await;
        let slot_names: Vec<&str> = own["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .map(|s| s["slot"].as_str().expect("slot name"))
            .collect();
        assert_eq!(slot_names.len(), 4 + 25 + 2, "every slot in the map");
        assert_eq!(&slot_names[..5], ["a0", "a1", "a2", "a3", "v0"]);
        assert!(
            own["slots"]
                .as_array()
                .expect("slots")
                .iter()
                .all(|s| s["mid"].as_str().is_some_and(|m| !m.is_empty())),
            "every slot names its media section: {own}"
        );
        for (earlier_dev, earlier_session) in devices.iter_mut().zip(&mut sessions) {
            earlier_session.send(i as u8).await;
            await_slots_naming(earlier_dev, std::slice::from_ref(name)).await;
        }
        devices.push(dev);
        sessions.push(session);
    }

    // Per-track subscriptions are refused in a slot room, clearly.
    devices[0]
        .ws
        .send(&json!({"type": "subscribe", "subscriptions": [{"track": "t1"}]}))
        .await;
    let error = devices[0].ws.recv_type("error").await;
    assert_eq!(error["code"], "media_error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("receive slots")),
        "{error}"
    );

    let detail: Value = s
        .http
        .get(s.url(&format!("/v1/rooms/{ROOM}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("room detail")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["policy"]["receive_slots"], true, "{detail}");
    assert_eq!(
        node.snapshot().await.renegotiations,
        Renegotiations::default(),
        "the SFU renegotiated no one"
    );
    for session in &sessions {
        session.peer.close().await;
    }
}
