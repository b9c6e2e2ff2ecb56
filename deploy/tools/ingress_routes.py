#!/usr/bin/env python3
"""Checks what the rendered Ingresses expose of signaling.

    ingress_routes.py RENDERED.yaml...

For each rendered overlay (`kubectl kustomize` output): the public Ingress `signaling` routes
`/`, the WebSocket `/v1/rtc` and every file and folder the web client serves (the top level of
signaling/web, less what signaling/src/web_client.rs leaves out of the binary), and nothing of
the admin API (`/v1/rooms...`); no Ingress at all routes `/metrics` (Prometheus scrapes inside
the cluster). An Ingress other than `signaling` (the opt-in admin host) may route `/v1/rooms`.

Exit status: 0 as described, 1 otherwise (each problem printed), 2 a file cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
WEB = ROOT / "signaling" / "web"
PUBLIC_INGRESS = "signaling"
# What signaling/src/web_client.rs excludes from the embedded web client (top level).
NOT_SERVED = ("node_modules", "test", "package.json", "package-lock.json")
ADMIN_PATHS = ("/v1/rooms", "/v1/rooms/demo", "/v1/rooms/demo/participants/d1")


def served_paths(web: Path = WEB) -> list[str]:
    """A request path for each top-level file and folder of the web client."""
    paths = []
    for entry in sorted(web.iterdir()):
        if entry.name in NOT_SERVED or entry.name.startswith(".") or entry.suffix == ".md":
            continue
        paths.append(f"/{entry.name}/x" if entry.is_dir() else f"/{entry.name}")
    return paths


def routes(ingress: dict) -> list[tuple[str, str]]:
    """(pathType, path) of every rule of an Ingress."""
    out = []
    for rule in ingress.get("spec", {}).get("rules", []):
        for p in rule.get("http", {}).get("paths", []):
            out.append((p.get("pathType", "ImplementationSpecific"), p.get("path", "/")))
    return out


def routed(path: str, table: list[tuple[str, str]]) -> bool:
    """Whether Kubernetes' Ingress matching sends `path` to a backend of `table`: Exact is the
    whole path; Prefix matches whole path elements (`/ui` matches `/ui` and `/ui/x`, not
    `/uix`); any other type is taken as a Prefix (the implementations' common behaviour)."""
    for kind, route in table:
        if kind == "Exact":
            if path == route:
                return True
            continue
        prefix = route.rstrip("/")
        if prefix == "" or path == prefix or path.startswith(prefix + "/"):
            return True
    return False


def problems(documents: list[dict], served: list[str]) -> list[str]:
    ingresses = {d["metadata"]["name"]: d for d in documents
                 if d and d.get("kind") == "Ingress"}
    out = []
    for name, ingress in ingresses.items():
        if routed("/metrics", routes(ingress)):
            out.append(f"Ingress {name} routes /metrics")
    public = ingresses.get(PUBLIC_INGRESS)
    if public is None:
        return out
    table = routes(public)
    for path in ["/", "/v1/rtc", *served]:
        if not routed(path, table):
            out.append(f"Ingress {PUBLIC_INGRESS} does not route {path} (the web client needs it)")
    for path in ADMIN_PATHS:
        if routed(path, table):
            out.append(f"Ingress {PUBLIC_INGRESS} routes the admin API ({path}) on the public host")
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    found = []
    served = served_paths()
    for name in argv:
        try:
            documents = list(yaml.safe_load_all(Path(name).read_text()))
        except (OSError, yaml.YAMLError) as e:
            print(f"ingress_routes: {name}: {e}", file=sys.stderr)
            return 2
        found += [f"{name}: {p}" for p in problems(documents, served)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
