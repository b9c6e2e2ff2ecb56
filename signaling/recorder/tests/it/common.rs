//! Fixtures: an enrolled recorder, an organization key, an archive, and real media (an Opus
//! 440 Hz tone from libopus, a VP8 clip from ffmpeg's libvpx).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use e2ee_frames::identity::DeviceId;
use recorder::archive::chain::ChainSigner;
use recorder::archive::seal::{OrgIdentity, OrgRecipient};
use recorder::archive::session::LocalArchive;
use recorder::archive::store::LocalStore;
use recorder::archive::track_part::PartLimits;
use recorder::archive_cli::{ArchiveArgs, open_local_archive};
use recorder::identity;
use recorder::sink::{
    Codec, Frame, MediaKind, Participant, SessionArchive as _, SessionStart, SessionSummary,
    TrackMeta,
};

pub(crate) const ROOM: &str = "board-meeting-q4-confidential";
pub(crate) const ALICE: &str = "Alice Liddell";
pub(crate) const BOB: &str = "Bob Marley-Fischer";
pub(crate) const SAMPLE_RATE: u32 = 48_000;
pub(crate) const OPUS_FRAME: Duration = Duration::from_millis(20);

/// An enrolled recorder, its archive folder and the organization's key.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) state_dir: PathBuf,
    pub(crate) archive_dir: PathBuf,
    pub(crate) org: OrgIdentity,
    pub(crate) archive: Arc<LocalArchive>,
    pub(crate) recorder_key: [u8; 32],
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let archive_dir = dir.path().join("archive");
        let keys = identity::enroll(&state_dir, DeviceId::new("recorder-test").unwrap()).unwrap();
        let org = OrgIdentity::generate();
        let archive = open_local_archive(&ArchiveArgs {
            state_dir: state_dir.clone(),
            archive_dir: archive_dir.clone(),
            archive_recipient: org.recipient(),
        })
        .unwrap();
        Self {
            dir,
            state_dir,
            archive_dir,
            org,
            archive,
            recorder_key: keys.identity_key(),
        }
    }

    /// The same, with the archive opened directly and cutting parts at `limits`.
    pub(crate) fn with_part_limits(limits: PartLimits) -> Self {
        let mut fixture = Self::new();
        let keys = identity::load(&fixture.state_dir).unwrap();
        fixture.archive = Arc::new(LocalArchive::new(
            Arc::new(LocalStore::open(&fixture.archive_dir).unwrap()),
            OrgRecipient::parse(&fixture.org.recipient()).unwrap(),
            ChainSigner::from_identity_secret(&keys.identity_secret()),
            keys.device().as_str().to_owned(),
            limits,
        ));
        fixture
    }

    pub(crate) fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        ed25519_dalek::VerifyingKey::from_bytes(&self.recorder_key).unwrap()
    }

    /// Records a session of `media` that started `ago` before now and is kept `retention`.
    pub(crate) fn record(
        &self,
        media: &Media,
        ago: Duration,
        retention: Duration,
    ) -> SessionSummary {
        let started_at = SystemTime::now() - ago;
        let mut sink = self
            .archive
            .begin(SessionStart {
                room: ROOM.to_owned(),
                started_at,
                retention,
                policy_json: r#"{"policy":{"room":"board-meeting-q4-confidential","recorders":[]},"sig":"x"}"#
                    .to_owned(),
            })
            .unwrap();
        for (device, identity, key) in [
            ("alice-laptop", ALICE, [1; 32]),
            ("bob-phone", BOB, [2; 32]),
        ] {
            sink.participant_joined(Participant {
                device: device.to_owned(),
                identity: identity.to_owned(),
                role: "caller".to_owned(),
                identity_key: key,
                at: started_at,
            })
            .unwrap();
        }
        sink.security_code("12345 67890 13579 24680", started_at)
            .unwrap();
        sink.track(TrackMeta {
            track_id: "alice-mic-track".to_owned(),
            device: "alice-laptop".to_owned(),
            kind: MediaKind::Audio,
            codec: Codec::Opus,
            source: "microphone".to_owned(),
            width: 0,
            height: 0,
        })
        .unwrap();
        sink.track(TrackMeta {
            track_id: "bob-camera-track".to_owned(),
            device: "bob-phone".to_owned(),
            kind: MediaKind::Video,
            codec: Codec::Vp8,
            source: "camera".to_owned(),
            width: 0,
            height: 0,
        })
        .unwrap();
        // Interleaved by time, as the live side hands them over.
        let mut audio = media.opus.iter().enumerate().peekable();
        let mut video = media.vp8.iter().enumerate().peekable();
        loop {
            let next_audio = audio.peek().map(|(i, _)| OPUS_FRAME * *i as u32);
            let next_video = video.peek().map(|(i, _)| media.video_pts(*i));
            match (next_audio, next_video) {
                (Some(a), v) if v.is_none_or(|v| a <= v) => {
                    let (_, packet) = audio.next().unwrap();
                    sink.frame(Frame {
                        track_id: "alice-mic-track",
                        pts: a,
                        keyframe: true,
                        data: packet,
                    })
                    .unwrap();
                }
                (_, Some(v)) => {
                    let (_, frame) = video.next().unwrap();
                    sink.frame(Frame {
                        track_id: "bob-camera-track",
                        pts: v,
                        keyframe: frame[0] & 1 == 0,
                        data: frame,
                    })
                    .unwrap();
                }
                (None, None) => break,
                (Some(_), None) => unreachable!("matched by the first arm"),
            }
        }
        sink.participant_left("bob-phone", started_at + Duration::from_secs(2))
            .unwrap();
        sink.security_code(
            "99999 88888 77777 66666",
            started_at + Duration::from_secs(2),
        )
        .unwrap();
        sink.finish(started_at + Duration::from_secs(2)).unwrap()
    }

    pub(crate) fn session_dir(&self, session: &str) -> PathBuf {
        self.archive_dir.join("sessions").join(session)
    }
}

