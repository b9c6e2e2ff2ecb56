//! The writer: one thread per recorded session that owns its [`SessionSink`] and does every
//! (blocking) archive call, fed by a queue the network side never waits on.
//!
//! The queue carries everything in the order it happened. Frames are bounded: when
//! [`WriterQueue::frame`] finds `capacity` frames waiting, the frame is refused, counted as
//! `recorder_frames_dropped_total{reason="backlog"}` and the caller logs it (rate-limited).
//! Roster, security-code, track and chat events are never dropped: they are few (bounded by the
//! room's size and its changes; chat by the service's per-connection rate limit and its 4 KiB
//! bound) and a session without them could not be read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::metrics::{DropReason, RecorderMetrics};
use crate::sink::{
    ChatEntry, Frame, Participant, SessionArchive, SessionSink, SessionStart, SessionSummary,
    SinkError, TrackMeta,
};

/// Frames waiting for the archive before new ones are dropped (about 10 s of a five-person
/// meeting's audio and video).
pub const DEFAULT_QUEUE_FRAMES: usize = 4096;

/// One thing for the archive, in order.
#[derive(Debug)]
enum WriterEvent {
    ParticipantJoined(Participant),
    ParticipantLeft { device: String, at: SystemTime },
    SecurityCode { code: String, at: SystemTime },
    Track(TrackMeta),
    Frame(OwnedFrame),
    Chat(ChatEntry),
}

/// A decrypted frame on its way to the archive.
#[derive(Debug)]
pub struct OwnedFrame {
    /// Its track (announced before).
    pub track_id: Arc<str>,
    /// Presentation time from the session's start.
    pub pts: Duration,
    /// A VP8 keyframe (true for audio).
    pub keyframe: bool,
    /// The decrypted frame.
    pub data: Vec<u8>,
}

/// The frame was not queued: the writer is `capacity` frames behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlogged;

/// The sending side of a session's writer (cheap to clone: the control loop and the media
/// receiver each hold one).
#[derive(Debug, Clone)]
pub struct WriterQueue {
    tx: mpsc::UnboundedSender<WriterEvent>,
    queued_frames: Arc<AtomicUsize>,
    capacity: usize,
    metrics: Arc<RecorderMetrics>,
}

impl WriterQueue {
    /// A participant joined (or was in the roster at join).
    pub fn participant_joined(&self, participant: Participant) {
        self.control(WriterEvent::ParticipantJoined(participant));
    }

    /// A participant left.
    pub fn participant_left(&self, device: String, at: SystemTime) {
        self.control(WriterEvent::ParticipantLeft { device, at });
    }

    /// The call security code changed.
    pub fn security_code(&self, code: String, at: SystemTime) {
        self.control(WriterEvent::SecurityCode { code, at });
    }

    /// A track starts.
    pub fn track(&self, track: TrackMeta) {
        self.control(WriterEvent::Track(track));
    }

    /// A chat message.
    pub fn chat(&self, entry: ChatEntry) {
        self.control(WriterEvent::Chat(entry));
    }

    /// Queues a frame unless `capacity` frames wait already (then it is counted as dropped).
    pub fn frame(&self, frame: OwnedFrame) -> Result<(), Backlogged> {
        if self.queued_frames.load(Ordering::Relaxed) >= self.capacity {
            self.metrics.frame_dropped(DropReason::Backlog);
            return Err(Backlogged);
        }
        self.queued_frames.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(WriterEvent::Frame(frame)).is_err() {
            // The writer ended (its sink failed to finish early): the frame is lost, counted.
            self.queued_frames.fetch_sub(1, Ordering::Relaxed);
            self.metrics.frame_dropped(DropReason::Archive);
        }
        Ok(())
    }

    fn control(&self, event: WriterEvent) {
        if self.tx.send(event).is_err() {
            tracing::warn!("archive writer gone; a roster or track event was not recorded");
        }
    }
}

/// What the writer did, when its session finished.
#[derive(Debug)]
pub struct WriterReport {
    /// The archive's summary, or why finishing failed.
    pub summary: Result<SessionSummary, SinkError>,
    /// Frames handed to the archive and accepted.
    pub frames_written: u64,
    /// Archive calls that failed (frames among them are also counted as dropped).
    pub archive_errors: u64,
}

/// A running writer: its queue and the report it gives when every queue handle is gone.
#[derive(Debug)]
pub struct Writer {
    /// The queue (drop every clone to let the session finish).
    pub queue: WriterQueue,
    done: oneshot::Receiver<WriterReport>,
}

impl Writer {
    /// Begins a session in `archive` (on a blocking thread) and starts its writer thread.
    pub async fn start(
        archive: Arc<dyn SessionArchive>,
        start: SessionStart,
        capacity: usize,
        metrics: Arc<RecorderMetrics>,
    ) -> Result<Writer, SinkError> {
        let room = start.room.clone();
        let sink = tokio::task::spawn_blocking(move || archive.begin(start))
            .await
            .map_err(|e| SinkError::Refused(format!("archive begin panicked: {e}")))??;
        let (tx, rx) = mpsc::unbounded_channel();
        let queued_frames = Arc::new(AtomicUsize::new(0));
        let (done_tx, done) = oneshot::channel();
        let writer_metrics = metrics.clone();
        let writer_queued = queued_frames.clone();
        std::thread::Builder::new()
            .name(format!("recorder-writer-{room}"))
            .spawn(move || {
                let report = write_session(sink, rx, &writer_queued, &writer_metrics);
                let _ = done_tx.send(report);
            })
            .map_err(SinkError::Io)?;
        Ok(Writer {
            queue: WriterQueue {
                tx,
                queued_frames,
                capacity: capacity.max(1),
                metrics,
            },
            done,
        })
    }

