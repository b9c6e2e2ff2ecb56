//! Shared helpers: the service in process, rooms with a signed recording policy, callers' tokens
//! and the in-memory archive.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use call_client::access_token::{Claims, GrantClaims};
use call_client::protocol::{RecorderDevice, RecordingDocument, RecordingPolicy, Role};
use e2ee_frames::{DeviceKeys, DocumentSigner};
use recorder::live::{ApiCredentials, TrustedAdminKeys};
use recorder::sink::{
    ChatEntry, Frame, Participant, SessionArchive, SessionSink, SessionStart, SessionSummary,
    SinkError, TrackMeta,
};
use signaling::auth::Secret;
use signaling::config::Config;
use signaling::server::RunningServer;

pub const API_KEY: &str = "tk";
pub const API_SECRET: &str = "test-secret";
pub const ADMIN: &str = "test-admin";

/// Signaling with an SFU node embedded in this process (loopback only).
pub struct Service {
    pub server: RunningServer,
    _sfu: signaling::media_node::EmbeddedSfu,
}

impl Service {
    pub async fn start() -> Self {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("literal address"),
            admin_token: Some(Secret::new(ADMIN)),
            api_keys: [(API_KEY.to_string(), Secret::new(API_SECRET))].into(),
            ..Config::default()
        };
        config.limits.connections_per_second_per_ip = 1000;
        config.limits.connection_burst_per_ip = 1000;
        config.limits.messages_per_second = 500;
        config.limits.message_burst = 500;
        config.rekey.debounce_ms = 150;
        config.rekey.max_delay_ms = 1000;
        let sfu =
            signaling::media_node::EmbeddedSfu::start(sfu::transport::TransportConfig::loopback())
                .await
                .expect("embedded SFU starts on loopback");
        let server = signaling::server::start(&config, Some(Arc::new(sfu.clone())))
            .await
            .expect("server starts");
        Service { server, _sfu: sfu }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/rtc", self.server.local_addr())
    }

    pub fn credentials(&self) -> ApiCredentials {
        ApiCredentials {
            key: API_KEY.into(),
            secret: API_SECRET.into(),
        }
    }

    /// Creates a meeting room whose recording policy names `recorders` (device, identity key),
    /// signed by a real admin Ed25519 key.
    pub async fn recorded_meeting(&self, room: &str, recorders: &[(&str, [u8; 32])]) {
        self.create_room(serde_json::json!({
            "name": room,
            "kind": "meeting",
            "recording": signed_policy(room, recorders),
        }))
        .await;
    }

    /// Creates a room through the admin API.
    pub async fn create_room(&self, body: serde_json::Value) {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/v1/rooms", self.server.local_addr()))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("admin request");
        assert_eq!(resp.status(), 201, "room created: {:?}", resp.text().await);
    }
}

/// The admin key the tests' policies are signed with.
pub fn admin() -> DocumentSigner {
    DocumentSigner::from_secret(&[42u8; 32])
}

/// Another admin's key: one the tests' recorders do not trust.
pub fn rogue_admin() -> DocumentSigner {
    DocumentSigner::from_secret(&[66u8; 32])
}

/// What the tests' recorders trust: [`admin`]'s public key.
pub fn trusted_admin() -> TrustedAdminKeys {
    TrustedAdminKeys::new([admin().public_key()]).expect("one key")
}

/// A recording policy for `room` naming `recorders`, signed with [`admin`]'s key
/// ([`RecordingPolicy::sign`]), kept for 30 days.
pub fn signed_policy(room: &str, recorders: &[(&str, [u8; 32])]) -> serde_json::Value {
    signed_policy_by(room, recorders, &admin())
}

/// The same, signed by `admin`.
pub fn signed_policy_by(
    room: &str,
    recorders: &[(&str, [u8; 32])],
    admin: &DocumentSigner,
) -> serde_json::Value {
    let document = RecordingDocument {
        v: 1,
        room: room.into(),
        recorders: recorders
            .iter()
            .map(|(device, identity_key)| RecorderDevice {
                device: (*device).into(),
                identity_key: URL_SAFE_NO_PAD.encode(identity_key),
            })
            .collect(),
        issued_at: 1_700_000_000,
        retention_days: 30,
    };
    serde_json::to_value(RecordingPolicy::sign(&document, admin)).expect("a policy serializes")
}

/// A caller's access token for `room`.
pub fn caller_token(room: &str, identity: &str) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    Claims::new(
        API_KEY,
        GrantClaims {
            room: Some(room.into()),
            identity: Some(identity.into()),
            role: Some(Role::Caller),
            can_publish: true,
            can_subscribe: true,
            moderator: false,
            device: None,
        },
        now,
        600,
    )
    .sign(API_SECRET.as_bytes())
}

