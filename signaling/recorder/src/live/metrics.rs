//! The recorder's counters (atomics shared by every room task and the writers) and their
//! Prometheus text on `GET /metrics` of `--metrics-listen` (docs/metrics.md, "Recorder").

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Why a decrypted or undecrypted frame did not reach the archive (`recorder_frames_dropped_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The writer's queue was full: the disk fell behind the network.
    Backlog,
    /// The archive refused the frame or failed to write it.
    Archive,
    /// It decrypted, but its sender publishes no track on its stream that the room announced.
    Unattributed,
    /// A VP8 frame lost a packet before it could be decrypted.
    Incomplete,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 4] = [
        DropReason::Backlog,
        DropReason::Archive,
        DropReason::Unattributed,
        DropReason::Incomplete,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Backlog => "backlog",
            DropReason::Archive => "archive",
            DropReason::Unattributed => "unattributed",
            DropReason::Incomplete => "incomplete",
        }
    }
}

/// Why a frame did not decrypt (`recorder_decrypt_failures_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptFailure {
    /// No key for its KID: the sender never wrapped one to the recorder (or not yet).
    NoKey,
    /// A replayed counter.
    Replay,
    /// The frame did not parse or authenticate.
    Refused,
}

impl DecryptFailure {
    /// Every reason, in label order.
    pub const ALL: [DecryptFailure; 3] = [
        DecryptFailure::NoKey,
        DecryptFailure::Replay,
        DecryptFailure::Refused,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DecryptFailure::NoKey => "no_key",
            DecryptFailure::Replay => "replay",
            DecryptFailure::Refused => "refused",
        }
    }
}

/// How a recording session ended (`recorder_sessions_total{outcome}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Recorded and finished (manifest written).
    Finished,
    /// The room's policy does not name this recorder (or the service refused its join).
    RefusedPolicy,
    /// The room is one the recorder cannot record (receive slots, no media node).
    Unsupported,
    /// Joining or the session failed, or the archive failed to finish.
    Failed,
}

impl SessionOutcome {
    /// Every outcome, in label order.
    pub const ALL: [SessionOutcome; 4] = [
        SessionOutcome::Finished,
        SessionOutcome::RefusedPolicy,
        SessionOutcome::Unsupported,
        SessionOutcome::Failed,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::Finished => "finished",
            SessionOutcome::RefusedPolicy => "refused_policy",
            SessionOutcome::Unsupported => "unsupported",
            SessionOutcome::Failed => "failed",
        }
    }
}

/// The recorder's counters, shared by every room (one set per process).
#[derive(Debug, Default)]
pub struct RecorderMetrics {
    active_sessions: AtomicI64,
    frames_decrypted: AtomicU64,
    decrypt_failures: [AtomicU64; 3],
    frames_dropped: [AtomicU64; 4],
    bytes_written: AtomicU64,
    sessions: [AtomicU64; 4],
    event_stream_connects: AtomicU64,
}

impl RecorderMetrics {
    /// A fresh set, shared.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A session started recording (its sink is open).
    pub fn session_started(&self) {
        self.active_sessions.fetch_add(1, Ordering::Relaxed);
    }

