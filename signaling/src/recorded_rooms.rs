//! The directory of recorded rooms: which rooms with a signed recording policy have someone in
//! them, which recorders listen on `GET /v1/recorder/events` ([`crate::recorder_stream`]), and the
//! compliance gauge `signaling_recorded_rooms_without_recorder`.
//!
//! One task owns all of it. Room actors report each recorded room's opening, its head counts
//! (participants other than recorders, recorders) whenever they change, and its end; streams
//! subscribe by recorder device. The task turns a room's first non-recorder participant into
//! `room_active` and its last one leaving (or the room ending) into `room_idle`, for every
//! stream whose device the room's policy names. Each stream has a bounded queue: a stream that
//! cannot keep up is closed and counted, never thinned out, and its recorder reconnects and gets
//! the current state again (the snapshot every new stream starts with).

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::metrics::Metrics;
use crate::protocol::{RecorderEvent, RecordingPolicy};

/// How the directory behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedRoomsSettings {
    /// A recorded room with a participant other than a recorder and no recorder for longer than
    /// this counts in `signaling_recorded_rooms_without_recorder` (30 s).
    pub unrecorded_alert_after: Duration,
    /// Events a stream may have queued beyond its opening snapshot; one more closes it.
    pub stream_queue: usize,
}

impl Default for RecordedRoomsSettings {
    fn default() -> Self {
        RecordedRoomsSettings {
            unrecorded_alert_after: Duration::from_secs(30),
            stream_queue: 256,
        }
    }
}

/// A room actor's report, or a stream's subscription.
#[derive(Debug)]
enum Command {
    /// A recorded room now exists (sent once, before any [`Command::Presence`] of it).
    Opened {
        room_id: u64,
        room: String,
        recording: RecordingPolicy,
        recorder_devices: Vec<String>,
    },
    /// The room's head counts changed.
    Presence {
        room_id: u64,
        non_recorders: u32,
        recorders: u32,
    },
    /// The room ended.
    Gone { room_id: u64 },
    /// A stream for recorder `device`: the reply is its queue, the snapshot already in it.
    Subscribe {
        device: String,
        reply: oneshot::Sender<mpsc::Receiver<RecorderEvent>>,
    },
}

/// The handle room actors and streams use (cheap to clone). The directory task ends when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub struct RecordedRooms {
    tx: mpsc::UnboundedSender<Command>,
}

/// What a room actor keeps to report one recorded room (see [`RecordedRooms::open`]).
#[derive(Debug)]
pub struct RecordedRoomReporter {
    directory: RecordedRooms,
    room_id: u64,
    last: (u32, u32),
}

impl RecordedRooms {
    /// Starts the directory task.
    pub fn start(settings: RecordedRoomsSettings, metrics: Metrics) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let directory = Directory {
            settings,
            metrics,
            rooms: HashMap::new(),
            streams: Vec::new(),
        };
        tokio::spawn(directory.run(rx));
        RecordedRooms { tx }
    }

    /// Registers room `room_id` named `room` when its policy carries a recording policy whose
    /// document has a valid shape (rooms are only created with one), and returns what its actor
    /// reports through; `None` for a room that is not recorded.
    pub fn open(
        &self,
        room_id: u64,
        room: &str,
        recording: Option<&RecordingPolicy>,
    ) -> Option<RecordedRoomReporter> {
        let recording = recording?;
        let doc = recording.document().ok()?;
        let recorder_devices = doc.recorders.into_iter().map(|r| r.device).collect();
        // The directory task lives as long as any handle: a failed send means the process is
        // going down, and there is nobody left to tell.
        let _ = self.tx.send(Command::Opened {
            room_id,
            room: room.to_string(),
            recording: recording.clone(),
            recorder_devices,
        });
        Some(RecordedRoomReporter {
            directory: self.clone(),
            room_id,
            last: (0, 0),
        })
    }

    /// Opens a stream for recorder `device`: its queue starts with one `room_active` for every
    /// active room whose policy names the device. `None` when the directory is gone (shutdown).
    pub async fn subscribe(&self, device: &str) -> Option<mpsc::Receiver<RecorderEvent>> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Subscribe {
                device: device.to_string(),
                reply,
            })
            .ok()?;
        rx.await.ok()
    }
}

