//! The media receiver: one task per recorded room that owns the receiving key store and every
//! stream's reassembly and clock. It takes the peer's RTP packets, puts VP8 frames back together,
//! decrypts every frame and queues it for the writer; the control loop tells it the keys and the
//! room's tracks over a channel, so nothing here is shared or locked.
//!
//! A frame belongs to the track its authenticated KID names: the sender's slot and its stream
//! (microphone, camera, screen), never only the media section the SFU chose to deliver it on. A
//! section that the SFU labelled with another track is counted (`track_mismatches`), as the
//! web client does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use call_client::keys::ReceiverKey;
use call_client::media::{OpenError, Vp8Header, Vp8Reassembler, open_frame};
use call_client::peer::{Incoming, RtpCodecKind};
use e2ee_frames::{Codec, Header, KeyStore, Kid, Stream, clear_prefix_len};
use tokio::sync::mpsc;

use super::metrics::{DecryptFailure, DropReason, RecorderMetrics};
use super::pts::RtpClock;
use super::writer::{OwnedFrame, WriterQueue};
use crate::sink::{MediaKind, TrackMeta};

/// Least time between two warnings of one kind (backlog, undecryptable frames) of one room.
const WARN_EVERY: Duration = Duration::from_secs(5);

/// A published track the recorder receives, as the control loop knows it.
#[derive(Debug, Clone)]
pub struct TrackRoute {
    /// What the archive is told about it (width and height filled in from the first keyframe).
    pub meta: TrackMeta,
    /// The publisher's slot (the KID's).
    pub publisher_slot: u16,
    /// The SFrame stream its frames are sealed on.
    pub stream: Stream,
}

/// What the control loop tells the receiver.
#[derive(Debug)]
pub enum ReceiverCommand {
    /// A key from an envelope.
    InstallKey(ReceiverKey),
    /// A sender left: its keys go.
    ForgetSender {
        /// Its slot.
        slot: u16,
    },
    /// A (new) peer connection's packets: they replace the previous one's.
    Media(mpsc::UnboundedReceiver<Incoming>),
    /// The room's tracks now, and which media section carries which track (from the SFU's SDP).
    Tracks {
        /// Every track of the room the recorder receives, by track id.
        tracks: HashMap<String, TrackRoute>,
        /// Track id by mid.
        by_mid: HashMap<String, String>,
    },
}

/// A frame could not be opened for want of a key: the control loop asks its sender for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingKey {
    /// The sender's slot.
    pub slot: u16,
    /// The frame's generation.
    pub generation: u16,
}

/// What one room's receiver counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverReport {
    /// Frames decrypted.
    pub frames_decrypted: u64,
    /// Frames without a key (never wrapped to the recorder, or not yet).
    pub frames_without_key: u64,
    /// Replayed frames.
    pub replays: u64,
    /// Frames that did not parse or authenticate.
    pub frames_refused: u64,
    /// Frames queued for the writer.
    pub frames_queued: u64,
    /// Frames the full writer queue refused.
    pub frames_backlogged: u64,
    /// VP8 frames lost to a missing packet.
    pub incomplete_frames: u64,
    /// Decrypted frames of no track the room announced for their sender and stream.
    pub unattributed_frames: u64,
    /// Frames delivered on a media section the SFU labelled with another track.
    pub track_mismatches: u64,
    /// Tracks announced to the archive.
    pub tracks_announced: u64,
}

struct TrackState {
    id: Arc<str>,
    clock: RtpClock,
    announced: bool,
}

/// The receiver's state (owned by its task).
pub struct MediaReceiver {
    keys: KeyStore,
    tracks: HashMap<String, TrackRoute>,
    by_mid: HashMap<String, String>,
    clocks: HashMap<String, TrackState>,
    video: HashMap<u32, Vp8Reassembler>,
    started: Instant,
    queue: WriterQueue,
    metrics: Arc<RecorderMetrics>,
    missing_keys: mpsc::Sender<MissingKey>,
    report: ReceiverReport,
    last_backlog_log: Option<Instant>,
    last_failure_log: Option<Instant>,
    room: String,
}

