"""Tests of the metric-name checker (metric_names.py), not of the services.

The live mode is exercised end to end: real HTTP servers on 127.0.0.1 serve text expositions
built from docs/metrics.md, and the checker's command line scrapes them as it will scrape the
running services. Run: `pytest deploy/tools` (deploy/check does, in its tools venv).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from metric_names import Exposition, Reference, collect
from metrics_doc import expositions_from_doc, parse_tables

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent.parent
DOC = ROOT / "docs" / "metrics.md"
CHECKER = TOOLS / "metric_names.py"


def doc_texts() -> tuple[str, str]:
    """(sfu exposition, signaling exposition) built from the metrics contract."""
    texts = expositions_from_doc(DOC.read_text())
    sfu = [t for title, t in texts.items() if title.startswith("SFU")]
    signaling = [t for title, t in texts.items() if title.startswith("Signaling")]
    assert len(sfu) == 1 and len(signaling) == 1, list(texts)
    return sfu[0], signaling[0]


def recorder_text() -> str:
    """The compliance recorder's exposition built from the metrics contract."""
    texts = expositions_from_doc(DOC.read_text())
    recorder = [t for title, t in texts.items() if title.startswith("Recorder")]
    assert len(recorder) == 1, list(texts)
    return recorder[0]


@contextmanager
def metrics_server(body: str):
    """Serves `body` at http://127.0.0.1:<port>/metrics; yields the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path != "/metrics":
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def run_checker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECKER), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def drop_family(text: str, family: str) -> str:
    """The exposition without any line of `family` (and its _bucket/_sum/_count series)."""
    keep = []
    for line in text.splitlines():
        words = line.split()
        name = words[2] if line.startswith("#") and len(words) > 2 else line.split("{")[0].split()[0]
        if name == family or name.removesuffix("_bucket").removesuffix("_sum").removesuffix(
                "_count") == family:
            continue
        keep.append(line)
    return "\n".join(keep) + "\n"


# ---- the live check against served expositions -----------------------------------------------

def test_every_referenced_name_is_found_on_servers_built_from_the_contract():
    sfu, signaling = doc_texts()
    with metrics_server(sfu) as sfu_url, metrics_server(signaling) as signaling_url, \
            metrics_server(recorder_text()) as recorder_url:
        result = run_checker(sfu_url, signaling_url, recorder_url)
    assert result.returncode == 0, result.stdout + result.stderr
    wanted = len(collect_default().wanted())
    assert f"{wanted} of {wanted} referenced metric names found" in result.stdout
    assert wanted >= 25  # the rules and dashboard use most of the contract


def test_a_missing_histogram_is_reported_with_its_users():
    sfu, signaling = doc_texts()
    assert "sfu_rtt_seconds_bucket" in sfu
    with metrics_server(drop_family(sfu, "sfu_rtt_seconds")) as sfu_url, \
            metrics_server(signaling) as signaling_url:
        result = run_checker(sfu_url, signaling_url)
    assert result.returncode == 1
    assert "MISSING sfu_rtt_seconds_bucket: not exported" in result.stdout
    assert "SfuRttHigh" in result.stdout  # where it is used
    assert "sfu_jitter_seconds" not in result.stdout


def test_one_service_alone_lacks_the_other_services_names():
    sfu, _ = doc_texts()
    with metrics_server(sfu) as sfu_url:
        result = run_checker(sfu_url)
    assert result.returncode == 1
    assert "MISSING signaling_joins_total" in result.stdout
    assert "MISSING sfu_" not in result.stdout


def test_a_label_the_rules_match_on_must_be_exported():
    sfu, signaling = doc_texts()
    # the SFU exports its loss histogram without the `direction` label the alerts select on
    broken = sfu.replace('direction="publisher",', "").replace('direction="subscriber",', "")
    assert broken != sfu
    with metrics_server(broken) as sfu_url, metrics_server(signaling) as signaling_url:
        result = run_checker(sfu_url, signaling_url)
    assert result.returncode == 1
    assert "sfu_loss_ratio_sum: no sample has label(s) direction" in result.stdout


def test_an_unreachable_service_is_an_error_not_a_pass():
    with metrics_server("") as url:
        dead = url  # the server is shut down when the block ends
    result = run_checker(dead)
    assert result.returncode == 2
    assert "cannot scrape" in result.stderr


def test_the_deploy_files_use_only_contract_names():
    result = run_checker("--doc", str(DOC))
    assert result.returncode == 0, result.stdout + result.stderr


# ---- suffix handling -------------------------------------------------------------------------

def exposition(text: str) -> Exposition:
    exp = Exposition()
    exp.add_text(text, "test")
    return exp


SUFFIX_CASES = """\
# TYPE h histogram
h_bucket{le="+Inf"} 1
h_sum 0
h_count 1
# TYPE s summary
s{quantile="0.5"} 0
s_sum 0
s_count 0
# TYPE g_count gauge
g_count 3
# TYPE empty_total counter
# TYPE om counter
om_total 1
# TYPE hv histogram
"""


@pytest.mark.parametrize("name, ok", [
    ("h_bucket", True), ("h_sum", True), ("h_count", True),
    ("h", False),                      # a histogram's own name is not a series
    ("s_sum", True), ("s_count", True), ("s_bucket", False),  # summaries have no buckets
    ("g_count", True),                 # a gauge that happens to end in _count
    ("g_bucket", False), ("g", False),  # ... is not a histogram called g
    ("empty_total", True),             # declared counter vec with no sample yet
    ("om_total", True), ("om", False),  # OpenMetrics counter: only its _total sample
    ("hv_bucket", True),               # declared histogram vec with no observation yet
    ("hv_total", False), ("absent", False),
])
def test_suffixes_resolve_to_families(name, ok):
    assert (exposition(SUFFIX_CASES).problems(Reference(name)) == []) == ok


def test_labels_of_a_declared_family_without_samples_are_not_checked():
    assert exposition(SUFFIX_CASES).problems(Reference("hv_bucket", {"direction"})) == []
    assert exposition(SUFFIX_CASES).problems(Reference("h_bucket", {"direction"})) != []
    assert exposition(SUFFIX_CASES).problems(Reference("h_bucket", {"le", "job"})) == []


# ---- extraction from rules and dashboards ----------------------------------------------------

def test_extraction_from_rules_and_dashboard(tmp_path):
    rules = tmp_path / "r.yml"
    rules.write_text("""
