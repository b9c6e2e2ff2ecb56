//! The recorder's live side: joining recorded rooms, decrypting every frame and handing it to
//! the archive ([`crate::sink`]).
//!
//! | module | what it holds |
//! |---|---|
//! | `admission` | the recorder's tokens (join, event stream), the admin keys it trusts and the check that a room's policy is signed by one of them and names it |
//! | `room` | one recorded room: the control loop (session, roster, keys, subscriptions, security code) |
//! | `chat` | the room's chat opened with the senders' keys (a message waits up to 5 s for its key, then is archived as unreadable) |
//! | `receiver` | the media receiver: reassembly, decryption, attribution by KID, presentation times |
//! | `pts` | presentation times from RTP timestamps |
//! | `writer` | the bounded queue to the archive and the thread that owns the session's sink |
//! | `events` | the recorder event stream: line parsing, heartbeat and reconnect backoff |
//! | `serve` | `recorder serve`: one task per active room, stopped on `room_idle` or SIGTERM |
//! | `metrics` | the counters and gauges (prometheus, with the `process_*` metrics) |
//! | `metrics_server` | `/metrics` and `/healthz` on `--metrics-listen` |

pub mod admission;
pub mod chat;
pub mod events;
pub mod metrics;
pub mod metrics_server;
pub mod pts;
pub mod receiver;
pub mod room;
pub mod serve;
pub mod writer;

pub use admission::{
    ApiCredentials, PolicyError, TrustedAdminKeys, check_policy, policy_retention,
};
pub use metrics::RecorderMetrics;
pub use room::{EndReason, RecordError, RoomConfig, RoomReport, record_room};

/// Resolves once `stop` is true (or its sender is gone). The guard `wait_for` returns is dropped
/// here, not held across the awaits of a `select!` (it is not `Send`).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
