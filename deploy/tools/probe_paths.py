#!/usr/bin/env python3
"""Lists every HTTP path the deployment files probe on our services, for deploy/live-check.

    probe_paths.py        one line per (service, path): `sfu /healthz <files that probe it>`

Read from the Kubernetes manifests (`startupProbe`, `livenessProbe`, `readinessProbe` with
`httpGet` in a container of image or name `sfu`/`signaling`/`recorder`), the compose file (`healthcheck`
of a service built from or running our image) and the Dockerfiles (`HEALTHCHECK`). deploy/live-
check requests each path from the running services and fails unless it answers 200.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
SERVICES = ("sfu", "signaling", "recorder")
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
URL_PATH = re.compile(r"https?://[^/\s\"']+(/[^\s\"']*)")


def _service(node: dict) -> str | None:
    image = node.get("image")
    if isinstance(image, str):
        name = image.rsplit("/", 1)[-1].split(":", 1)[0]
        return name if name in SERVICES else None
    build = node.get("build")
    if isinstance(build, dict) and isinstance(build.get("dockerfile"), str):
        name = build["dockerfile"].rsplit("/", 1)[-1].removesuffix(".Dockerfile")
        return name if name in SERVICES else None
    name = node.get("name")
    return name if name in SERVICES and any(p in node for p in PROBES) else None


def yaml_probes(document: object) -> list[tuple[str, str]]:
    """(service, path) of the probes and health checks in one YAML document."""
    found: list[tuple[str, str]] = []
    if isinstance(document, list):
        for item in document:
            found += yaml_probes(item)
        return found
    if not isinstance(document, dict):
        return found
    service = _service(document)
    if service:
        for probe in PROBES:
            http = (document.get(probe) or {}).get("httpGet")
            if isinstance(http, dict):
                found.append((service, str(http.get("path", "/"))))
        test = (document.get("healthcheck") or {}).get("test")
        if test:
            words = test if isinstance(test, list) else [test]
            found += [(service, m.group(1)) for w in words for m in URL_PATH.finditer(str(w))]
    for value in document.values():
        found += yaml_probes(value)
    return found


def dockerfile_probes(service: str, text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    return [(service, m.group(1)) for line in joined.splitlines()
            if line.strip().upper().startswith("HEALTHCHECK")
            for m in URL_PATH.finditer(line)]


def all_probes(deploy: Path = DEPLOY) -> dict[tuple[str, str], list[str]]:
    """(service, path) -> the files that probe it."""
    found: dict[tuple[str, str], list[str]] = {}

    def add(pairs: list[tuple[str, str]], path: Path) -> None:
        for pair in pairs:
            where = str(path.relative_to(deploy.parent))
            if where not in found.setdefault(pair, []):
                found[pair].append(where)

    for path in sorted([*deploy.glob("k8s/**/*.yaml"), *deploy.glob("compose/*.yaml")]):
        for document in yaml.safe_load_all(path.read_text()):
            add(yaml_probes(document), path)
    for service in SERVICES:
        path = deploy / "docker" / f"{service}.Dockerfile"
        if path.exists():
            add(dockerfile_probes(service, path.read_text()), path)
    return found


def main() -> int:
    for (service, path), files in sorted(all_probes().items()):
        print(service, path, ",".join(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
