//! The sequenced, replayable event stream behind `GET /control/events` (framing in
//! `sfu_control_api::stream`).
//!
//! One task numbers the node's events as they happen and keeps the last [`REPLAY_CAPACITY`]
//! serialized lines in a ring buffer; every connected stream reads from that buffer at its own
//! pace, so a stream that breaks and is resumed with `?instance=…&since=…` misses nothing. A
//! stream that falls further behind than the buffer, a resume the buffer no longer covers, a
//! resume naming another instance, and events the node's own queue dropped before they were
//! numbered all become a `reset` line: the client then treats the node as restarted.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::Stream;
use sfu_control_api::{EventsQuery, ResetReason, StreamLine};
use tokio::sync::{broadcast, watch};

use crate::node::NodeEvent;

/// How many recent events a resumed stream can be replayed from.
pub const REPLAY_CAPACITY: usize = 4096;
/// How long a stream stays quiet before the node writes a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// The node's numbered events (cheap to clone).
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("instance", &self.inner.instance)
            .finish()
    }
}

struct Inner {
    /// Random id of this log (drawn when the node process builds its control router).
    instance: String,
    capacity: usize,
    buffer: Mutex<Buffer>,
    /// The last sequence number assigned; streams wait on its changes.
    latest: watch::Sender<u64>,
}

#[derive(Default)]
struct Buffer {
    /// Serialized lines (each ending in `\n`), consecutive sequence numbers ending at `last`.
    lines: VecDeque<Bytes>,
    /// The last sequence number assigned (0: none yet).
    last: u64,
    /// The node's event channel closed: no more events.
    closed: bool,
}

impl Buffer {
    /// The sequence number of the oldest line still held.
    fn oldest(&self) -> u64 {
        self.last + 1 - self.lines.len() as u64
    }
}

/// A fresh random instance id: 16 hex digits.
fn random_instance() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    // The system's random source failing is not recoverable in any useful way; an all-zero id
    // still works for one process, it only cannot be told from another such process.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serialize(line: &StreamLine) -> Bytes {
    // Serializing a plain enum of strings and numbers cannot fail.
    let mut text = serde_json::to_vec(line).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

impl EventLog {
    /// Numbers the events of `source` from now on, keeping the last `capacity` (at least 1).
    /// Spawns the numbering task (it ends when `source` closes); call inside a Tokio runtime.
    pub fn start(source: broadcast::Receiver<NodeEvent>, capacity: usize) -> EventLog {
        let log = EventLog {
            inner: Arc::new(Inner {
                instance: random_instance(),
                capacity: capacity.max(1),
                buffer: Mutex::default(),
                latest: watch::Sender::new(0),
            }),
        };
        tokio::spawn(log.clone().number(source));
        log
    }

    /// This log's instance id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // The lock guards a few lines of queue code; a panic there leaves a usable queue.
        self.inner
            .buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn number(self, mut source: broadcast::Receiver<NodeEvent>) {
        loop {
            match source.recv().await {
                Ok(event) => self.append(|instance, seq| StreamLine::Event {
                    instance,
                    seq,
                    event,
                }),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "control event log fell behind the node's events");
                    self.append(|instance, seq| StreamLine::Reset {
                        instance,
                        seq,
                        reason: ResetReason::EventsLost,
                    });
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        self.buffer().closed = true;
        self.inner.latest.send_modify(|_| {});
    }

    /// Appends the line made for the next sequence number.
    fn append(&self, make: impl FnOnce(String, u64) -> StreamLine) {
        let seq = {
            let mut buffer = self.buffer();
            let seq = buffer.last + 1;
            let line = serialize(&make(self.inner.instance.clone(), seq));
            if buffer.lines.len() == self.inner.capacity {
                buffer.lines.pop_front();
            }
            buffer.lines.push_back(line);
            buffer.last = seq;
            seq
        };
        self.inner.latest.send_replace(seq);
    }

    /// The lines of one `GET /control/events` connection resumed at `query`: a heartbeat (or a
    /// reset when the resume point is gone), the events after the resume point, then new ones
    /// as they happen, with a heartbeat after every `heartbeat` of silence.
    pub fn stream(
        &self,
        query: &EventsQuery,
        heartbeat: Duration,
    ) -> impl Stream<Item = Bytes> + Send + 'static {
        let mut latest = self.inner.latest.subscribe();
        latest.borrow_and_update();
        let (first, next) = {
            let buffer = self.buffer();
            let instance = self.inner.instance.clone();
            let reset = |reason| StreamLine::Reset {
                instance: instance.clone(),
                seq: buffer.last,
                reason,
            };
            match (&query.instance, query.since) {
                (Some(i), _) if *i != self.inner.instance => {
                    (reset(ResetReason::InstanceChanged), buffer.last + 1)
                }
                (_, Some(since)) if since > buffer.last || since + 1 < buffer.oldest() => {
                    (reset(ResetReason::EventsLost), buffer.last + 1)
                }
                (_, since) => (
                    StreamLine::Heartbeat {
                        instance: instance.clone(),
                        seq: buffer.last,
                    },
                    since.map_or(buffer.last + 1, |s| s + 1),
                ),
            }
        };
        let state = Reader {
            log: self.clone(),
            latest,
            next,
            pending: Some(serialize(&first)),
            heartbeat,
        };
        futures_util::stream::unfold(state, |mut r| async move {
            let chunk = r.next_chunk().await?;
            Some((chunk, r))
        })
    }
}

/// One stream's position in the log.
struct Reader {
    log: EventLog,
    latest: watch::Receiver<u64>,
    /// The next sequence number to send.
    next: u64,
    /// A line to send before anything else.
    pending: Option<Bytes>,
    heartbeat: Duration,
}

