//! The recorder end to end with every part real and separate: `signaling dev` as a process with
//! a policy file made by `signaling policy keygen|sign`, the recorder as its binary (`enroll`,
//! `org-keygen`, `serve` trusting the admin key keygen printed, SIGTERM, `verify`, `export`), five native load-test callers, and
//! `ffprobe`/`ffmpeg` on what the export wrote.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use call_client::access_token::{Claims, GrantClaims};
use call_client::protocol::Role;
use loadtest::participant::{LiveCounters, ParticipantSpec, Role as CallerRole, run_participant};
use loadtest::probe::Probe;
use loadtest::receiver_stats::StreamKey;
use recorder::archive::manifest::Manifest;
use tokio::sync::watch;

use crate::common::{parse_ivf, recorder};

/// `signaling dev`'s API key and secret.
pub(crate) const DEV_API_KEY: &str = "devkey";
pub(crate) const DEV_API_SECRET: &str = "devsecret";
const ROOM: &str = "quarterly-review";
const CALLERS: u16 = 5;
/// The load-test probe streams: audio, then the camera layers q, h, f (the recorder asks for
/// the high one, `serve`'s default).
const AUDIO_PROBE_STREAM: u8 = 0;
const HIGH_PROBE_STREAM: u8 = 3;

/// How long the callers publish: `RECORDER_E2E_MEETING_S` seconds, 20 by default.
fn meeting() -> Duration {
    let secs = std::env::var("RECORDER_E2E_MEETING_S")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .expect("RECORDER_E2E_MEETING_S is whole seconds")
        })
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// The `signaling` binary next to this crate's (the test command builds both: scripts/test's
/// "service binaries" step, or `cargo build -p signaling`).
pub(crate) fn signaling() -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_recorder")).with_file_name("signaling");
    assert!(
        bin.exists(),
        "{} not built: cargo build -p signaling",
        bin.display()
    );
    Command::new(bin)
}

pub(crate) fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A child process whose stdout and stderr are collected (and echoed on failure).
pub(crate) struct Process {
    child: Child,
    log: Arc<Mutex<String>>,
    name: &'static str,
}

impl Process {
    pub(crate) fn spawn(name: &'static str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        for pipe in [
            Box::new(out) as Box<dyn std::io::Read + Send>,
            Box::new(err) as Box<dyn std::io::Read + Send>,
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut l = log.lock().expect("not poisoned");
                    l.push_str(&strip_ansi(&line));
                    l.push('\n');
                }
            });
        }
        Process { child, log, name }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().expect("not poisoned").clone()
    }

    /// Waits for a line matching `find` (which returns what it extracts).
    pub(crate) async fn wait_for<T>(
        &self,
        limit: Duration,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(t) = self.log().lines().find_map(&mut find) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{}: gave up after {limit:?}; its log:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {}", self.name);
    }

    /// Waits for the exit (SIGKILL after `limit`); returns whether it exited by itself, 0.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `line` without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A caller's token for `room` signed with `signaling dev`'s API key.
pub(crate) fn caller_token(room: &str, identity: &str) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    Claims::new(
        DEV_API_KEY,
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
    .sign(DEV_API_SECRET.as_bytes())
}

