//! Prometheus metrics with the `signaling_` names of docs/metrics.md.
//!
//! No label carries a room, device or identity (cardinality); per-room detail is on the admin API.
//! Every label value is registered at start so each series exists (at 0) before it is used.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::cluster::ClusterMetrics;
use crate::media_node::{NodeState, RegistryCounts, RelayCounts};
use crate::policy::Role;
use crate::protocol::{
    CLIENT_MESSAGE_TYPES, MediaResetReason, ModerationAction, REJECT_REASONS, SERVER_MESSAGE_TYPES,
};
use crate::room::OfferOutcome;
use crate::room::{MODERATION_OUTCOMES, ResumeOutcome};

/// The `reason` labels of `signaling_connection_drops_total`: connections the server refused or
/// closed for a limit (the listener's caps and timeouts, a WebSocket write that blocked).
pub const CONNECTION_DROP_REASONS: &[&str] = &[
    "global_limit",
    "per_ip_limit",
    "header_timeout",
    "http_idle_timeout",
    "write_timeout",
];

/// The `state` labels of `signaling_media_nodes`, in the order of [`Metrics::set_media_nodes`].
pub const MEDIA_NODE_STATES: &[&str] = &["attached", "draining", "detached"];

/// All signaling metrics, registered in their own registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open client WebSockets.
    pub connections: IntGauge,
    /// Rooms that exist.
    pub rooms: IntGauge,
    /// Joined devices by role.
    pub participants: IntGaugeVec,
    /// Join attempts by result (`ok`, `refused`; `waiting` when a join enters a lobby, counted
    /// again as `ok` or `refused` when a moderator decides).
    pub joins: IntCounterVec,
    /// Join message to SDP answer delivered.
    pub join_latency: Histogram,
    /// Client messages by type.
    pub messages_received: IntCounterVec,
    /// Server messages by type.
    pub messages_sent: IntCounterVec,
    /// Key envelopes delivered.
    pub key_envelopes_relayed: IntCounter,
    /// Refusals by reason.
    pub rejected: IntCounterVec,
    /// Decrypt failures reported by clients.
    pub client_decrypt_failures: IntCounter,
    /// TCP connections refused or closed for a limit, by reason.
    pub connection_drops: IntCounterVec,
    /// Rooms whose media sessions were reset (each of its clients got `media_reset`), by reason.
    pub media_resets: IntCounterVec,
    /// The replicas' cluster (`signaling_cluster_*`).
    pub cluster: ClusterMetrics,
    /// The SFU-to-SFU relays a pool drives (`signaling_relay_*`, `signaling_edge_failovers_total`).
    pub relays: RelayMetrics,
    /// Media nodes by state ([`MEDIA_NODE_STATES`]), read from the media node at each scrape.
    pub media_nodes: IntGaugeVec,
    /// Reads of the node registry on Redis by result (`ok`, `error`), copied from the media
    /// node at each scrape.
    pub registry_reads: IntCounterVec,
    /// Node offers sent again or given up, by outcome.
    pub node_offers: IntCounterVec,
    /// Node registry records not added to the pool (control URL not allowed or unusable).
    pub registry_nodes_refused: IntCounter,
    /// Client offers after the device's first answer (a standards client renegotiating on its
    /// own; the web and native clients ask with `publish` instead): the compatibility path.
    pub client_reoffers: IntCounter,
    /// Joins that replaced the same device's connection (a reconnect).
    pub rejoins: IntCounter,
    /// Joins that asked to resume, and suspensions that expired, by outcome
    /// ([`ResumeOutcome`]).
    pub resumes: IntCounterVec,
    /// Messages for a suspended member (its connection lost, waiting to resume) that were
    /// dropped.
    pub suspended_drops: IntCounter,
    /// Recorded rooms with a participant other than a recorder and no recorder for longer than
    /// the alert delay (30 s).
    pub recorded_rooms_without_recorder: IntGauge,
    /// Open recorder event streams (`GET /v1/recorder/events`).
    pub recorder_streams: IntGauge,
    /// Recorder event streams closed because their queue was full.
    pub recorder_stream_overflows: IntCounter,
    /// Moderator actions (client `moderate` and the admin API) by action and outcome.
    pub moderation_actions: IntCounterVec,
}

