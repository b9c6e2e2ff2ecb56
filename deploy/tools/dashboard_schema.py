#!/usr/bin/env python3
"""Checks Grafana dashboard JSON against Grafana's own typed models.

Grafana Labs' `grafana-foundation-sdk` carries generated Python classes for the dashboard
schema and for each panel plugin's options and field config (timeseries, stat, heatmap, ...) and
for the Prometheus query model. A dashboard decoded with them and encoded again loses every key
the schema does not know, so a misspelt option (`tooltipp`, `fillOpacty`, `exprr`) shows up as a
dropped key, and a value of the wrong shape as a changed one.

    dashboard_schema.py FILE...     exit 0 when nothing is dropped or changed, else 1

A few keys that Grafana itself writes but the SDK's models omit are allowed (ALLOWED_DROPS).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog import encoder, plugins
from grafana_foundation_sdk.models import dashboard

# Keys Grafana's own exports contain that the SDK's models leave out.
ALLOWED_DROPS = {
    ("annotations", "list", "*", "builtIn"),  # marks Grafana's built-in annotation query
    ("templating", "list", "*", "definition"),  # a query variable's display text
}

plugins.register_default_plugins()


def _generalise(path: tuple) -> tuple:
    return tuple("*" if isinstance(p, int) else p for p in path)


def differences(original: Any, decoded: Any, path: tuple = ()) -> list[str]:
    """Keys of `original` that `decoded` lacks or holds with another value."""
    found: list[str] = []
    if isinstance(original, dict) and isinstance(decoded, dict):
        for key, value in original.items():
            if key not in decoded:
                if _generalise((*path, key)) not in ALLOWED_DROPS:
                    found.append(f"unknown key {'/'.join(map(str, (*path, key)))}")
            else:
                found += differences(value, decoded[key], (*path, key))
    elif isinstance(original, list) and isinstance(decoded, list):
        if len(original) != len(decoded):
            found.append(f"{'/'.join(map(str, path))}: {len(original)} items became "
                         f"{len(decoded)}")
        for index, (a, b) in enumerate(zip(original, decoded)):
            found += differences(a, b, (*path, index))
    elif original != decoded:
        found.append(f"{'/'.join(map(str, path))}: {original!r} read as {decoded!r}")
    return found


def check(document: dict) -> list[str]:
    """Schema problems of one dashboard document (empty when it conforms)."""
    try:
        model = dashboard.Dashboard.from_json(document)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        return [f"cannot decode: {err!r}"]
    round_trip = json.loads(json.dumps(model, cls=encoder.JSONEncoder))
    return differences(document, round_trip)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: dashboard_schema.py FILE...", file=sys.stderr)
        return 2
    failed = False
    for name in argv:
        problems = check(json.loads(Path(name).read_text()))
        for problem in problems:
            print(f"{name}: {problem}")
        failed |= bool(problems)
        if not problems:
            print(f"{name}: conforms to the Grafana dashboard and panel models")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