impl Reader {
    /// The next bytes to write, or `None` once the node's events ended and all were sent.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(line) = self.pending.take() {
            return Some(line);
        }
        loop {
            self.latest.borrow_and_update();
            let (chunk, closed) = self.take_available();
            if let Some(chunk) = chunk {
                return Some(chunk);
            }
            if closed {
                return None;
            }
            match tokio::time::timeout(self.heartbeat, self.latest.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return None,
                Err(_) => {
                    let line = StreamLine::Heartbeat {
                        instance: self.log.inner.instance.clone(),
                        seq: self.next - 1,
                    };
                    return Some(serialize(&line));
                }
            }
        }
    }

    /// Everything buffered from `next` on, as one chunk (a reset when `next` fell out of the
    /// buffer), and whether the log is closed.
    fn take_available(&mut self) -> (Option<Bytes>, bool) {
        let buffer = self.log.buffer();
        if self.next > buffer.last {
            return (None, buffer.closed);
        }
        if self.next < buffer.oldest() {
            tracing::warn!(
                behind = buffer.last + 1 - self.next,
                "a control event stream fell behind the replay buffer"
            );
            let line = StreamLine::Reset {
                instance: self.log.inner.instance.clone(),
                seq: buffer.last,
                reason: ResetReason::EventsLost,
            };
            self.next = buffer.last + 1;
            return (Some(serialize(&line)), buffer.closed);
        }
        let skip = usize::try_from(self.next - buffer.oldest()).unwrap_or(usize::MAX);
        let mut chunk = Vec::new();
        for line in buffer.lines.iter().skip(skip) {
            chunk.extend_from_slice(line);
        }
        self.next = buffer.last + 1;
        (Some(Bytes::from(chunk)), buffer.closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    fn gone(i: u64) -> NodeEvent {
        NodeEvent::ParticipantGone {
            room: "r".into(),
            device: format!("d{i}"),
            reason: "test".into(),
            session: None,
        }
    }

    /// The lines of the stream's chunks, parsed, until `count` lines arrived.
    async fn read_lines(
        stream: &mut (impl Stream<Item = Bytes> + Unpin),
        count: usize,
    ) -> Vec<StreamLine> {
        let mut lines = Vec::new();
        while lines.len() < count {
            let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("a chunk within 5 s")
                .expect("stream open");
            for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                lines.push(serde_json::from_slice(line).expect("a stream line"));
            }
        }
        lines
    }

    async fn log_with(events: u64, capacity: usize) -> (EventLog, broadcast::Sender<NodeEvent>) {
        let (tx, rx) = broadcast::channel(64);
        let log = EventLog::start(rx, capacity);
        for i in 1..=events {
            tx.send(gone(i)).expect("the log listens");
        }
        let mut latest = log.inner.latest.subscribe();
        latest
            .wait_for(|&seq| seq == events)
            .await
            .expect("numbered");
        (log, tx)
    }

    fn seqs(lines: &[StreamLine]) -> Vec<u64> {
        lines
            .iter()
            .filter(|l| matches!(l, StreamLine::Event { .. }))
            .map(StreamLine::seq)
            .collect()
    }

    #[tokio::test]
    async fn resume_replays_what_follows_in_order() {
        let (log, tx) = log_with(5, 16).await;
        let query = EventsQuery {
            instance: Some(log.instance().to_owned()),
            since: Some(2),
        };
        let mut stream = Box::pin(log.stream(&query, HEARTBEAT_INTERVAL));
        let lines = read_lines(&mut stream, 4).await;
        assert!(matches!(lines[0], StreamLine::Heartbeat { seq: 5, .. }));
        assert_eq!(seqs(&lines), [3, 4, 5]);
        tx.send(gone(6)).expect("the log listens");
        let lines = read_lines(&mut stream, 1).await;
        assert_eq!(seqs(&lines), [6], "live events follow the replay");
    }

    #[tokio::test]
    async fn resume_outside_the_buffer_or_instance_is_a_reset() {
        let (log, _tx) = log_with(10, 4).await;
        for (query, reason) in [
            (
                EventsQuery {
                    instance: Some(log.instance().to_owned()),
                    since: Some(3),
                },
                ResetReason::EventsLost,
            ),
            (
                EventsQuery {
                    instance: Some("another-process".into()),
                    since: Some(9),
                },
                ResetReason::InstanceChanged,
            ),
        ] {
            let mut stream = Box::pin(log.stream(&query, HEARTBEAT_INTERVAL));
            let lines = read_lines(&mut stream, 1).await;
            assert_eq!(
                lines,
                [StreamLine::Reset {
                    instance: log.instance().to_owned(),
                    seq: 10,
                    reason,
                }]
            );
        }
        // The oldest still held (7..=10) resumes without a reset.
        let query = EventsQuery {
            instance: Some(log.instance().to_owned()),
            since: Some(6),
        };
        let mut stream = Box::pin(log.stream(&query, HEARTBEAT_INTERVAL));
        assert_eq!(seqs(&read_lines(&mut stream, 5).await), [7, 8, 9, 10]);
    }

    #[tokio::test]
    async fn a_quiet_stream_gets_heartbeats() {
        let (log, _tx) = log_with(1, 4).await;
        let mut stream = Box::pin(log.stream(&EventsQuery::default(), Duration::from_millis(20)));
        let lines = read_lines(&mut stream, 3).await;
        assert!(
            lines
                .iter()
                .all(|l| matches!(l, StreamLine::Heartbeat { seq: 1, .. })),
            "{lines:?}"
        );
    }
}