/// A metric could not be registered (a programming error: duplicate or invalid name).
#[derive(Debug, thiserror::Error)]
#[error("metrics registration: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates and registers every metric, plus the process collector.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let connections = IntGauge::new("signaling_connections", "Open client WebSockets")?;
        let rooms = IntGauge::new("signaling_rooms", "Rooms that exist")?;
        let participants = IntGaugeVec::new(
            Opts::new("signaling_participants", "Joined devices"),
            &["role"],
        )?;
        let joins = IntCounterVec::new(
            Opts::new("signaling_joins_total", "Join attempts"),
            &["result"],
        )?;
        let join_latency = Histogram::with_opts(
            HistogramOpts::new(
                "signaling_join_latency_seconds",
                "Join message to SDP answer delivered",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )?;
        let messages_received = IntCounterVec::new(
            Opts::new(
                "signaling_messages_received_total",
                "Client messages by type",
            ),
            &["type"],
        )?;
        let messages_sent = IntCounterVec::new(
            Opts::new("signaling_messages_sent_total", "Server messages by type"),
            &["type"],
        )?;
        let key_envelopes_relayed = IntCounter::new(
            "signaling_key_envelopes_relayed_total",
            "Opaque key envelopes delivered",
        )?;
        let rejected = IntCounterVec::new(
            Opts::new("signaling_rejected_total", "Refused requests"),
            &["reason"],
        )?;
        let client_decrypt_failures = IntCounter::new(
            "signaling_client_decrypt_failures_total",
            "Decrypt failures reported by clients in their stats messages",
        )?;
        let connection_drops = IntCounterVec::new(
            Opts::new(
                "signaling_connection_drops_total",
                "TCP connections refused or closed for a limit",
            ),
            &["reason"],
        )?;
        let media_resets = IntCounterVec::new(
            Opts::new(
                "signaling_media_resets_total",
                "Rooms whose media sessions were reset (media_reset sent to their clients)",
            ),
            &["reason"],
        )?;
        let media_nodes = IntGaugeVec::new(
            Opts::new(
                "signaling_media_nodes",
                "Media nodes by state (attached, draining: takes no new room, detached: unreachable)",
            ),
            &["state"],
        )?;
        let registry_reads = IntCounterVec::new(
            Opts::new(
                "signaling_registry_reads_total",
                "Reads of the SFU node registry on Redis, by result (error: unreachable, slow or refusing)",
            ),
            &["result"],
        )?;
        let node_offers = IntCounterVec::new(
            Opts::new(
                "signaling_node_offers_total",
                "Media node offers left unanswered by a device: sent again, or its media session reset",
            ),
            &["outcome"],
        )?;
        let registry_nodes_refused = IntCounter::new(
            "signaling_registry_nodes_refused_total",
            "SFU node registry records not added to the pool: a control URL no --sfu-discover prefix allows, or unusable",
        )?;
        let client_reoffers = IntCounter::new(
            "signaling_client_reoffers_total",
            "Client offers after the device's first answer (renegotiations the client started; \
             publish asks the SFU to offer instead)",
        )?;
        let rejoins = IntCounter::new(
            "signaling_rejoins_total",
            "Joins that replaced the same device's connection",
        )?;
        let resumes = IntCounterVec::new(
            Opts::new(
                "signaling_resumes_total",
                "Joins that asked to resume a lost session, and suspensions that expired, by \
                 outcome",
            ),
            &["outcome"],
        )?;
        let suspended_drops = IntCounter::new(
            "signaling_suspended_messages_dropped_total",
            "Messages for a device whose connection was lost (suspended, waiting to resume) \
             that were dropped",
        )?;
        let recorded_rooms_without_recorder = IntGauge::new(
            "signaling_recorded_rooms_without_recorder",
            "Recorded rooms with a participant other than a recorder and no recorder for more \
             than 30 s",
        )?;
        let recorder_streams = IntGauge::new(
            "signaling_recorder_streams",
            "Open recorder event streams (GET /v1/recorder/events)",
        )?;
        let recorder_stream_overflows = IntCounter::new(
            "signaling_recorder_stream_overflows_total",
            "Recorder event streams closed because they could not keep up",
        )?;
        let moderation_actions = IntCounterVec::new(
            Opts::new(
                "signaling_moderation_actions_total",
                "Moderator actions by action and outcome (ok, forbidden, not_found)",
            ),
            &["action", "outcome"],
        )?;
        registry.register(Box::new(moderation_actions.clone()))?;
        registry.register(Box::new(recorded_rooms_without_recorder.clone()))?;
        registry.register(Box::new(recorder_streams.clone()))?;
        registry.register(Box::new(recorder_stream_overflows.clone()))?;
        registry.register(Box::new(connection_drops.clone()))?;
        registry.register(Box::new(media_resets.clone()))?;
        registry.register(Box::new(media_nodes.clone()))?;
        registry.register(Box::new(registry_reads.clone()))?;
        registry.register(Box::new(registry_nodes_refused.clone()))?;
        registry.register(Box::new(node_offers.clone()))?;
        registry.register(Box::new(client_reoffers.clone()))?;
        registry.register(Box::new(rejoins.clone()))?;
        registry.register(Box::new(resumes.clone()))?;
        registry.register(Box::new(suspended_drops.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(rooms.clone()))?;
        registry.register(Box::new(participants.clone()))?;
        registry.register(Box::new(joins.clone()))?;
        registry.register(Box::new(join_latency.clone()))?;
        registry.register(Box::new(messages_received.clone()))?;
        registry.register(Box::new(messages_sent.clone()))?;
        registry.register(Box::new(key_envelopes_relayed.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(client_decrypt_failures.clone()))?;
        registry.register(Box::new(process_metrics::ProcessCollector::for_self()?))?;
        let cluster = ClusterMetrics::new(&registry)?;
        let relays = RelayMetrics::new(&registry)?;
        for role in Role::ALL {
            participants.with_label_values(&[role.as_str()]);
        }
        for action in ModerationAction::NAMES {
            for outcome in MODERATION_OUTCOMES {
                moderation_actions.with_label_values(&[*action, *outcome]);
            }
        }
        for result in ["ok", "refused", "waiting"] {
            joins.with_label_values(&[result]);
        }
        for ty in CLIENT_MESSAGE_TYPES.iter().chain(&["unknown"]) {
            messages_received.with_label_values(&[*ty]);
        }
        for ty in SERVER_MESSAGE_TYPES {
            messages_sent.with_label_values(&[*ty]);
        }
        for reason in REJECT_REASONS {
            rejected.with_label_values(&[*reason]);
        }
        for reason in CONNECTION_DROP_REASONS {
            connection_drops.with_label_values(&[*reason]);
        }
        for reason in [
            MediaResetReason::MediaNodeRestarted,
            MediaResetReason::MediaEventsLost,
            MediaResetReason::MediaNodeLost,
        ] {
            media_resets.with_label_values(&[reason.as_str()]);
        }
        for state in MEDIA_NODE_STATES {
            media_nodes.with_label_values(&[*state]);
        }
        for result in ["ok", "error"] {
            registry_reads.with_label_values(&[result]);
        }
        for outcome in OfferOutcome::ALL {
            node_offers.with_label_values(&[outcome.as_str()]);
        }
        for outcome in ResumeOutcome::ALL {
            resumes.with_label_values(&[outcome.as_str()]);
        }
        Ok(Metrics {
            registry,
            connections,
            rooms,
            cluster,
            relays,
            participants,
            joins,
            join_latency,
            messages_received,
            messages_sent,
            key_envelopes_relayed,
            rejected,
            client_decrypt_failures,
            connection_drops,
            media_resets,
            media_nodes,
            registry_reads,
            registry_nodes_refused,
            node_offers,
            client_reoffers,
            rejoins,
            resumes,
            suspended_drops,
            recorded_rooms_without_recorder,
            recorder_streams,
            recorder_stream_overflows,
            moderation_actions,
        })
    }

    /// Counts a moderator action `action` (a [`ModerationAction::NAMES`] entry) with `outcome`
    /// (one of [`MODERATION_OUTCOMES`]).
    pub fn moderation(&self, action: &str, outcome: &str) {
        self.moderation_actions
            .with_label_values(&[action, outcome])
            .inc();
    }

    /// Counts a refusal under `reason` (one of [`REJECT_REASONS`]).
    pub fn reject(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// Counts a connection refused or closed under `reason` (one of
    /// [`CONNECTION_DROP_REASONS`]).
    pub fn connection_dropped(&self, reason: &str) {
        self.connection_drops.with_label_values(&[reason]).inc();
    }

    /// Sets `signaling_media_nodes` from the states of the media nodes (none without media).
    pub fn set_media_nodes(&self, states: &[NodeState]) {
        let mut counts = [0i64; 3];
        for state in states {
            let i = match state {
                NodeState::Attached => 0,
                NodeState::Draining => 1,
                NodeState::Detached { .. } => 2,
            };
            counts[i] += 1;
        }
        for (state, count) in MEDIA_NODE_STATES.iter().zip(counts) {
            self.media_nodes.with_label_values(&[*state]).set(count);
        }
    }

    /// Brings `signaling_registry_reads_total` and `signaling_registry_nodes_refused_total`
    /// up to the media node's own counts since the start.
    pub fn set_registry_counts(&self, counts: RegistryCounts) {
        for (result, total) in [("ok", counts.reads_ok), ("error", counts.reads_failed)] {
            let counter = self.registry_reads.with_label_values(&[result]);
            counter.inc_by(total.saturating_sub(counter.get()));
        }
        let refused = &self.registry_nodes_refused;
        refused.inc_by(counts.nodes_refused.saturating_sub(refused.get()));
    }

    /// Copies a pool's relay counts (read from the media node at each scrape).
    pub fn set_relay_counts(&self, counts: RelayCounts) {
        let r = &self.relays;
        r.links.set(i64::try_from(counts.links).unwrap_or(i64::MAX));
        for (counter, total) in [
            (r.setups.with_label_values(&["ok"]), counts.setups_ok),
            (
                r.setups.with_label_values(&["failed"]),
                counts.setups_failed,
            ),
            (r.syncs.with_label_values(&["ok"]), counts.syncs_ok),
            (r.syncs.with_label_values(&["failed"]), counts.syncs_failed),
            (r.edge_failovers.clone(), counts.edge_failovers),
            (r.edges_closed.clone(), counts.edges_closed),
        ] {
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for I/O reasons; a failure would be a malformed
        // metric family, which registration already refuses.
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Metrics of the SFU-to-SFU relays a pool of SFU nodes drives (docs/architecture.md §7.57),
/// copied from the pool at each scrape.
#[derive(Clone, Debug)]
pub struct RelayMetrics {
    /// Relay links up now (one per edge of a room).
    pub links: IntGauge,
    /// Edge setups by result (`ok`, `failed`).
    pub setups: IntCounterVec,
    /// Track syncs (origin export's tracks put to an edge's import) by result.
    pub syncs: IntCounterVec,
    /// Edges lost (killed, unreachable, restarted) whose viewers were reset.
    pub edge_failovers: IntCounter,
    /// Edges closed when their last viewer had left.
    pub edges_closed: IntCounter,
}

impl RelayMetrics {
    fn new(registry: &Registry) -> prometheus::Result<Self> {
        let links = IntGauge::new(
            "signaling_relay_links",
            "SFU-to-SFU relay links this process drives now (one per edge node of a room)",
        )?;
        let setups = IntCounterVec::new(
            Opts::new(
                "signaling_relay_setups_total",
                "Edge setups (room created on the edge node, exported by the origin, imported), by result",
            ),
            &["result"],
        )?;
        let syncs = IntCounterVec::new(
            Opts::new(
                "signaling_relay_syncs_total",
                "Relay track syncs after a track was published or unpublished on the origin, by result",
            ),
            &["result"],
        )?;
        let edge_failovers = IntCounter::new(
            "signaling_edge_failovers_total",
            "Edge nodes of a room lost (killed, unreachable, restarted): their viewers got media_reset",
        )?;
        registry.register(Box::new(links.clone()))?;
        registry.register(Box::new(setups.clone()))?;
        registry.register(Box::new(syncs.clone()))?;
        let edges_closed = IntCounter::new(
            "signaling_relay_edges_closed_total",
            "Edge copies of a room closed (and their relay links ended) after their last viewer left",
        )?;
        registry.register(Box::new(edge_failovers.clone()))?;
        registry.register(Box::new(edges_closed.clone()))?;
        for result in ["ok", "failed"] {
            setups.with_label_values(&[result]);
            syncs.with_label_values(&[result]);
        }
        Ok(RelayMetrics {
            links,
            setups,
            syncs,
            edge_failovers,
            edges_closed,
        })
    }
}
