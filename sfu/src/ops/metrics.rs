//! The Prometheus registry of `/metrics`: names, types and labels of `docs/metrics.md`, filled
//! from the node's snapshot at each scrape (counters) and observed as they happen (histograms).

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sfu_forwarding::{Direction, MediaKind};

use crate::node::{NodeSnapshot, Observer, RelayRejectReason};

/// Every `sfu_` metric of docs/metrics.md plus the process collector.
pub struct SfuMetrics {
    registry: Registry,
    rooms: IntGauge,
    participants: IntGauge,
    tracks: IntGaugeVec,
    packets_received: IntCounterVec,
    bytes_received: IntCounterVec,
    packets_sent: IntCounterVec,
    bytes_sent: IntCounterVec,
    packets_dropped: IntCounterVec,
    rtcp_feedback: IntCounterVec,
    stun_rejected: IntCounterVec,
    layer_switches: IntCounterVec,
    renegotiations: IntCounterVec,
    slot_reassignments: IntCounterVec,
    receive_slots: IntGaugeVec,
    consent_expired: IntCounter,
    offers_withdrawn: IntCounter,
    sessions_replaced: IntCounter,
    relay_links: IntGaugeVec,
    relay_packets: IntCounterVec,
    relay_bytes: IntCounterVec,
    relay_rejected: IntCounterVec,
    rtp_short_path: IntCounter,
    udp_receive_buffer_drops: IntCounter,
    udp_arrivals_without_kernel_time: IntCounter,
    send_buffers_allocated: IntCounter,
    ice_tcp_connections: IntGauge,
    ice_tcp_closed: IntCounterVec,
    ice_tcp_frames: IntCounterVec,
    registry_heartbeats: IntCounterVec,
    http: HttpConnectionMetrics,
    loss: HistogramVec,
    jitter: HistogramVec,
    rtt: Histogram,
    join_latency: Histogram,
    join_first_keyframe: Histogram,
    forwarding_latency: Histogram,
}

/// Why the registry could not be built (a duplicate or invalid name: a programming error).
#[derive(Debug, thiserror::Error)]
#[error("metrics registry: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> Result<HistogramVec, prometheus::Error> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, prometheus::Error> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

/// Sets a counter to `value` (the node's counters only grow; a lower value is ignored).
fn set_counter(c: &IntCounter, value: u64) {
    let current = c.get();
    if value > current {
        c.inc_by(value - current);
    }
}

