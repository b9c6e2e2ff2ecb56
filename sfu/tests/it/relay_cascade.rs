//! The SFU-to-SFU relay (architecture §7.55) between two real `sfu` processes on loopback: a
//! publisher on the *origin* node sends SFrame-encrypted audio and video, the relay is set up
//! over both control APIs (export on the origin, import of its answer on the edge), and viewers
//! on the *edge* node receive the media and decrypt it with the publisher's key, which neither
//! node ever holds. Keyframe requests flow back up; tracks published later follow; wrong keys
//! forward nothing and are counted; deleting the link frees it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use call_client::media::{Codec, open_frame, seal_frame, vp8_frame_bytes};
use call_client::peer::{LocalTrack, Peer, Registry, RtpCodecKind, VideoLayer};
use e2ee_frames::{BaseKey, CipherSuite, KeyStore, Sender, Stream};
use reqwest::Method;
use rtc::interceptor::Slot;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use serde_json::{Value, json};
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use crate::common;
use crate::common::peers::{accept_answer, audio_video_subscriber, receiver_with};
use crate::common::relay::Relay;
use crate::common::sfu_process::{SECRET, SfuProcess, metric, scrape};
use crate::common::simulcast::{self, Seen, Source};
use sfu::transport::rtcp_delivery::{DeliverRtcp, SLOT as DELIVER_RTCP_SLOT};

const ROOM: &str = "cascade";
const SUITE: CipherSuite = CipherSuite::Aes256GcmSha512_128;
/// The publisher's SFrame slot and base key (known to the test's viewers, never to a node).
const SLOT: u16 = 7;
const BASE_KEY: [u8; 32] = [0x42; 32];
const VIDEO_SSRC: u32 = 0x5151_0001;
const AUDIO_SSRC: u32 = 0x5151_0002;
/// Frames each edge viewer must decrypt of each kind.
const WANTED: usize = 10;

/// A VP8 keyframe of round `r` (10-byte clear prefix: frame tag, start code, size).
fn video_frame(r: u8) -> Vec<u8> {
    let mut f = vec![
        0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, r,
    ];
    f.extend((0..160u32).map(|i| (i as u8).wrapping_mul(29) ^ r));
    f
}

/// An Opus frame of round `r` (TOC byte in clear).
fn audio_frame(r: u8) -> Vec<u8> {
    let mut f = vec![0x78, r];
    f.extend((0..60u32).map(|i| (i as u8).wrapping_mul(13).wrapping_add(r)));
    f
}

/// A publisher on the origin: audio and a VP8 camera, every frame sealed with SFrame.
struct Publisher {
    peer: Peer,
    video: LocalTrack,
    audio: LocalTrack,
    sender: Sender,
    round: u8,
    picture_id: u16,
    /// Keyframe requests (PLI) its video sender received.
    plis: Arc<AtomicU64>,
}