impl MediaReceiver {
    /// A receiver for the session that started at `started`.
    pub fn new(
        room: &str,
        started: Instant,
        queue: WriterQueue,
        metrics: Arc<RecorderMetrics>,
        missing_keys: mpsc::Sender<MissingKey>,
    ) -> Self {
        MediaReceiver {
            keys: KeyStore::default(),
            tracks: HashMap::new(),
            by_mid: HashMap::new(),
            clocks: HashMap::new(),
            video: HashMap::new(),
            started,
            queue,
            metrics,
            missing_keys,
            report: ReceiverReport::default(),
            last_backlog_log: None,
            last_failure_log: None,
            room: room.to_owned(),
        }
    }

    /// Runs until the command channel closes; returns what it counted.
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<ReceiverCommand>,
    ) -> ReceiverReport {
        let mut incoming: Option<mpsc::UnboundedReceiver<Incoming>> = None;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(ReceiverCommand::Media(media)) => {
                        // A new peer connection: streams restart with new SSRCs.
                        self.video.clear();
                        incoming = Some(media);
                    }
                    Some(c) => self.command(c),
                    None => break,
                },
                packet = async { incoming.as_mut()?.recv().await }, if incoming.is_some() => match packet {
                    Some(p) => self.packet(p),
                    None => incoming = None,
                },
            }
        }
        // Packets that arrived before the end are still decrypted.
        if let Some(media) = &mut incoming {
            while let Ok(p) = media.try_recv() {
                self.packet(p);
            }
        }
        self.report
    }

    /// Carries out a control-loop command.
    fn command(&mut self, command: ReceiverCommand) {
        match command {
            ReceiverCommand::InstallKey(key) => {
                if let Err(e) = self.keys.install(
                    Instant::now(),
                    key.slot,
                    key.generation,
                    key.step,
                    key.suite,
                    key.key,
                ) {
                    tracing::warn!(room = %self.room, device = %key.device, error = %e, "key not installed");
                }
            }
            ReceiverCommand::ForgetSender { slot } => self.keys.remove_sender(slot),
            ReceiverCommand::Tracks { tracks, by_mid } => {
                self.tracks = tracks;
                self.by_mid = by_mid;
            }
            // `run` takes a new peer connection's packets itself.
            ReceiverCommand::Media(_) => {}
        }
    }

    /// One RTP packet of a remote track.
    fn packet(&mut self, incoming: Incoming) {
        let now = Instant::now();
        let arrival = now.saturating_duration_since(self.started);
        let header = &incoming.packet.header;
        let mid = incoming.mid.as_deref();
        if incoming.kind == RtpCodecKind::Audio {
            let wire = call_client::media::rtp::opus_frame(&incoming.packet.payload);
            self.open(now, Codec::Opus, wire, header.timestamp, true, mid, arrival);
            return;
        }
        let reassembler = self.video.entry(header.ssrc).or_default();
        let before = reassembler.counts().incomplete_frames;
        if reassembler
            .push(
                header.sequence_number,
                header.timestamp,
                header.marker,
                &incoming.packet.payload,
            )
            .is_err()
        {
            return;
        }
        let mut frames = Vec::new();
        while let Some(frame) = reassembler.next_frame() {
            frames.push((frame.timestamp, frame.keyframe, frame.data.to_vec()));
        }
        let incomplete = reassembler.counts().incomplete_frames - before;
        for _ in 0..incomplete {
            self.metrics.frame_dropped(DropReason::Incomplete);
        }
        self.report.incomplete_frames += incomplete;
        for (timestamp, keyframe, wire) in frames {
            self.open(now, Codec::Vp8, &wire, timestamp, keyframe, mid, arrival);
        }
    }

    #[expect(clippy::too_many_arguments, reason = "one frame's facts, passed once")]
    fn open(
        &mut self,
        now: Instant,
        codec: Codec,
        wire: &[u8],
        timestamp: u32,
        keyframe: bool,
        mid: Option<&str>,
        arrival: Duration,
    ) {
        let mut plaintext = Vec::with_capacity(wire.len());
        let received = match open_frame(&mut self.keys, now, codec, wire, &mut plaintext) {
            Ok(r) => r,
            Err(e) => {
                self.count_failure(codec, wire, &e);
                if self
                    .last_failure_log
                    .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
                {
                    self.last_failure_log = Some(now);
                    let r = &self.report;
                    tracing::warn!(
                        room = %self.room, error = %e, without_key = r.frames_without_key,
                        replays = r.replays, refused = r.frames_refused,
                        "frames not decrypted (recorder_decrypt_failures_total)"
                    );
                }
                return;
            }
        };
        self.report.frames_decrypted += 1;
        self.metrics.frame_decrypted();
        let Some(track_id) = self.attribute(received.kid, mid) else {
            self.report.unattributed_frames += 1;
            self.metrics.frame_dropped(DropReason::Unattributed);
            return;
        };
        let Some(route) = self.tracks.get(&track_id) else {
            return;
        };
        let clock_rate = if route.meta.kind == MediaKind::Audio {
            48_000
        } else {
            90_000
        };
        let state = self
            .clocks
            .entry(track_id.clone())
            .or_insert_with(|| TrackState {
                id: Arc::from(track_id.as_str()),
                clock: RtpClock::new(clock_rate),
                announced: false,
            });
        if !state.announced {
            let mut meta = route.meta.clone();
            if meta.kind == MediaKind::Video
                && let Ok(h) = Vp8Header::parse(&plaintext)
                && let Some((w, hgt)) = h.picture_size
            {
                (meta.width, meta.height) = (w, hgt);
            }
            self.queue.track(meta);
            state.announced = true;
            self.report.tracks_announced += 1;
        }
        let frame = OwnedFrame {
            track_id: state.id.clone(),
            pts: state.clock.pts(timestamp, arrival),
            keyframe,
            data: plaintext,
        };
        match self.queue.frame(frame) {
            Ok(()) => self.report.frames_queued += 1,
            Err(_) => {
                self.report.frames_backlogged += 1;
                if self
                    .last_backlog_log
                    .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
                {
                    self.last_backlog_log = Some(now);
                    tracing::warn!(
                        room = %self.room,
                        dropped = self.report.frames_backlogged,
                        "archive writer behind: frames dropped (recorder_frames_dropped_total{{reason=\"backlog\"}})"
                    );
                }
            }
        }
    }

    /// The track a decrypted frame belongs to: the one its KID's sender publishes on its
    /// stream. A media section the SFU labelled otherwise is counted.
    fn attribute(&mut self, kid: Kid, mid: Option<&str>) -> Option<String> {
        let by_kid = self
            .tracks
            .iter()
            .find(|(_, t)| t.publisher_slot == kid.slot() && t.stream == kid.stream())
            .map(|(id, _)| id.clone())?;
        if let Some(labelled) = mid.and_then(|m| self.by_mid.get(m))
            && *labelled != by_kid
        {
            self.report.track_mismatches += 1;
        }
        Some(by_kid)
    }

    fn count_failure(&mut self, codec: Codec, wire: &[u8], e: &OpenError) {
        match e {
            OpenError::KeyMissing(_) => {
                self.report.frames_without_key += 1;
                self.metrics.decrypt_failed(DecryptFailure::NoKey);
                if let Some(kid) = frame_kid(codec, wire) {
                    // Full: a request is already on its way (they are rate-limited anyway).
                    let _ = self.missing_keys.try_send(MissingKey {
                        slot: kid.slot(),
                        generation: kid.generation(),
                    });
                }
            }
            OpenError::Replay(_) => {
                self.report.replays += 1;
                self.metrics.decrypt_failed(DecryptFailure::Replay);
            }
            _ => {
                self.report.frames_refused += 1;
                self.metrics.decrypt_failed(DecryptFailure::Refused);
            }
        }
    }
}

/// The KID of a sealed frame (behind its clear prefix), when its header parses.
fn frame_kid(codec: Codec, wire: &[u8]) -> Option<Kid> {
    let rest = wire.get(clear_prefix_len(codec, wire)..)?;
    let (header, _) = Header::parse(rest).ok()?;
    Kid::from_u64(header.kid).ok()
}

/// The SFrame stream a track of `source` is sealed on.
pub fn stream_of(source: call_client::protocol::TrackSource) -> Stream {
    use call_client::protocol::TrackSource;
    match source {
        TrackSource::Microphone => Stream::Audio,
        TrackSource::Camera => Stream::Camera,
        TrackSource::Screen => Stream::ScreenVideo,
        TrackSource::ScreenAudio => Stream::ScreenAudio,
    }
}
