//! `recorder serve`: watches the recorder event stream and records every active room whose
//! policy names this recorder, one task per room, several at once. A room whose policy (as the
//! event carries it) no trusted admin key signed, or that does not name this recorder, is
//! refused without joining it (logged with the room, counted); the join checks the policy the
//! room has then once more. A room's recording stops on `room_idle` (or by itself once only
//! recorders are left); on shutdown every session is asked to stop and finish within a timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use e2ee_frames::DeviceKeys;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::admission::check_policy;
#[cfg(doc)]
use super::events::events_url;
use super::events::{RoomUpdate, watch_events};
use super::metrics::{RecorderMetrics, SessionOutcome};
use super::room::{RoomConfig, record_room};
use crate::sink::SessionArchive;

/// How long shutdown waits for the sessions to finish (manifests written) before it gives up.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

struct Recording {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs until `shutdown` turns true, then stops every session and waits for them (at most
/// `shutdown_timeout`). `template` gives every room's settings (its `room` is replaced); the
/// event stream is read from `events` (see [`events_url`]).
pub async fn serve(
    template: RoomConfig,
    events: String,
    me: DeviceKeys,
    archive: Arc<dyn SessionArchive>,
    metrics: Arc<RecorderMetrics>,
    mut shutdown: watch::Receiver<bool>,
    shutdown_timeout: Duration,
) {
    let (updates_tx, mut updates) = mpsc::channel(256);
    let (watch_stop_tx, watch_stop) = watch::channel(false);
    let watcher = tokio::spawn(watch_events(
        events,
        template.credentials.clone(),
        me.device().as_str().to_owned(),
        updates_tx,
        metrics.clone(),
        watch_stop,
    ));
    let mut rooms: HashMap<String, Recording> = HashMap::new();
    loop {
        let update = tokio::select! {
            u = updates.recv() => u,
            _ = super::stopped(&mut shutdown) => None,
        };
        let Some(update) = update else { break };
        rooms.retain(|_, r| !r.task.is_finished());
        match update {
            RoomUpdate::Active { room, recording } => {
                if rooms.contains_key(&room) {
                    continue;
                }
                let trusted = &template.trusted_admin_keys;
                if let Err(e) = check_policy(Some(&recording), &room, &me, trusted) {
                    tracing::warn!(%room, error = %e, "room refused: not joined");
                    metrics.room_refused(e.refusal());
                    metrics.session_ended(SessionOutcome::RefusedPolicy);
                    continue;
                }
                tracing::info!(%room, "room active: recording");
                let (stop, stop_rx) = watch::channel(false);
                let mut config = template.clone();
                config.room = room.clone();
                let (me, archive, metrics) = (me.clone(), archive.clone(), metrics.clone());
                let task = tokio::spawn(async move {
                    // The outcome is counted and logged by `record_room`.
                    let _ = record_room(&config, me, archive, metrics, stop_rx).await;
                });
                rooms.insert(room, Recording { stop, task });
            }
            RoomUpdate::Idle { room } => {
                if let Some(r) = rooms.get(&room) {
                    tracing::info!(%room, "room idle: stopping its recording");
                    let _ = r.stop.send(true);
                }
            }
        }
    }
    let _ = watch_stop_tx.send(true);
    let _ = watcher.await;
    stop_all(rooms, shutdown_timeout).await;
}

/// Asks every session to stop and waits for them to finish, at most `timeout` in all; the ones
/// still running then are abandoned (logged: their manifest may be missing).
async fn stop_all(rooms: HashMap<String, Recording>, timeout: Duration) {
    for r in rooms.values() {
        let _ = r.stop.send(true);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    for (room, r) in rooms {
        let mut task = r.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            tracing::error!(%room, ?timeout, "recording did not finish before the shutdown timeout");
            task.abort();
        }
    }
}
