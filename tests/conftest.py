"""Shared test setup: tests import their helpers (tiny_models, servers) from this folder.

No model hub is reachable here: hub mode is switched off before transformers is imported, so a hub id
fails at once with a clear error instead of after a minute of retries.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from redis_process import RedisProcess, free_port

pytest_plugins = ["kate_stack", "browser"]  # session fixtures: the running Kate, a headless Chromium


@pytest.fixture(scope="session", autouse=True)
def redis_server(tmp_path_factory):
    """One real Redis for the whole run, on a free port. Its URL (and a free demo-site port) goes into
    the environment, so `kate` subprocesses use it too and never touch the machine's own Redis."""
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    os.environ["REDIS_URL"] = server.url
    os.environ["KATE_DEMO_PORT"] = str(free_port())
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    """A client on an emptied database."""
    from knowledge.store import connect

    client = connect(redis_server.url)
    client.flushdb()
    return client