/// A recorder device's keys.
pub fn recorder_keys(device: &str) -> DeviceKeys {
    DeviceKeys::generate(
        e2ee_frames::DeviceId::new(device).expect("device id"),
        &mut rand::rng(),
    )
}

/// What one track received in the archive.
#[derive(Debug, Default, Clone)]
pub struct TrackLog {
    pub meta: Option<TrackMeta>,
    pub frames: u64,
    pub keyframes: u64,
    pub bytes: u64,
    /// FNV-1a over every frame, in order.
    pub hash: u64,
    pub last_pts: Duration,
    pub pts_went_back: bool,
    /// The load-test probes inside the frames: (sender, stream) → frames.
    pub probes: BTreeMap<(u16, u8), u64>,
    /// The lowest probe sequence number recorded (the capture instant of the first frame).
    pub first_seq: Option<u32>,
}

/// One session as the archive saw it.
#[derive(Debug, Default, Clone)]
pub struct SessionLog {
    pub start: Option<SessionStart>,
    pub joined: Vec<Participant>,
    pub left: Vec<String>,
    pub codes: Vec<String>,
    pub tracks: HashMap<String, TrackLog>,
    pub frames_of_unknown_tracks: u64,
    pub chat: Vec<ChatEntry>,
    pub finished: bool,
}

/// An archive that keeps counts and hashes in memory (the real one encrypts to disk).
#[derive(Debug, Default, Clone)]
pub struct MemoryArchive {
    pub sessions: Arc<Mutex<Vec<SessionLog>>>,
}

impl MemoryArchive {
    pub fn session(&self, i: usize) -> SessionLog {
        self.sessions.lock().expect("not poisoned")[i].clone()
    }

    pub fn count(&self) -> usize {
        self.sessions.lock().expect("not poisoned").len()
    }
}

struct MemorySink {
    sessions: Arc<Mutex<Vec<SessionLog>>>,
    index: usize,
}

impl MemorySink {
    fn with<R>(&self, f: impl FnOnce(&mut SessionLog) -> R) -> R {
        f(&mut self.sessions.lock().expect("not poisoned")[self.index])
    }
}

impl SessionArchive for MemoryArchive {
    fn begin(&self, start: SessionStart) -> Result<Box<dyn SessionSink>, SinkError> {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        sessions.push(SessionLog {
            start: Some(start),
            ..SessionLog::default()
        });
        Ok(Box::new(MemorySink {
            sessions: self.sessions.clone(),
            index: sessions.len() - 1,
        }))
    }
}

impl SessionSink for MemorySink {
    fn participant_joined(&mut self, participant: Participant) -> Result<(), SinkError> {
        self.with(|s| s.joined.push(participant));
        Ok(())
    }

    fn participant_left(&mut self, device: &str, _at: SystemTime) -> Result<(), SinkError> {
        self.with(|s| s.left.push(device.to_owned()));
        Ok(())
    }

    fn security_code(&mut self, code: &str, _at: SystemTime) -> Result<(), SinkError> {
        self.with(|s| s.codes.push(code.to_owned()));
        Ok(())
    }

    fn chat(&mut self, entry: ChatEntry) -> Result<(), SinkError> {
        self.with(|s| s.chat.push(entry));
        Ok(())
    }

    fn track(&mut self, track: TrackMeta) -> Result<(), SinkError> {
        self.with(|s| {
            let id = track.track_id.clone();
            s.tracks.entry(id).or_default().meta = Some(track);
        });
        Ok(())
    }

    fn frame(&mut self, frame: Frame<'_>) -> Result<(), SinkError> {
        self.with(|s| {
            let Some(t) = s
                .tracks
                .get_mut(frame.track_id)
                .filter(|t| t.meta.is_some())
            else {
                s.frames_of_unknown_tracks += 1;
                return Err(SinkError::Refused("frame of an unannounced track".into()));
            };
            t.frames += 1;
            t.keyframes += u64::from(frame.keyframe);
            t.bytes += frame.data.len() as u64;
            t.hash = frame
                .data
                .iter()
                .fold(t.hash ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
                });
            t.pts_went_back |= frame.pts < t.last_pts;
            t.last_pts = frame.pts;
            if let Ok((_, probe)) = loadtest::probe::Probe::split_trailer(frame.data) {
                *t.probes.entry((probe.sender, probe.stream)).or_default() += 1;
                t.first_seq = Some(t.first_seq.map_or(probe.seq, |s| s.min(probe.seq)));
            }
            Ok(())
        })
    }

    fn finish(self: Box<Self>, _at: SystemTime) -> Result<SessionSummary, SinkError> {
        self.with(|s| {
            s.finished = true;
            Ok(SessionSummary {
                session_id: format!("mem-{}", self.index),
                frames: s.tracks.values().map(|t| t.frames).sum(),
                bytes_written: s.tracks.values().map(|t| t.bytes).sum(),
            })
        })
    }
}
