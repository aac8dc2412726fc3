"""Kate finds its Redis or starts its own: a fresh machine needs no Redis set up by hand."""

from __future__ import annotations

import contextlib

import pytest
import redis
from redis_process import free_port

from core.local_redis import open_redis, start_local_redis
from core.settings import Settings
from knowledge.sources import SourceRegistry
from knowledge.store import StoreUnavailable, connect, ping


def test_a_local_redis_starts_and_keeps_its_data_across_restarts(tmp_path):
    port = free_port()
    start_local_redis(tmp_path / "redis", port)
    client = connect(f"redis://127.0.0.1:{port}/0")
    SourceRegistry(client).add("http://hr.example/leave")
    with contextlib.suppress(redis.ConnectionError):  # the server hangs up as it stops
        client.shutdown(save=False)  # the append-only file is already on disk
    assert not ping(client)
    start_local_redis(tmp_path / "redis", port)
    try:
        assert [s.url for s in SourceRegistry(connect(f"redis://127.0.0.1:{port}/0")).list()] == [
            "http://hr.example/leave"
        ]
        assert (tmp_path / "redis" / "redis.log").is_file()
    finally:
        with contextlib.suppress(redis.ConnectionError):
            connect(f"redis://127.0.0.1:{port}/0").shutdown(save=False)


def test_a_chosen_redis_that_is_down_is_an_error_not_a_silent_substitute(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings.from_env({"REDIS_URL": dead, "KATE_HOME": str(tmp_path)})
    with pytest.raises(StoreUnavailable, match="does not answer"):
        open_redis(settings)
    assert not (tmp_path / "redis").exists()
