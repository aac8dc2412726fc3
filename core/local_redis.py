"""Find Kate's Redis, or start one: the product runs on a machine with no Redis configured.

- `REDIS_URL` set: that server, and a clear error if it does not answer (an admin chose it; starting
  another one silently would split Kate's data in two).
- unset: a Redis on 127.0.0.1:6379 if one answers, else Kate's own server, started once in the
  background with its data in `$KATE_HOME/redis` (append-only file, so sources and feedback survive a
  restart) on port `LOCAL_PORT`, and reused by later commands.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis

from knowledge.store import StoreUnavailable, connect, ping

from .settings import Settings, mask_url

DEFAULT_URL = "redis://127.0.0.1:6379/0"
LOCAL_PORT = 6390


def local_url() -> str:
    return f"redis://127.0.0.1:{LOCAL_PORT}/0"


def open_redis(settings: Settings, start: bool = True, announce: bool = True) -> redis.Redis:
    if settings.redis_url:
        client = connect(settings.redis_url)
        if not ping(client):
            raise StoreUnavailable(f"Redis at REDIS_URL={mask_url(settings.redis_url)} does not answer")
        return client
    for url in (DEFAULT_URL, local_url()):
        client = connect(url, timeout=1.0)
        if ping(client):
            return client
    if not start:
        raise StoreUnavailable("no Redis answers on 127.0.0.1:6379 (set REDIS_URL, or run `kate up`)")
    start_local_redis(settings.home / "redis", LOCAL_PORT)
    client = connect(local_url())
    if announce:
        print(
            f"kate: started a local Redis at {local_url()} (data in {settings.home / 'redis'})",
            file=sys.stderr,
        )
    return client


def start_local_redis(data_dir: Path, port: int, wait_s: float = 10.0) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise StoreUnavailable(
            "no Redis is running and redis-server is not installed "
            "(`./kate.sh setup` installs it on Debian; or set REDIS_URL)"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            binary,
            "--daemonize", "yes",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data_dir),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(data_dir / "redis.log"),
            "--pidfile", str(data_dir / "redis.pid"),
        ],
        check=True,
        timeout=wait_s,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = connect(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    deadline = time.monotonic() + wait_s
    while not ping(client):
        if time.monotonic() > deadline:
            raise StoreUnavailable(f"the local Redis did not start; see {data_dir / 'redis.log'}")
        time.sleep(0.1)


def redis_is_ours(client: redis.Redis, settings: Settings) -> bool:
    """Whether `client` talks to the Redis Kate starts itself (not one an admin runs)."""
    from knowledge.store import describe

    return settings.redis_url is None and describe(client) == local_url()


def stop_local_redis(url: str) -> None:
    """Shut Kate's own Redis down cleanly (its append-only file keeps the data)."""
    client = connect(url, timeout=2.0)
    with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
        client.shutdown()  # fails when it is already stopped
