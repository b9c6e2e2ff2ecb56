//! The sans-IO viewer engine: many simulated viewers per event loop, one loop per core.
//!
//! A viewer of the `async` engine ([`crate::participant`]) is a full `webrtc`-crate session:
//! its own tasks, timers and channels for every packet. At 500 viewers that costs more CPU than
//! the SFU it measures. Here every viewer's media is an `rtc` (sans-IO) peer connection driven
//! the way the SFU drives its peers (`sfu/src/transport/shard/`): a worker thread owns a set of
//! viewers, waits on one `epoll` for all their sockets, its timers and its commands, reads each
//! ready socket with `recvmmsg`, decrypts the SRTP of established streams itself
//! (`unprotect_rtp_in_place`, the SFU's short receive path) straight into reassembly, SFrame decryption
//! and measurement, feeds every other datagram to the viewer's `handle_read`, then drives every
//! viewer it touched (`poll_write` → `sendmmsg`, `poll_event`, `poll_read`) and fires the due
//! `handle_timeout`s and the viewers' own RTCP (receiver reports, NACKs, transport-cc feedback).
//! No task, channel or lock per packet.
//!
//! Every viewer still does ICE, DTLS and SRTP for real, decrypts **every** frame it receives
//! with the SFrame keys it got through signaling and checks the frame's probe (the same
//! [`crate::secure_media::FrameOpener`] and [`crate::receiver_stats::ReceiverStats`] as the
//! `async` engine, so the report keeps every field).
//!
//! Each viewer has its own UDP socket (the SFU tells peers apart by their address); the
//! reasons are in `loadtest/README.md` ("The sans-IO viewer engine").
//!
//! Signaling stays on the scenario's Tokio runtime ([`signaling`]), on the client library's
//! session (`call_client::session`) and key policy (`call_client::keys`) like every other
//! participant's: it hands SDP and keys to the viewer's worker as [`worker::Command`]s and hears
//! back [`worker::MediaEvent`]s (connected, failed, a frame without its key), at control rate.
//!
//! | file | job |
//! |---|---|
//! | `engine.rs` | [`ViewerEngine`]: the worker threads, which viewer goes to which, stop |
//! | `worker.rs` | one worker's loop: epoll, commands, timers, the pass that drives viewers |
//! | `viewer_peer.rs` | one viewer's `rtc` peer connection: loopback-only offer, answers |
//! | `receiver.rs` | one viewer's received media: VP8 reassembly, SFrame, probes, stats |
//! | `feedback.rs` | the RTCP a viewer owes the SFU: receiver reports, NACKs, transport-cc |
//! | `datagrams.rs` | `recvmmsg`/`sendmmsg` on a viewer's socket |
//! | `signaling.rs` | one viewer's `call_client::session` and key policy, and what they hand the worker |

mod datagrams;
mod engine;
mod feedback;
mod receiver;
mod signaling;
mod viewer_peer;
mod worker;

pub(crate) use datagrams::{RECV_BATCH, RecvBatch};
pub use engine::{EngineStats, ViewerEngine};
pub(crate) use receiver::{MediaReceiver, RtpView};
pub use signaling::run_viewer;

/// Which engine runs a broadcast's viewers (`--viewer-engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewerEngineKind {
    /// Viewers on the sans-IO `rtc` core, many per event loop ([`ViewerEngine`]).
    #[default]
    Sansio,
    /// Every viewer a full `webrtc`-crate session ([`crate::participant`]).
    Async,
}

impl std::str::FromStr for ViewerEngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sansio" => Ok(Self::Sansio),
            "async" => Ok(Self::Async),
            other => Err(format!(
                "{other:?} is not a viewer engine (sansio or async)"
            )),
        }
    }
}

impl std::fmt::Display for ViewerEngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sansio => "sansio",
            Self::Async => "async",
        })
    }
}
