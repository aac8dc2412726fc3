"""The Kubernetes manifests (docker/kubernetes/): validated against the Kubernetes API's own schemas
(kubernetes-validate, strict: an unknown field is an error), and cross-checked against the compose file
and each other, since no cluster runs here."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "docker" / "kubernetes").glob("*.yaml"))
# The oldest Kubernetes still commonly run, and the newest the validator knows.
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def resources() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


def workloads() -> dict[str, dict]:
    return by_kind("Deployment") | by_kind("StatefulSet")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_for_the_kubernetes_api(version):
    assert MANIFESTS, "no manifests in docker/kubernetes"
    for resource in resources():
        kubernetes_validate.validate(resource, version, strict=True)  # raises on any error


def test_the_validator_rejects_a_misspelt_field():
    bad = yaml.safe_load((ROOT / "docker" / "kubernetes" / "30-actions.yaml").read_text().split("---")[1])
    bad["spec"]["replica"] = bad["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)


def test_every_container_has_probes_and_resources():
    for name, workload in workloads().items():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, name
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), name
            assert "memory" in container["resources"]["limits"], name


def test_services_select_workloads_and_reach_their_ports():
    for name, service in by_kind("Service").items():
        workload = workloads()[name]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        ports = {
            p["containerPort"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name


def test_the_reader_scales_out_and_the_ingress_routes_to_existing_services():
    hpa = by_kind("HorizontalPodAutoscaler")["reader"]
    assert hpa["spec"]["scaleTargetRef"]["name"] in by_kind("Deployment")
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    services = by_kind("Service")
    paths = by_kind("Ingress")["kate"]["spec"]["rules"][0]["http"]["paths"]
    for path in paths:
        backend = path["backend"]["service"]
        ports = {p["port"] for p in services[backend["name"]]["spec"]["ports"]}
        assert backend["port"]["number"] in ports
    assert {p["path"]: p["backend"]["service"]["name"] for p in paths}["/socket.io/"] == "rasa"


def test_manifests_run_what_compose_runs():
    """Same images, commands and ports as docker/compose.yml, so one set of images serves both."""
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())["services"]
    for name, workload in workloads().items():
        container = workload["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == compose[name]["image"], name
        if "command" in compose[name]:
            assert container.get("command", container.get("args")) == compose[name]["command"], name
    secret = by_kind("Deployment")["web"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert any(e.get("valueFrom", {}).get("secretKeyRef") for e in secret), "the admin hash is a Secret"
