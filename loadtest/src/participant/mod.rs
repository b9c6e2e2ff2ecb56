//! One simulated participant: joins over the real signaling protocol, runs a real WebRTC
//! session with the SFU, exchanges SFrame keys through signaling, publishes encrypted media
//! and decrypts and measures every frame it receives.
//!
//! Three tasks per participant:
//! - the **control loop** ([`run_participant`], `session.rs`): the WebSocket, the peer
//!   connection's negotiation, subscriptions (or, in a room with receive slots, the receive
//!   sections of the first offer, `joined.receive_slots`, and no subscriptions: the SFU maps
//!   tracks onto them) and key exchange (protocol §2, §4): the WebSocket
//!   is a `call_client::session::Session`, the key rules `call_client::keys::KeyManager`
//!   (`keys.rs` maps messages to its inputs and its outputs to messages and key stores);
//! - the **publisher** (callers and presenters, once connected; `media_tasks.rs`): Opus test
//!   tone every 20 ms, VP8-shaped frames per layer at the layer's frame rate, each frame with a
//!   probe, sealed with SFrame and packetized into RTP. In a recorded room each track is held
//!   (`send_gate.rs`: no frame made, none sent, none counted) until `recording_ready` names it;
//!   meanwhile one padding-only RTP packet per layer makes the SFU publish the track, and its
//!   video starts with a keyframe;
//! - the **receiver** (`media_tasks.rs`): every RTP packet of every remote track, VP8 frames
//!   reassembled, every frame decrypted and measured ([`FrameOpener`]).
//!
//! This file holds what they share: the participant's spec, counters, outcome and errors.

mod keys;
mod media_tasks;
mod send_gate;
mod session;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::watch;

use crate::media::vp8_frames::SimulcastLayer;
use crate::outage::SentStreams;
use crate::receiver_stats::{ReceiverStats, StatsTotals};
use crate::secure_media::{FrameOpener, FrameSealer};
use call_client::peer::PeerError;
use call_client::protocol::{Subscription, SubscriptionUpdate, TrackInfo, TrackKind, TrackSource};
use session::Session;

/// The screen share a presenter sends: one 2.5 Mbit/s layer.
pub const SCREEN_LAYER: SimulcastLayer = SimulcastLayer {
    rid: "",
    width: 1920,
    height: 1080,
    bitrate_bps: 2_500_000,
};

/// Screen-share frame rate.
pub const SCREEN_FPS: u32 = 15;

/// Server errors kept per participant for the run's diagnostics.
const MAX_ERRORS_KEPT: usize = 4;

/// What a participant does in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Meeting caller: publishes Opus and three-layer camera simulcast, subscribes to all.
    Caller,
    /// Broadcast presenter: publishes Opus and a single-layer screen share.
    Presenter,
    /// Broadcast viewer: subscribes only.
    Viewer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Caller => "caller",
            Role::Presenter => "presenter",
            Role::Viewer => "viewer",
        }
    }

    fn publishes(self) -> bool {
        self != Role::Viewer
    }
}

/// How one participant is run.
#[derive(Debug, Clone)]
pub struct ParticipantSpec {
    /// Index in the run (the probe's sender field).
    pub index: u16,
    /// Role.
    pub role: Role,
    /// Room name.
    pub room: String,
    /// WebSocket URL of `/v1/rtc`.
    pub ws_url: String,
    /// Access token.
    pub token: String,
    /// The run's clock origin (probe times are µs since it).
    pub epoch: Instant,
    /// Seed of frame sizes.
    pub seed: u64,
    /// The SFU's media address and the impairment relay in front of it, when media is impaired.
    pub media_via: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Fault injection: ignore every key envelope until this participant has sent a
    /// `key_request` (it then decrypts only through the key policy's recovery).
    pub miss_keys_until_request: bool,
}

/// Counters shared with the runner while the run goes on.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Participants whose transport connected.
    pub joined: AtomicU64,
    /// Frames decrypted so far, over all participants.
    pub frames_decrypted: AtomicU64,
    /// Frames sent so far, over all publishers.
    pub frames_sent: AtomicU64,
    /// The next sequence number of every stream sealed so far, over all publishers.
    pub sent_streams: SentStreams,
}