fn kind_label(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

impl SfuMetrics {
    /// Builds the registry with every metric and the process collector.
    pub fn new() -> Result<Self, MetricsError> {
        let r = Registry::new();
        r.register(Box::new(process_metrics::ProcessCollector::for_self()?))?;
        let rooms = IntGauge::new("sfu_rooms", "rooms open on this node")?;
        r.register(Box::new(rooms.clone()))?;
        let participants = IntGauge::new("sfu_participants", "peer connections admitted")?;
        r.register(Box::new(participants.clone()))?;
        let tracks = IntGaugeVec::new(Opts::new("sfu_tracks", "published tracks"), &["kind"])?;
        r.register(Box::new(tracks.clone()))?;
        let receive_slots = IntGaugeVec::new(
            Opts::new(
                "sfu_receive_slots",
                "receive slots of all subscribers, filled (carrying a track) or empty",
            ),
            &["kind", "state"],
        )?;
        r.register(Box::new(receive_slots.clone()))?;
        let relay_links = IntGaugeVec::new(
            Opts::new(
                "sfu_relay_links",
                "SFU-to-SFU relay links, by this node's role on them (origin exports, edge imports)",
            ),
            &["role"],
        )?;
        r.register(Box::new(relay_links.clone()))?;
        let ratio_buckets = vec![0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];
        let time_buckets = vec![0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0];
        Ok(Self {
            packets_received: counter_vec(
                &r,
                "sfu_packets_received_total",
                "RTP packets received from publishers",
                &["kind"],
            )?,
            bytes_received: counter_vec(
                &r,
                "sfu_bytes_received_total",
                "RTP payload+header bytes received",
                &["kind"],
            )?,
            packets_sent: counter_vec(
                &r,
                "sfu_packets_sent_total",
                "RTP packets sent to subscribers",
                &["kind", "type"],
            )?,
            bytes_sent: counter_vec(
                &r,
                "sfu_bytes_sent_total",
                "RTP bytes sent",
                &["kind", "type"],
            )?,
            packets_dropped: counter_vec(
                &r,
                "sfu_packets_dropped_total",
                "packets dropped",
                &["reason"],
            )?,
            rtcp_feedback: counter_vec(
                &r,
                "sfu_rtcp_feedback_total",
                "feedback messages",
                &["type", "direction"],
            )?,
            stun_rejected: counter_vec(
                &r,
                "sfu_stun_rejected_total",
                "STUN requests refused",
                &["reason"],
            )?,
            layer_switches: counter_vec(
                &r,
                "sfu_layer_switches_total",
                "simulcast layer switches",
                &["direction"],
            )?,
            renegotiations: counter_vec(
                &r,
                "sfu_renegotiations_total",
                "offers the SFU made or answered after a join, by what caused them",
                &["reason"],
            )?,
            slot_reassignments: counter_vec(
                &r,
                "sfu_slot_reassignments_total",
                "receive slots given another track",
                &["kind"],
            )?,
            receive_slots,
            relay_links,
            relay_packets: counter_vec(
                &r,
                "sfu_relay_packets_total",
                "datagrams sent on (out) and authenticated from (in) SFU-to-SFU relay links",
                &["direction"],
            )?,
            relay_bytes: counter_vec(
                &r,
                "sfu_relay_bytes_total",
                "bytes of the datagrams of sfu_relay_packets_total",
                &["direction"],
            )?,
            relay_rejected: counter_vec(
                &r,
                "sfu_relay_rejected_total",
                "relay datagrams and relay control requests refused",
                &["reason"],
            )?,
            sessions_replaced: {
                let c = IntCounter::new(
                    "sfu_media_sessions_replaced_total",
                    "media sessions replaced by a new session of their device (a reconnect)",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            offers_withdrawn: {
                let c = IntCounter::new(
                    "sfu_offers_withdrawn_total",
                    "SFU offers rolled back because the client's offer crossed them (made again after the answer)",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            consent_expired: {
                let c = IntCounter::new(
                    "sfu_consent_expired_total",
                    "peers dropped for silence (RFC 7675)",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            rtp_short_path: {
                let c = IntCounter::new(
                    "sfu_rtp_short_path_packets_total",
                    "RTP packets decrypted and forwarded without crossing the peer's rtc pipeline",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            udp_receive_buffer_drops: {
                let c = IntCounter::new(
                    "sfu_udp_receive_buffer_drops_total",
                    "datagrams the kernel dropped on the media socket for a full receive buffer",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            udp_arrivals_without_kernel_time: {
                let c = IntCounter::new(
                    "sfu_udp_arrivals_without_kernel_time_total",
                    "datagrams read without a kernel receive timestamp (their read time stands in)",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            send_buffers_allocated: {
                let c = IntCounter::new(
                    "sfu_send_buffers_allocated_total",
                    "datagram buffers for forwarded RTP allocated because the shard's pool had none free",
                )?;
                r.register(Box::new(c.clone()))?;
                c
            },
            ice_tcp_connections: {
                let g = IntGauge::new(
                    "sfu_ice_tcp_connections",
                    "open ICE-TCP connections on the media TCP port",
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            ice_tcp_closed: counter_vec(
                &r,
                "sfu_ice_tcp_connections_closed_total",
                "ICE-TCP connections closed or refused, by reason",
                &["reason"],
            )?,
            ice_tcp_frames: counter_vec(
                &r,
                "sfu_ice_tcp_frames_total",
                "RFC 4571 frames read from and queued on ICE-TCP connections",
                &["direction"],
            )?,
            registry_heartbeats: {
                let c = counter_vec(
                    &r,
                    "sfu_registry_heartbeats_total",
                    "node records published to the Redis node registry, by result",
                    &["result"],
                )?;
                // Both series exist from the start, so an alert can watch the error rate.
                c.with_label_values(&["ok"]);
                c.with_label_values(&["error"]);
                c
            },
            http: HttpConnectionMetrics {
                open: {
                    let g = IntGauge::new("sfu_http_connections", "open HTTP connections")?;
                    r.register(Box::new(g.clone()))?;
                    g
                },
                closed: counter_vec(
                    &r,
                    "sfu_http_connections_closed_total",
                    "HTTP connections closed or requests ended by a limit",
                    &["reason"],
                )?,
                rejected: counter_vec(
                    &r,
                    "sfu_control_requests_rejected_total",
                    "control API requests refused, by the error code of the answer",
                    &["code"],
                )?,
            },
            loss: histogram_vec(
                &r,
                "sfu_loss_ratio",
                "fraction lost per RTCP report interval",
                &["direction", "kind"],
                ratio_buckets,
            )?,
            jitter: histogram_vec(
                &r,
                "sfu_jitter_seconds",
                "interarrival jitter from RTCP reports",
                &["direction", "kind"],
                time_buckets.clone(),
            )?,
            rtt: histogram(
                &r,
                "sfu_rtt_seconds",
                "round-trip time from RTCP SR/RR",
                time_buckets,
            )?,
            join_latency: histogram(
                &r,
                "sfu_join_latency_seconds",
                "offer received to DTLS connected",
                vec![0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0],
            )?,
            join_first_keyframe: histogram(
                &r,
                "sfu_join_first_keyframe_seconds",
                "DTLS connected (or first video to receive, when later) to the first video \
                 keyframe forwarded to the participant",
                vec![0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0],
            )?,
            forwarding_latency: histogram(
                &r,
                "sfu_forwarding_latency_seconds",
                "time from packet received to packet handed to the socket",
                vec![0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05],
            )?,
            registry: r,
            rooms,
            participants,
            tracks,
        })
    }

    /// Copies a node snapshot into the gauges and counters.
    pub fn update(&self, s: &NodeSnapshot) {
        self.rooms.set(s.gauges.rooms as i64);
        self.participants.set(s.gauges.participants as i64);
        self.tracks
            .with_label_values(&["audio"])
            .set(s.gauges.tracks.audio as i64);
        self.tracks
            .with_label_values(&["video"])
            .set(s.gauges.tracks.video as i64);
        for (reason, count) in s.renegotiations.by_reason() {
            set_counter(&self.renegotiations.with_label_values(&[reason]), count);
        }
        set_counter(&self.sessions_replaced, s.sessions_replaced);
        let relay = &s.relay;
        self.relay_links
            .with_label_values(&["origin"])
            .set(relay.origin_links as i64);
        self.relay_links
            .with_label_values(&["edge"])
            .set(relay.edge_links as i64);
        for (direction, packets, bytes) in [
            ("out", relay.packets_out, relay.bytes_out),
            ("in", relay.packets_in, relay.bytes_in),
        ] {
            set_counter(&self.relay_packets.with_label_values(&[direction]), packets);
            set_counter(&self.relay_bytes.with_label_values(&[direction]), bytes);
        }
        for (reason, count) in RelayRejectReason::ALL.iter().zip(relay.rejected) {
            set_counter(
                &self.relay_rejected.with_label_values(&[reason.label()]),
                count,
            );
        }
        let g = &s.gauges;
        for (kind, reassigned, slots, filled) in [
            (
                "audio",
                s.metrics.slot_reassignments.audio,
                g.slots.audio,
                g.slots_occupied.audio,
            ),
            (
                "video",
                s.metrics.slot_reassignments.video,
                g.slots.video,
                g.slots_occupied.video,
            ),
            (
                "screen",
                s.metrics.slot_reassignments.screen,
                g.slots.screen,
                g.slots_occupied.screen,
            ),
        ] {
            set_counter(
                &self.slot_reassignments.with_label_values(&[kind]),
                reassigned,
            );
            self.receive_slots
                .with_label_values(&[kind, "filled"])
                .set(filled as i64);
            self.receive_slots
                .with_label_values(&[kind, "empty"])
                .set(slots.saturating_sub(filled) as i64);
        }
        let m = &s.metrics;
        for (kind, by) in [("audio", 0), ("video", 1)] {
            let pick = |b: &sfu_forwarding::ByKind| if by == 0 { b.audio } else { b.video };
            set_counter(
                &self.packets_received.with_label_values(&[kind]),
                pick(&m.packets_received),
            );
            set_counter(
                &self.bytes_received.with_label_values(&[kind]),
                pick(&m.bytes_received),
            );
            set_counter(
                &self.packets_sent.with_label_values(&[kind, "initial"]),
                pick(&m.packets_sent),
            );
            set_counter(
                &self.packets_sent.with_label_values(&[kind, "retransmit"]),
                pick(&m.packets_retransmitted),
            );
            set_counter(
                &self.bytes_sent.with_label_values(&[kind, "initial"]),
                pick(&m.bytes_sent),
            );
            set_counter(
                &self.bytes_sent.with_label_values(&[kind, "retransmit"]),
                pick(&m.bytes_retransmitted),
            );
        }
        let d = &m.dropped;
        let mut dropped = vec![
            ("malformed", d.malformed),
            ("unknown_ssrc", d.unknown_ssrc),
            ("unknown_participant", d.unknown_participant),
            ("not_publisher", d.not_publisher),
            ("no_subscriber", d.no_subscriber),
            ("stale", d.stale),
            ("nack_miss", d.nack_miss),
        ];
        let f = &m.feedback;
        for (t, dir, v) in [
            ("nack", "received", f.nack_received),
            ("nack", "sent", f.nack_sent),
            ("pli", "received", f.pli_received),
            ("pli", "sent", f.pli_sent),
            ("fir", "received", f.fir_received),
            ("fir", "sent", f.fir_sent),
        ] {
            set_counter(&self.rtcp_feedback.with_label_values(&[t, dir]), v);
        }
        set_counter(
            &self.layer_switches.with_label_values(&["up"]),
            m.layer_switches_up,
        );
        set_counter(
            &self.layer_switches.with_label_values(&["down"]),
            m.layer_switches_down,
        );
        if let Some(t) = &s.shard {
            dropped.push(("queue_full", t.send_queue_full));
            dropped.push(("replay", t.srtp_replayed));
            dropped.push(("unauthenticated", t.srtp_unauthenticated));
            dropped.push(("transport_refused", t.transport_refused));
            dropped.push(("garbage", t.garbage));
            dropped.push(("unknown_source", t.unknown_source));
            for (reason, v) in [
                ("bad_integrity", t.stun_bad_integrity),
                ("unknown_username", t.stun_unknown_username),
                ("source_not_allowed", t.source_not_allowed),
                ("malformed", t.stun_malformed),
            ] {
                set_counter(&self.stun_rejected.with_label_values(&[reason]), v);
            }
            set_counter(&self.consent_expired, t.consent_expired);
            set_counter(&self.offers_withdrawn, t.offers_withdrawn);
            set_counter(&self.rtp_short_path, t.rtp_short_path);
            set_counter(
                &self.udp_arrivals_without_kernel_time,
                t.datagrams_without_kernel_time,
            );
            set_counter(&self.send_buffers_allocated, t.send_buffers_allocated);
            self.ice_tcp_connections
                .set(i64::try_from(t.ice_tcp_connections).unwrap_or(i64::MAX));
            for (reason, v) in t.ice_tcp_closed.iter() {
                set_counter(&self.ice_tcp_closed.with_label_values(&[reason.label()]), v);
            }
            set_counter(
                &self.ice_tcp_frames.with_label_values(&["received"]),
                t.ice_tcp_frames_in,
            );
            set_counter(
                &self.ice_tcp_frames.with_label_values(&["sent"]),
                t.ice_tcp_frames_out,
            );
        }
        if let Some(drops) = s.udp_receive_buffer_drops {
            set_counter(&self.udp_receive_buffer_drops, drops);
        }
        for (reason, v) in dropped {
            set_counter(&self.packets_dropped.with_label_values(&[reason]), v);
        }
    }

    /// Counts one heartbeat to the node registry (`sfu_registry_heartbeats_total{result}`).
    pub fn count_registry_heartbeat(&self, published: bool) {
        let result = if published { "ok" } else { "error" };
        self.registry_heartbeats.with_label_values(&[result]).inc();
    }

    /// The HTTP listener's connection gauge and limit counters (for
    /// [`serve`](super::http_server::serve)).
    pub fn http_connections(&self) -> HttpConnectionMetrics {
        self.http.clone()
    }

    /// The text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec fails only on an invalid metric family, which the registry
        // refuses at registration; an empty answer is the worst case.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Observer for SfuMetrics {
    fn join_latency(&self, latency: Duration) {
        self.join_latency.observe(latency.as_secs_f64());
    }

    fn first_keyframe(&self, wait: Duration) {
        self.join_first_keyframe.observe(wait.as_secs_f64());
    }

    fn forwarding_latency(&self, latency: Duration) {
        self.forwarding_latency.observe(latency.as_secs_f64());
    }

    fn quality(
        &self,
        direction: Direction,
        kind: MediaKind,
        loss: f64,
        jitter: f64,
        rtt: Option<f64>,
    ) {
        let dir = match direction {
            Direction::Publisher => "publisher",
            Direction::Subscriber => "subscriber",
        };
        self.loss
            .with_label_values(&[dir, kind_label(kind)])
            .observe(loss);
        self.jitter
            .with_label_values(&[dir, kind_label(kind)])
            .observe(jitter);
        if let Some(rtt) = rtt {
            self.rtt.observe(rtt);
        }
    }
}

/// The HTTP listener's metrics: open connections, connections and requests ended by a limit
/// (`connection_limit`, `header_timeout`, `request_timeout`, `tls_handshake`) and control API
/// refusals by error code. Cheap to clone (shared counters).
#[derive(Clone)]
pub struct HttpConnectionMetrics {
    open: IntGauge,
    closed: IntCounterVec,
    rejected: IntCounterVec,
}

impl HttpConnectionMetrics {
    /// Counts an open connection until the returned guard is dropped.
    pub fn opened(&self) -> OpenConnection {
        self.open.inc();
        OpenConnection(self.open.clone())
    }

    /// Counts a connection (or request) ended by the limit `reason`.
    pub fn closed(&self, reason: &str) {
        self.closed.with_label_values(&[reason]).inc();
    }

    /// Counts a control API request refused with the error `code`.
    pub fn rejected(&self, code: &str) {
        self.rejected.with_label_values(&[code]).inc();
    }
}

/// An open HTTP connection in `sfu_http_connections`; dropping it closes the count.
pub struct OpenConnection(IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_metrics_export_reassignments_and_filled_and_empty_slots() {
        let metrics = SfuMetrics::new().expect("registry builds");
        let mut snapshot = NodeSnapshot::default();
        snapshot.metrics.slot_reassignments.video = 7;
        snapshot.metrics.slot_reassignments.audio = 3;
        snapshot.gauges.slots.video = 25;
        snapshot.gauges.slots_occupied.video = 4;
        snapshot.gauges.slots.screen = 2;
        snapshot.renegotiations.slots_at_join = 1;
        metrics.update(&snapshot);
        let text = metrics.render();
        for line in [
            r#"sfu_slot_reassignments_total{kind="video"} 7"#,
            r#"sfu_slot_reassignments_total{kind="audio"} 3"#,
            r#"sfu_receive_slots{kind="video",state="filled"} 4"#,
            r#"sfu_receive_slots{kind="video",state="empty"} 21"#,
            r#"sfu_receive_slots{kind="screen",state="empty"} 2"#,
            r#"sfu_renegotiations_total{reason="slots_at_join"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
}