impl Publisher {
    async fn new() -> Self {
        let registry = Registry::new().with(Slot::from(DELIVER_RTCP_SLOT), DeliverRtcp::default());
        let peer = Peer::builder()
            .registry(registry)
            .build()
            .await
            .expect("publisher builds");
        let video = peer
            .add_video("pub-video", &[VideoLayer::single(VIDEO_SSRC)])
            .await
            .expect("video track");
        let audio = peer
            .add_audio("pub-audio", AUDIO_SSRC)
            .await
            .expect("audio track");
        let plis = Arc::new(AtomicU64::new(0));
        let counter = plis.clone();
        let track = video.rtp_track().clone();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackLocalEvent::OnRtcpPacket(packets) = event {
                    for p in packets {
                        if p.as_any().downcast_ref::<PictureLossIndication>().is_some() {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        let sender = Sender::new(SUITE, SLOT, 0, BaseKey::from_bytes(&BASE_KEY).expect("key"))
            .expect("sframe sender");
        Self {
            peer,
            video,
            audio,
            sender,
            round: 0,
            picture_id: 0,
            plis,
        }
    }

    /// Sends one sealed video frame and one sealed audio frame.
    async fn send_round(&mut self) {
        self.round = self.round.wrapping_add(1);
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let mut wire = Vec::new();
        seal_frame(
            &mut self.sender,
            Stream::Camera,
            Codec::Vp8,
            &video_frame(self.round),
            &mut wire,
        )
        .expect("video sealed");
        let pid = 0x8000 | self.picture_id;
        let mut payload = vec![0x90, 0x80, (pid >> 8) as u8, pid as u8];
        payload.extend_from_slice(&wire);
        self.video
            .write_next(&payload)
            .await
            .expect("video written");
        seal_frame(
            &mut self.sender,
            Stream::Audio,
            Codec::Opus,
            &audio_frame(self.round),
            &mut wire,
        )
        .expect("audio sealed");
        self.audio.write_next(&wire).await.expect("audio written");
    }
}

/// A viewer on the edge with the publisher's key.
struct Viewer {
    peer: Peer,
    keys: KeyStore,
    /// (audio, video) frames decrypted and checked.
    opened: (usize, usize),
    /// The SSRC its video arrives on (for its keyframe request).
    video_ssrc: Option<u32>,
    /// The rounds of the video frames it decrypted.
    video_rounds: std::collections::BTreeSet<u8>,
}

impl Viewer {
    fn new(peer: Peer) -> Self {
        let mut keys = KeyStore::new();
        keys.install(
            Instant::now(),
            SLOT,
            0,
            0,
            SUITE,
            BaseKey::from_bytes(&BASE_KEY).expect("key"),
        )
        .expect("key installed");
        Self {
            peer,
            keys,
            opened: (0, 0),
            video_ssrc: None,
            video_rounds: Default::default(),
        }
    }

    /// Opens everything received so far; every frame must decrypt to what was sealed.
    fn drain(&mut self) {
        let mut plain = Vec::new();
        while let Ok(received) = self.peer.incoming().try_recv() {
            let payload = &received.packet.payload[..];
            if received.kind == RtpCodecKind::Audio {
                open_frame(
                    &mut self.keys,
                    Instant::now(),
                    Codec::Opus,
                    payload,
                    &mut plain,
                )
                .expect("audio decrypts at the edge viewer");
                assert_eq!(plain, audio_frame(plain[1]), "audio frame as sealed");
                self.opened.0 += 1;
            } else {
                self.video_ssrc = Some(received.packet.header.ssrc);
                let wire = vp8_frame_bytes(payload);
                open_frame(&mut self.keys, Instant::now(), Codec::Vp8, wire, &mut plain)
                    .expect("video decrypts at the edge viewer");
                assert_eq!(plain, video_frame(plain[10]), "video frame as sealed");
                self.video_rounds.insert(plain[10]);
                self.opened.1 += 1;
            }
        }
    }
}

/// The two nodes and an HTTP client for their control APIs.
struct Cascade {
    origin: SfuProcess,
    edge: SfuProcess,
    http: reqwest::Client,
}

impl Cascade {
    async fn start() -> Self {
        common::init_tracing();
        let origin = SfuProcess::start(&[]).await;
        let edge = SfuProcess::start(&[]).await;
        let http = reqwest::Client::new();
        origin.create_room(&http, ROOM).await;
        edge.create_room(&http, ROOM).await;
        Self { origin, edge, http }
    }

    fn edge_media(&self) -> String {
        format!("127.0.0.1:{}", self.edge.udp)
    }

    /// A control API call: the status and the JSON body (`null` when there is none).
    async fn call(
        &self,
        node: &SfuProcess,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", node.base()))
            .bearer_auth(SECRET);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the control API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates the export of the room to the edge.
    async fn export(&self) -> Value {
        let (status, export) = self
            .call(
                &self.origin,
                Method::POST,
                &format!("/control/rooms/{ROOM}/relay/exports"),
                Some(json!({"edge_media_address": self.edge_media()})),
            )
            .await;
        assert_eq!(status, 201, "export created: {export}");
        export
    }

    /// Imports `export` (what the origin's export answered) on the edge; returns the import.
    async fn import(&self, export: Value) -> Value {
        let (status, imported) = self
            .call(
                &self.edge,
                Method::POST,
                &format!("/control/rooms/{ROOM}/relay/imports"),
                Some(export),
            )
            .await;
        assert_eq!(status, 201, "import created: {imported}");
        imported
    }

    /// Waits until export `link` carries `count` tracks; returns its track list.
    /// Sends `publisher`'s media until the export `link` carries its two tracks; returns the
    /// export's track list.
    async fn tracks_once_published(&self, publisher: &mut Publisher, link: &str) -> Value {
        for _ in 0..100 {
            publisher.send_round().await;
            if self.export_tracks_now(link).await == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.export_tracks(link, 2).await
    }

    async fn export_tracks(&self, link: &str, count: usize) -> Value {
        let mut tracks = Value::Null;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let (status, body) = self
                .call(
                    &self.origin,
                    Method::GET,
                    &format!("/control/relay/exports/{link}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            if body["tracks"].as_array().map(Vec::len) == Some(count) {
                return body;
            }
            tracks = body;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("export {link} never carried {count} tracks: {tracks}");
    }

    /// Puts the export's current list to the edge's import; returns the edge's answer.
    async fn sync(&self, link: &str, tracks: Value) -> Value {
        let (status, imported) = self
            .call(
                &self.edge,
                Method::PUT,
                &format!("/control/relay/imports/{link}/tracks"),
                Some(tracks),
            )
            .await;
        assert_eq!(status, 200, "import synced: {imported}");
        imported
    }

    /// Adds a publisher to the origin room as `device` and connects it.
    async fn publish(&self, device: &str) -> Publisher {
        let publisher = Publisher::new().await;
        let offer = publisher.peer.offer().await.expect("offer");
        let answer = self
            .origin
            .add_caller(&self.http, ROOM, device, &offer)
            .await;
        accept_answer(&publisher.peer, &answer, device).await;
        publisher
    }

    /// Adds a viewer of `tracks` (edge track ids) to the edge room and connects it.
    async fn view(&self, device: &str, tracks: &[String], kinds: &[RtpCodecKind]) -> Viewer {
        let peer = if kinds.len() == 2 {
            audio_video_subscriber().await
        } else {
            receiver_with(Peer::builder(), kinds).await
        };
        let subscribe: Vec<Value> = tracks.iter().map(|t| json!({"track": t})).collect();
        let (status, body) = self
            .call(
                &self.edge,
                Method::POST,
                &format!("/control/rooms/{ROOM}/participants"),
                Some(json!({
                    "device": device,
                    "role": "caller",
                    "offer": peer.offer().await.expect("offer"),
                    "subscribe": subscribe,
                })),
            )
            .await;
        assert_eq!(status, 200, "{device} joins the edge: {body}");
        accept_answer(&peer, body["answer"].as_str().expect("answer"), device).await;
        Viewer::new(peer)
    }

    async fn metric(&self, node: &SfuProcess, name: &str) -> f64 {
        metric(&scrape(&self.http, &node.base()).await, name).unwrap_or(0.0)
    }

    async fn participants(&self, node: &SfuProcess) -> u64 {
        let (_, status) = self.call(node, Method::GET, "/control/status", None).await;
        status["participants"].as_u64().expect("participants")
    }
}

/// A request the test expects refused: the node, method, path, body, status and error code.
type RefusalCase<'a> = (
    &'a SfuProcess,
    Method,
    String,
    Option<Value>,
    u16,
    &'static str,
);

/// The edge's track ids in an import answer.
fn edge_tracks(imported: &Value) -> Vec<String> {
    imported["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .map(|t| t["track"].as_str().expect("track id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_between_two_nodes_carries_sframe_media_to_edge_viewers_and_keyframe_requests_back() {
    let c = Cascade::start().await;
    let mut publisher = c.publish("alice").await;
    let export = c.export().await;
    let link = export["link"].as_str().expect("link id").to_owned();
    assert_eq!(
        export["origin_media_address"],
        format!("127.0.0.1:{}", c.origin.udp)
    );
    // The answer names the tracks once the publisher's media made them.
    let mut export = export;
    export["tracks"] = c.tracks_once_published(&mut publisher, &link).await["tracks"].clone();
    let keys: Vec<String> = ["origin_to_edge", "edge_to_origin"]
        .iter()
        .flat_map(|d| ["master_key", "master_salt"].map(|k| export["keys"][d][k].clone()))
        .map(|k| k.as_str().expect("hex").to_owned())
        .collect();
    for t in export["tracks"].as_array().expect("tracks") {
        assert_eq!(t["publisher"], "alice", "{t}");
    }
    let started = Instant::now();
    let imported = c.import(export).await;
    let tracks = edge_tracks(&imported);
    assert_eq!(tracks.len(), 2);
    for t in imported["tracks"].as_array().expect("tracks") {
        assert_eq!(t["publisher"], "alice", "the original publisher id: {t}");
    }

    let kinds = [RtpCodecKind::Video, RtpCodecKind::Audio];
    let mut viewers = vec![
        c.view("bob", &tracks, &kinds).await,
        c.view("carol", &tracks, &kinds).await,
    ];
    let mut first_frame = None;
    for _ in 0..500 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        for v in &mut viewers {
            v.drain();
        }
        if first_frame.is_none() && viewers.iter().any(|v| v.opened.1 > 0) {
            first_frame = Some(started.elapsed());
        }
        if viewers
            .iter()
            .all(|v| v.opened.0 >= WANTED && v.opened.1 >= WANTED)
        {
            break;
        }
    }
    for v in &viewers {
        assert!(
            v.opened.0 >= WANTED && v.opened.1 >= WANTED,
            "every edge viewer decrypts audio and video: {:?}",
            v.opened
        );
    }
    eprintln!(
        "first decrypted edge video frame {:?} after the import",
        first_frame.expect("a frame")
    );

    // An edge viewer's keyframe request reaches the publisher on the origin. The joins'
    // requests age out of the throttle first (no PLI for 300 ms).
    let mut last = (publisher.plis.load(Ordering::Relaxed), Instant::now());
    common::poll_until(
        Duration::from_secs(5),
        "the joins' keyframe requests to settle",
        async || {
            let now = publisher.plis.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            }
            last.1.elapsed() >= Duration::from_millis(300)
        },
    )
    .await;
    let before = publisher.plis.load(Ordering::Relaxed);
    let mut video_receiver = None;
    for r in viewers[0].peer.connection().get_receivers().await {
        if r.track().kind().await == RtpCodecKind::Video {
            video_receiver = Some(r);
        }
    }
    video_receiver
        .expect("the viewer's video receiver")
        .track()
        .write_rtcp(vec![Box::new(PictureLossIndication {
            sender_ssrc: 0x0e0e_0001,
            media_ssrc: viewers[0].video_ssrc.expect("video arrived"),
        })])
        .await
        .expect("pli written");
    common::poll_until(
        Duration::from_secs(3),
        "the edge viewer's keyframe request at the origin publisher",
        async || publisher.plis.load(Ordering::Relaxed) > before,
    )
    .await;

    // The relay's figures on both nodes.
    let out = c
        .metric(&c.origin, "sfu_relay_packets_total{direction=\"out\"}")
        .await;
    let edge_in = c
        .metric(&c.edge, "sfu_relay_packets_total{direction=\"in\"}")
        .await;
    let edge_bytes = c
        .metric(&c.edge, "sfu_relay_bytes_total{direction=\"in\"}")
        .await;
    let feedback_in = c
        .metric(&c.origin, "sfu_relay_packets_total{direction=\"in\"}")
        .await;
    eprintln!(
        "origin sent {out} relay datagrams, edge took {edge_in} ({edge_bytes} bytes), \
         origin took {feedback_in} feedback datagrams"
    );
    assert!(edge_in >= (2 * WANTED) as f64, "edge took {edge_in}");
    assert!(out >= edge_in, "origin sent {out}, edge took {edge_in}");
    assert!(feedback_in >= 1.0, "feedback went up the link");
    assert_eq!(
        c.metric(&c.origin, "sfu_relay_links{role=\"origin\"}")
            .await,
        1.0
    );
    assert_eq!(
        c.metric(&c.edge, "sfu_relay_links{role=\"edge\"}").await,
        1.0
    );
    assert_eq!(
        c.metric(
            &c.edge,
            "sfu_relay_rejected_total{reason=\"unauthenticated\"}"
        )
        .await,
        0.0
    );
    // Neither node logged a transport key.
    for line in c.origin.lines().iter().chain(&c.edge.lines()) {
        for key in &keys {
            assert!(!line.contains(key.as_str()), "a key in a log line: {line}");
        }
    }
    publisher.peer.close().await;
    for v in &viewers {
        v.peer.close().await;
    }
}

impl Cascade {
    /// Exports the room (carrying `count` tracks) and imports it on the edge; returns the
    /// link's id.
    async fn link_up(&self, count: usize) -> String {
        let mut export = self.export().await;
        let link = export["link"].as_str().expect("link").to_owned();
        export["tracks"] = self.export_tracks(&link, count).await["tracks"].clone();
        self.import(export).await;
        link
    }

    /// Waits until the edge has freed import `link` (no edge link, only the viewer left).
    async fn edge_freed(&self, link: &str) {
        common::poll_until(
            Duration::from_secs(5),
            "the edge to free the import on the origin's goodbye",
            async || {
                self.metric(&self.edge, "sfu_relay_links{role=\"edge\"}")
                    .await
                    == 0.0
                    && self.participants(&self.edge).await == 1
            },
        )
        .await;
        let (status, _) = self
            .call(
                &self.edge,
                Method::DELETE,
                &format!("/control/relay/imports/{link}"),
                None,
            )
            .await;
        assert_eq!(status, 404, "the import is gone already");
    }

    /// How many tracks export `link` carries now.
    async fn export_tracks_now(&self, link: &str) -> usize {
        let (_, body) = self
            .call(
                &self.origin,
                Method::GET,
                &format!("/control/relay/exports/{link}"),
                None,
            )
            .await;
        body["tracks"].as_array().map_or(0, Vec::len)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_published_after_the_link_reaches_the_edge_and_its_unpublish_ends_it_there() {
    let c = Cascade::start().await;
    // A second room linked between the same two nodes first: each room's link is its own
    // (own keys, own SSRCs), though both share the nodes' addresses.
    c.origin.create_room(&c.http, "lobby").await;
    c.edge.create_room(&c.http, "lobby").await;
    let (status, lobby) = c
        .call(
            &c.origin,
            Method::POST,
            "/control/rooms/lobby/relay/exports",
            Some(json!({"edge_media_address": c.edge_media()})),
        )
        .await;
    assert_eq!(status, 201, "{lobby}");
    let (status, imported) = c
        .call(
            &c.edge,
            Method::POST,
            "/control/rooms/lobby/relay/imports",
            Some(lobby),
        )
        .await;
    assert_eq!(status, 201, "{imported}");
    // The link exists before anything is published.
    let export = c.export().await;
    let link = export["link"].as_str().expect("link").to_owned();
    assert_eq!(export["tracks"], json!([]));
    let imported = c.import(export).await;
    assert_eq!(imported["tracks"], json!([]));

    let mut publisher = c.publish("dave").await;
    let tracks = c.tracks_once_published(&mut publisher, &link).await;
    let imported = c.sync(&link, tracks).await;
    let tracks = edge_tracks(&imported);
    assert_eq!(tracks.len(), 2, "{imported}");
    // Putting the same list again changes nothing.
    assert_eq!(
        c.sync(&link, c.export_tracks(&link, 2).await).await,
        imported
    );
    assert_eq!(c.participants(&c.edge).await, 1, "the relayed publisher");

    let mut viewer = c
        .view("erin", &tracks, &[RtpCodecKind::Video, RtpCodecKind::Audio])
        .await;
    for _ in 0..300 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        viewer.drain();
        if viewer.opened.0 >= WANTED && viewer.opened.1 >= WANTED {
            break;
        }
    }
    assert!(
        viewer.opened.0 >= WANTED && viewer.opened.1 >= WANTED,
        "the later track reaches the edge viewer: {:?}",
        viewer.opened
    );
    assert_eq!(
        c.metric(&c.edge, "sfu_relay_links{role=\"edge\"}").await,
        2.0,
        "two rooms' links between the same nodes"
    );

    // The relayed publisher removed on the edge by hand: the import forgets it, and the next
    // put of the export's list presents it again.
    let (status, _) = c
        .call(
            &c.edge,
            Method::DELETE,
            &format!("/control/rooms/{ROOM}/participants/dave"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(c.participants(&c.edge).await, 1);
    let again = c.sync(&link, c.export_tracks(&link, 2).await).await;
    assert_eq!(edge_tracks(&again).len(), 2, "{again}");
    assert_eq!(c.participants(&c.edge).await, 2);

    // The publisher leaves the origin: its tracks leave the export, and the edge ends them.
    let (status, _) = c
        .call(
            &c.origin,
            Method::DELETE,
            &format!("/control/rooms/{ROOM}/participants/dave"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let imported = c.sync(&link, c.export_tracks(&link, 0).await).await;
    assert_eq!(imported["tracks"], json!([]));
    assert_eq!(
        c.participants(&c.edge).await,
        1,
        "only the viewer is left on the edge"
    );
    let video_tracks = c.metric(&c.edge, "sfu_tracks{kind=\"video\"}").await;
    assert_eq!(video_tracks, 0.0, "no relayed track is left on the edge");
    viewer.peer.close().await;
    publisher.peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_wrong_keys_forwards_nothing_and_malformed_relay_requests_are_refused() {
    let c = Cascade::start().await;
    let mut publisher = c.publish("frank").await;
    let export = c.export().await;
    let link = export["link"].as_str().expect("link").to_owned();
    let mut forged = export.clone();
    forged["tracks"] = c.tracks_once_published(&mut publisher, &link).await["tracks"].clone();
    // Valid hex, wrong key: the edge cannot authenticate the origin's packets.
    let key = forged["keys"]["origin_to_edge"]["master_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let flipped = if key.starts_with('0') { "1" } else { "0" };
    forged["keys"]["origin_to_edge"]["master_key"] = json!(format!("{flipped}{}", &key[1..]));
    let imported = c.import(forged.clone()).await;
    let tracks = edge_tracks(&imported);
    let mut viewer = c
        .view(
            "grace",
            &tracks,
            &[RtpCodecKind::Video, RtpCodecKind::Audio],
        )
        .await;
    for _ in 0..50 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    viewer.drain();
    assert_eq!(viewer.opened, (0, 0), "nothing forwarded with wrong keys");
    let refused = c
        .metric(
            &c.edge,
            "sfu_relay_rejected_total{reason=\"unauthenticated\"}",
        )
        .await;
    assert!(
        refused >= 40.0,
        "the forged link's datagrams counted: {refused}"
    );
    assert_eq!(
        c.metric(&c.edge, "sfu_relay_packets_total{direction=\"in\"}")
            .await,
        0.0
    );

    // Malformed and conflicting requests, each with the API's error shape and code.
    let export_path = format!("/control/rooms/{ROOM}/relay/exports");
    let import_path = format!("/control/rooms/{ROOM}/relay/imports");
    let mut bad_keys = forged.clone();
    bad_keys["link"] = json!("another");
    bad_keys["origin_media_address"] = json!("127.0.0.2:9");
    bad_keys["keys"]["edge_to_origin"]["master_key"] = json!("zz");
    let mut bad_address = forged.clone();
    bad_address["link"] = json!("another");
    bad_address["origin_media_address"] = json!("origin.example:5000");
    let cases: Vec<RefusalCase<'_>> = vec![
        (
            &c.origin,
            Method::POST,
            "/control/rooms/nowhere/relay/exports".into(),
            Some(json!({"edge_media_address": c.edge_media()})),
            404,
            "unknown_room",
        ),
        (
            &c.origin,
            Method::POST,
            export_path.clone(),
            Some(json!({"edge_media_address": "not an address"})),
            400,
            "invalid_address",
        ),
        (
            &c.origin,
            Method::POST,
            export_path.clone(),
            Some(json!({"edge_media_address": "0.0.0.0:5000"})),
            400,
            "invalid_address",
        ),
        (
            &c.origin,
            Method::POST,
            export_path.clone(),
            Some(json!({"edge_media_address": c.edge_media()})),
            409,
            "link_exists",
        ),
        (
            &c.origin,
            Method::POST,
            export_path.clone(),
            Some(json!({"edge": 1})),
            400,
            "invalid_body",
        ),
        (
            &c.edge,
            Method::POST,
            import_path.clone(),
            Some(forged),
            409,
            "link_exists",
        ),
        (
            &c.edge,
            Method::POST,
            import_path.clone(),
            Some(bad_keys),
            400,
            "invalid_keys",
        ),
        (
            &c.edge,
            Method::POST,
            import_path.clone(),
            Some(bad_address),
            400,
            "invalid_address",
        ),
        (
            &c.edge,
            Method::DELETE,
            "/control/relay/imports/nope".into(),
            None,
            404,
            "unknown_link",
        ),
        (
            &c.edge,
            Method::PUT,
            "/control/relay/imports/nope/tracks".into(),
            Some(json!({"tracks": []})),
            404,
            "unknown_link",
        ),
        // An export's id is not an import's, and the other way round.
        (
            &c.origin,
            Method::DELETE,
            format!("/control/relay/imports/{link}"),
            None,
            404,
            "unknown_link",
        ),
        (
            &c.origin,
            Method::GET,
            "/control/relay/exports/nope".into(),
            None,
            404,
            "unknown_link",
        ),
    ];
    for (node, method, path, body, want, code) in cases {
        let (status, answer) = c.call(node, method.clone(), &path, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        assert_eq!(answer["code"], code, "{method} {path}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let malformed = c
        .http
        .post(format!("{}{export_path}", c.origin.base()))
        .bearer_auth(SECRET)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(malformed.status(), 400);
    let unauthenticated = c
        .http
        .post(format!("{}{export_path}", c.origin.base()))
        .json(&json!({"edge_media_address": c.edge_media()}))
        .send()
        .await
        .expect("answer");
    assert_eq!(unauthenticated.status(), 401);
    for (node, reason, at_least) in [
        (&c.origin, "unknown_room", 1.0),
        (&c.origin, "bad_address", 2.0),
        (&c.origin, "duplicate_link", 1.0),
        (&c.origin, "unknown_link", 2.0),
        (&c.edge, "bad_keys", 1.0),
        (&c.edge, "bad_address", 1.0),
        (&c.edge, "duplicate_link", 1.0),
        (&c.edge, "unknown_link", 2.0),
    ] {
        let name = format!("sfu_relay_rejected_total{{reason=\"{reason}\"}}");
        let counted = c.metric(node, &name).await;
        assert!(counted >= at_least, "{name} = {counted}");
    }
    viewer.peer.close().await;
    publisher.peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_link_stops_forwarding_and_frees_it_and_a_closing_room_takes_its_links() {
    let c = Cascade::start().await;
    let mut publisher = c.publish("heidi").await;
    let export = c.export().await;
    let link = export["link"].as_str().expect("link").to_owned();
    let mut export = export;
    export["tracks"] = c.tracks_once_published(&mut publisher, &link).await["tracks"].clone();
    let imported = c.import(export).await;
    let tracks = edge_tracks(&imported);
    let mut viewer = c
        .view("ivan", &tracks, &[RtpCodecKind::Video, RtpCodecKind::Audio])
        .await;
    for _ in 0..300 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        viewer.drain();
        if viewer.opened.1 >= 3 {
            break;
        }
    }
    assert!(
        viewer.opened.1 >= 3,
        "the link forwards before it is deleted"
    );

    // Deleted on the origin: nothing more goes out on it.
    let (status, _) = c
        .call(
            &c.origin,
            Method::DELETE,
            &format!("/control/relay/exports/{link}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        c.metric(&c.origin, "sfu_relay_links{role=\"origin\"}")
            .await,
        0.0
    );
    let sent = c
        .metric(&c.origin, "sfu_relay_packets_total{direction=\"out\"}")
        .await;
    for _ in 0..20 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        c.metric(&c.origin, "sfu_relay_packets_total{direction=\"out\"}")
            .await,
        sent,
        "no relay datagram after the export is deleted"
    );
    viewer.drain();
    let opened = viewer.opened;
    for _ in 0..10 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    viewer.drain();
    assert_eq!(viewer.opened, opened, "the edge viewer gets nothing more");

    // The origin's goodbye on the link frees the import at the edge: the relayed publisher
    // leaves and the link is gone there too.
    c.edge_freed(&link).await;

    // Deleted on the edge: the relayed publisher leaves, and the link is free.
    let link = c.link_up(2).await;
    assert_eq!(c.participants(&c.edge).await, 2);
    let (status, _) = c
        .call(
            &c.edge,
            Method::DELETE,
            &format!("/control/relay/imports/{link}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(c.participants(&c.edge).await, 1, "only the viewer is left");
    assert_eq!(
        c.metric(&c.edge, "sfu_relay_links{role=\"edge\"}").await,
        0.0
    );
    let (status, _) = c
        .call(
            &c.edge,
            Method::DELETE,
            &format!("/control/relay/imports/{link}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "deleted once");
    let (status, _) = c
        .call(
            &c.origin,
            Method::DELETE,
            &format!("/control/relay/exports/{link}"),
            None,
        )
        .await;
    assert_eq!(status, 204);

    // A new link, then the origin room closes: its export goes with it, and its goodbye frees
    // the import at the edge.
    let link = c.link_up(2).await;
    let (status, _) = c
        .call(
            &c.origin,
            Method::DELETE,
            &format!("/control/rooms/{ROOM}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        c.metric(&c.origin, "sfu_relay_links{role=\"origin\"}")
            .await,
        0.0
    );
    c.edge_freed(&link).await;
    viewer.peer.close().await;
    publisher.peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_on_the_link_is_repaired_by_nack_and_replayed_or_forged_link_datagrams_are_refused() {
    let c = Cascade::start().await;
    // The link runs through a UDP relay that can drop, replay and forge its datagrams.
    let relay = Relay::start(format!("127.0.0.1:{}", c.edge.udp).parse().expect("addr")).await;
    let mut publisher = c.publish("judy").await;
    let (status, export) = c
        .call(
            &c.origin,
            Method::POST,
            &format!("/control/rooms/{ROOM}/relay/exports"),
            Some(json!({"edge_media_address": relay.client_facing.to_string()})),
        )
        .await;
    assert_eq!(status, 201, "{export}");
    let link = export["link"].as_str().expect("link").to_owned();
    let mut export = export;
    export["tracks"] = c.tracks_once_published(&mut publisher, &link).await["tracks"].clone();
    export["origin_media_address"] = json!(relay.sfu_facing.to_string());
    let imported = c.import(export).await;
    let tracks = edge_tracks(&imported);
    let mut viewer = c
        .view("ken", &tracks, &[RtpCodecKind::Video, RtpCodecKind::Audio])
        .await;
    for _ in 0..300 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        viewer.drain();
        if viewer.opened.1 >= 3 {
            break;
        }
    }
    assert!(
        viewer.opened.1 >= 3,
        "the link forwards: {:?}",
        viewer.opened
    );

    // One origin→edge RTP datagram in 7 lost on the link: the edge NACKs up the link and the
    // origin resends from its buffer, so the viewer still gets (nearly) every frame.
    viewer.video_rounds.clear();
    relay
        .control
        .drop_uplink_rtp_every
        .store(7, Ordering::SeqCst);
    let first = publisher.round.wrapping_add(1);
    const ROUNDS: u8 = 100;
    for _ in 0..ROUNDS {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        viewer.drain();
    }
    relay
        .control
        .drop_uplink_rtp_every
        .store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    viewer.drain();
    let dropped = relay.control.dropped_uplink.load(Ordering::SeqCst);
    let got = (0..ROUNDS)
        .filter(|i| viewer.video_rounds.contains(&first.wrapping_add(*i)))
        .count();
    let nacks = c
        .metric(
            &c.origin,
            "sfu_rtcp_feedback_total{direction=\"received\",type=\"nack\"}",
        )
        .await;
    let resent = c
        .metric(
            &c.origin,
            "sfu_packets_sent_total{kind=\"video\",type=\"retransmit\"}",
        )
        .await
        + c.metric(
            &c.origin,
            "sfu_packets_sent_total{kind=\"audio\",type=\"retransmit\"}",
        )
        .await;
    eprintln!(
        "link dropped {dropped} datagrams; origin got {nacks} NACKs and resent {resent}; \
         the edge viewer decrypted {got} of {ROUNDS} video frames"
    );
    assert!(dropped >= 20, "the link lost datagrams: {dropped}");
    assert!(nacks >= 1.0, "NACKs crossed the link: {nacks}");
    assert!(resent >= 1.0, "the origin resent: {resent}");
    assert!(
        got >= usize::from(ROUNDS) * 95 / 100,
        "loss on the link repaired: {got} of {ROUNDS} frames"
    );

    // A replayed and a forged copy of origin datagrams: refused at the edge and counted.
    relay.control.replay_next_srtp.store(true, Ordering::SeqCst);
    relay.control.forge_next_srtp.store(true, Ordering::SeqCst);
    for _ in 0..5 {
        publisher.send_round().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(relay.control.replayed.load(Ordering::SeqCst), 1);
    assert_eq!(relay.control.forged.load(Ordering::SeqCst), 1);
    common::poll_until(
        Duration::from_secs(3),
        "the edge to count the replay and the forgery",
        async || {
            c.metric(&c.edge, "sfu_relay_rejected_total{reason=\"replay\"}")
                .await
                >= 1.0
                && c.metric(
                    &c.edge,
                    "sfu_relay_rejected_total{reason=\"unauthenticated\"}",
                )
                .await
                    >= 1.0
        },
    )
    .await;
    viewer.drain();
    viewer.peer.close().await;
    publisher.peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulcast_camera_reaches_the_edge_as_its_top_layer() {
    let c = Cascade::start().await;
    let mut source = Source::unjoined().await;
    let offer = source.peer.offer().await.expect("offer");
    let answer = c.origin.add_caller(&c.http, ROOM, "kim", &offer).await;
    accept_answer(&source.peer, &answer, "kim").await;
    let export = c.export().await;
    let link = export["link"].as_str().expect("link").to_owned();
    for _ in 0..100 {
        source.send_frame().await;
        if c.export_tracks_now(&link).await == 1 {
            break;
        }
    }
    let mut export = export;
    export["tracks"] = c.export_tracks(&link, 1).await["tracks"].clone();
    let imported = c.import(export).await;
    let mut viewer = c
        .view("leo", &edge_tracks(&imported), &[RtpCodecKind::Video])
        .await;
    // The export is a recorder-role subscriber: the origin sends it the top layer once that
    // layer flows, so the edge (and every edge viewer) gets that one.
    let mut seen: Vec<Seen> = Vec::new();
    let settled = simulcast::run(&mut source, &mut viewer.peer, &mut seen, 300, |s| {
        s.len() >= 30 && s[s.len() - 20..].iter().all(|x| x.rank == 2)
    })
    .await;
    let ranks: Vec<u8> = seen.iter().map(|x| x.rank).collect();
    assert!(
        settled,
        "the edge viewer settles on the top layer: {ranks:?}"
    );
    assert_eq!(
        seen.iter()
            .map(|x| x.ssrc)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1,
        "one stream at the edge viewer"
    );
    viewer.peer.close().await;
    source.peer.close().await;
}
