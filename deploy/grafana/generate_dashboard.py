#!/usr/bin/env python3
"""Generates the Grafana dashboard for e2ee-sfu (deploy/grafana/dashboards/e2ee-sfu.json).

The dashboard is written here, not edited in Grafana's UI, so that its queries stay consistent
(one `job` and `instance` filter, one rate window, one quantile helper) and so that
`deploy/check` can verify that every metric it names is in docs/metrics.md and on the running
services' /metrics. Edit this file, run it, commit both:

    python3 deploy/grafana/generate_dashboard.py            # rewrite the JSON
    python3 deploy/grafana/generate_dashboard.py --check    # exit 1 if the JSON is stale

Standard library only. Panel layout is computed: each row starts a new line, panels flow left
to right in a 24-column grid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "e2ee-sfu.json"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
SFU = 'job="sfu", instance=~"$instance"'
SIG = 'job="signaling"'


def quantile(q: float, metric: str, selector: str, by: str = "") -> str:
    """`histogram_quantile` over a histogram's buckets, summed over instances unless `by`."""
    group = f"{by}, le" if by else "le"
    return (
        f"histogram_quantile({q}, sum by ({group}) "
        f"(rate({metric}_bucket{{{selector}}}[{RATE}])))"
    )


def target(expr: str, legend: str = "", ref: str = "A", fmt: str | None = None) -> dict:
    t = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto", "refId": ref}
    if fmt:
        t["format"] = fmt
    return t


def targets(*pairs: tuple[str, str]) -> list[dict]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def timeseries(title: str, description: str, unit: str, tgts: list[dict], width: int = 8,
               stack: bool = False, min_zero: bool = True) -> dict:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
              "spanNulls": False}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
        custom["fillOpacity"] = 40
    defaults: dict = {"unit": unit, "custom": custom}
    if min_zero:
        defaults["min"] = 0
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": tgts,
        "_width": width,
        "_height": 8,
    }


def stat(title: str, description: str, expr: str, unit: str = "short") -> dict:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "decimals": 0}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        },
        "targets": [target(expr, "")],
        "_width": 4,
        "_height": 4,
    }


def heatmap(title: str, description: str, metric: str, selector: str, unit: str,
            width: int = 8) -> dict:
    expr = f"sum by (le) (increase({metric}_bucket{{{selector}}}[{RATE}]))"
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {
            "calculate": False,
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Spectral", "scale": "exponential",
                      "steps": 64, "reverse": False},
            "yAxis": {"axisPlacement": "left", "unit": unit},
            "rowsFrame": {"layout": "auto"},
            "tooltip": {"show": True, "yHistogram": True},
            "legend": {"show": True},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
        },
        "targets": [target(expr, "{{le}}", "A", fmt="heatmap")],
        "_width": width,
        "_height": 8,
    }


def row(title: str, *panels: dict) -> tuple[str, tuple[dict, ...]]:
    return title, panels