groups:
  - name: g
    rules:
      - record: job:a_requests:rate5m
        expr: sum by (job) (rate(a_requests_total{code!="200"}[5m]))
      - alert: A
        expr: job:a_requests:rate5m > 1 and on () up{job="x"} == 1
      - alert: B
        expr: histogram_quantile(0.9, sum by (le) (rate(b_seconds_bucket{kind="v"}[5m]))) > absent_over_time({__name__="c_info"}[5m])
""")
    dashboard = tmp_path / "d.json"
    dashboard.write_text(json.dumps({
        "panels": [
            {"type": "row", "title": "collapsed", "panels": [
                {"title": "inner", "targets": [
                    {"expr": 'sum(rate(d_total{instance=~"$instance"}[$__rate_interval]))'}]},
            ]},
            {"title": "p", "targets": [{"expr": "e_bytes / ${__interval_ms}"}, {"expr": ""}]},
        ],
        "templating": {"list": [
            {"type": "query", "name": "instance",
             "query": {"query": 'label_values(f_rooms{job="sfu"}, instance)'}},
            {"type": "datasource", "name": "ds", "query": "prometheus"},
        ]},
    }))
    refs = collect([rules], [dashboard])
    got = {ref.name: ref.labels for ref in refs.wanted()}
    assert got == {
        "a_requests_total": {"code"},
        "b_seconds_bucket": {"kind"},
        "c_info": set(),
        "d_total": {"instance"},
        "e_bytes": set(),
        "f_rooms": {"job"},
    }
    assert refs.recorded == {"job:a_requests:rate5m"}
    assert "d.json:inner" in refs.by_name["d_total"].where


def test_a_recorded_name_that_no_rule_defines_is_looked_for(tmp_path):
    rules = tmp_path / "r.yml"
    rules.write_text("groups: [{name: g, rules: [{alert: A, expr: 'job:undefined:rate5m > 1'}]}]")
    assert [r.name for r in collect([rules], []).wanted()] == ["job:undefined:rate5m"]


def test_an_unparseable_query_is_an_error(tmp_path):
    rules = tmp_path / "r.yml"
    rules.write_text("groups: [{name: g, rules: [{alert: A, expr: 'rate(x[5m]'}]}]")
    result = run_checker("--rules", str(rules), "--dashboard", str(ROOT / "deploy" / "grafana"
                                                                   / "dashboards" / "e2ee-sfu.json"),
                         "--doc", str(DOC))
    assert result.returncode == 2
    assert "cannot parse PromQL" in result.stderr


# ---- the fixture builder itself --------------------------------------------------------------

def test_contract_tables_become_expositions_with_every_row():
    tables = parse_tables(DOC.read_text())
    rows = [row for section in tables.values() for row in section]
    names = [name for row in rows for name in row["names"]]
    assert "sfu_loss_ratio" in names and "signaling_key_envelopes_relayed_total" in names
    exp = Exposition()
    for text in expositions_from_doc(DOC.read_text()).values():
        exp.add_text(text, "doc")
    for row in rows:
        for name in row["names"]:
            assert name in exp.types
            if exp.types[name] == "histogram":
                assert exp.samples[f"{name}_bucket"] >= set(row["labels"]) | {"le"}
            else:
                assert exp.samples[name] == set(row["labels"])
    loss = next(r for r in rows if "sfu_loss_ratio" in r["names"])
    assert loss["labels"] == {"direction": ["publisher", "subscriber"], "kind": []}
    assert 'sfu_loss_ratio_count{direction="subscriber",kind="video"} 1' in \
        expositions_from_doc(DOC.read_text())[next(t for t in tables if t.startswith("SFU"))]


def collect_default():
    from metric_names import DEFAULT_DASHBOARDS, DEFAULT_RULES

    return collect(DEFAULT_RULES, DEFAULT_DASHBOARDS)