impl RecordedRoomReporter {
    /// Reports the room's head counts (only a change is sent).
    pub fn presence(&mut self, non_recorders: u32, recorders: u32) {
        if self.last == (non_recorders, recorders) {
            return;
        }
        self.last = (non_recorders, recorders);
        let _ = self.directory.tx.send(Command::Presence {
            room_id: self.room_id,
            non_recorders,
            recorders,
        });
    }
}

impl Drop for RecordedRoomReporter {
    /// The room ended (its actor dropped the reporter).
    fn drop(&mut self) {
        let _ = self.directory.tx.send(Command::Gone {
            room_id: self.room_id,
        });
    }
}

/// One recorded room as the directory knows it.
struct RecordedRoom {
    name: String,
    recording: RecordingPolicy,
    recorder_devices: Vec<String>,
    non_recorders: u32,
    recorders: u32,
    /// Since when the room has had a non-recorder participant and no recorder.
    unrecorded_since: Option<Instant>,
    /// Counted in the gauge (unrecorded for longer than the alert delay).
    alerting: bool,
}

impl RecordedRoom {
    fn active(&self) -> bool {
        self.non_recorders > 0
    }

    fn names(&self, device: &str) -> bool {
        self.recorder_devices.iter().any(|d| d == device)
    }

    fn active_event(&self) -> RecorderEvent {
        RecorderEvent::RoomActive {
            room: self.name.clone(),
            recording: self.recording.clone(),
            participants: self.non_recorders,
        }
    }
}

struct Stream {
    device: String,
    tx: mpsc::Sender<RecorderEvent>,
}

struct Directory {
    settings: RecordedRoomsSettings,
    metrics: Metrics,
    rooms: HashMap<u64, RecordedRoom>,
    streams: Vec<Stream>,
}