def rows() -> list[tuple[str, tuple[dict, ...]]]:
    """Every row of the dashboard, top to bottom."""
    return [
        row(
            "Overview",
            stat("Rooms (SFU)", "Rooms open on the selected SFU nodes.",
                 f"sum(sfu_rooms{{{SFU}}})"),
            stat("Participants (SFU)", "Peer connections admitted on the selected SFU nodes.",
                 f"sum(sfu_participants{{{SFU}}})"),
            stat("Published tracks", "Audio and video tracks published to the selected SFU nodes.",
                 f"sum(sfu_tracks{{{SFU}}})"),
            stat("Rooms (signaling)", "Rooms that exist in signaling, with or without media.",
                 f"sum(signaling_rooms{{{SIG}}})"),
            stat("Joined devices", "Devices joined through signaling, all roles.",
                 f"sum(signaling_participants{{{SIG}}})"),
            stat("Client WebSockets", "Open client WebSockets on signaling.",
                 f"sum(signaling_connections{{{SIG}}})"),
            timeseries(
                "Rooms and participants per SFU node",
                "Load placed on each SFU node. Nodes should fill evenly; compare with the "
                "capacity figures in deploy/README.md.",
                "short",
                targets(
                    (f"sum by (instance) (sfu_rooms{{{SFU}}})", "rooms {{instance}}"),
                    (f"sum by (instance) (sfu_participants{{{SFU}}})",
                     "participants {{instance}}"),
                ),
                width=12,
            ),
            timeseries(
                "Tracks by kind, devices by role",
                "Published tracks on the SFUs by kind; joined devices in signaling by role "
                "(caller, presenter, viewer, recorder).",
                "short",
                targets(
                    (f"sum by (kind) (sfu_tracks{{{SFU}}})", "{{kind}} tracks"),
                    (f"sum by (role) (signaling_participants{{{SIG}}})", "{{role}}"),
                ),
                width=12,
            ),
        ),
        row(
            "Media throughput",
            timeseries(
                "Bitrate in (from publishers)",
                "RTP bits per second received by the SFUs, by kind.",
                "bps",
                targets((f"sum by (kind) (rate(sfu_bytes_received_total{{{SFU}}}[{RATE}])) * 8",
                         "{{kind}}")),
                stack=True,
            ),
            timeseries(
                "Bitrate out (to subscribers)",
                "RTP bits per second sent by the SFUs, by kind and by first send or "
                "retransmission. Out is roughly in times the number of subscribers per track.",
                "bps",
                targets((f"sum by (kind, type) (rate(sfu_bytes_sent_total{{{SFU}}}[{RATE}])) * 8",
                         "{{kind}} {{type}}")),
                stack=True,
            ),
            timeseries(
                "Packets in, out, dropped",
                "RTP packets per second received, sent and dropped (by reason). Steady "
                "queue_full drops mean the node cannot send fast enough; malformed, replay or "
                "unauthenticated drops are hostile or broken clients.",
                "pps",
                targets(
                    (f"sum(rate(sfu_packets_received_total{{{SFU}}}[{RATE}]))", "received"),
                    (f"sum by (type) (rate(sfu_packets_sent_total{{{SFU}}}[{RATE}]))",
                     "sent {{type}}"),
                    (f"sum by (reason) (rate(sfu_packets_dropped_total{{{SFU}}}[{RATE}]))",
                     "dropped {{reason}}"),
                ),
            ),
        ),
        row(
            "Call quality",
            timeseries(
                "Mean loss by direction and kind",
                "Mean fraction of packets lost per RTCP report: publisher = on the way into "
                "the SFU, subscriber = on the way out. The SfuSubscriberLossHigh and "
                "SfuPublisherLossHigh alerts fire at 5% for 10 minutes.",
                "percentunit",
                targets((
                    f"sum by (direction, kind) (rate(sfu_loss_ratio_sum{{{SFU}}}[{RATE}])) / "
                    f"sum by (direction, kind) (rate(sfu_loss_ratio_count{{{SFU}}}[{RATE}]))",
                    "{{direction}} {{kind}}",
                )),
            ),
            heatmap("Subscriber loss per report",
                    "Distribution of subscriber loss fractions over RTCP reports; a band "
                    "away from zero means some subscribers have bad links.",
                    "sfu_loss_ratio", f'{SFU}, direction="subscriber"', "percentunit"),
            heatmap("Publisher loss per report",
                    "Distribution of publisher (incoming) loss fractions over RTCP reports.",
                    "sfu_loss_ratio", f'{SFU}, direction="publisher"', "percentunit"),
            timeseries(
                "Jitter, 95th percentile",
                "Interarrival jitter from RTCP reports by direction and kind. SfuJitterHigh "
                "fires above 30 ms.",
                "s",
                targets((quantile(0.95, "sfu_jitter_seconds", SFU, "direction, kind"),
                         "p95 {{direction}} {{kind}}")),
                width=6,
            ),
            heatmap("Jitter", "Distribution of jitter values from RTCP reports, all directions.",
                    "sfu_jitter_seconds", SFU, "s", width=6),
            timeseries(
                "Round-trip time",
                "RTT between the SFU and its peers from RTCP SR/RR. SfuRttHigh fires when "
                "the 95th percentile stays above 300 ms.",
                "s",
                targets(
                    (quantile(0.5, "sfu_rtt_seconds", SFU), "p50"),
                    (quantile(0.95, "sfu_rtt_seconds", SFU), "p95"),
                    (quantile(0.99, "sfu_rtt_seconds", SFU), "p99"),
                ),
                width=6,
            ),
            heatmap("RTT", "Distribution of round-trip times.", "sfu_rtt_seconds", SFU, "s", width=6),
        ),
        row(
            "Feedback and layers",
            timeseries(
                "NACK, PLI, FIR",
                "RTCP feedback per second: received = from subscribers, sent = by the SFU to "
                "publishers. NACKs drive retransmissions; PLI/FIR ask for keyframes. The SFU "
                "throttles PLI/FIR per source, so 'sent' stays well under 'received'.",
                "reqps",
                targets((f"sum by (type, direction) "
                         f"(rate(sfu_rtcp_feedback_total{{{SFU}}}[{RATE}]))",
                         "{{type}} {{direction}}")),
            ),
            timeseries(
                "Retransmitted share of packets sent",
                "Fraction of packets sent that are retransmissions (NACK answers).",
                "percentunit",
                targets((f'sum(rate(sfu_packets_sent_total{{{SFU}, type="retransmit"}}[{RATE}]))'
                         f" / sum(rate(sfu_packets_sent_total{{{SFU}}}[{RATE}]))",
                         "retransmitted")),
            ),
            timeseries(
                "Simulcast layer switches",
                "Layer switches per second, up and down. Many downward switches mean "
                "subscribers' bandwidth estimates are falling (congestion).",
                "ops",
                targets((f"sum by (direction) "
                         f"(rate(sfu_layer_switches_total{{{SFU}}}[{RATE}]))", "{{direction}}")),
            ),
            timeseries(
                "STUN refused, consent expired",
                "STUN requests refused by reason (bad_integrity, unknown_username, "
                "source_not_allowed), and peers dropped after 15 s of silence (RFC 7675).",
                "ops",
                targets(
                    (f"sum by (reason) (rate(sfu_stun_rejected_total{{{SFU}}}[{RATE}]))",
                     "stun {{reason}}"),
                    (f"sum(rate(sfu_consent_expired_total{{{SFU}}}[{RATE}]))",
                     "consent expired"),
                ),
                width=24,
            ),
        ),
        row(
            "Latency",
            timeseries(
                "Forwarding latency",
                "Time from an RTP packet's arrival to its hand-off to the socket, inside the "
                "SFU. SfuForwardingSlow fires when the 99th percentile exceeds 20 ms.",
                "s",
                targets(
                    (quantile(0.5, "sfu_forwarding_latency_seconds", SFU), "p50"),
                    (quantile(0.99, "sfu_forwarding_latency_seconds", SFU), "p99"),
                    (quantile(0.99, "sfu_forwarding_latency_seconds", SFU, "instance"),
                     "p99 {{instance}}"),
                ),
            ),
            heatmap("Forwarding latency distribution", "All forwarded packets.",
                    "sfu_forwarding_latency_seconds", SFU, "s"),
            timeseries(
                "Join latency",
                "The three join phases (docs/metrics.md, Join phases). signaling: join "
                "message to SDP answer delivered; SFU: offer received to DTLS connected; "
                "first keyframe: connected to the first video keyframe forwarded to the "
                "participant (its first remote picture).",
                "s",
                targets(
                    (quantile(0.5, "signaling_join_latency_seconds", SIG), "signaling p50"),
                    (quantile(0.95, "signaling_join_latency_seconds", SIG), "signaling p95"),
                    (quantile(0.5, "sfu_join_latency_seconds", SFU), "SFU p50"),
                    (quantile(0.95, "sfu_join_latency_seconds", SFU), "SFU p95"),
                    (quantile(0.5, "sfu_join_first_keyframe_seconds", SFU), "first keyframe p50"),
                    (quantile(0.95, "sfu_join_first_keyframe_seconds", SFU),
                     "first keyframe p95"),
                ),
            ),
        ),
        row(
            "Signaling and keys",
            timeseries(
                "Joins by result",
                "Join attempts per second. Refusals with reasons are in the next panel.",
                "ops",
                targets((f"sum by (result) (rate(signaling_joins_total{{{SIG}}}[{RATE}]))",
                         "{{result}}")),
            ),
            timeseries(
                "Refused requests by reason",
                "bad_token / expired: clients with wrong or old tokens; rate_limited / "
                "oversized / malformed: abusive or broken clients; capacity: rooms full.",
                "ops",
                targets((f"sum by (reason) (rate(signaling_rejected_total{{{SIG}}}[{RATE}]))",
                         "{{reason}}")),
            ),
            timeseries(
                "Recorded rooms without a recorder, recorder streams",
                "Recorded rooms with participants and no recorder for more than 30 s "
                "(RecordedRoomWithoutRecorder fires while above 0), open recorder event "
                "streams, and streams closed because they could not keep up.",
                "short",
                targets(
                    (f"sum(signaling_recorded_rooms_without_recorder{{{SIG}}})",
                     "rooms without recorder"),
                    (f"sum(signaling_recorder_streams{{{SIG}}})", "recorder streams"),
                    (f"sum(increase(signaling_recorder_stream_overflows_total{{{SIG}}}[{RATE}]))",
                     "streams closed (overflow)"),
                ),
            ),
            timeseries(
                "Key envelopes relayed, decrypt failures",
                "Opaque HPKE key envelopes delivered by signaling (bursts at joins, leaves "
                "and 5-minute rotations), and frame decrypt failures reported by clients. "
                "ClientDecryptFailures fires above 0.05/s for 10 minutes.",
                "ops",
                targets(
                    (f"sum(rate(signaling_key_envelopes_relayed_total{{{SIG}}}[{RATE}]))",
                     "envelopes relayed"),
                    (f"sum(rate(signaling_client_decrypt_failures_total{{{SIG}}}[{RATE}]))",
                     "client decrypt failures"),
                ),
            ),
            timeseries(
                "Client messages by type",
                "Messages received from clients per second, by type.",
                "ops",
                targets((f"sum by (type) "
                         f"(rate(signaling_messages_received_total{{{SIG}}}[{RATE}]))",
                         "{{type}}")),
                width=12,
            ),
            timeseries(
                "Server messages by type",
                "Messages sent to clients per second, by type.",
                "ops",
                targets((f"sum by (type) (rate(signaling_messages_sent_total{{{SIG}}}[{RATE}]))",
                         "{{type}}")),
                width=12,
            ),
        ),
        row(
            "Resources",
            timeseries(
                "CPU cores used",
                "CPU seconds per second of each SFU and signaling process. The dashed line "
                "is the SFU CPU limit set in the rules (sfu:cpu_limit_cores:setting); "
                "SfuCpuNearLimit fires at 85% of it.",
                "short",
                targets(
                    (f"rate(process_cpu_seconds_total{{{SFU}}}[{RATE}])", "sfu {{instance}}"),
                    (f"rate(process_cpu_seconds_total{{{SIG}}}[{RATE}])",
                     "signaling {{instance}}"),
                    ("sfu:cpu_limit_cores:setting", "SFU limit"),
                ),
                width=12,
            ),
            timeseries(
                "Resident memory",
                "Resident set size of each process.",
                "bytes",
                targets(
                    (f"process_resident_memory_bytes{{{SFU}}}", "sfu {{instance}}"),
                    (f"process_resident_memory_bytes{{{SIG}}}", "signaling {{instance}}"),
                ),
                width=12,
            ),
        ),
    ]


