//! The node's heartbeat into the Redis node registry (`--redis-url`, crate `sfu-registry`):
//! once per interval the node publishes its record (where its control API is, its load, its
//! drain state) with a lease of three intervals, so signaling replicas place rooms by load and
//! notice a node that died when its lease runs out. On shutdown the record is withdrawn at once.
//!
//! Redis being away never stops the node: a failed heartbeat is counted
//! (`sfu_registry_heartbeats_total{result="error"}`), logged once when the failures start and
//! once when they end, and the next interval tries again.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sfu_registry::{NodeRecord, Registry};

use super::SfuMetrics;
use crate::node::NodeHandle;

/// What the node says about itself that does not change while it runs.
#[derive(Debug, Clone)]
pub struct HeartbeatIdentity {
    /// `--node-id`.
    pub node_id: String,
    /// The control API's event-stream instance id (new on every start).
    pub instance: String,
    /// Base URL of the control API as signaling reaches it.
    pub control_url: String,
    /// The advertised media address (`ip:udp port`).
    pub media_address: String,
    /// Participants the node takes at most, when limited.
    pub capacity: Option<u64>,
}

/// Load figures over one interval: rates from two readings of the counters.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    packets_sent: u64,
    cpu_seconds: Option<f64>,
}

/// Publishes the node's record every `interval` until `stop` resolves, then withdraws it.
pub async fn run(
    registry: Arc<Registry>,
    node: NodeHandle,
    identity: HeartbeatIdentity,
    interval: Duration,
    metrics: Arc<SfuMetrics>,
    stop: impl Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Reading> = None;
    let mut failing = false;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => break,
        }
        let snapshot = node.snapshot().await;
        let now = Reading {
            at: Instant::now(),
            packets_sent: snapshot.metrics.packets_sent.total(),
            cpu_seconds: process_metrics::ProcessCollector::cpu_seconds_now(),
        };
        let (packets_per_second, cpu_cores) = rates(last, now);
        last = Some(now);
        let record = NodeRecord {
            node_id: identity.node_id.clone(),
            instance: identity.instance.clone(),
            control_url: identity.control_url.clone(),
            media_address: identity.media_address.clone(),
            participants: snapshot.gauges.participants,
            rooms: snapshot.gauges.rooms,
            capacity: identity.capacity,
            forwarded_packets_per_second: packets_per_second,
            cpu_cores,
            draining: node.is_draining(),
            heartbeat_unix_ms: unix_ms(),
        };
        let published = registry.publish(&record).await;
        metrics.count_registry_heartbeat(published.is_ok());
        match published {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("node registry reachable again; heartbeats resumed");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "node registry heartbeat failed; retrying every interval");
            }
            Err(_) => {}
        }
    }
    match registry.withdraw(&identity.node_id).await {
        Ok(()) => tracing::info!("node record withdrawn from the registry"),
        Err(e) => {
            tracing::warn!(error = %e, "could not withdraw the node record; its lease ends it")
        }
    }
}

/// Forwarded packets per second and CPU cores between two readings (0 for the first).
fn rates(last: Option<Reading>, now: Reading) -> (f64, f64) {
    let Some(last) = last else {
        return (0.0, 0.0);
    };
    let seconds = now.at.saturating_duration_since(last.at).as_secs_f64();
    if seconds <= 0.0 {
        return (0.0, 0.0);
    }
    let packets = now.packets_sent.saturating_sub(last.packets_sent) as f64 / seconds;
    let cpu = match (last.cpu_seconds, now.cpu_seconds) {
        (Some(a), Some(b)) if b >= a => (b - a) / seconds,
        _ => 0.0,
    };
    (packets, cpu)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_over_the_interval() {
        let start = Instant::now();
        let a = Reading {
            at: start,
            packets_sent: 1_000,
            cpu_seconds: Some(10.0),
        };
        let b = Reading {
            at: start + Duration::from_secs(2),
            packets_sent: 5_000,
            cpu_seconds: Some(11.0),
        };
        assert_eq!(rates(None, a), (0.0, 0.0));
        let (pps, cpu) = rates(Some(a), b);
        assert!((pps - 2_000.0).abs() < 1e-9, "{pps}");
        assert!((cpu - 0.5).abs() < 1e-9, "{cpu}");
    }
}
