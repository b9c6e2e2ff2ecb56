//! Interop with a second, independent WebRTC implementation: an aiortc 1.16 viewer (Python,
//! `sfu/tests/interop/aiortc_viewer.py`, installed by `scripts/install-deps` into
//! `target/interop-venv`) joins a broadcast with the `recvonly` offer aiortc writes (one audio,
//! one video section), subscribes to a VP8 camera, and decodes every frame with libvpx while
//! 3 % of its incoming video packets are dropped: NACK and RTX repair work for a client that
//! routes retransmissions by payload type and by the RTX SSRC its SDP announced, not by mid.
//!
//! The publisher is the tests' `webrtc` client sending real VP8 (encoded once by the script
//! with libvpx, cached next to the venv). Loopback only, empty ICE server lists, no mDNS.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::common::peers::{self, VIDEO_SSRC};
use call_client::peer::VP8_PT;
use sfu::node::{NodeConfig, NodeEvent, SessionDescription, SubscriptionRequest, start_node};
use sfu_forwarding::{Role, RoomPolicy};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;

/// Frames the viewer must decode.
const FRAMES: usize = 600;
/// Frames sent after the counted ones: a jitter buffer releases a frame when the next one
/// starts, and a loss in the last counted frame needs later packets to be noticed.
const TAIL: usize = 30;
/// Fraction of the viewer's incoming primary video packets dropped, and the drop seed.
const LOSS: f64 = 0.03;
const SEED: u64 = 17;
/// RTP payload bytes per packet after the VP8 descriptor.
const MAX_CHUNK: usize = 1000;

/// The venv's Python: `SFU_INTEROP_PYTHON`, or `target/interop-venv/bin/python` of the
/// workspace. Missing is a failure, not a skip: CI runs `scripts/install-deps` first.
fn interop_python() -> PathBuf {
    let python = std::env::var_os("SFU_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-venv/bin/python")
        });
    assert!(
        python.exists(),
        "aiortc's Python {} is missing: run scripts/install-deps (it installs aiortc into \
         target/interop-venv), or point SFU_INTEROP_PYTHON at a Python that has aiortc 1.16",
        python.display()
    );
    python
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/aiortc_viewer.py")
}

/// The VP8 frames (libvpx, keyframe first), encoded by the script once and cached.
fn vp8_frames(python: &Path) -> Vec<Vec<u8>> {
    let count = FRAMES + TAIL;
    let cache = python
        .parent()
        .and_then(Path::parent)
        .expect("venv layout")
        .join(format!("vp8-frames-160x120-{count}.bin"));
    if !cache.exists() {
        let partial = cache.with_extension("partial");
        let status = Command::new(python)
            .arg(script())
            .args(["encode", "--frames", &count.to_string(), "--out"])
            .arg(&partial)
            .status()
            .expect("the interop script runs");
        assert!(status.success(), "encoding the VP8 frames failed: {status}");
        std::fs::rename(&partial, &cache).expect("frames cached");
    }
    let bytes = std::fs::read(&cache).expect("frames read");
    let mut frames = Vec::with_capacity(count);
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        frames.push(bytes[at + 4..at + 4 + len].to_vec());
        at += 4 + len;
    }
    assert_eq!(frames.len(), count, "cached frames complete");
    assert_eq!(frames[0][0] & 0x01, 0, "the first frame is a keyframe");
    frames
}

/// The aiortc viewer process: JSON lines in and out.
struct Viewer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<serde_json::Value>,
    /// Lines read while waiting for another key, oldest first.
    unread: Vec<serde_json::Value>,
}

impl Viewer {
    fn start(python: &Path) -> Self {
        let mut child = Command::new(python)
            .arg(script())
            .args(["view", "--frames", &FRAMES.to_string()])
            .args(["--loss", &LOSS.to_string(), "--seed", &SEED.to_string()])
            .args(["--timeout", "40"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the aiortc viewer starts");
        let stdin = child.stdin.take().expect("stdin piped");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("viewer wrote {line:?}: {e}"));
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
            unread: Vec::new(),
        }
    }

    fn send(&mut self, key: &str, sdp: &str) {
        let line = serde_json::json!({ key: sdp }).to_string();
        writeln!(self.stdin, "{line}").expect("viewer reads");
        self.stdin.flush().expect("viewer reads");
    }

