"""Tests of the probe path lister (probe_paths.py). Run: `pytest deploy/tools`."""

from __future__ import annotations

import yaml

from probe_paths import all_probes, dockerfile_probes, yaml_probes


def test_kubernetes_probes_and_compose_healthchecks():
    k8s = yaml.safe_load("""
spec:
  containers:
    - name: signaling
      image: registry.example.com/e2ee-sfu/signaling:0.1.0
      livenessProbe: {httpGet: {path: /healthz, port: http}}
      readinessProbe: {httpGet: {path: /readyz, port: http}}
    - name: sidecar
      image: busybox
      livenessProbe: {httpGet: {path: /nope, port: 1}}
""")
    assert yaml_probes(k8s) == [("signaling", "/healthz"), ("signaling", "/readyz")]
    compose = yaml.safe_load("""
services:
  sfu:
    build: {dockerfile: deploy/docker/sfu.Dockerfile}
    healthcheck: {test: ["CMD", "wget", "-q", "http://127.0.0.1:7880/readyz"]}
  prometheus:
    image: prom/prometheus
    healthcheck: {test: ["CMD", "wget", "http://127.0.0.1:9090/-/ready"]}
""")
    assert yaml_probes(compose) == [("sfu", "/readyz")]


def test_dockerfile_healthcheck_over_continuation_lines():
    text = 'HEALTHCHECK --interval=10s \\\n  CMD ["wget", "-q", "http://127.0.0.1:8080/healthz"]\n'
    assert dockerfile_probes("signaling", text) == [("signaling", "/healthz")]


def test_the_deployment_files_probe_every_service():
    services = {service for service, _ in all_probes()}
    assert services == {"sfu", "signaling", "recorder"}