    /// A started session ended.
    pub fn session_stopped(&self) {
        self.active_sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// A session attempt ended with `outcome`.
    pub fn session_ended(&self, outcome: SessionOutcome) {
        self.sessions[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A frame decrypted.
    pub fn frame_decrypted(&self) {
        self.frames_decrypted.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame did not decrypt.
    pub fn decrypt_failed(&self, why: DecryptFailure) {
        self.decrypt_failures[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A frame was dropped.
    pub fn frame_dropped(&self, why: DropReason) {
        self.frames_dropped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The archive wrote `bytes` (encrypted) to its store.
    pub fn bytes_written(&self, bytes: u64) {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The event stream (re)connected.
    pub fn event_stream_connected(&self) {
        self.event_stream_connects.fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions recording now.
    pub fn active_sessions(&self) -> i64 {
        self.active_sessions.load(Ordering::Relaxed)
    }

    /// Frames decrypted so far.
    pub fn frames_decrypted(&self) -> u64 {
        self.frames_decrypted.load(Ordering::Relaxed)
    }

    /// Frames that failed to decrypt for `why`.
    pub fn decrypt_failures(&self, why: DecryptFailure) -> u64 {
        self.decrypt_failures[why as usize].load(Ordering::Relaxed)
    }

    /// Frames dropped for `why`.
    pub fn frames_dropped(&self, why: DropReason) -> u64 {
        self.frames_dropped[why as usize].load(Ordering::Relaxed)
    }

    /// Sessions that ended with `outcome`.
    pub fn sessions(&self, outcome: SessionOutcome) -> u64 {
        self.sessions[outcome as usize].load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let plain = |v: String| vec![(String::new(), v)];
        family(
            "recorder_active_sessions",
            "gauge",
            "Rooms being recorded now.",
            plain(self.active_sessions().to_string()),
        );
        family(
            "recorder_frames_decrypted_total",
            "counter",
            "Frames the recorder decrypted.",
            plain(self.frames_decrypted().to_string()),
        );
        family(
            "recorder_decrypt_failures_total",
            "counter",
            "Frames the recorder received but could not decrypt, by reason.",
            DecryptFailure::ALL
                .iter()
                .map(|r| {
                    (
                        format!("{{reason=\"{}\"}}", r.as_str()),
                        self.decrypt_failures(*r).to_string(),
                    )
                })
                .collect(),
        );
        family(
            "recorder_frames_dropped_total",
            "counter",
            "Frames that did not reach the archive, by reason.",
            DropReason::ALL
                .iter()
                .map(|r| {
                    (
                        format!("{{reason=\"{}\"}}", r.as_str()),
                        self.frames_dropped(*r).to_string(),
                    )
                })
                .collect(),
        );
        family(
            "recorder_bytes_written_total",
            "counter",
            "Bytes the archive wrote to its store (encrypted), reported at each session's end.",
            plain(self.bytes_written.load(Ordering::Relaxed).to_string()),
        );
        family(
            "recorder_sessions_total",
            "counter",
            "Recording sessions ended, by outcome.",
            SessionOutcome::ALL
                .iter()
                .map(|o| {
                    (
                        format!("{{outcome=\"{}\"}}", o.as_str()),
                        self.sessions(*o).to_string(),
                    )
                })
                .collect(),
        );
        family(
            "recorder_event_stream_connects_total",
            "counter",
            "Times `recorder serve` opened the recorder event stream.",
            plain(
                self.event_stream_connects
                    .load(Ordering::Relaxed)
                    .to_string(),
            ),
        );
        out
    }
}

/// Longest request head the metrics endpoint reads.
const MAX_REQUEST_HEAD: usize = 4096;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `GET /metrics` on `listener` until the task is dropped, and `GET /healthz` (200 `ok`:
/// the process is up and serving, what a liveness probe asks); anything else is 404.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<RecorderMetrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut head = Vec::with_capacity(512);
            let mut buf = [0u8; 512];
            let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                true
            })
            .await;
            if !matches!(read, Ok(true)) {
                return;
            }
            let first = head.split(|b| *b == b'\r').next().unwrap_or_default();
            let (status, body) = if first.starts_with(b"GET /metrics ") {
                ("200 OK", metrics.render())
            } else if first.starts_with(b"GET /healthz ") {
                ("200 OK", "ok\n".to_owned())
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Binds `addr` and serves the metrics on it in a task.
pub async fn spawn_metrics(
    addr: SocketAddr,
    metrics: Arc<RecorderMetrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, tokio::spawn(serve_metrics(listener, metrics))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metrics_endpoint_serves_every_family() {
        let metrics = RecorderMetrics::new();
        metrics.frame_dropped(DropReason::Backlog);
        metrics.decrypt_failed(DecryptFailure::NoKey);
        let (addr, task) = spawn_metrics("127.0.0.1:0".parse().unwrap(), metrics)
            .await
            .unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut health = String::new();
        s.read_to_string(&mut health).await.unwrap();
        assert!(health.starts_with("HTTP/1.1 200 OK"), "{health}");
        assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
        task.abort();
        for line in [
            "recorder_active_sessions 0",
            "recorder_frames_decrypted_total 0",
            "recorder_decrypt_failures_total{reason=\"no_key\"} 1",
            "recorder_frames_dropped_total{reason=\"backlog\"} 1",
            "recorder_bytes_written_total 0",
            "recorder_sessions_total{outcome=\"finished\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