    /// The next line that has `key` (others are kept for later), within `limit`.
    async fn next(&mut self, key: &str, limit: Duration) -> serde_json::Value {
        if let Some(i) = self.unread.iter().position(|l| l.get(key).is_some()) {
            return self.unread.remove(i)[key].clone();
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("the viewer sent no {key:?} in {limit:?}"))
                .unwrap_or_else(|| panic!("the viewer exited before sending {key:?}"));
            if let Some(v) = line.get(key) {
                return v.clone();
            }
            self.unread.push(line);
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `m=` sections of `sdp`: (kind, direction).
fn sections(sdp: &str) -> Vec<(String, String)> {
    sdp.split("\nm=")
        .skip(1)
        .map(|s| {
            let kind = s.split(' ').next().unwrap_or_default().to_owned();
            let direction = s
                .lines()
                .map(str::trim_end)
                .find(|l| {
                    matches!(
                        *l,
                        "a=sendonly" | "a=recvonly" | "a=sendrecv" | "a=inactive"
                    )
                })
                .unwrap_or("a=sendrecv")
                .trim_start_matches("a=")
                .to_owned();
            (kind, direction)
        })
        .collect()
}

/// Sends one VP8 frame as RTP (descriptor with a 15-bit picture id; marker on the last packet).
async fn send_frame(
    track: &webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP,
    ssrc: u32,
    frame: &[u8],
    index: u32,
    seq: &mut u16,
) {
    let picture_id = (index & 0x7fff) as u16;
    let chunks: Vec<&[u8]> = frame.chunks(MAX_CHUNK).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let mut payload = vec![
            if n == 0 { 0x90 } else { 0x80 },
            0x80,
            0x80 | (picture_id >> 8) as u8,
            picture_id as u8,
        ];
        payload.extend_from_slice(chunk);
        *seq = seq.wrapping_add(1);
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::Header {
                version: 2,
                payload_type: VP8_PT,
                sequence_number: *seq,
                timestamp: index.wrapping_mul(3000),
                ssrc,
                marker: n + 1 == chunks.len(),
                ..Default::default()
            },
            payload: bytes::Bytes::from(payload),
        };
        track.write_rtp(packet).await.expect("rtp written");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_viewer_decodes_every_frame_with_3_percent_video_loss() {
    common::init_tracing();
    let python = interop_python();
    let frames = tokio::task::spawn_blocking({
        let python = python.clone();
        move || vp8_frames(&python)
    })
    .await
    .expect("frames ready");

    let node = start_node(NodeConfig::default(), None)
        .await
        .expect("node starts");
    let mut events = node.events();
    node.create_room("interop", RoomPolicy::broadcast())
        .await
        .expect("room created");

    // The publisher joins and sends keyframes until its camera is published.
    let (publisher, video) = peers::publisher().await;
    let answer = node
        .add_participant(
            "interop",
            "presenter",
            Role::Presenter,
            publisher.offer().await.expect("offer"),
            vec![],
            &[],
            None,
        )
        .await
        .expect("publisher joins");
    publisher
        .apply_answer(&answer)
        .await
        .expect("answer applies");
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("publisher connects");
    let (track, ssrc) = (video.rtp_track().clone(), VIDEO_SSRC);
    let mut seq = 0u16;
    let mut index = 0u32;
    let mut camera = None;
    for _ in 0..200 {
        send_frame(&track, ssrc, &frames[0], index, &mut seq).await;
        index += 1;
        while let Ok(event) = events.try_recv() {
            if let NodeEvent::TrackPublished { track, .. } = event {
                camera = Some(track);
            }
        }
        if camera.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(33)).await;
    }
    let camera = camera.expect("the camera is published");

    // The aiortc viewer joins with its recvonly offer: nothing to send yet, so its sections
    // are answered inactive, not sendonly without a track.
    let mut viewer = Viewer::start(&python);
    let offer = viewer.next("offer", Duration::from_secs(30)).await;
    let offer = offer.as_str().expect("offer sdp");
    let offered = sections(offer);
    assert_eq!(
        offered,
        vec![
            ("audio".to_owned(), "recvonly".to_owned()),
            ("video".to_owned(), "recvonly".to_owned())
        ],
        "aiortc's viewer offer"
    );
    let answer = node
        .add_participant(
            "interop",
            "aiortc",
            Role::Viewer,
            offer.to_owned(),
            vec![],
            &[],
            None,
        )
        .await
        .expect("the aiortc viewer joins");
    assert!(
        sections(&answer).iter().all(|(_, d)| d == "inactive"),
        "sections without a track are answered inactive: {:?}",
        sections(&answer)
    );
    viewer.send("answer", &answer);
    viewer.next("connected", Duration::from_secs(15)).await;

    // Subscribing reuses the inactive video section: no section is added.
    node.set_subscriptions(
        "interop",
        "aiortc",
        vec![SubscriptionRequest {
            track: camera,
            prefs: Default::default(),
        }],
        None,
    )
    .await
    .expect("subscribed");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let offer = loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the node offers the subscription")
            .expect("event stream open");
        if let NodeEvent::Offer { device, sdp, .. } = event
            && device == "aiortc"
        {
            break sdp;
        }
    };
    assert_eq!(
        sections(&offer),
        vec![
            ("audio".to_owned(), "inactive".to_owned()),
            ("video".to_owned(), "sendonly".to_owned())
        ],
        "the subscription uses the viewer's video section"
    );
    viewer.send("offer", &offer);
    let answer = viewer.next("answer", Duration::from_secs(15)).await;
    node.renegotiate(
        "interop",
        "aiortc",
        SessionDescription::Answer(answer.as_str().expect("answer sdp").to_owned()),
        &[],
        None,
    )
    .await
    .expect("the viewer's answer applies");
    viewer.next("track", Duration::from_secs(15)).await;

    // The counted run starts with the keyframe, paced at 30 frames per second.
    let start = index;
    let mut pace = tokio::time::interval(Duration::from_millis(33));
    for (n, frame) in frames.iter().enumerate() {
        pace.tick().await;
        send_frame(&track, ssrc, frame, start + n as u32, &mut seq).await;
    }
    let result = viewer.next("result", Duration::from_secs(45)).await;
    eprintln!("aiortc viewer: {result}");
    let field = |name: &str| result[name].as_u64().unwrap_or_else(|| panic!("{name}"));

    assert_eq!(field("video_sections"), 1, "one video receiver: {result}");
    assert!(
        field("video_packets_dropped") * 100 >= field("video_packets") * 2,
        "about 3 % of the video was dropped: {result}"
    );
    assert!(field("nacks_sent") > 0, "the viewer sent NACKs: {result}");
    assert!(
        field("rtx_received") >= field("video_packets_dropped"),
        "every dropped packet was retransmitted: {result}"
    );
    assert_eq!(
        field("frames_complete"),
        FRAMES as u64,
        "every frame decoded: {result}"
    );
    let snapshot = node.snapshot().await;
    assert!(
        snapshot.metrics.packets_retransmitted.video >= field("video_packets_dropped"),
        "the SFU retransmitted: {:?}",
        snapshot.metrics.packets_retransmitted
    );
    publisher.close().await;
}
