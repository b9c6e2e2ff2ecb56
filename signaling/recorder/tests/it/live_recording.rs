//! `record_room` against the real service: a meeting of native callers recorded into the
//! in-memory archive; a room whose policy does not name the recorder, or that an admin key it
//! does not trust signed; a caller that withholds its keys from the recorder; the room's chat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use call_client::chat::ChatScope;
use call_client::keys::{
    KeyConfig, KeyInput, KeyManager, KeyOutput, RosterDevice, key_inputs, key_message,
};
use call_client::media::seal_frame;
use call_client::peer::Peer;
use call_client::protocol::{
    ChatBody as ChatMessageBody, ClientMessage, ClientOffer, Layer, Role, SdpBody, ServerMessage,
    TrackAnnouncement, TrackKind, TrackSource,
};
use call_client::session::{Session, SessionConfig};
use e2ee_frames::{Codec, DeviceId, DeviceKeys, Stream};
use loadtest::participant::{LiveCounters, ParticipantSpec, Role as CallerRole, run_participant};
use loadtest::receiver_stats::StreamKey;
use recorder::live::metrics::{ChatResult, DecryptFailure, RoomRefusal, SessionOutcome};
use recorder::live::{
    EndReason, RecordError, RecorderMetrics, RoomConfig, RoomReport, record_room,
};
use recorder::sink::{ChatBody, MediaKind};
use tokio::sync::watch;

use crate::live_service::{
    MemoryArchive, Service, caller_token, recorder_keys, rogue_admin, signed_policy_by,
    trusted_admin,
};

const RECORDER: &str = "rec-1";

/// The loadtest camera layers in probe-stream order (stream 1 + index): q, h, f.
const MEDIUM_PROBE_STREAM: u8 = 2;

/// How long callers publish.
const MEETING: Duration = Duration::from_secs(8);

struct Recording {
    task: tokio::task::JoinHandle<Result<RoomReport, RecordError>>,
    metrics: Arc<RecorderMetrics>,
    stop: watch::Sender<bool>,
}

/// Starts `record_room` for `room` in the background.
fn start_recorder(
    service: &Service,
    room: &str,
    me: DeviceKeys,
    archive: &MemoryArchive,
) -> Recording {
    let mut config = RoomConfig::new(
        &service.ws_url(),
        room,
        service.credentials(),
        trusted_admin(),
    );
    config.video_layer = Layer::Medium;
    config.alone_for = Duration::from_secs(2);
    let metrics = RecorderMetrics::new();
    let (stop, stop_rx) = watch::channel(false);
    let archive: Arc<dyn recorder::sink::SessionArchive> = Arc::new(archive.clone());
    let m = metrics.clone();
    let task = tokio::spawn(async move { record_room(&config, me, archive, m, stop_rx).await });
    Recording {
        task,
        metrics,
        stop,
    }
}

/// A room `room` whose signed policy names the recorder, recorded into a fresh in-memory
/// archive; returns once the recorder's session began.
async fn recording(service: &Service, room: &str) -> (Recording, MemoryArchive) {
    let me = recorder_keys(RECORDER);
    service
        .recorded_meeting(room, &[(RECORDER, me.identity_key())])
        .await;
    let archive = MemoryArchive::default();
    let rec = start_recorder(service, room, me, &archive);
    wait_until(
        Duration::from_secs(10),
        "the recorder's session begins",
        || rec.metrics.active_sessions() == 1,
    )
    .await;
    (rec, archive)
}

async fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recorder_decrypts_every_frame_of_a_native_meeting() {
    let service = Service::start().await;
    let (rec, archive) = recording(&service, "standup").await;

    // Three native callers: Opus and three-layer VP8 simulcast, sealed with SFrame, keys wrapped
    // to every roster device (the recorder included) through signaling.
    let counters = Arc::new(LiveCounters::default());
    let (stop_callers, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    let callers: Vec<_> = (0..3u16)
        .map(|index| {
            let spec = ParticipantSpec {
                index,
                role: CallerRole::Caller,
                room: "standup".into(),
                ws_url: service.ws_url(),
                token: caller_token("standup", &format!("caller-{index}")),
                epoch,
                seed: 7,
                media_via: None,
                miss_keys_until_request: false,
            };
            tokio::spawn(run_participant(spec, counters.clone(), stop_rx.clone()))
        })
        .collect();
    tokio::time::sleep(MEETING).await;
    stop_callers.send(true).expect("callers run");
    for c in callers {
        let outcome = c.await.expect("caller task");
        assert!(outcome.joined, "caller failed: {:?}", outcome.failure);
    }
    let sent = counters.sent_streams.snapshot();

    // Alone again: the recorder finishes by itself.
    let report = tokio::time::timeout(Duration::from_secs(20), rec.task)
        .await
        .expect("the recorder ends once alone")
        .expect("recorder task")
        .expect("recorded");
    assert_eq!(report.end, EndReason::Alone);
    let summary = report.summary.as_ref().expect("session finished");
    let log = archive.session(0);
    assert!(log.finished, "finish called");
    assert_eq!(archive.count(), 1);
    assert_eq!(log.frames_of_unknown_tracks, 0);
    assert!(
        log.start
            .as_ref()
            .is_some_and(|s| s.room == "standup" && s.policy_json.contains("admin_key"))
    );

    // Every published track announced and recorded, ≥ 90 % of what its caller sent.
    let mut lines = Vec::new();
    for index in 0..3u16 {
        let device = format!("lt-caller-{index}");
        for (kind, probe_stream) in [
            (MediaKind::Audio, 0u8),
            (MediaKind::Video, MEDIUM_PROBE_STREAM),
        ] {
            let track = log
                .tracks
                .values()
                .find(|t| {
                    t.meta
                        .as_ref()
                        .is_some_and(|m| m.device == device && m.kind == kind)
                })
                .unwrap_or_else(|| {
                    panic!("{device} {kind:?} track announced: {:?}", log.tracks.keys())
                });
            let sent = u64::from(
                sent[&StreamKey {
                    sender: index,
                    stream: probe_stream,
                }],
            );
            // The SFU starts a subscriber on a lower layer while its bandwidth estimate ramps
            // up, then goes up to the cap: one frame per capture instant, whichever layer.
            let got: u64 = track.probes.values().sum();
            assert!(
                track.probes.keys().all(|(sender, _)| *sender == index),
                "only {device}'s frames on its track: {:?}",
                track.probes
            );
            // Frames sent before the recorder's subscription was live (it waits for the
            // publisher's next keyframe, at most 1 s apart) cannot reach it: the first frame
            // must come from the first 1.5 s, and ≥ 90 % of everything sent from then on.
            let first = u64::from(track.first_seq.expect("probes in the frames"));
            let per_second = if kind == MediaKind::Audio { 50 } else { 30 };
            let since_first = sent - first;
            lines.push(format!(
                "{device} {kind:?}: sent {sent}, recorded {got} ({:.1} %), first frame recorded #{first}, \
                 {:.1} % of those sent since (by probe stream {:?})",
                got as f64 * 100.0 / sent as f64,
                got as f64 * 100.0 / since_first as f64,
                track.probes
            ));
            assert!(!track.pts_went_back, "pts monotonic");
            assert!(
                first * 2 <= per_second * 3,
                "{device} {kind:?}: first frame #{first}\n{}",
                lines.join("\n")
            );
            assert!(
                got * 10 >= since_first * 9,
                "{device} {kind:?}: recorded {got} of {since_first}\n{}",
                lines.join("\n")
            );
            if kind == MediaKind::Video {
                assert!(track.keyframes > 0);
                let meta = track.meta.as_ref().expect("announced");
                assert!(
                    meta.width > 0 && meta.height > 0,
                    "size from the keyframe: {meta:?}"
                );
            }
        }
    }
    println!("{}", lines.join("\n"));

    // Nothing failed to decrypt; the participants and the security codes reached the archive.
    assert_eq!(report.media.frames_refused, 0, "{:?}", report.media);
    assert_eq!(report.media.frames_without_key, 0, "{:?}", report.media);
    assert_eq!(report.media.unattributed_frames, 0, "{:?}", report.media);
    assert_eq!(rec.metrics.decrypt_failures(DecryptFailure::Refused), 0);
    assert_eq!(report.refused_envelopes, 0);
    assert_eq!(summary.frames, report.frames_written);
    assert_eq!(report.frames_written, report.media.frames_queued);
    let mut joined: Vec<_> = log.joined.iter().map(|p| p.device.clone()).collect();
    joined.sort();
    assert_eq!(
        joined,
        ["lt-caller-0", "lt-caller-1", "lt-caller-2", RECORDER]
    );
    assert!(log.joined.iter().all(|p| p.identity_key != [0; 32]));
    let mut left = log.left.clone();
    left.sort();
    assert_eq!(left, ["lt-caller-0", "lt-caller-1", "lt-caller-2"]);
    assert!(
        log.codes.len() >= 2,
        "a code per roster change: {:?}",
        log.codes
    );
    assert!(
        log.codes
            .iter()
            .all(|c| c.len() == 25 && c.bytes().all(|b| b.is_ascii_digit()))
    );
    assert_eq!(rec.metrics.sessions(SessionOutcome::Finished), 1);
    assert_eq!(rec.metrics.active_sessions(), 0);
    drop(rec.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_refuses_a_room_whose_policy_does_not_name_it() {
    let service = Service::start().await;
    let me = recorder_keys(RECORDER);
    // The policy names another recorder device; and one with this device id but another key.
    let other = recorder_keys("rec-other");
    service
        .recorded_meeting("board", &[("rec-other", other.identity_key())])
        .await;
    service
        .recorded_meeting("board-2", &[(RECORDER, other.identity_key())])
        .await;
    let archive = MemoryArchive::default();
    for room in ["board", "board-2"] {
        let rec = start_recorder(&service, room, me.clone(), &archive);
        let result = tokio::time::timeout(Duration::from_secs(10), rec.task)
            .await
            .expect("refused promptly")
            .expect("recorder task");
        match result {
            Err(e @ (RecordError::NotAdmitted { .. } | RecordError::Policy(_))) => {
                assert_eq!(e.outcome(), SessionOutcome::RefusedPolicy, "{e}");
            }
            other => panic!("{room}: expected a refusal, got {other:?}"),
        }
        assert_eq!(rec.metrics.sessions(SessionOutcome::RefusedPolicy), 1);
        let refused: u64 = RoomRefusal::ALL
            .iter()
            .map(|r| rec.metrics.rooms_refused(*r))
            .sum();
        assert_eq!(refused, 1, "counted with its reason");
        assert_eq!(rec.metrics.active_sessions(), 0);
    }
    assert_eq!(archive.count(), 0, "no session begun");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_refuses_at_join_a_policy_signed_by_an_untrusted_admin_key() {
    // `record` has no event stream: the policy it joins under is the one checked.
    let service = Service::start().await;
    let me = recorder_keys(RECORDER);
    service
        .create_room(serde_json::json!({
            "name": "rogue",
            "kind": "meeting",
            "recording": signed_policy_by("rogue", &[(RECORDER, me.identity_key())], &rogue_admin()),
        }))
        .await;
    let archive = MemoryArchive::default();
    let rec = start_recorder(&service, "rogue", me, &archive);
    let result = tokio::time::timeout(Duration::from_secs(10), rec.task)
        .await
        .expect("refused promptly")
        .expect("recorder task");
    let err = result.expect_err("a policy no trusted admin signed is not recorded");
    assert!(
        matches!(
            err,
            RecordError::Policy(recorder::live::PolicyError::UntrustedAdminKey { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("does not trust"), "{err}");
    assert_eq!(rec.metrics.rooms_refused(RoomRefusal::UntrustedPolicy), 1);
    assert_eq!(rec.metrics.sessions(SessionOutcome::RefusedPolicy), 1);
    assert!(
        rec.metrics
            .render()
            .contains("recorder_rooms_refused_total{reason=\"untrusted_policy\"} 1")
    );
    assert_eq!(archive.count(), 0, "no session begun");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_refuses_a_receive_slot_room_clearly() {
    let service = Service::start().await;
    let me = recorder_keys(RECORDER);
    service
        .create_room(serde_json::json!({
            "name": "slots",
            "kind": "meeting",
            "receive_slots": true,
            "recording": crate::live_service::signed_policy("slots", &[(RECORDER, me.identity_key())]),
        }))
        .await;
    let archive = MemoryArchive::default();
    let rec = start_recorder(&service, "slots", me, &archive);
    let result = tokio::time::timeout(Duration::from_secs(10), rec.task)
        .await
        .expect("refused promptly")
        .expect("recorder task");
    let err = result.expect_err("a receive-slot room is not recorded");
    assert!(
        matches!(err, RecordError::ReceiveSlots(ref room) if room == "slots"),
        "{err}"
    );
    assert!(err.to_string().contains("not supported"), "{err}");
    assert_eq!(rec.metrics.sessions(SessionOutcome::Unsupported), 1);
    assert_eq!(archive.count(), 0, "no session begun");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_counts_frames_it_cannot_decrypt() {
    let service = Service::start().await;
    let (rec, archive) = recording(&service, "hush").await;
    let sent = caller_withholding_keys(&service, "hush", Duration::from_secs(3)).await;
    let report = tokio::time::timeout(Duration::from_secs(20), rec.task)
        .await
        .expect("the recorder ends once alone")
        .expect("recorder task")
        .expect("recorded");
    let log = archive.session(0);
    println!("sent {sent}, media {:?}", report.media);
    assert!(log.finished);
    assert_eq!(report.media.frames_decrypted, 0);
    assert!(
        report.media.frames_without_key * 2 >= sent,
        "frames without key counted: {} of {sent} sent",
        report.media.frames_without_key
    );
    assert_eq!(
        rec.metrics.decrypt_failures(DecryptFailure::NoKey),
        report.media.frames_without_key
    );
    assert!(rec.metrics.render().contains(&format!(
        "recorder_decrypt_failures_total{{reason=\"no_key\"}} {}",
        report.media.frames_without_key
    )));
    assert!(
        log.tracks.is_empty(),
        "nothing recorded: {:?}",
        log.tracks.keys()
    );
    // The caller is still in the record: who was there is known even when what they said is not.
    assert!(log.joined.iter().any(|p| p.device == "withholder"));
}

/// A caller that does not wrap its keys to the recorder (as a client that does not trust the
/// room's policy does), publishing Opus-shaped frames for `duration`. Returns the frames sent.
async fn caller_withholding_keys(service: &Service, room: &str, duration: Duration) -> u64 {
    let keys = DeviceKeys::generate(DeviceId::new("withholder").expect("id"), &mut rand::rng());
    let config = SessionConfig::new(
        service.ws_url(),
        room,
        caller_token(room, "w"),
        keys.bundle(),
    );
    let mut ws = Session::connect(config).await.expect("caller joins");
    let joined = ws.joined().clone();
    let mut km = KeyManager::new(
        keys,
        room,
        &joined.call,
        joined.slot,
        true,
        KeyConfig::default(),
    );
    let now = Instant::now();
    for entry in &joined.roster.devices {
        let mut device = RosterDevice::from(entry);
        device.wrap_keys = entry.role != Role::Recorder;
        km.handle_input(now, KeyInput::RosterAdded(device))
            .expect("roster bundle");
    }
    km.handle_input(now, KeyInput::Start).expect("first key");
    let mut sender = None;
    let drain =
        |km: &mut KeyManager, ws: &mut Session, sender: &mut Option<e2ee_frames::Sender>| {
            while let Some(out) = km.poll_output() {
                if let Some(m) = key_message(&out) {
                    ws.send(m).expect("key message queued");
                } else if let KeyOutput::UseSenderKey(k) = out {
                    *sender = Some(k.sender(joined.slot).expect("sender"));
                }
            }
        };
    drain(&mut km, &mut ws, &mut sender);
    assert!(
        km.recipients().all(|d| d != RECORDER),
        "nothing wrapped to the recorder"
    );
    let peer = Peer::builder()
        .default_interceptors()
        .build()
        .await
        .expect("peer");
    let mut audio = peer.add_audio("mic", 0x5000_0001).await.expect("audio");
    let offer = peer.offer().await.expect("offer");
    ws.send(ClientMessage::Offer(ClientOffer {
        sdp: offer,
        tracks: vec![TrackAnnouncement {
            mid: audio.mid().expect("mid").to_owned(),
            kind: TrackKind::Audio,
            source: TrackSource::Microphone,
            layers: vec![],
        }],
    }))
    .expect("offer sent");
    let deadline = Instant::now() + Duration::from_secs(10);
    while peer.connection_state() != call_client::peer::RTCPeerConnectionState::Connected {
        assert!(Instant::now() < deadline, "caller connects");
        if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(50), ws.recv()).await {
            handle(&peer, &mut ws, &mut km, msg).await;
            drain(&mut km, &mut ws, &mut sender);
        }
    }
    let mut sender = sender.expect("a sending key");
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut sent, mut wire) = (0u64, Vec::new());
    let end = Instant::now() + duration;
    while Instant::now() < end {
        tokio::select! {
            _ = tick.tick() => {
                // An Opus TOC byte (SILK 20 ms, mono) and 60 bytes of payload.
                let mut frame = vec![0x08u8];
                frame.extend((0..60u8).map(|b| b.wrapping_mul(sent as u8)));
                seal_frame(&mut sender, Stream::Audio, Codec::Opus, &frame, &mut wire).expect("sealed");
                let ts = (sent as u32).wrapping_mul(960);
                audio.write(0, ts, true, bytes::Bytes::copy_from_slice(&wire)).await.expect("written");
                sent += 1;
            }
            Some(msg) = ws.recv() => {
                handle(&peer, &mut ws, &mut km, msg).await;
                while let Some(out) = km.poll_output() {
                    if let Some(m) = key_message(&out) {
                        let _ = ws.send(m);
                    }
                }
            }
        }
    }
    peer.close().await;
    ws.leave().await;
    sent
}

async fn handle(peer: &Peer, ws: &mut Session, km: &mut KeyManager, msg: ServerMessage) {
    match &msg {
        ServerMessage::Answer(SdpBody { sdp }) => peer.apply_answer(sdp).await.expect("answer"),
        ServerMessage::Offer(SdpBody { sdp }) => {
            let answer = peer.answer(sdp).await.expect("answer made");
            ws.send(ClientMessage::Answer(SdpBody { sdp: answer }))
                .expect("answer sent");
        }
        _ => {
            for input in key_inputs(&msg) {
                // A recorder that appears later is not given keys either.
                let input = match input {
                    KeyInput::RosterAdded(mut d) => {
                        d.wrap_keys = d.device != RECORDER;
                        KeyInput::RosterAdded(d)
                    }
                    other => other,
                };
                let _ = km.handle_input(Instant::now(), input);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_finishes_the_session_when_stopped_mid_call() {
    let service = Service::start().await;
    let (rec, archive) = recording(&service, "late").await;
    let counters = Arc::new(LiveCounters::default());
    let (stop_caller, stop_rx) = watch::channel(false);
    let spec = ParticipantSpec {
        index: 0,
        role: CallerRole::Caller,
        room: "late".into(),
        ws_url: service.ws_url(),
        token: caller_token("late", "caller-0"),
        epoch: Instant::now(),
        seed: 3,
        media_via: None,
        miss_keys_until_request: false,
    };
    let caller = tokio::spawn(run_participant(spec, counters.clone(), stop_rx));
    wait_until(Duration::from_secs(15), "frames recorded", || {
        rec.metrics.frames_decrypted() > 100
    })
    .await;
    // What SIGINT/SIGTERM do: the caller is still there, the session is finished anyway.
    rec.stop.send(true).expect("recorder runs");
    let report = tokio::time::timeout(Duration::from_secs(10), rec.task)
        .await
        .expect("the recorder stops promptly")
        .expect("recorder task")
        .expect("recorded");
    assert_eq!(report.end, EndReason::Stopped);
    assert!(report.summary.is_ok());
    let log = archive.session(0);
    assert!(log.finished, "finish called: the manifest is written");
    assert!(log.tracks.values().map(|t| t.frames).sum::<u64>() > 100);
    assert_eq!(rec.metrics.sessions(SessionOutcome::Finished), 1);
    stop_caller.send(true).expect("caller runs");
    caller.await.expect("caller task");
}

/// Joins `room` as `device` (no media), wraps its key to the recorder only if `to_recorder`,
/// sends each of `texts` as sealed chat, and stays `stay` answering key messages.
async fn chatting_caller(
    service: &Service,
    room: &str,
    device: &str,
    to_recorder: bool,
    texts: &[&str],
    stay: Duration,
) {
    let keys = DeviceKeys::generate(DeviceId::new(device).expect("id"), &mut rand::rng());
    let config = SessionConfig::new(
        service.ws_url(),
        room,
        caller_token(room, device),
        keys.bundle(),
    );
    let mut ws = Session::connect(config).await.expect("caller joins");
    let joined = ws.joined().clone();
    let mut km = KeyManager::new(
        keys,
        room,
        &joined.call,
        joined.slot,
        true,
        KeyConfig::default(),
    );
    let wrap = |mut d: RosterDevice| {
        d.wrap_keys = to_recorder || d.device != RECORDER;
        d
    };
    let now = Instant::now();
    for entry in &joined.roster.devices {
        km.handle_input(now, KeyInput::RosterAdded(wrap(RosterDevice::from(entry))))
            .expect("roster bundle");
    }
    km.handle_input(now, KeyInput::Start).expect("first key");
    let mut current = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(out) = km.poll_output() {
            if let Some(m) = key_message(&out) {
                ws.send(m).expect("key message queued");
            } else if let KeyOutput::UseSenderKey(k) = out {
                current = Some(k);
            }
        }
        if current.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "{device} gets a sending key");
        if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(50), ws.recv()).await {
            for input in key_inputs(&msg) {
                let input = match input {
                    KeyInput::RosterAdded(d) => KeyInput::RosterAdded(wrap(d)),
                    other => other,
                };
                let _ = km.handle_input(Instant::now(), input);
            }
        }
    }
    let key = current.expect("a sending key");
    let scope = ChatScope {
        room,
        call: &joined.call,
    };
    for text in texts {
        let chat =
            call_client::chat::seal(scope, device, joined.slot, &key, text, &mut rand::rng())
                .expect("sealed");
        ws.send(ClientMessage::Chat(ChatMessageBody { chat }))
            .expect("chat queued");
    }
    let end = tokio::time::Instant::now() + stay;
    while let Ok(Some(msg)) = tokio::time::timeout_at(end, ws.recv()).await {
        for input in key_inputs(&msg) {
            let _ = km.handle_input(Instant::now(), input);
        }
        while let Some(out) = km.poll_output() {
            if let Some(m) = key_message(&out) {
                let _ = ws.send(m);
            }
        }
    }
    ws.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_archives_the_chat_and_names_a_message_it_could_not_read() {
    let service = Service::start().await;
    let (rec, archive) = recording(&service, "chatty").await;
    let alice = chatting_caller(
        &service,
        "chatty",
        "alice",
        true,
        &["agenda: budget first", "then hiring"],
        Duration::from_secs(2),
    );
    // Bob withholds his key from the recorder: his message cannot be opened there.
    let bob = chatting_caller(
        &service,
        "chatty",
        "bob",
        false,
        &["off the record?"],
        Duration::from_secs(2),
    );
    tokio::join!(alice, bob);
    let report = tokio::time::timeout(Duration::from_secs(20), rec.task)
        .await
        .expect("the session ends once the callers left")
        .expect("task")
        .expect("recorded");
    assert_eq!(report.end, EndReason::Alone);
    let session = archive.session(0);
    assert!(session.finished);
    let texts: Vec<(&str, Option<&str>)> = session
        .chat
        .iter()
        .map(|c| {
            let text = match &c.body {
                ChatBody::Text(t) => Some(t.as_str()),
                ChatBody::Reaction(_) | ChatBody::Unreadable(_) => None,
            };
            (c.from.as_str(), text)
        })
        .collect();
    assert_eq!(texts.len(), 3, "every message is archived: {texts:?}");
    let alices: Vec<_> = texts.iter().filter(|(f, _)| *f == "alice").collect();
    assert_eq!(
        alices,
        [
            &("alice", Some("agenda: budget first")),
            &("alice", Some("then hiring"))
        ]
    );
    let bobs = session
        .chat
        .iter()
        .find(|c| c.from == "bob")
        .expect("bob's");
    match &bobs.body {
        ChatBody::Unreadable(why) => assert!(why.contains("no key"), "{why}"),
        ChatBody::Text(t) | ChatBody::Reaction(t) => {
            panic!("bob's message was read without his key: {t}")
        }
    }
    assert!(
        session.chat.iter().all(|c| c.pts < Duration::from_secs(60)),
        "times on the session's time line"
    );
    assert_eq!(rec.metrics.chat_messages(ChatResult::Archived), 2);
    assert_eq!(rec.metrics.chat_messages(ChatResult::Unreadable), 1);
}
