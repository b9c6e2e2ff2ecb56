#!/usr/bin/env python3
"""Checks that every metric the alert rules and the Grafana dashboard use really exists.

It extracts the series names (and the label names in their matchers) from every PromQL
expression in deploy/prometheus/rules/*.yml and deploy/grafana/dashboards/*.json, using a real
PromQL parser (the `promql-parser` package), and compares them with what a Prometheus scrape
would see:

    metric_names.py URL...            scrape each URL's /metrics text and compare (live check)
    metric_names.py --doc FILE        compare with the contract docs/metrics.md instead
    metric_names.py --list            print the referenced names and where they are used

A referenced name is present when it is a sample name in the exposition, or when it is a
family's own series: `X_bucket` of a histogram `X`; `X_sum`/`X_count` of a histogram or
summary `X`; `X_total` of an OpenMetrics counter `X`; or the name of a counter/gauge/untyped
family that is declared (`# TYPE`) but has no sample yet (a labelled metric nothing has touched).
A bare histogram name is not a series and counts as missing. Names that Prometheus makes itself
(`up`, `ALERTS`, ...) and names recorded by the rules files are not looked for.

When the exposition has samples for a name, each label name used in a matcher on it must
appear on at least one of those samples (catches `type`/`kind` mix-ups); target labels that
Prometheus adds (`job`, `instance`, ...) are exempt.

Exit status: 0 all present, 1 something missing, 2 a URL could not be scraped or a file parsed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import promql_parser
import yaml

DEPLOY = Path(__file__).resolve().parent.parent
DEFAULT_RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DEFAULT_DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))

# Series Prometheus creates itself, never exported by a service.
PROMETHEUS_SERIES = frozenset({
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE",
})
# Labels Prometheus attaches to every scraped series (target labels of deploy/prometheus/*.yml).
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "node", "__name__"})

# Grafana's built-in interval variables, replaced by a duration so the text parses as PromQL.
GRAFANA_INTERVAL = re.compile(r"\$\{?__(?:rate_interval|interval|range)(?:_ms|_s)?\}?")


class InputError(Exception):
    """A file or a scrape could not be read or parsed."""


@dataclass
class Reference:
    """One metric name used somewhere, with the label names matched on it."""

    name: str
    labels: set[str] = field(default_factory=set)
    where: set[str] = field(default_factory=set)


def grafana_to_promql(expr: str) -> str:
    """Makes a Grafana query parseable: interval variables become `5m`."""
    return GRAFANA_INTERVAL.sub("5m", expr)


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(series name, matcher label names) of every vector selector in a PromQL expression."""
    try:
        ast = promql_parser.parse(expr)
    except (ValueError, TypeError) as err:
        raise InputError(f"cannot parse PromQL {expr!r}: {err}") from err
    found: list[tuple[str, set[str]]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = list(node.matchers.matchers)
            name = node.name
            if name is None:
                # `{__name__="x"}`: only an equality matcher names one series.
                names = [m.value for m in matchers
                         if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal]
                if not names:
                    raise InputError(f"selector without a fixed metric name in {expr!r}")
                name = names[0]
            found.append((name, {m.name for m in matchers} - {"__name__"}))

    promql_parser.walk(ast, visit)
    return found


class References:
    """Metric names referenced by rules and dashboards, minus recorded and built-in names."""

    def __init__(self) -> None:
        self.by_name: dict[str, Reference] = {}
        self.recorded: set[str] = set()

    def add_expr(self, expr: str, where: str) -> None:
        for name, labels in selectors(grafana_to_promql(expr)):
            ref = self.by_name.setdefault(name, Reference(name))
            ref.labels |= labels
            ref.where.add(where)

    def add_rules(self, path: Path) -> None:
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise InputError(f"{path}: {err}") from err
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                label = rule.get("alert") or rule.get("record")
                if "record" in rule:
                    self.recorded.add(rule["record"])
                self.add_expr(str(rule["expr"]), f"{path.name}:{label}")

    def add_dashboard(self, path: Path) -> None:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: {err}") from err

        def panels(items: list[dict]):
            for panel in items:
                yield panel
                yield from panels(panel.get("panels", []))

        for panel in panels(doc.get("panels", [])):
            for tgt in panel.get("targets", []):
                if tgt.get("expr"):
                    self.add_expr(tgt["expr"], f"{path.name}:{panel.get('title', '?')}")
        for var in doc.get("templating", {}).get("list", []):
            if var.get("type") != "query":
                continue
            query = var.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            where = f"{path.name}:${var.get('name')}"
            if m := re.fullmatch(r"\s*label_values\((.+),\s*\w+\s*\)\s*", text):
                self.add_expr(m.group(1), where)
            elif m := re.fullmatch(r"\s*query_result\((.+)\)\s*", text):
                self.add_expr(m.group(1), where)
            elif text and not re.fullmatch(r"\s*(label_values\(\s*\w+\s*\)|label_names\(\)"
                                           r"|metrics\(.*\))\s*", text):
                raise InputError(f"{where}: unsupported variable query {text!r}")

    def wanted(self) -> list[Reference]:
        """The references a service must export, sorted by name."""
        skip = PROMETHEUS_SERIES | self.recorded
        return [ref for name, ref in sorted(self.by_name.items()) if name not in skip]


def collect(rules: list[Path], dashboards: list[Path]) -> References:
    refs = References()
    for path in rules:
        refs.add_rules(path)
    for path in dashboards:
        refs.add_dashboard(path)
    return refs


_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_SAMPLE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+\S+")


class Exposition:
    """Families (`# TYPE`) and sample names with their label names, from scrape texts."""

    def __init__(self) -> None:
        self.types: dict[str, str] = {}
        self.samples: dict[str, set[str]] = {}

    def add_text(self, text: str, source: str) -> None:
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("# HELP") or line == "# EOF":
                continue
            if line.startswith("#"):
                parts = line.split()
                if len(parts) >= 4 and parts[1] == "TYPE":
                    self.types[parts[2]] = parts[3]
                continue
            m = _SAMPLE.match(line)
            if not m:
                raise InputError(f"{source}:{number}: not a sample line: {line[:80]!r}")
            labels: set[str] = set()
            if m.group(2):
                body = m.group(2)[1:-1]
                pos = 0
                while pos < len(body):
                    lm = _LABEL.match(body, pos)
                    if not lm:
                        raise InputError(f"{source}:{number}: bad labels: {body[:80]!r}")
                    labels.add(lm.group(1))
                    pos = lm.end()
            self.samples.setdefault(m.group(1), set()).update(labels)

    def series_family(self, name: str) -> tuple[str, str] | None:
        """(family, type) when `name` is a series of a declared family, else None."""
        suffixes = {"_bucket": {"histogram", "gaugehistogram"},
                    "_sum": {"histogram", "summary"},
                    "_count": {"histogram", "summary"},
                    "_total": {"counter"}}
        for suffix, kinds in suffixes.items():
            base = name.removesuffix(suffix)
            if base != name and self.types.get(base) in kinds:
                return base, self.types[base]
        if self.types.get(name) in {"counter", "gauge", "untyped", "unknown"}:
            if self.types[name] == "counter" and f"{name}_total" in self.samples:
                return None  # OpenMetrics counter family: only `<name>_total` is a series
            return name, self.types[name]
        return None

    def problems(self, ref: Reference) -> list[str]:
        """Why `ref` is not satisfied by this exposition (empty when it is)."""
        family = self.series_family(ref.name)
        if ref.name not in self.samples and family is None:
            if self.types.get(ref.name) in {"histogram", "summary"}:
                return [f"{ref.name}: is a {self.types[ref.name]}, not a series; "
                        f"use {ref.name}_bucket, _sum or _count"]
            return [f"{ref.name}: not exported"]
        present = self.samples.get(ref.name)
        if not present:
            return []  # declared, no sample yet: its labels cannot be checked
        missing = sorted(ref.labels - present - TARGET_LABELS)
        if missing:
            return [f"{ref.name}: no sample has label(s) {', '.join(missing)} "
                    f"(exported labels: {', '.join(sorted(present)) or 'none'})"]
        return []


def scrape(url: str, timeout: float = 10.0) -> str:
    if not re.match(r"https?://", url):
        url = "http://" + url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except (OSError, ValueError) as err:
        raise InputError(f"cannot scrape {url}: {err}") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="check that every metric used by the rules and the dashboard is exported")
    parser.add_argument("urls", nargs="*", help="/metrics URLs to scrape (all are merged)")
    parser.add_argument("--doc", type=Path, help="compare with this metrics.md instead of URLs")
    parser.add_argument("--rules", type=Path, action="append",
                        help=f"rules file (default: {DEPLOY.name}/prometheus/rules/*.yml)")
    parser.add_argument("--dashboard", type=Path, action="append",
                        help=f"dashboard JSON (default: {DEPLOY.name}/grafana/dashboards/*.json)")
    parser.add_argument("--list", action="store_true", help="print referenced names and exit")
    args = parser.parse_args(argv)

    try:
        refs = collect(args.rules or DEFAULT_RULES, args.dashboard or DEFAULT_DASHBOARDS)
        wanted = refs.wanted()
        if args.list:
            for ref in wanted:
                print(f"{ref.name}\t{','.join(sorted(ref.labels))}\t{'; '.join(sorted(ref.where))}")
            return 0
        exposition = Exposition()
        if args.doc:
            from metrics_doc import expositions_from_doc  # noqa: PLC0415 (only this mode)

            for section, text in expositions_from_doc(args.doc.read_text()).items():
                exposition.add_text(text, f"{args.doc}#{section}")
            sources = str(args.doc)
        elif args.urls:
            for url in args.urls:
                exposition.add_text(scrape(url), url)
            sources = ", ".join(args.urls)
        else:
            parser.error("give /metrics URLs, --doc FILE or --list")
    except InputError as err:
        print(f"metric_names: {err}", file=sys.stderr)
        return 2

    failures = [(ref, problem) for ref in wanted for problem in exposition.problems(ref)]
    for ref, problem in failures:
        print(f"MISSING {problem}\n        used by {'; '.join(sorted(ref.where))}")
    print(f"metric_names: {len(wanted) - len({r.name for r, _ in failures})} of {len(wanted)} "
          f"referenced metric names found in {sources}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
