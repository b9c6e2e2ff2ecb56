//! The recorder's metrics (docs/metrics.md, "Recorder"): `prometheus` counters and gauges in
//! one registry per process, with the `process_*` metrics of the `process-metrics` collector, as
//! the SFU and signaling have them. Every labelled series is resolved once here, so a count on
//! the frame path is one atomic add (no label lookup, no lock). `metrics_server.rs` serves the
//! text on `GET /metrics`.

use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::{Encoder as _, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

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

/// Why a room was refused before anything of it was recorded
/// (`recorder_rooms_refused_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomRefusal {
    /// The room carries no recording policy.
    NoPolicy,
    /// The policy blob or its document is malformed.
    Malformed,
    /// The policy is signed by an admin key this recorder does not trust.
    UntrustedPolicy,
    /// The policy presents a trusted admin key, but its signature does not verify under it.
    BadSignature,
    /// The policy is for another room.
    OtherRoom,
    /// The policy does not name this recorder (device id and identity key).
    NotNamed,
    /// The service refused the recorder's join (`role_not_allowed`).
    NotAdmitted,
}

impl RoomRefusal {
    /// Every reason, in label order.
    pub const ALL: [RoomRefusal; 7] = [
        RoomRefusal::NoPolicy,
        RoomRefusal::Malformed,
        RoomRefusal::UntrustedPolicy,
        RoomRefusal::BadSignature,
        RoomRefusal::OtherRoom,
        RoomRefusal::NotNamed,
        RoomRefusal::NotAdmitted,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RoomRefusal::NoPolicy => "no_policy",
            RoomRefusal::Malformed => "malformed",
            RoomRefusal::UntrustedPolicy => "untrusted_policy",
            RoomRefusal::BadSignature => "bad_signature",
            RoomRefusal::OtherRoom => "other_room",
            RoomRefusal::NotNamed => "not_named",
            RoomRefusal::NotAdmitted => "not_admitted",
        }
    }
}

/// What became of a chat message the recorder received (`recorder_chat_messages_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatResult {
    /// Opened and handed to the archive.
    Archived,
    /// Archived as unreadable (no key for it in time, or it did not authenticate).
    Unreadable,
}

impl ChatResult {
    /// Every result, in label order.
    pub const ALL: [ChatResult; 2] = [ChatResult::Archived, ChatResult::Unreadable];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatResult::Archived => "archived",
            ChatResult::Unreadable => "unreadable",
        }
    }
}

/// The recorder's metrics, shared by every room (one set per process).
#[derive(Debug)]
pub struct RecorderMetrics {
    registry: Registry,
    active_sessions: IntGauge,
    frames_decrypted: IntCounter,
    /// One series per [`DecryptFailure`], indexed by it.
    decrypt_failures: [IntCounter; 3],
    /// One series per [`DropReason`], indexed by it.
    frames_dropped: [IntCounter; 4],
    bytes_written: IntCounter,
    /// One series per [`SessionOutcome`], indexed by it.
    sessions: [IntCounter; 4],
    /// One series per [`RoomRefusal`], indexed by it.
    rooms_refused: [IntCounter; 7],
    /// One series per [`ChatResult`], indexed by it.
    chat_messages: [IntCounter; 2],
    event_stream_connects: IntCounter,
}

/// A metric could not be registered: a duplicate or invalid name, a programming error.
#[derive(Debug, thiserror::Error)]
#[error("metrics registration: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Registers `metric` in `registry` and hands it back.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: M,
) -> Result<M, MetricsError> {
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A counter family with one label, every series of `labels` resolved (and so exported at 0
/// before its first count), in their order.
fn labelled<const N: usize>(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    labels: [&'static str; N],
) -> Result<[IntCounter; N], MetricsError> {
    let family = registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), &[label])?,
    )?;
    Ok(labels.map(|value| family.with_label_values(&[value])))
}

impl RecorderMetrics {
    /// A fresh set in a registry of its own (with the process collector), shared.
    pub fn new() -> Arc<Self> {
        // The names, help texts and labels are the constants below, registered once in a fresh
        // registry: registration fails only if they are invalid or duplicated, which the unit
        // test `every_family_is_exported` would show.
        Arc::new(Self::build().expect("the recorder's metrics register"))
    }

    fn build() -> Result<Self, MetricsError> {
        let r = Registry::new();
        r.register(Box::new(process_metrics::ProcessCollector::for_self()?))?;
        Ok(RecorderMetrics {
            active_sessions: registered(
                &r,
                IntGauge::new("recorder_active_sessions", "Rooms being recorded now.")?,
            )?,
            frames_decrypted: registered(
                &r,
                IntCounter::new(
                    "recorder_frames_decrypted_total",
                    "Frames the recorder decrypted.",
                )?,
            )?,
            decrypt_failures: labelled(
                &r,
                "recorder_decrypt_failures_total",
                "Frames the recorder received but could not decrypt, by reason.",
                "reason",
                DecryptFailure::ALL.map(DecryptFailure::as_str),
            )?,
            frames_dropped: labelled(
                &r,
                "recorder_frames_dropped_total",
                "Frames that did not reach the archive, by reason.",
                "reason",
                DropReason::ALL.map(DropReason::as_str),
            )?,
            bytes_written: registered(
                &r,
                IntCounter::new(
                    "recorder_bytes_written_total",
                    "Bytes the archive wrote to its store (encrypted), reported at each \
                     session's end.",
                )?,
            )?,
            sessions: labelled(
                &r,
                "recorder_sessions_total",
                "Recording sessions ended, by outcome.",
                "outcome",
                SessionOutcome::ALL.map(SessionOutcome::as_str),
            )?,
            rooms_refused: labelled(
                &r,
                "recorder_rooms_refused_total",
                "Rooms the recorder refused to record before anything of them was archived, \
                 by reason.",
                "reason",
                RoomRefusal::ALL.map(RoomRefusal::as_str),
            )?,
            chat_messages: labelled(
                &r,
                "recorder_chat_messages_total",
                "Chat messages the recorder received, by what became of them.",
                "result",
                ChatResult::ALL.map(ChatResult::as_str),
            )?,
            event_stream_connects: registered(
                &r,
                IntCounter::new(
                    "recorder_event_stream_connects_total",
                    "Times `recorder serve` opened the recorder event stream.",
                )?,
            )?,
            registry: r,
        })
    }

