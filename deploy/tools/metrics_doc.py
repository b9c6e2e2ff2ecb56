"""Builds Prometheus text expositions from the metrics contract (docs/metrics.md).

Each `## ` section of the document with a metrics table (`| name | type | labels | meaning |`)
becomes one exposition, as the service it describes would serve it once every label
combination has been touched: counters and gauges get one sample per combination of label
values, histograms get `_bucket` (two `le` bounds), `_sum` and `_count`.

Label values come from the labels cell (`` `kind` = audio\\|video ``); a label listed without
values takes the values given for the same label elsewhere in the same table, else `example`.
A row with no type (the process collector's row) is a counter when its name ends in `_total`,
else a gauge.

Used by `metric_names.py --doc` (the static check that rules and dashboard use only contract
names) and by the checker's tests, which serve these texts over HTTP.
"""

from __future__ import annotations

import itertools
import re

_NAME = re.compile(r"`([a-z_:][a-z0-9_:]*)`")
_LABEL = re.compile(r"`([a-z_][a-z0-9_]*)`(?:\s*=\s*([^,`]+))?")


def _cells(line: str) -> list[str]:
    # Split on pipes that are not escaped (`\|` separates label values inside a cell).
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def parse_tables(markdown: str) -> dict[str, list[dict]]:
    """Section title -> rows {names, type, labels: {label: [values]}, help}."""
    sections: dict[str, list[dict]] = {}
    title = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            continue
        if not line.startswith("|"):
            continue
        cells = _cells(line)
        if len(cells) < 4 or not _NAME.search(cells[0]):
            continue  # header or separator row
        labels: dict[str, list[str]] = {}
        for label, values in _LABEL.findall(cells[2]):
            labels[label] = [v.strip() for v in values.split("\\|") if v.strip()]
        sections.setdefault(title, []).append({
            "names": _NAME.findall(cells[0]),
            "type": cells[1].strip("` ").lower(),
            "labels": labels,
            "help": cells[3],
        })
    return sections


def _exposition(rows: list[dict]) -> str:
    known: dict[str, list[str]] = {}
    for row in rows:
        for label, values in row["labels"].items():
            if values and label not in known:
                known[label] = values
    out: list[str] = []
    for row in rows:
        names = list(row["labels"])
        value_lists = [row["labels"][n] or known.get(n) or ["example"] for n in names]
        combos = [dict(zip(names, combo)) for combo in itertools.product(*value_lists)]
        for name in row["names"]:
            kind = row["type"] or ("counter" if name.endswith("_total") else "gauge")
            out.append(f"# HELP {name} {row['help']}")
            out.append(f"# TYPE {name} {kind}")
            for labels in combos:
                def fmt(extra: dict[str, str] | None = None) -> str:
                    pairs = {**labels, **(extra or {})}
                    body = ",".join(f'{k}="{v}"' for k, v in pairs.items())
                    return "{" + body + "}" if body else ""

                if kind == "histogram":
                    for le in ("0.1", "+Inf"):
                        out.append(f"{name}_bucket{fmt({'le': le})} 1")
                    out.append(f"{name}_sum{fmt()} 0.05")
                    out.append(f"{name}_count{fmt()} 1")
                else:
                    out.append(f"{name}{fmt()} 1")
    return "\n".join(out) + "\n"


def expositions_from_doc(markdown: str) -> dict[str, str]:
    """Section title -> exposition text, for every section that has a metrics table."""
    return {title: _exposition(rows) for title, rows in parse_tables(markdown).items()}