/// `ffprobe -count_packets` of a file's one stream: (codec, packets, duration s).
fn ffprobe_packets(file: &Path) -> (String, u64, f64) {
    let out = run_ok(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_packets", "-show_entries"])
            .arg("stream=codec_name,nb_read_packets:format=duration")
            .args(["-of", "json"])
            .arg(file),
        "ffprobe (scripts/install-deps installs ffmpeg)",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let streams = v["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "{}: one stream: {v}", file.display());
    let packets = streams[0]["nb_read_packets"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("nb_read_packets");
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    (
        streams[0]["codec_name"].as_str().unwrap_or("").to_owned(),
        packets,
        duration,
    )
}

/// The probes of every video frame of a WebM file, in order (its packets copied into IVF by
/// ffmpeg).
fn video_probes(file: &Path, dir: &Path) -> Vec<Probe> {
    let ivf = dir.join(format!(
        "{}.ivf",
        file.file_stem().expect("name").to_string_lossy()
    ));
    run_ok(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(file)
            .args(["-c:v", "copy", "-f", "ivf"])
            .arg(&ivf),
        "ffmpeg copies the VP8 frames",
    );
    parse_ivf(&std::fs::read(&ivf).expect("ivf written"))
        .iter()
        .map(|f| {
            Probe::split_trailer(f)
                .expect("a load-test probe in every frame")
                .1
        })
        .collect()
}

/// The probes of every audio frame of a WebM file, in order (its packets as `ffprobe
/// -show_data` dumps them).
fn audio_probes(file: &Path) -> Vec<Probe> {
    let out = run_ok(
        Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "a",
                "-show_packets",
                "-show_data",
            ])
            .args(["-of", "json"])
            .arg(file),
        "ffprobe dumps the Opus packets",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| {
            // Lines `offset: hhhh hhhh …  ascii`: the hex groups between the colon and the
            // two spaces before the ASCII column.
            let mut bytes = Vec::new();
            for line in p["data"].as_str().expect("data").lines() {
                let Some((_, rest)) = line.split_once(": ") else {
                    continue;
                };
                let hex = rest.split("  ").next().unwrap_or("");
                for group in hex.split_whitespace() {
                    for i in (0..group.len()).step_by(2) {
                        bytes.push(u8::from_str_radix(&group[i..i + 2], 16).expect("hex"));
                    }
                }
            }
            Probe::split_trailer(&bytes)
                .expect("a load-test probe in every audio frame")
                .1
        })
        .collect()
}

/// The sequence numbers in `0..sent` that `seqs` (sorted, deduplicated) lacks, the first ten.
fn missing(seqs: &[u32], sent: u64) -> Vec<u32> {
    (0..u32::try_from(sent).expect("fits"))
        .filter(|s| seqs.binary_search(s).is_err())
        .take(10)
        .collect()
}

/// The kernel's UDP receive errors so far (`/proc/net/snmp`: `InErrors`, of which
/// `RcvbufErrors` are datagrams dropped because a socket's buffer was full), 0 where unreadable.
fn udp_receive_errors() -> (u64, u64) {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return (0, 0);
    };
    let field = |name: &str| {
        let i = names.split_whitespace().position(|n| n == name)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    (
        field("InErrors").unwrap_or(0),
        field("RcvbufErrors").unwrap_or(0),
    )
}

/// The value of a metric line `name` (with its labels) on a `/metrics` page, 0 when absent.
pub(crate) fn metric_sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `signaling policy sign`: the policy of `room` naming the recorder whose bundle `enroll`
/// printed into `bundle`, signed with `admin_key`, kept 30 days; written to `out`.
pub(crate) fn sign_policy(admin_key: &Path, room: &str, bundle: &Path, out: &Path) {
    let policy = run_ok(
        signaling()
            .args(["policy", "sign", "--admin-key"])
            .arg(admin_key)
            .args([
                "--room",
                room,
                "--retention-days",
                "30",
                "--recorder-bundle",
            ])
            .arg(bundle),
        "signaling policy sign",
    );
    std::fs::write(out, &policy.stdout).expect("policy saved");
}

/// `signaling dev` (signaling and its SFU in one process) with the recording policy in
/// `policy`: a room a join creates is recorded. Returns the process, its HTTP address
/// (`127.0.0.1:port`) and its WebSocket URL.
pub(crate) async fn start_recording_service(policy: &Path) -> (Process, String, String) {
    let service = Process::spawn(
        "signaling dev",
        signaling()
            .args(["dev", "--listen", "127.0.0.1:0", "--room", "lobby"])
            .arg("--recording-policy")
            .arg(policy)
            .env("RUST_LOG", "warn"),
    );
    let http = service
        .wait_for(Duration::from_secs(30), |l| {
            let at = l.find("http://127.0.0.1:")?;
            let rest = &l[at + "http://".len()..];
            Some(rest[..rest.find('/')?].to_owned())
        })
        .await;
    let ws_url = format!("ws://{http}/v1/rtc");
    (service, http, ws_url)
}

/// Where `recorder serve` keeps its identity and archive, and whom it trusts.
pub(crate) struct ServeSetup<'a> {
    pub(crate) ws_url: &'a str,
    pub(crate) state: &'a Path,
    pub(crate) archive: &'a Path,
    pub(crate) org_public: &'a str,
    pub(crate) trusted_admin_keys: &'a str,
}