/// What one participant measured.
#[derive(Debug, Clone, Default)]
pub struct ParticipantOutcome {
    /// Whether its transport connected.
    pub joined: bool,
    /// From opening the WebSocket to a connected transport.
    pub join_ms: Option<f64>,
    /// From opening the WebSocket to the first decrypted frame.
    pub first_frame_ms: Option<f64>,
    /// Received streams' statistics.
    pub totals: StatsTotals,
    /// Everything the receiver measured, per stream and over time (for outages).
    pub media: ReceiverStats,
    /// Frames that failed SFrame authentication.
    pub decrypt_failures: u64,
    /// Frames that arrived before their key.
    pub frames_without_key: u64,
    /// `key_request`s sent for frames that arrived without a key.
    pub key_requests_sent: u64,
    /// VP8 frames lost to a missing RTP packet before decryption.
    pub broken_frames: u64,
    /// Frames this participant published.
    pub frames_sent: u64,
    /// Envelopes refused (bad signature, unknown sender...).
    pub envelope_failures: u64,
    /// `media_reset`s received (each started a fresh media session).
    pub media_resets: u64,
    /// SFU `offer`s received after the first answer: renegotiations others' joins (or
    /// publications) cost this participant. 0 in a room with receive slots.
    pub offers_after_join: u64,
    /// The first server errors (code: message).
    pub errors: Vec<String>,
    /// Why the participant stopped early, if it did.
    pub failure: Option<String>,
}

/// Why a participant stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ParticipantError {
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// The server closed the connection or removed the participant.
    #[error("server ended the session: {0}")]
    Closed(String),
    /// The server refused the join.
    #[error("join refused: {0}")]
    Refused(String),
    /// The peer connection failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// No media node is attached to the signaling service.
    #[error("signaling has no media node (joined.media is false)")]
    NoMedia,
    /// A sender key could not be made.
    #[error("sender key: {0}")]
    Key(String),
}

/// Receiving state shared by the control loop (installs keys) and the receiver task.
type SharedOpener = Arc<Mutex<FrameOpener>>;

/// Sending state shared by the control loop (ratchets) and the publisher task.
type SharedSealer = Arc<Mutex<FrameSealer>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a task panicked; its state is still the best there is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a load-test participant subscribes to: every track of `tracks` that `me` does not
/// publish, cameras at 320×180 (the small layer), everything else as sent. Both viewer engines
/// send this set, so their runs measure the same subscriptions.
pub fn subscriptions_for(
    tracks: &std::collections::BTreeMap<String, TrackInfo>,
    me: &str,
) -> SubscriptionUpdate {
    let subscriptions = tracks
        .values()
        .filter(|t| t.publisher != me)
        .map(|t| {
            let small = t.kind == TrackKind::Video && t.source == TrackSource::Camera;
            Subscription {
                track: t.id.clone(),
                layer: None,
                width: small.then_some(320),
                height: small.then_some(180),
            }
        })
        .collect();
    SubscriptionUpdate { subscriptions }
}

/// Runs one participant until `stop` turns true (or the session fails).
pub async fn run_participant(
    spec: ParticipantSpec,
    counters: Arc<LiveCounters>,
    mut stop: watch::Receiver<bool>,
) -> ParticipantOutcome {
    let mut outcome = ParticipantOutcome::default();
    let opener: SharedOpener = Arc::new(Mutex::new(FrameOpener::new()));
    let started = Instant::now();
    let result = Session::run(&spec, &counters, &opener, &mut stop, &mut outcome, started).await;
    if let Err(e) = result {
        outcome.failure = Some(e.to_string());
    }
    let opener = lock(&opener);
    outcome.totals = opener.stats().totals();
    outcome.media = opener.stats().clone();
    outcome.decrypt_failures = opener.decrypt_failures();
    outcome.frames_without_key = opener.frames_without_key();
    outcome.first_frame_ms = opener.first_frame_us().map(|us| {
        let started_us = started.duration_since(spec.epoch).as_micros() as f64;
        ((us as f64 - started_us) / 1000.0).max(0.0)
    });
    outcome
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held in a `select!` across awaits.
    let _ = stop.wait_for(|s| *s).await;
}

fn keep_error(outcome: &mut ParticipantOutcome, e: String) {
    if outcome.errors.len() < MAX_ERRORS_KEPT {
        outcome.errors.push(e);
    }
}
