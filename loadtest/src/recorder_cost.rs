//! The compliance recorder in a meeting run (`loadtest meeting --record`): the real `recorder`
//! binary, enrolled in the run's directory, named in a recording policy the run signs with a
//! fresh admin Ed25519 key, records the room (`recorder record`, trusting that key's public half
//! only) while the callers publish; its cost is measured over the same measured phase as the
//! SFU's.
//!
//! CPU seconds come from `/proc` ([`CpuMeter`], every thread of the recorder process); frames
//! recorded are the growth of its `recorder_frames_decrypted_total` between two scrapes of its
//! `/metrics`, as packets forwarded are for the SFU. The organization key is made in the run's
//! directory too (a throwaway run; an operator keeps it on a custody machine).

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use call_client::protocol::{RecorderDevice, RecordingDocument, RecordingPolicy};
use e2ee_frames::DocumentSigner;

use crate::metrics_scrape::{ScrapeError, scrape};
use crate::process_usage::{CpuMeter, ProcessUsageError};
use crate::service_process::{ServiceError, ServiceProcess, ServiceSpec, sibling_binary};

/// The counter of frames the recorder decrypted (docs/metrics.md, "Recorder").
pub const FRAMES_DECRYPTED_METRIC: &str = "recorder_frames_decrypted_total";
/// The counter of frames the recorder received but could not decrypt.
pub const DECRYPT_FAILURES_METRIC: &str = "recorder_decrypt_failures_total";
/// The counter of frames that did not reach the archive.
pub const FRAMES_DROPPED_METRIC: &str = "recorder_frames_dropped_total";

/// Timeout of one `/metrics` scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the recorder may take to serve its metrics after starting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the recorder could not be set up or measured.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RecorderCostError {
    /// `recorder enroll` or `recorder org-keygen` failed or printed something unexpected.
    #[error("recorder {command}: {reason}")]
    Setup {
        /// The subcommand.
        command: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The recorder process did not start, or a file or port could not be set up.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A directory or port could not be set up.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// Reading the recorder process from `/proc` failed.
    #[error("recorder process: {0}")]
    Process(#[from] ProcessUsageError),
    /// Scraping the recorder's `/metrics` failed.
    #[error("recorder metrics: {0}")]
    Scrape(#[from] ScrapeError),
    /// The recorder process has already been reaped.
    #[error("the recorder process is gone")]
    Gone,
    /// The page has no `recorder_frames_decrypted_total`.
    #[error("recorder metrics have no {FRAMES_DECRYPTED_METRIC}")]
    MissingCounter,
}

/// A recorder enrolled for one run: its state and archive directories, the organization's
/// public key and the signed recording policy naming it.
#[derive(Debug)]
pub struct RecorderSetup {
    program: PathBuf,
    state_dir: PathBuf,
    archive_dir: PathBuf,
    recipient: String,
    policy: serde_json::Value,
    /// The public key of the admin key that signed `policy` (base64url): the one key the
    /// recorder is told to trust.
    admin_key: String,
}

fn run_recorder(
    program: &Path,
    command: &'static str,
    args: &[&OsString],
) -> Result<String, RecorderCostError> {
    let fail = |reason: String| RecorderCostError::Setup { command, reason };
    let out = Command::new(program)
        .arg(command)
        .args(args)
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    String::from_utf8(out.stdout).map_err(|e| fail(e.to_string()))
}

/// A recording policy for `room` naming `recorder`, signed by `admin`
/// ([`RecordingPolicy::sign`], docs/protocol.md §3), kept for one day.
pub fn signed_policy(
    room: &str,
    recorder: RecorderDevice,
    admin: &DocumentSigner,
    issued_at: u64,
) -> serde_json::Value {
    let document = RecordingDocument {
        v: 1,
        room: room.into(),
        recorders: vec![recorder],
        issued_at,
        retention_days: 1,
    };
    serde_json::to_value(RecordingPolicy::sign(&document, admin)).expect("a policy serializes")
}

impl RecorderSetup {
    /// Enrolls a recorder in `dir/recorder-state`, makes an organization key in `dir` and signs
    /// a policy for `room` naming the recorder (a fresh admin key, never written down).
    pub fn prepare(dir: &Path, room: &str, issued_at: u64) -> Result<Self, RecorderCostError> {
        let program = sibling_binary("recorder")?;
        let state_dir = dir.join("recorder-state");
        let archive_dir = dir.join("recorder-archive");
        let org_key = dir.join("org-archive.key");
        let enrolled = run_recorder(
            &program,
            "enroll",
            &[
                &OsString::from("--state-dir"),
                &state_dir.clone().into_os_string(),
            ],
        )?;
        // `recorder enroll` prints the bundle, then the policy entry on its second line.
        let entry: RecorderDevice = enrolled
            .lines()
            .nth(1)
            .and_then(|line| serde_json::from_str(line).ok())
            .ok_or_else(|| RecorderCostError::Setup {
                command: "enroll",
                reason: "no policy entry on its second line".into(),
            })?;
        let recipient = run_recorder(
            &program,
            "org-keygen",
            &[&OsString::from("--out"), &org_key.into_os_string()],
        )?
        .trim()
        .to_owned();
        if !recipient.starts_with("age1") {
            return Err(RecorderCostError::Setup {
                command: "org-keygen",
                reason: "it printed no age1… recipient".into(),
            });
        }
        let admin = DocumentSigner::generate(&mut rand::rng());
        let policy = signed_policy(room, entry, &admin, issued_at);
        Ok(RecorderSetup {
            program,
            state_dir,
            archive_dir,
            recipient,
            policy,
            admin_key: e2ee_frames::wire::b64_encode(&admin.public_key()),
        })
    }

    /// The signed policy, for the room's `recording` field.
    pub fn policy(&self) -> &serde_json::Value {
        &self.policy
    }

    /// Where the archive is written.
    pub fn archive_dir(&self) -> &Path {
        &self.archive_dir
    }

    /// Starts `recorder record` for `room` at the signaling WebSocket URL `ws_url`, with its
    /// metrics on a free loopback port; returns once they answer. The API secret goes through
    /// the environment.
    pub fn start(
        &self,
        ws_url: &str,
        room: &str,
        api_key: &(String, String),
        log: Option<PathBuf>,
    ) -> Result<RecorderProcess, RecorderCostError> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| RecorderCostError::Io("free TCP port", e))?;
        let os = |s: &str| OsString::from(s);
        let process = ServiceProcess::spawn(&ServiceSpec {
            name: "recorder".into(),
            program: self.program.clone(),
            args: vec![
                os("record"),
                os("--room"),
                os(room),
                os("--signaling"),
                os(ws_url),
                os("--state-dir"),
                self.state_dir.clone().into_os_string(),
                os("--archive-dir"),
                self.archive_dir.clone().into_os_string(),
                os("--archive-recipient"),
                os(&self.recipient),
                os("--trusted-admin-key"),
                os(&self.admin_key),
                os("--metrics-listen"),
                os(&format!("127.0.0.1:{port}")),
            ],
            env: vec![
                (os("RECORDER_API_KEY"), os(&api_key.0)),
                (os("RECORDER_API_SECRET"), os(&api_key.1)),
            ],
            health_url: format!("http://127.0.0.1:{port}/healthz"),
            startup_timeout: STARTUP_TIMEOUT,
            log,
        })?;
        Ok(RecorderProcess {
            process,
            metrics_url: format!("http://127.0.0.1:{port}/metrics"),
        })
    }
}