/// `recorder serve` following the service's recorder event stream; returns the process and
/// the address its `/metrics` bound.
pub(crate) async fn start_recorder_serve(setup: &ServeSetup<'_>) -> (Process, String) {
    let rec = Process::spawn(
        "recorder serve",
        recorder()
            .arg("serve")
            .env("RECORDER_SIGNALING", setup.ws_url)
            .env("RECORDER_API_KEY", DEV_API_KEY)
            .env("RECORDER_API_SECRET", DEV_API_SECRET)
            .env("RECORDER_STATE_DIR", setup.state)
            .env("RECORDER_ARCHIVE_DIR", setup.archive)
            .env("RECORDER_ARCHIVE_RECIPIENT", setup.org_public)
            .env("RECORDER_TRUSTED_ADMIN_KEYS", setup.trusted_admin_keys)
            .env("RECORDER_METRICS_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1"),
    );
    let metrics_addr = rec
        .wait_for(Duration::from_secs(30), |l| {
            if !l.contains("metrics on /metrics") {
                return None;
            }
            let at = l.find("bound=")? + "bound=".len();
            Some(l[at..].split_whitespace().next()?.to_owned())
        })
        .await;
    (rec, metrics_addr)
}

pub(crate) async fn scrape(addr: &str) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("the recorder's metrics answer")
        .text()
        .await
        .expect("metrics body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_native_meeting_is_recorded_whole_and_exports_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let (state, archive, out_dir) = (path("state"), path("archive"), path("export"));

    // Custody: the organization's archive key; the admin's signing key.
    let org_public = String::from_utf8(
        run_ok(
            recorder()
                .args(["org-keygen", "--out"])
                .arg(path("org.key")),
            "recorder org-keygen",
        )
        .stdout,
    )
    .expect("utf-8");
    let org_public = org_public.trim();
    assert!(org_public.starts_with("age1"), "{org_public}");
    let admin_public = String::from_utf8(
        run_ok(
            signaling()
                .args(["policy", "keygen", "--out"])
                .arg(path("admin.key")),
            "signaling policy keygen",
        )
        .stdout,
    )
    .expect("utf-8");
    // The recorder host: its identity; the admin signs a policy naming it from what it printed.
    let enrolled = run_ok(
        recorder()
            .args(["enroll", "--device", "rec-e2e", "--state-dir"])
            .arg(&state),
        "recorder enroll",
    );
    std::fs::write(path("recorder-bundle.json"), &enrolled.stdout).expect("bundle saved");
    sign_policy(
        &path("admin.key"),
        ROOM,
        &path("recorder-bundle.json"),
        &path("policy.json"),
    );

    // The service: signaling and its SFU in one process, the room created recorded on the
    // first join; the recorder: `serve`, following the service's recorder event stream.
    let (service, _, ws_url) = start_recording_service(&path("policy.json")).await;
    let (mut rec, metrics_addr) = start_recorder_serve(&ServeSetup {
        ws_url: &ws_url,
        state: &state,
        archive: &archive,
        org_public,
        trusted_admin_keys: admin_public.trim(),
    })
    .await;

    // Five native callers: real Opus, VP8-shaped three-layer simulcast, SFrame, keys through
    // signaling (wrapped to the recorder the signed policy names).
    let counters = Arc::new(LiveCounters::default());
    let (stop_callers, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|index| {
            let spec = ParticipantSpec {
                index,
                role: CallerRole::Caller,
                room: ROOM.into(),
                ws_url: ws_url.clone(),
                token: caller_token(ROOM, &format!("caller-{index}")),
                epoch,
                seed: 11,
                media_via: None,
                miss_keys_until_request: false,
            };
            tokio::spawn(run_participant(spec, counters.clone(), stop_rx.clone()))
        })
        .collect();
    let meeting = meeting();
    let udp_errors_before = udp_receive_errors();
    tokio::time::sleep(meeting).await;
    // The recorder's counts while the meeting is still on.
    let page = scrape(&metrics_addr).await;
    stop_callers.send(true).expect("callers run");
    for c in callers {
        let outcome = c.await.expect("caller task");
        assert!(outcome.joined, "caller failed: {:?}", outcome.failure);
    }
    let sent = counters.sent_streams.snapshot();
    assert!(
        metric_sum(&page, "recorder_active_sessions") >= 1.0,
        "recording during the meeting:\n{page}"
    );
    assert!(metric_sum(&page, "recorder_frames_decrypted_total") > 0.0);
    let page = scrape(&metrics_addr).await;
    assert_eq!(
        metric_sum(&page, "recorder_decrypt_failures_total"),
        0.0,
        "no decrypt failure:\n{page}"
    );
    // Frames lost on the way (a VP8 frame with a packet missing: `incomplete`) or behind a slow
    // archive (`backlog`) are counted by the ratios below; none may be lost to the archive or
    // to a track the recorder could not attribute.
    for reason in ["archive", "unattributed"] {
        let line = format!("recorder_frames_dropped_total{{reason=\"{reason}\"}}");
        assert_eq!(metric_sum(&page, &line), 0.0, "{line}:\n{page}");
    }
    let udp_errors = {
        let after = udp_receive_errors();
        (after.0 - udp_errors_before.0, after.1 - udp_errors_before.1)
    };
    let dropped: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("recorder_frames_dropped_total") && !l.ends_with(" 0"))
        .collect();

    // SIGTERM: the recorder finishes its session and exits 0.
    rec.signal("-TERM");
    assert!(
        rec.wait_exit(Duration::from_secs(30)).await,
        "recorder serve exits 0 on SIGTERM; its log:\n{}",
        rec.log()
    );
    let rec_log = rec.log();
    drop(service);

    // The archive verifies with the recorder's public key only.
    let verified = run_ok(
        recorder()
            .args(["verify", "--archive-dir"])
            .arg(&archive)
            .arg("--state-dir")
            .arg(&state),
        "recorder verify",
    );
    let verify_out = String::from_utf8_lossy(&verified.stdout);
    assert!(!verify_out.contains("PROBLEM"), "{verify_out}");
    let sessions: Vec<String> = std::fs::read_dir(archive.join("sessions"))
        .expect("sessions folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(sessions.len(), 1, "one session: {sessions:?}\n{rec_log}");

    // Export on the custody side, with the organization's key.
    run_ok(
        recorder()
            .arg("export")
            .arg("--identity")
            .arg(path("org.key"))
            .arg("--archive-dir")
            .arg(&archive)
            .arg("--state-dir")
            .arg(&state)
            .arg(&sessions[0])
            .arg(&out_dir),
        "recorder export",
    );
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(out_dir.join("manifest.json")).expect("manifest"))
            .expect("manifest parses");

    // The manifest: the room, the five callers with identity keys, a security code.
    assert_eq!(manifest.room, ROOM);
    assert_eq!(manifest.recorder.device, "rec-e2e");
    let mut callers: Vec<_> = manifest
        .participants
        .iter()
        .filter(|p| p.role == "caller")
        .map(|p| p.device.clone())
        .collect();
    callers.sort();
    callers.dedup();
    let expected: Vec<_> = (0..CALLERS).map(|i| format!("lt-caller-{i}")).collect();
    assert_eq!(callers, expected);
    for p in &manifest.participants {
        let key = e2ee_frames::wire::b64_decode(&p.identity_key).expect("base64url key");
        assert_eq!(key.len(), 32, "{}'s identity key", p.device);
    }
    assert!(!manifest.security_codes.is_empty());
    assert!(manifest.security_codes.iter().all(|c| {
        let digits: String = c.code.chars().filter(|c| !c.is_whitespace()).collect();
        digits.len() == 25 && digits.bytes().all(|b| b.is_ascii_digit())
    }));
    assert!(manifest.policy_json.contains("admin_key"));

    // Every caller's two tracks: packets in the exported files vs frames sent.
    let mut lines = Vec::new();
    let mut missing_frames = 0u64;
    for index in 0..CALLERS {
        let device = format!("lt-caller-{index}");
        for (kind, codec, probe_stream) in [
            ("audio", "opus", AUDIO_PROBE_STREAM),
            ("video", "vp8", HIGH_PROBE_STREAM),
        ] {
            let track = manifest
                .tracks
                .iter()
                .find(|t| t.device == device && t.kind == kind)
                .unwrap_or_else(|| panic!("{device} {kind} recorded: {:?}", manifest.tracks));
            let mut packets = 0;
            let mut duration = 0.0;
            for file in &track.files {
                let webm = out_dir.join(file.name.trim_end_matches(".age"));
                let (found, n, d) = ffprobe_packets(&webm);
                assert_eq!(found, codec, "{}", webm.display());
                assert_eq!(
                    n,
                    file.frames,
                    "{}: packets = the manifest's frames",
                    webm.display()
                );
                packets += n;
                duration += d;
            }
            let sent = u64::from(
                sent[&StreamKey {
                    sender: index,
                    stream: probe_stream,
                }],
            );
            let (counted, note) = if kind == "video" {
                // Strict recording: the caller held its camera until the recorder received it
                // and then started with a keyframe, so every capture instant sent, from #0, is
                // in the archive. Each counts once, whichever layer carried it.
                let mut probes = Vec::new();
                for file in &track.files {
                    let webm = out_dir.join(file.name.trim_end_matches(".age"));
                    probes.extend(video_probes(&webm, dir.path()));
                }
                assert!(
                    probes.iter().all(|p| p.sender == index),
                    "{device}'s own frames on its track"
                );
                // The archive starts at the first frame sent, unless the host dropped
                // datagrams (then a lost first keyframe is among the missing frames counted
                // against those drops below).
                let first = probes[0].seq;
                assert!(
                    first == 0 || udp_errors.1 > 0,
                    "{device}: the archive starts at the first frame sent, not #{first}"
                );
                let mut seqs: Vec<u32> = probes.iter().map(|p| p.seq).collect();
                seqs.sort_unstable();
                seqs.dedup();
                let repeated = probes.len() - seqs.len();
                // A capture instant twice from one layer would be a frame written twice; from
                // two layers, the SFU's switch between them.
                let mut per_layer: Vec<(u32, u8)> =
                    probes.iter().map(|p| (p.seq, p.stream)).collect();
                per_layer.sort_unstable();
                per_layer.dedup();
                assert_eq!(
                    per_layer.len(),
                    probes.len(),
                    "{device}: no frame archived twice"
                );
                (
                    seqs.len() as u64,
                    format!(
                        " capture instants sent from #0; {} archived, {repeated} of them from two layers (the SFU's layer switches); missing {:?}",
                        seqs.len(),
                        missing(&seqs, sent)
                    ),
                )
            } else {
                let mut seqs = Vec::new();
                for file in &track.files {
                    let webm = out_dir.join(file.name.trim_end_matches(".age"));
                    seqs.extend(audio_probes(&webm).iter().map(|p| p.seq));
                }
                seqs.sort_unstable();
                seqs.dedup();
                assert!(
                    seqs.first() == Some(&0) || udp_errors.1 > 0,
                    "{device}: the archive starts at the first frame sent, not {:?}",
                    seqs.first()
                );
                (
                    seqs.len() as u64,
                    format!(" frames sent; missing {:?}", missing(&seqs, sent)),
                )
            };
            let share = counted as f64 * 100.0 / sent as f64;
            lines.push(format!(
                "{device} {kind}: sent {sent}, archived {packets} packets ({share:.1} % of the {sent}{note}), {duration:.2} s, {} before the first keyframe",
                track.frames_before_keyframe
            ));
            assert!(
                counted <= sent,
                "{device} {kind}: nothing archived that was not sent"
            );
            missing_frames += sent - counted;
        }
    }
    // Every frame sent is in the archive. The only loss allowed is the host's own: datagrams
    // the kernel dropped because a socket's receive buffer was full (a loaded machine; audio
    // has no retransmission), and never more frames than it dropped.
    assert!(
        missing_frames == 0 || missing_frames <= udp_errors.1,
        "every frame sent is in the archive: {missing_frames} missing, the kernel dropped \
         {} datagrams for full buffers\n{}\nrecorder drops: {dropped:?}",
        udp_errors.1,
        lines.join("\n")
    );
    // What one caller's export looks like to ffprobe (for the record of the run).
    for track in manifest.tracks.iter().filter(|t| t.device == "lt-caller-0") {
        for file in &track.files {
            let probe = run_ok(
                Command::new("ffprobe")
                    .args(["-v", "error", "-count_packets", "-show_entries"])
                    .arg("stream=codec_name,width,height,nb_read_packets:format=duration,size")
                    .args(["-of", "compact"])
                    .arg(out_dir.join(file.name.trim_end_matches(".age"))),
                "ffprobe",
            );
            println!(
                "{}: {}",
                file.name,
                String::from_utf8_lossy(&probe.stdout).trim()
            );
        }
    }
    println!(
        "meeting {meeting:?}, session {}, frames dropped on the way: {dropped:?}, UDP receive \
         errors on this host (in, buffer full): {udp_errors:?}, frames sent but not archived: \
         {missing_frames}\n{}",
        sessions[0],
        lines.join("\n")
    );
}
