//! The recorder event stream (`GET /v1/recorder/events`): NDJSON lines of
//! [`RecorderEvent`], authenticated with a recorder token for this device. The parts without
//! I/O ([`LineParser`], [`Backoff`], [`events_url`]) are tested alone; [`watch_events`] is the
//! reconnecting reader around them.
//!
//! The stream is dead when no byte (not even a `ping`, sent every 5 s) came for
//! [`HEARTBEAT_TIMEOUT`]; then, and on any error, it reconnects after a backoff that doubles
//! from [`BACKOFF_MIN`] to [`BACKOFF_MAX`] and starts again once a connection delivered an event.
//! On every (re)connect the service sends `room_active` for every active room, so nothing is
//! missed while disconnected; a room that went idle meanwhile ends its own recording when only
//! recorders are left.

use std::sync::Arc;
use std::time::Duration;

use call_client::protocol::{RecorderEvent, RecordingPolicy};
use tokio::sync::{mpsc, watch};

use super::admission::ApiCredentials;
use super::metrics::RecorderMetrics;

/// No byte for this long: the stream is dead (the service pings every 5 s).
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(15);

/// The first reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);

/// The longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Longest event line accepted (a policy is at most 8 KiB of base64 plus its fields).
pub const MAX_LINE: usize = 64 * 1024;

/// Why a line of the stream was not an event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The line is longer than [`MAX_LINE`] (skipped up to its newline).
    #[error("event line longer than {MAX_LINE} bytes")]
    TooLong,
    /// The line is not JSON of a known event shape.
    #[error("event line: {0}")]
    Malformed(String),
}

/// What one line said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A known event.
    Event(RecorderEvent),
    /// An event type this recorder does not know (ignored, as protocol §1 asks).
    Unknown(String),
}

/// Splits the stream's bytes into lines and parses each one.
#[derive(Debug, Default)]
pub struct LineParser {
    buf: Vec<u8>,
    /// Inside a line that is too long: drop bytes up to its newline.
    skipping: bool,
}

impl LineParser {
    /// Feeds `chunk`; returns the lines it completed, in order (blank lines are skipped).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<Line, LineError>> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let (piece, after) = rest.split_at(nl);
            rest = &after[1..];
            if self.skipping {
                self.skipping = false;
                self.buf.clear();
                continue;
            }
            if self.buf.len() + piece.len() > MAX_LINE {
                self.buf.clear();
                out.push(Err(LineError::TooLong));
                continue;
            }
            self.buf.extend_from_slice(piece);
            let line = std::mem::take(&mut self.buf);
            if let Some(parsed) = parse_line(&line) {
                out.push(parsed);
            }
        }
        if !self.skipping {
            if self.buf.len() + rest.len() > MAX_LINE {
                self.buf.clear();
                self.skipping = true;
                out.push(Err(LineError::TooLong));
            } else {
                self.buf.extend_from_slice(rest);
            }
        }
        out
    }
}

