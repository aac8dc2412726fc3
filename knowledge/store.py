"""Redis, Kate's one database: a connection with timeouts, and one error for "Redis is not there".

Every Redis call in `knowledge` goes through a client made here, so a stopped or unreachable server
gives `StoreUnavailable` with the address in words an admin understands, within a few seconds, never a
hang and never a half-written record (multi-key writes use MULTI/EXEC transactions).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import redis

DEFAULT_PREFIX = "kate:"


class StoreUnavailable(RuntimeError):
    """Redis cannot be reached (or answered with an error); nothing was changed by the failed call."""


def connect(url: str, *, timeout: float = 3.0) -> redis.Redis:
    """A client for `url` (redis://host:port/db) that fails fast; strings come back decoded."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            decode_responses=True,
            retry_on_timeout=False,
        )
    except ValueError as exc:
        raise StoreUnavailable(
            f"REDIS_URL is not a Redis URL: {exc}"
        ) from exc  # no URL: it may hold a password
    return client


def ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def describe(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"redis://{where}/{kwargs.get('db', 0)}"


@contextmanager
def guarded(client: redis.Redis) -> Iterator[None]:
    """Turn redis-py's connection errors into `StoreUnavailable` naming the server."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(
            f"Redis at {describe(client)} is unreachable ({exc}); nothing was changed. "
            "Start Redis or set REDIS_URL."
        ) from exc
    except redis.ResponseError as exc:
        raise StoreUnavailable(f"Redis at {describe(client)} refused the command: {exc}") from exc


T = TypeVar("T")


def json_record(raw: str | None, make: Callable[..., T]) -> T | None:
    """A record kept as a JSON object in Redis, as `make(**fields)`; None when it is absent or of
    another shape (written by another version or by hand): ignored, never a crash."""
    if not raw:
        return None
    try:
        return make(**json.loads(raw))
    except (ValueError, KeyError, TypeError):
        return None


STREAM_PAGE = 500  # stream entries read per Redis round trip


def stream_entries(
    client: redis.Redis,
    key: str,
    since: float | None = None,
    until: float | None = None,
    newest_first: bool = False,
    limit: int | None = None,
) -> Iterator[tuple[str, dict[str, str]]]:
    """(id, fields) of a stream's entries stored between two epoch times (inclusive), read in pages:
    oldest first, or newest first (XREVRANGE) when only the latest matter. At most `limit` entries."""
    low = f"{int(since * 1000)}-0" if since else "-"
    high = f"{int(until * 1000)}-18446744073709551615" if until else "+"
    left = limit
    while left is None or left > 0:
        count = STREAM_PAGE if left is None else min(STREAM_PAGE, left)
        with guarded(client):
            if newest_first:
                page = client.xrevrange(key, high, low, count=count)
            else:
                page = client.xrange(key, low, high, count=count)
        yield from page
        if left is not None:
            left -= len(page)
        if len(page) < count:
            return
        if newest_first:  # exclusive: continue past the last one read
            high = "(" + page[-1][0]
        else:
            low = "(" + page[-1][0]
