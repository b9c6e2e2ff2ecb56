"""Tests of the dashboard schema check (dashboard_schema.py) on the real generated dashboard."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from dashboard_schema import check

DASHBOARD = Path(__file__).resolve().parent.parent / "grafana" / "dashboards" / "e2ee-sfu.json"


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def first(doc: dict, panel_type: str) -> dict:
    return next(p for p in doc["panels"] if p["type"] == panel_type)


def test_the_generated_dashboard_conforms():
    assert check(load()) == []


def test_misspelt_panel_options_are_found():
    doc = load()
    first(doc, "timeseries")["options"]["tooltipp"] = {"mode": "multi"}
    first(doc, "heatmap")["options"]["yAxis"]["unitt"] = "s"
    first(doc, "stat")["fieldConfig"]["defaults"]["custom_unit"] = "short"
    problems = check(doc)
    assert len(problems) == 3, problems
    assert any(p.endswith("/options/tooltipp") for p in problems)
    assert any(p.endswith("/options/yAxis/unitt") for p in problems)


def test_misspelt_query_fields_are_found():
    doc = load()
    target = first(doc, "timeseries")["targets"][0]
    target["exprr"] = target.pop("expr")
    assert any(p.endswith("/targets/0/exprr") for p in check(doc))


def test_unknown_top_level_keys_are_found():
    doc = copy.deepcopy(load())
    doc["refreshh"] = "30s"
    assert check(doc) == ["unknown key refreshh"]
