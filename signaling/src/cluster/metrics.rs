//! The `signaling_cluster_*` metrics (docs/metrics.md): connections carried between replicas,
//! the bus, room ownership and Redis failures. They exist (at 0) on a replica without a cluster.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The `op` labels of `signaling_cluster_redis_errors_total`.
pub const REDIS_OPS: &[&str] = &[
    "heartbeat",
    "claim",
    "renew",
    "send",
    "subscribe",
    "liveness",
    "record",
];

/// The `reason` labels of `signaling_cluster_bus_dropped_total`.
pub const BUS_DROP_REASONS: &[&str] = &["unknown_connection", "malformed", "queue_full"];

/// The cluster's metrics.
#[derive(Clone, Debug)]
pub struct ClusterMetrics {
    /// Connections carried over the bus: `proxied` (the client is here, its room's owner is
    /// another replica) and `served` (the room is here, the client on another replica).
    pub connections: IntGaugeVec,
    /// Envelopes sent and received on the bus.
    pub bus_messages: IntCounterVec,
    /// Envelopes received and dropped, by reason.
    pub bus_dropped: IntCounterVec,
    /// Rooms this replica took over from a replica that was lost.
    pub takeovers: IntCounter,
    /// Proxied connections closed because their room's owner replica was lost (the client
    /// reconnects and its room is taken over).
    pub owner_lost: IntCounter,
    /// Owner leases of rooms held here found held by another replica.
    pub leases_lost: IntCounter,
    /// Rooms this replica owns.
    pub rooms_owned: IntGauge,
    /// Failed Redis operations, by operation.
    pub redis_errors: IntCounterVec,
}

impl ClusterMetrics {
    /// The metrics, registered in `registry`, every label value at 0.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let connections = IntGaugeVec::new(
            Opts::new(
                "signaling_cluster_connections",
                "Client connections carried between replicas: proxied (client here, room elsewhere), served (room here, client elsewhere)",
            ),
            &["side"],
        )?;
        let bus_messages = IntCounterVec::new(
            Opts::new(
                "signaling_cluster_bus_messages_total",
                "Envelopes sent to and received from other replicas",
            ),
            &["direction"],
        )?;
        let bus_dropped = IntCounterVec::new(
            Opts::new(
                "signaling_cluster_bus_dropped_total",
                "Envelopes received from other replicas and dropped, by reason",
            ),
            &["reason"],
        )?;
        let takeovers = IntCounter::new(
            "signaling_cluster_takeovers_total",
            "Rooms this replica took over from a replica that was lost",
        )?;
        let owner_lost = IntCounter::new(
            "signaling_cluster_owner_lost_total",
            "Proxied connections closed because their room's owner replica was lost",
        )?;
        let leases_lost = IntCounter::new(
            "signaling_cluster_leases_lost_total",
            "Owner leases of rooms held here found held by another replica",
        )?;
        let rooms_owned = IntGauge::new(
            "signaling_cluster_rooms_owned",
            "Rooms whose owner lease this replica holds",
        )?;
        let redis_errors = IntCounterVec::new(
            Opts::new(
                "signaling_cluster_redis_errors_total",
                "Failed Redis operations of the cluster, by operation",
            ),
            &["op"],
        )?;
        for side in ["proxied", "served"] {
            connections.with_label_values(&[side]);
        }
        for direction in ["sent", "received"] {
            bus_messages.with_label_values(&[direction]);
        }
        for reason in BUS_DROP_REASONS {
            bus_dropped.with_label_values(&[*reason]);
        }
        for op in REDIS_OPS {
            redis_errors.with_label_values(&[*op]);
        }
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(bus_messages.clone()))?;
        registry.register(Box::new(bus_dropped.clone()))?;
        registry.register(Box::new(takeovers.clone()))?;
        registry.register(Box::new(owner_lost.clone()))?;
        registry.register(Box::new(leases_lost.clone()))?;
        registry.register(Box::new(rooms_owned.clone()))?;
        registry.register(Box::new(redis_errors.clone()))?;
        Ok(ClusterMetrics {
            connections,
            bus_messages,
            bus_dropped,
            takeovers,
            owner_lost,
            leases_lost,
            rooms_owned,
            redis_errors,
        })
    }

    /// Counts a failed Redis operation (`op` one of [`REDIS_OPS`]).
    pub fn redis_error(&self, op: &str) {
        self.redis_errors.with_label_values(&[op]).inc();
    }
}