impl Directory {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        loop {
            let deadline = self.next_alert();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                () = sleep_until(deadline) => {}
            }
            self.raise_alerts(Instant::now());
        }
        // Every room reporter is gone too: nothing stays counted.
        let alerting = self.rooms.values().filter(|r| r.alerting).count();
        self.metrics
            .recorded_rooms_without_recorder
            .sub(i64::try_from(alerting).unwrap_or(i64::MAX));
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Opened {
                room_id,
                room,
                recording,
                recorder_devices,
            } => {
                self.rooms.insert(
                    room_id,
                    RecordedRoom {
                        name: room,
                        recording,
                        recorder_devices,
                        non_recorders: 0,
                        recorders: 0,
                        unrecorded_since: None,
                        alerting: false,
                    },
                );
            }
            Command::Presence {
                room_id,
                non_recorders,
                recorders,
            } => {
                let Some(room) = self.rooms.get_mut(&room_id) else {
                    return;
                };
                let was_active = room.active();
                room.non_recorders = non_recorders;
                room.recorders = recorders;
                let unrecorded = room.active() && room.recorders == 0;
                match (unrecorded, room.unrecorded_since) {
                    (true, None) => room.unrecorded_since = Some(Instant::now()),
                    (false, Some(_)) => {
                        room.unrecorded_since = None;
                        if room.alerting {
                            room.alerting = false;
                            self.metrics.recorded_rooms_without_recorder.dec();
                        }
                    }
                    _ => {}
                }
                let event = match (was_active, room.active()) {
                    (false, true) => room.active_event(),
                    (true, false) => RecorderEvent::RoomIdle {
                        room: room.name.clone(),
                    },
                    _ => return,
                };
                let devices = room.recorder_devices.clone();
                self.publish(&devices, &event);
            }
            Command::Gone { room_id } => {
                let Some(room) = self.rooms.remove(&room_id) else {
                    return;
                };
                if room.alerting {
                    self.metrics.recorded_rooms_without_recorder.dec();
                }
                if room.active() {
                    let event = RecorderEvent::RoomIdle { room: room.name };
                    self.publish(&room.recorder_devices, &event);
                }
            }
            Command::Subscribe { device, reply } => {
                let snapshot: Vec<RecorderEvent> = self
                    .rooms
                    .values()
                    .filter(|r| r.active() && r.names(&device))
                    .map(RecordedRoom::active_event)
                    .collect();
                let (tx, rx) = mpsc::channel(snapshot.len() + self.settings.stream_queue.max(1));
                for event in snapshot {
                    // The queue was sized to hold the whole snapshot.
                    let _ = tx.try_send(event);
                }
                if reply.send(rx).is_ok() {
                    self.streams.push(Stream { device, tx });
                }
            }
        }
    }

    /// Queues `event` on every stream of one of `devices`; a full stream is closed and counted.
    fn publish(&mut self, devices: &[String], event: &RecorderEvent) {
        let metrics = &self.metrics;
        self.streams.retain(|s| {
            if !devices.contains(&s.device) {
                return !s.tx.is_closed();
            }
            match s.tx.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(device = %s.device, "recorder event stream cannot keep up; closing it");
                    metrics.recorder_stream_overflows.inc();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    debug!(device = %s.device, "recorder event stream gone");
                    false
                }
            }
        });
    }

    /// The earliest time an unrecorded room starts counting in the gauge.
    fn next_alert(&self) -> Option<Instant> {
        self.rooms
            .values()
            .filter(|r| !r.alerting)
            .filter_map(|r| r.unrecorded_since)
            .min()
            .map(|since| since + self.settings.unrecorded_alert_after)
    }

    fn raise_alerts(&mut self, now: Instant) {
        for room in self.rooms.values_mut() {
            if let Some(since) = room.unrecorded_since
                && !room.alerting
                && now >= since + self.settings.unrecorded_alert_after
            {
                room.alerting = true;
                warn!(room = %room.name, "recorded room has participants but no recorder");
                self.metrics.recorded_rooms_without_recorder.inc();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{RecorderDevice, RecordingDocument};

    fn policy(room: &str) -> RecordingPolicy {
        let doc = RecordingDocument {
            v: 1,
            room: room.into(),
            recorders: vec![RecorderDevice {
                device: "rec-1".into(),
                identity_key: e2ee_frames::wire::b64_encode(&[1u8; 32]),
            }],
            issued_at: 1,
            retention_days: 7,
        };
        RecordingPolicy::sign(&doc, &e2ee_frames::DocumentSigner::from_secret(&[2u8; 32]))
    }

    #[tokio::test]
    async fn recorder_stream_that_cannot_keep_up_is_closed_and_counted() {
        let metrics = Metrics::new().expect("metrics");
        let settings = RecordedRoomsSettings {
            stream_queue: 2,
            ..RecordedRoomsSettings::default()
        };
        let directory = RecordedRooms::start(settings, metrics.clone());
        let p = policy("r");
        let mut reporter = directory.open(1, "r", Some(&p)).expect("recorded");
        reporter.presence(1, 0);
        // The snapshot holds the active room, whatever the queue bound.
        let mut slow = directory.subscribe("rec-1").await.expect("stream");
        let mut other = directory.subscribe("rec-2").await.expect("stream");
        // Two more events fit the queue; the third overflows it.
        reporter.presence(0, 0);
        reporter.presence(1, 0);
        reporter.presence(0, 0);
        // A round trip through the directory: it has handled every report before it answers.
        let _barrier = directory.subscribe("rec-3").await.expect("stream");
        let mut seen = Vec::new();
        while let Some(e) = slow.recv().await {
            seen.push(e);
        }
        // The queued events are delivered, then the stream ends: nothing was silently dropped
        // from a stream that goes on.
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(matches!(seen[0], RecorderEvent::RoomActive { .. }));
        assert!(matches!(seen[1], RecorderEvent::RoomIdle { .. }));
        assert_eq!(metrics.recorder_stream_overflows.get(), 1);
        // A stream for a device the policy does not name saw nothing and stays open.
        assert!(other.try_recv().is_err());
        assert!(!directory.tx.is_closed());
        // Reconnecting gets the current state (idle: nothing).
        let mut again = directory.subscribe("rec-1").await.expect("stream");
        reporter.presence(2, 0);
        assert!(matches!(
            again.recv().await,
            Some(RecorderEvent::RoomActive {
                participants: 2,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn unrecorded_room_counts_only_after_the_delay() {
        let metrics = Metrics::new().expect("metrics");
        let settings = RecordedRoomsSettings {
            unrecorded_alert_after: Duration::from_millis(300),
            ..RecordedRoomsSettings::default()
        };
        let directory = RecordedRooms::start(settings, metrics.clone());
        let p = policy("r");
        let mut reporter = directory.open(1, "r", Some(&p)).expect("recorded");
        reporter.presence(1, 0);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(metrics.recorded_rooms_without_recorder.get(), 0);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(metrics.recorded_rooms_without_recorder.get(), 1);
        // The room ends: no longer counted.
        drop(reporter);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(metrics.recorded_rooms_without_recorder.get(), 0);
    }
}