/// One line: an event, an unknown type, an error, or `None` for a blank line.
fn parse_line(line: &[u8]) -> Option<Result<Line, LineError>> {
    let text = std::str::from_utf8(line)
        .map_err(|e| LineError::Malformed(e.to_string()))
        .map(str::trim);
    let text = match text {
        Ok("") => return None,
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    #[derive(serde::Deserialize)]
    struct Tag {
        #[serde(rename = "type")]
        ty: String,
    }
    Some(match serde_json::from_str::<RecorderEvent>(text) {
        Ok(event) => Ok(Line::Event(event)),
        Err(e) => match serde_json::from_str::<Tag>(text) {
            Ok(Tag { ty }) if !["room_active", "room_idle", "ping"].contains(&ty.as_str()) => {
                Ok(Line::Unknown(ty))
            }
            _ => Err(LineError::Malformed(e.to_string())),
        },
    })
}

/// The reconnect delay: doubles per failure from [`BACKOFF_MIN`] up to [`BACKOFF_MAX`], back to
/// the minimum once a connection worked.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// A connection failed (or died): how long to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }

    /// A connection delivered an event: the next failure waits the minimum again.
    pub fn succeeded(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// The event stream's URL on the service whose WebSocket is `signaling` (`ws://h:p/v1/rtc` →
/// `http://h:p/v1/recorder/events`, `wss` → `https`).
pub fn events_url(signaling: &str) -> Result<String, String> {
    let (scheme, rest) = signaling
        .split_once("://")
        .ok_or_else(|| format!("{signaling:?} is not a URL"))?;
    let scheme = match scheme {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        other => return Err(format!("{other}:// is not a signaling URL (ws, wss)")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{signaling:?} has no host"));
    }
    Ok(format!("{scheme}://{authority}/v1/recorder/events"))
}

/// What the stream tells the rooms' supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomUpdate {
    /// Record this room (if not already).
    Active {
        /// The room.
        room: String,
        /// Its signed policy.
        recording: RecordingPolicy,
    },
    /// Stop recording this room.
    Idle {
        /// The room.
        room: String,
    },
}

/// Why one connection of the stream ended.
#[derive(Debug, thiserror::Error)]
enum StreamEnd {
    #[error("connect: {0}")]
    Connect(String),
    #[error("the service answered {0}")]
    Status(u16),
    #[error("no byte for {HEARTBEAT_TIMEOUT:?}")]
    Heartbeat,
    #[error("read: {0}")]
    Read(String),
    #[error("the service closed the stream")]
    Closed,
    #[error("the supervisor is gone")]
    Supervisor,
}

/// Reads the event stream of `device` from `url` until `stop`, reconnecting with backoff, and
/// sends what it says to `updates`.
pub async fn watch_events(
    url: String,
    credentials: ApiCredentials,
    device: String,
    updates: mpsc::Sender<RoomUpdate>,
    metrics: Arc<RecorderMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "event stream: no HTTP client");
            return;
        }
    };
    let mut backoff = Backoff::default();
    loop {
        let connection = read_stream(
            &client,
            &url,
            &credentials,
            &device,
            &updates,
            &metrics,
            &mut backoff,
        );
        let end = tokio::select! {
            end = connection => end,
            _ = super::stopped(&mut stop) => return,
        };
        if matches!(end, StreamEnd::Supervisor) {
            return;
        }
        let wait = backoff.failed();
        tracing::warn!(error = %end, retry_in = ?wait, "recorder event stream ended");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = super::stopped(&mut stop) => return,
        }
    }
}

