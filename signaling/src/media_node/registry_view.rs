//! Signaling's view of the SFU node registry on Redis (`[media] redis_url`, crate
//! `sfu-registry`): one task reads the live node records once a second and publishes them on a
//! `watch` channel; the pool reads the latest copy when it places a room, so placement never
//! waits on Redis. A node's record is matched to the node by its control API URL (what the
//! node publishes as `--control-url` and signaling lists in `--sfu-url`).
//!
//! When Redis cannot be read the view says so (`readable: false`) and placement falls back to
//! what signaling itself sees (each node's event stream, the rooms it placed): a Redis restart
//! never stops new rooms. Reads are counted (`signaling_registry_reads_total{result}`).

use std::collections::HashMap;
use std::time::Duration;

use sfu_registry::{NodeRecord, Registry};
use tokio::sync::watch;

use super::placement::Registered;

/// How often the registry is read: the nodes' heartbeat interval.
pub const READ_EVERY: Duration = Duration::from_secs(1);

/// The registry as last read.
#[derive(Clone, Debug, Default)]
pub struct RegistrySnapshot {
    /// The last read succeeded (false before the first and after a failed one).
    pub readable: bool,
    /// Live records by control URL (without a trailing `/`).
    pub by_control_url: HashMap<String, NodeRecord>,
    /// Reads that succeeded, since the start.
    pub reads_ok: u64,
    /// Reads that failed (Redis unreachable, slow or refusing), since the start.
    pub reads_failed: u64,
}

impl RegistrySnapshot {
    /// The live record of the node reached at `control_url`, if the last read found one.
    pub fn record(&self, control_url: &str) -> Option<&NodeRecord> {
        self.by_control_url.get(normalise(control_url))
    }

    /// What the registry says of the node reached at `control_url`.
    pub fn registered(&self, control_url: &str) -> Registered {
        if !self.readable {
            return Registered::Unknown;
        }
        match self.record(control_url) {
            Some(r) => Registered::Live {
                participants: r.participants,
                capacity: r.capacity,
                draining: r.draining,
            },
            None => Registered::Absent,
        }
    }
}

/// A URL without its trailing `/`, so `http://a:1/` and `http://a:1` name one node.
fn normalise(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// Starts the task that reads `registry` every `every`; it ends when every receiver is gone.
pub fn watch_registry(registry: Registry, every: Duration) -> watch::Receiver<RegistrySnapshot> {
    let (tx, rx) = watch::channel(RegistrySnapshot::default());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut snapshot = RegistrySnapshot::default();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = tx.closed() => return,
            }
            match registry.live_nodes().await {
                Ok(live) => {
                    if !snapshot.readable && snapshot.reads_failed > 0 {
                        tracing::info!("the node registry is readable again");
                    }
                    if live.unreadable > 0 {
                        tracing::warn!(
                            records = live.unreadable,
                            "node registry records that do not parse were skipped"
                        );
                    }
                    snapshot.readable = true;
                    snapshot.reads_ok += 1;
                    snapshot.by_control_url = live
                        .records
                        .into_iter()
                        .map(|r| (normalise(&r.control_url).to_owned(), r))
                        .collect();
                }
                Err(e) => {
                    if snapshot.readable || snapshot.reads_failed == 0 {
                        tracing::warn!(error = %e, "the node registry cannot be read; placing rooms by what this process sees until it can");
                    }
                    snapshot.readable = false;
                    snapshot.reads_failed += 1;
                    snapshot.by_control_url.clear();
                }
            }
            if tx.send(snapshot.clone()).is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(url: &str, participants: u64) -> NodeRecord {
        NodeRecord {
            node_id: "n".into(),
            instance: "i".into(),
            control_url: url.into(),
            media_address: "127.0.0.1:1".into(),
            participants,
            rooms: 1,
            capacity: Some(20),
            forwarded_packets_per_second: 0.0,
            cpu_cores: 0.0,
            draining: false,
            heartbeat_unix_ms: 0,
        }
    }

    #[test]
    fn a_record_is_found_by_its_control_url_with_or_without_a_slash() {
        let mut s = RegistrySnapshot {
            readable: true,
            ..RegistrySnapshot::default()
        };
        s.by_control_url.insert(
            "http://127.0.0.1:7000".into(),
            record("http://127.0.0.1:7000/", 4),
        );
        let live = Registered::Live {
            participants: 4,
            capacity: Some(20),
            draining: false,
        };
        assert_eq!(s.registered("http://127.0.0.1:7000/"), live);
        assert_eq!(s.registered("http://127.0.0.1:7000"), live);
        assert_eq!(s.registered("http://127.0.0.1:7001"), Registered::Absent);
        s.readable = false;
        assert_eq!(s.registered("http://127.0.0.1:7000"), Registered::Unknown);
    }
}