def layout(all_rows: list[tuple[str, tuple[dict, ...]]]) -> list[dict]:
    """Flattens rows into Grafana's panel list with ids and grid positions."""
    panels: list[dict] = []
    next_id = 1
    y = 0
    for title, row_panels in all_rows:
        panels.append({"type": "row", "title": title, "collapsed": False, "id": next_id,
                       "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row_panels:
            width, height = panel.pop("_width"), panel.pop("_height")
            if x + width > 24:
                y += line_height
                x, line_height = 0, 0
            panel["id"] = next_id
            next_id += 1
            panel["gridPos"] = {"x": x, "y": y, "w": width, "h": height}
            x += width
            line_height = max(line_height, height)
            panels.append(panel)
        y += line_height
    # Add the SFU limit's dashed style, found by its query rather than by position.
    for panel in panels:
        for tgt in panel.get("targets", []):
            if tgt["expr"] == "sfu:cpu_limit_cores:setting":
                panel["fieldConfig"]["overrides"].append({
                    "matcher": {"id": "byName", "options": "SFU limit"},
                    "properties": [
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                        {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                    ],
                })
    return panels


def dashboard() -> dict:
    return {
        "uid": "e2ee-sfu",
        "title": "e2ee-sfu: calls and capacity",
        "description": "Rooms, media throughput, call quality, feedback, latency, signaling "
                       "and key relay of e2ee-sfu. Generated by "
                       "deploy/grafana/generate_dashboard.py; do not edit by hand.",
        "tags": ["e2ee-sfu", "webrtc"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-3h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "templating": {"list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": [],
            },
            {
                "name": "instance",
                "label": "SFU node",
                "type": "query",
                "datasource": DATASOURCE,
                "definition": 'label_values(sfu_participants{job="sfu"}, instance)',
                "query": {"query": 'label_values(sfu_participants{job="sfu"}, instance)',
                          "refId": "PrometheusVariableQueryEditor-VariableQuery",
                          "qryType": 1},
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "hide": 0,
                "refresh": 2,
                "regex": "",
                "sort": 1,
                "options": [],
            },
        ]},
        "panels": layout(rows()),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the committed JSON differs")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python3 {Path(__file__).as_posix()}",
                  file=sys.stderr)
            return 1
        print(f"{args.output.name} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