    /// A session started recording (its sink is open).
    pub fn session_started(&self) {
        self.active_sessions.inc();
    }

    /// A started session ended.
    pub fn session_stopped(&self) {
        self.active_sessions.dec();
    }

    /// A session attempt ended with `outcome`.
    pub fn session_ended(&self, outcome: SessionOutcome) {
        self.sessions[outcome as usize].inc();
    }

    /// A room was refused for `why` (its session attempt is counted apart, by
    /// [`Self::session_ended`]).
    pub fn room_refused(&self, why: RoomRefusal) {
        self.rooms_refused[why as usize].inc();
    }

    /// A frame decrypted.
    pub fn frame_decrypted(&self) {
        self.frames_decrypted.inc();
    }

    /// A frame did not decrypt.
    pub fn decrypt_failed(&self, why: DecryptFailure) {
        self.decrypt_failures[why as usize].inc();
    }

    /// A frame was dropped.
    pub fn frame_dropped(&self, why: DropReason) {
        self.frames_dropped[why as usize].inc();
    }

    /// The archive wrote `bytes` (encrypted) to its store.
    pub fn bytes_written(&self, bytes: u64) {
        self.bytes_written.inc_by(bytes);
    }

    /// A chat message was archived (opened, or as unreadable).
    pub fn chat_message(&self, result: ChatResult) {
        self.chat_messages[result as usize].inc();
    }

    /// Chat messages that ended as `result`.
    pub fn chat_messages(&self, result: ChatResult) -> u64 {
        self.chat_messages[result as usize].get()
    }

    /// The event stream (re)connected.
    pub fn event_stream_connected(&self) {
        self.event_stream_connects.inc();
    }

    /// Sessions recording now.
    pub fn active_sessions(&self) -> i64 {
        self.active_sessions.get()
    }

    /// Frames decrypted so far.
    pub fn frames_decrypted(&self) -> u64 {
        self.frames_decrypted.get()
    }

    /// Frames that failed to decrypt for `why`.
    pub fn decrypt_failures(&self, why: DecryptFailure) -> u64 {
        self.decrypt_failures[why as usize].get()
    }

    /// Frames dropped for `why`.
    pub fn frames_dropped(&self, why: DropReason) -> u64 {
        self.frames_dropped[why as usize].get()
    }

    /// Sessions that ended with `outcome`.
    pub fn sessions(&self, outcome: SessionOutcome) -> u64 {
        self.sessions[outcome as usize].get()
    }

    /// Rooms refused for `why`.
    pub fn rooms_refused(&self, why: RoomRefusal) -> u64 {
        self.rooms_refused[why as usize].get()
    }

    /// The Prometheus text exposition of every metric, the process' included.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for I/O reasons; a failure would be a malformed
        // family, which registration already refuses.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exported() {
        let metrics = RecorderMetrics::new();
        metrics.frame_dropped(DropReason::Backlog);
        metrics.decrypt_failed(DecryptFailure::NoKey);
        metrics.room_refused(RoomRefusal::UntrustedPolicy);
        metrics.session_started();
        metrics.bytes_written(1234);
        metrics.chat_message(ChatResult::Unreadable);
        let text = metrics.render();
        for line in [
            "recorder_active_sessions 1",
            "recorder_frames_decrypted_total 0",
            "recorder_decrypt_failures_total{reason=\"no_key\"} 1",
            "recorder_decrypt_failures_total{reason=\"replay\"} 0",
            "recorder_frames_dropped_total{reason=\"backlog\"} 1",
            "recorder_frames_dropped_total{reason=\"incomplete\"} 0",
            "recorder_bytes_written_total 1234",
            "recorder_sessions_total{outcome=\"finished\"} 0",
            "recorder_sessions_total{outcome=\"refused_policy\"} 0",
            "recorder_rooms_refused_total{reason=\"untrusted_policy\"} 1",
            "recorder_rooms_refused_total{reason=\"not_admitted\"} 0",
            "recorder_event_stream_connects_total 0",
            "recorder_chat_messages_total{result=\"archived\"} 0",
            "recorder_chat_messages_total{result=\"unreadable\"} 1",
            "# TYPE recorder_active_sessions gauge",
            "# TYPE recorder_sessions_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        for name in process_metrics::METRIC_NAMES {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("# TYPE {name} "))),
                "{name} missing:\n{text}"
            );
        }
        // Read from /proc at the scrape: this process has memory, and CPU time (a float).
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse::<f64>().ok())
        };
        assert!(
            value("process_resident_memory_bytes").is_some_and(|b| b > 0.0),
            "{text}"
        );
        assert!(
            value("process_cpu_seconds_total").is_some_and(|s| s >= 0.0),
            "{text}"
        );
    }

    #[test]
    fn two_sets_in_one_process_are_independent() {
        // Every in-process test builds its own set: no global registry.
        let (a, b) = (RecorderMetrics::new(), RecorderMetrics::new());
        a.frame_decrypted();
        assert_eq!((a.frames_decrypted(), b.frames_decrypted()), (1, 0));
    }
}