/// A running `recorder record`; dropping it kills the process.
#[derive(Debug)]
pub struct RecorderProcess {
    process: ServiceProcess,
    metrics_url: String,
}

impl RecorderProcess {
    /// Where the recorder is measured from (a value a blocking task can own).
    pub fn probe(&self) -> Result<RecorderProbe, RecorderCostError> {
        Ok(RecorderProbe {
            pid: self.process.pid().ok_or(RecorderCostError::Gone)?,
            metrics_url: self.metrics_url.clone(),
        })
    }

    /// Stops the recorder with SIGTERM (it finishes its session: manifest written).
    pub fn stop(self, grace: Duration) -> Result<(), ServiceError> {
        self.process.stop(grace).map(|_| ())
    }
}

/// The recorder's process id and `/metrics` URL.
#[derive(Debug, Clone)]
pub struct RecorderProbe {
    pid: u32,
    metrics_url: String,
}

/// The recorder's counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RecorderCounters {
    decrypted: f64,
    failed: f64,
    dropped: f64,
}

impl RecorderCounters {
    fn scrape(url: &str) -> Result<Self, RecorderCostError> {
        let page = scrape(url, SCRAPE_TIMEOUT)?;
        Ok(RecorderCounters {
            decrypted: page
                .sum(FRAMES_DECRYPTED_METRIC, &[])
                .ok_or(RecorderCostError::MissingCounter)?,
            failed: page.sum(DECRYPT_FAILURES_METRIC, &[]).unwrap_or(0.0),
            dropped: page.sum(FRAMES_DROPPED_METRIC, &[]).unwrap_or(0.0),
        })
    }
}

/// Measures the recorder between [`RecorderCostMeter::start`] and [`RecorderCostMeter::finish`].
#[derive(Debug)]
pub struct RecorderCostMeter {
    cpu: CpuMeter,
    metrics_url: String,
    at_start: RecorderCounters,
}