async fn read_stream(
    client: &reqwest::Client,
    url: &str,
    credentials: &ApiCredentials,
    device: &str,
    updates: &mpsc::Sender<RoomUpdate>,
    metrics: &RecorderMetrics,
    backoff: &mut Backoff,
) -> StreamEnd {
    let response = client
        .get(url)
        .bearer_auth(credentials.events_token(device))
        .send();
    let mut response = match tokio::time::timeout(HEARTBEAT_TIMEOUT, response).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return StreamEnd::Connect(e.without_url().to_string()),
        Err(_) => return StreamEnd::Heartbeat,
    };
    if !response.status().is_success() {
        return StreamEnd::Status(response.status().as_u16());
    }
    metrics.event_stream_connected();
    tracing::info!("recorder event stream connected");
    let mut parser = LineParser::default();
    loop {
        let chunk = match tokio::time::timeout(HEARTBEAT_TIMEOUT, response.chunk()).await {
            Err(_) => return StreamEnd::Heartbeat,
            Ok(Err(e)) => return StreamEnd::Read(e.without_url().to_string()),
            Ok(Ok(None)) => return StreamEnd::Closed,
            Ok(Ok(Some(c))) => c,
        };
        for line in parser.push(&chunk) {
            let update = match line {
                Ok(Line::Event(RecorderEvent::RoomActive {
                    room, recording, ..
                })) => RoomUpdate::Active { room, recording },
                Ok(Line::Event(RecorderEvent::RoomIdle { room })) => RoomUpdate::Idle { room },
                Ok(Line::Event(_)) => {
                    backoff.succeeded();
                    continue;
                }
                Ok(Line::Unknown(ty)) => {
                    tracing::debug!(%ty, "unknown recorder event ignored");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recorder event line refused");
                    continue;
                }
            };
            backoff.succeeded();
            if updates.send(update).await.is_err() {
                return StreamEnd::Supervisor;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_json() -> &'static str {
        r#"{"v":1,"document":"e30","admin_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","sig":"AA"}"#
    }

    #[test]
    fn event_lines_are_parsed_across_chunk_boundaries() {
        let mut p = LineParser::default();
        let text = format!(
            "{{\"type\":\"ping\"}}\n\n{{\"type\":\"room_active\",\"room\":\"a\",\"recording\":{},\"participants\":2}}\n{{\"type\":\"room_idle\",\"room\":\"a\"}}\n",
            policy_json()
        );
        let bytes = text.as_bytes();
        let mut lines = Vec::new();
        // Every split point, byte by byte at the worst.
        for chunk in bytes.chunks(7) {
            lines.extend(p.push(chunk));
        }
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], Ok(Line::Event(RecorderEvent::Ping)));
        assert!(
            matches!(&lines[1], Ok(Line::Event(RecorderEvent::RoomActive { room, participants: 2, .. })) if room == "a")
        );
        assert_eq!(
            lines[2],
            Ok(Line::Event(RecorderEvent::RoomIdle { room: "a".into() }))
        );
    }

    #[test]
    fn unknown_event_types_are_ignored_and_bad_lines_refused() {
        let mut p = LineParser::default();
        let lines = p.push(
            b"{\"type\":\"room_moved\",\"room\":\"a\"}\nnot json\n{\"type\":\"room_idle\"}\n",
        );
        assert_eq!(lines[0], Ok(Line::Unknown("room_moved".into())));
        assert!(matches!(lines[1], Err(LineError::Malformed(_))));
        // A known type with a wrong shape is an error, not an unknown type.
        assert!(matches!(lines[2], Err(LineError::Malformed(_))));
    }

    #[test]
    fn an_overlong_line_is_skipped_to_its_newline() {
        let mut p = LineParser::default();
        let long = vec![b'x'; MAX_LINE + 10];
        let mut lines = p.push(&long[..MAX_LINE / 2]);
        lines.extend(p.push(&long[MAX_LINE / 2..]));
        lines.extend(p.push(b"yyy\n{\"type\":\"ping\"}\n"));
        assert_eq!(
            lines,
            vec![
                Err(LineError::TooLong),
                Ok(Line::Event(RecorderEvent::Ping))
            ]
        );
    }

    #[test]
    fn reconnect_backoff_doubles_to_its_cap_and_resets_after_an_event() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..10).map(|_| b.failed()).collect();
        assert_eq!(waits[0], BACKOFF_MIN);
        assert_eq!(waits[1], BACKOFF_MIN * 2);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*waits.last().unwrap(), BACKOFF_MAX);
        b.succeeded();
        assert_eq!(b.failed(), BACKOFF_MIN);
    }

    #[test]
    fn the_events_url_comes_from_the_signaling_url() {
        assert_eq!(
            events_url("ws://127.0.0.1:8080/v1/rtc").unwrap(),
            "http://127.0.0.1:8080/v1/recorder/events"
        );
        assert_eq!(
            events_url("wss://calls.example/v1/rtc?x=1").unwrap(),
            "https://calls.example/v1/recorder/events"
        );
        assert!(events_url("ftp://x/").is_err());
        assert!(events_url("ws:///v1/rtc").is_err());
    }

    /// A real HTTP server on loopback that serves one stream that stops mid-way, then another:
    /// the watcher reports the events of both and reconnects in between.
    #[tokio::test]
    async fn watcher_reconnects_after_the_stream_ends() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for room in ["a", "b"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut head = vec![0u8; 4096];
                let n = s.read(&mut head).await.unwrap();
                let head = String::from_utf8_lossy(&head[..n]).to_lowercase();
                assert!(head.starts_with("get /v1/recorder/events "), "{head}");
                assert!(head.contains("authorization: bearer "), "{head}");
                let body = format!(
                    "{{\"type\":\"room_active\",\"room\":\"{room}\",\"recording\":{},\"participants\":1}}\n",
                    policy_json()
                );
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let (tx, mut rx) = mpsc::channel(8);
        let (stop_tx, stop) = watch::channel(false);
        let metrics = RecorderMetrics::new();
        let watcher = tokio::spawn(watch_events(
            format!("http://{addr}/v1/recorder/events"),
            ApiCredentials {
                key: "k".into(),
                secret: "s".into(),
            },
            "rec-1".into(),
            tx,
            metrics.clone(),
            stop,
        ));
        let mut rooms = Vec::new();
        for _ in 0..2 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap()
            {
                RoomUpdate::Active { room, .. } => rooms.push(room),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(rooms, ["a", "b"]);
        stop_tx.send(true).unwrap();
        watcher.await.unwrap();
        server.await.unwrap();
        assert!(
            metrics
                .render()
                .contains("recorder_event_stream_connects_total 2")
        );
    }
}
