"""Tests of the Ingress route checker (ingress_routes.py). Run: `pytest deploy/tools`."""

from __future__ import annotations

from ingress_routes import problems, routed, served_paths


def ingress(name: str, *paths: tuple[str, str]) -> dict:
    return {"kind": "Ingress", "metadata": {"name": name}, "spec": {"rules": [{"http": {
        "paths": [{"pathType": t, "path": p} for t, p in paths]}}]}}


def test_kubernetes_path_matching():
    table = [("Exact", "/"), ("Prefix", "/ui"), ("Exact", "/v1/rtc")]
    assert routed("/", table) and routed("/ui", table) and routed("/ui/a.js", table)
    assert not routed("/uix.js", table) and not routed("/v1/rtc/x", table)
    assert routed("/metrics", [("Prefix", "/")])


def test_public_ingress_must_serve_the_client_and_hide_admin_and_metrics():
    served = ["/app.js", "/ui/x"]
    good = ingress("signaling", ("Exact", "/"), ("Exact", "/v1/rtc"), ("Exact", "/app.js"),
                   ("Prefix", "/ui"))
    admin = ingress("signaling-admin", ("Prefix", "/v1/rooms"))
    assert problems([good, admin], served) == []
    assert problems([ingress("signaling", ("Prefix", "/"))], served) == [
        "Ingress signaling routes /metrics",
        "Ingress signaling routes the admin API (/v1/rooms) on the public host",
        "Ingress signaling routes the admin API (/v1/rooms/demo) on the public host",
        "Ingress signaling routes the admin API (/v1/rooms/demo/participants/d1) on the public host",
    ]
    missing = ingress("signaling", ("Exact", "/"), ("Exact", "/v1/rtc"))
    assert problems([missing], served) == [
        "Ingress signaling does not route /app.js (the web client needs it)",
        "Ingress signaling does not route /ui/x (the web client needs it)",
    ]


def test_the_real_web_client_is_listed_without_tests_and_packages():
    served = served_paths()
    assert "/index.html" in served and "/e2ee/x" in served
    assert not any(p.startswith(("/test", "/node_modules", "/package")) or p.endswith(".md")
                   for p in served)