/// Real media for a session.
pub(crate) struct Media {
    pub(crate) opus: Vec<Vec<u8>>,
    pub(crate) vp8: Vec<Vec<u8>>,
    pub(crate) fps: u64,
}

impl Media {
    /// `seconds` of a 440 Hz Opus tone and of a 30 fps VP8 test picture.
    pub(crate) fn new(seconds: u32) -> Self {
        Self {
            opus: opus_tone(440.0, seconds),
            vp8: vp8_clip(seconds),
            fps: 30,
        }
    }

    /// The time of video frame `i` (exact at whole seconds).
    pub(crate) fn video_pts(&self, i: usize) -> Duration {
        Duration::from_nanos(i as u64 * 1_000_000_000 / self.fps)
    }
}

/// A sine tone encoded with libopus, 20 ms packets, mono 48 kHz.
pub(crate) fn opus_tone(frequency: f64, seconds: u32) -> Vec<Vec<u8>> {
    let mut encoder =
        opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Audio).unwrap();
    encoder.set_bitrate(opus::Bitrate::Bits(64_000)).unwrap();
    let per_frame = (SAMPLE_RATE / 50) as usize;
    let frames = seconds as usize * 50;
    let mut out = Vec::with_capacity(frames);
    let mut buf = vec![0u8; 4000];
    for f in 0..frames {
        let pcm: Vec<i16> = (0..per_frame)
            .map(|i| {
                let t = (f * per_frame + i) as f64 / f64::from(SAMPLE_RATE);
                ((2.0 * std::f64::consts::PI * frequency * t).sin() * 12_000.0) as i16
            })
            .collect();
        let n = encoder.encode(&pcm, &mut buf).unwrap();
        out.push(buf[..n].to_vec());
    }
    out
}

/// A VP8 clip from ffmpeg (`testsrc2`, 320x240, 30 fps, a keyframe each second) as the frames
/// of its IVF file.
pub(crate) fn vp8_clip(seconds: u32) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let ivf = dir.path().join("clip.ivf");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x240:rate=30:duration={seconds}"))
        .args(["-c:v", "libvpx", "-b:v", "300k", "-g", "30", "-f", "ivf"])
        .arg(&ivf)
        .status()
        .expect("ffmpeg runs (scripts/install-deps installs it)");
    assert!(status.success(), "ffmpeg made the VP8 clip");
    parse_ivf(&std::fs::read(&ivf).unwrap())
}

/// The frames of an IVF file: a 32-byte header, then per frame a 12-byte header (4-byte
/// little-endian size, 8-byte timestamp) and the frame.
pub(crate) fn parse_ivf(data: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&data[..4], b"DKIF");
    let mut frames = Vec::new();
    let mut at = 32;
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        at += 12;
        frames.push(data[at..at + size].to_vec());
        at += size;
    }
    frames
}

/// Every stored blob of a session (name, bytes).
pub(crate) fn blobs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The recorder binary.
pub(crate) fn recorder() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recorder"))
}