impl RecorderCostMeter {
    /// Notes the recorder's CPU time and counters now (blocking: it scrapes `/metrics`).
    pub fn start(probe: RecorderProbe) -> Result<Self, RecorderCostError> {
        Ok(RecorderCostMeter {
            cpu: CpuMeter::start(probe.pid)?,
            at_start: RecorderCounters::scrape(&probe.metrics_url)?,
            metrics_url: probe.metrics_url,
        })
    }

    /// The recorder's cost since the meter started; `sfu_cpu_seconds` is the SFU's over the same
    /// phase (for the ratio), `callers` the participants recorded. Call it before stopping.
    pub fn finish(
        &self,
        sfu_cpu_seconds: Option<f64>,
        callers: u64,
    ) -> Result<RecorderCost, RecorderCostError> {
        let (cpu_seconds, usage) = self.cpu.elapsed()?;
        let now = RecorderCounters::scrape(&self.metrics_url)?;
        let grown = |now: f64, then: f64| (now - then).max(0.0).round() as u64;
        let frames = grown(now.decrypted, self.at_start.decrypted);
        Ok(RecorderCost {
            cpu_seconds,
            peak_rss_bytes: usage.peak_rss_bytes,
            frames_recorded: frames,
            decrypt_failures: grown(now.failed, self.at_start.failed),
            frames_dropped: grown(now.dropped, self.at_start.dropped),
            cpu_us_per_frame: (frames > 0).then(|| cpu_seconds * 1e6 / frames as f64),
            cpu_seconds_per_participant: (callers > 0).then(|| cpu_seconds / callers as f64),
            sfu_cpu_seconds,
            recorder_to_sfu_cpu: sfu_cpu_seconds
                .filter(|&s| s > 1e-6)
                .map(|s| cpu_seconds / s),
        })
    }
}

/// What the recorder spent over the measured phase, beside the SFU's CPU in the same phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RecorderCost {
    /// CPU seconds (user + system, every thread) of the recorder process.
    pub cpu_seconds: f64,
    /// The recorder process' peak resident memory (VmHWM) in bytes.
    pub peak_rss_bytes: u64,
    /// Frames the recorder decrypted and handed to its archive (the growth of
    /// `recorder_frames_decrypted_total`).
    pub frames_recorded: u64,
    /// Frames it received but could not decrypt.
    pub decrypt_failures: u64,
    /// Frames that did not reach the archive (backlog, archive error, incomplete, ...).
    pub frames_dropped: u64,
    /// `cpu_seconds` per frame recorded, in microseconds.
    pub cpu_us_per_frame: Option<f64>,
    /// `cpu_seconds` per caller recorded.
    pub cpu_seconds_per_participant: Option<f64>,
    /// The SFU's CPU seconds over the same phase (the report's `sfu_cpu_seconds`).
    pub sfu_cpu_seconds: Option<f64>,
    /// `cpu_seconds / sfu_cpu_seconds`: below 1 when recording the room costs less than
    /// forwarding it.
    pub recorder_to_sfu_cpu: Option<f64>,
}

impl RecorderCost {
    /// One line for the summary table.
    pub fn summary(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}{unit}"))
        };
        format!(
            "cpu {:.2} s, {} frames ({} us/frame), {} per caller, {} of the SFU's cpu; \
             {} decrypt failures, {} dropped, peak rss {:.1} MiB",
            self.cpu_seconds,
            self.frames_recorded,
            opt(self.cpu_us_per_frame, ""),
            opt(self.cpu_seconds_per_participant, " s"),
            opt(self.recorder_to_sfu_cpu.map(|r| r * 100.0), " %"),
            self.decrypt_failures,
            self.frames_dropped,
            self.peak_rss_bytes as f64 / 1_048_576.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use call_client::protocol::RECORDING_POLICY_LABEL;
    use e2ee_frames::verify_labelled;

    use super::*;

    #[test]
    fn the_policy_signature_verifies_over_the_context_and_document() {
        let admin = DocumentSigner::from_secret(&[7u8; 32]);
        let recorder = RecorderDevice {
            device: "recorder-1".into(),
            identity_key: "AAAA".into(),
        };
        let policy: RecordingPolicy =
            serde_json::from_value(signed_policy("demo", recorder, &admin, 1_700_000_000)).unwrap();
        let document = URL_SAFE_NO_PAD.decode(&policy.document).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&document).unwrap();
        assert_eq!(doc["room"], "demo");
        assert_eq!(doc["recorders"][0]["device"], "recorder-1");
        verify_labelled(
            &admin.public_key(),
            RECORDING_POLICY_LABEL,
            &document,
            &URL_SAFE_NO_PAD
                .decode(&policy.sig)
                .unwrap()
                .try_into()
                .unwrap(),
        )
        .unwrap();
    }
}