    /// Drops this handle's queue and waits for the writer to finish the session (the other
    /// queue handles must be gone too).
    pub async fn finish(self) -> WriterReport {
        drop(self.queue);
        self.done.await.unwrap_or(WriterReport {
            summary: Err(SinkError::Refused("archive writer thread panicked".into())),
            frames_written: 0,
            archive_errors: 1,
        })
    }
}

fn write_session(
    mut sink: Box<dyn SessionSink>,
    mut rx: mpsc::UnboundedReceiver<WriterEvent>,
    queued_frames: &AtomicUsize,
    metrics: &RecorderMetrics,
) -> WriterReport {
    let (mut frames_written, mut archive_errors) = (0u64, 0u64);
    while let Some(event) = rx.blocking_recv() {
        let result = match event {
            WriterEvent::ParticipantJoined(p) => sink.participant_joined(p),
            WriterEvent::ParticipantLeft { device, at } => sink.participant_left(&device, at),
            WriterEvent::SecurityCode { code, at } => sink.security_code(&code, at),
            WriterEvent::Track(t) => sink.track(t),
            WriterEvent::Chat(c) => sink.chat(c),
            WriterEvent::Frame(f) => {
                queued_frames.fetch_sub(1, Ordering::Relaxed);
                let written = sink.frame(Frame {
                    track_id: &f.track_id,
                    pts: f.pts,
                    keyframe: f.keyframe,
                    data: &f.data,
                });
                match written {
                    Ok(()) => frames_written += 1,
                    Err(_) => metrics.frame_dropped(DropReason::Archive),
                }
                written
            }
        };
        if let Err(e) = result {
            archive_errors += 1;
            // Logged for the first few and then every 1000th: a failing disk must not flood.
            if archive_errors <= 5 || archive_errors.is_multiple_of(1000) {
                tracing::warn!(error = %e, archive_errors, "archive call failed");
            }
        }
    }
    let summary = sink.finish(SystemTime::now());
    if let Ok(s) = &summary {
        metrics.bytes_written(s.bytes_written);
    }
    WriterReport {
        summary,
        frames_written,
        archive_errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Frame, SessionSink};
    use std::sync::Mutex;
    use std::sync::mpsc as std_mpsc;

    /// A sink whose first call blocks until the test opens the gate (a disk that stalls).
    struct StalledSink {
        gate: Mutex<std_mpsc::Receiver<()>>,
        frames: Arc<AtomicUsize>,
    }

    impl SessionSink for StalledSink {
        fn participant_joined(&mut self, _: Participant) -> Result<(), SinkError> {
            let _ = self.gate.lock().unwrap().recv();
            Ok(())
        }
        fn participant_left(&mut self, _: &str, _: SystemTime) -> Result<(), SinkError> {
            Ok(())
        }
        fn security_code(&mut self, _: &str, _: SystemTime) -> Result<(), SinkError> {
            Ok(())
        }
        fn track(&mut self, _: TrackMeta) -> Result<(), SinkError> {
            Ok(())
        }
        fn chat(&mut self, _: ChatEntry) -> Result<(), SinkError> {
            Ok(())
        }
        fn frame(&mut self, _: Frame<'_>) -> Result<(), SinkError> {
            self.frames.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn finish(self: Box<Self>, _: SystemTime) -> Result<SessionSummary, SinkError> {
            Ok(SessionSummary {
                session_id: "s".into(),
                frames: self.frames.load(Ordering::Relaxed) as u64,
                bytes_written: 10,
            })
        }
    }

    struct OneSink(Mutex<Option<Box<dyn SessionSink>>>);

    impl SessionArchive for OneSink {
        fn begin(&self, _: SessionStart) -> Result<Box<dyn SessionSink>, SinkError> {
            self.0
                .lock()
                .unwrap()
                .take()
                .ok_or_else(|| SinkError::Refused("one session only".into()))
        }
    }

    #[tokio::test]
    async fn writer_queue_full_drops_frames_counted_as_backlog() {
        let (open, gate) = std_mpsc::channel();
        let frames = Arc::new(AtomicUsize::new(0));
        let sink = StalledSink {
            gate: Mutex::new(gate),
            frames: frames.clone(),
        };
        let archive: Arc<dyn SessionArchive> = Arc::new(OneSink(Mutex::new(Some(Box::new(sink)))));
        let metrics = RecorderMetrics::new();
        let start = SessionStart {
            room: "r".into(),
            started_at: SystemTime::now(),
            retention: Duration::from_secs(1),
            policy_json: "{}".into(),
        };
        let writer = Writer::start(archive, start, 2, metrics.clone())
            .await
            .unwrap();
        // The writer stalls on this event; nothing behind it is written until the gate opens.
        writer.queue.participant_joined(Participant {
            device: "d".into(),
            identity: "i".into(),
            role: "caller".into(),
            identity_key: [1; 32],
            at: SystemTime::now(),
        });
        let track: Arc<str> = Arc::from("t");
        let results: Vec<_> = (0..5)
            .map(|i| {
                writer.queue.frame(OwnedFrame {
                    track_id: track.clone(),
                    pts: Duration::from_millis(i * 20),
                    keyframe: true,
                    data: vec![0; 10],
                })
            })
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
        assert_eq!(results[2..], [Err(Backlogged); 3]);
        assert_eq!(metrics.frames_dropped(DropReason::Backlog), 3);
        assert!(
            metrics
                .render()
                .contains("recorder_frames_dropped_total{reason=\"backlog\"} 3")
        );
        open.send(()).unwrap();
        let report = writer.finish().await;
        assert_eq!(report.frames_written, 2);
        assert_eq!(report.summary.unwrap().frames, 2);
        assert_eq!(frames.load(Ordering::Relaxed), 2);
    }
}
