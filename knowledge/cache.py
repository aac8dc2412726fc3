"""The page cache in Redis: each source's passages with the metadata needed to re-fetch it cheaply.

One JSON value per URL (`kate:page:<sha256 of the URL>`), written in one SET so a reader never sees
half a page. "Fresh" is decided here from `fetched_at` and the TTL, not by Redis expiry: a stale copy
stays readable, because answering from an hour-old page beats not answering when the intranet is slow
(the per-question time budget). Redis expiry only collects pages nobody has refreshed for a long time.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

import redis

from qa_engine.types import Passage

from .changes import ChangeLog
from .store import DEFAULT_PREFIX, guarded

GARBAGE_AFTER_S = 30 * 24 * 3600  # pages untouched for a month leave Redis


@dataclass
class CachedPage:
    url: str
    final_url: str
    title: str
    language: str
    passages: list[Passage]
    fetched_at: float
    etag: str = ""
    last_modified: str = ""
    encoding: str = ""
    n_bytes: int = 0

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.fetched_at


def _decode(raw: str) -> CachedPage | None:
    try:
        d = json.loads(raw)
        d["passages"] = [Passage(**p) for p in d["passages"]]
        return CachedPage(**d)
    except (TypeError, ValueError, KeyError):
        return None  # an unreadable entry is a miss; the next fetch overwrites it


class PageCache:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, ttl: float = 3600.0) -> None:
        self.r = client
        self.prefix = prefix
        self.ttl = ttl
        self.changes = ChangeLog(client, prefix)

    def _key(self, url: str) -> str:
        return f"{self.prefix}page:{hashlib.sha256(url.encode('utf-8')).hexdigest()[:40]}"

    def get(self, url: str) -> CachedPage | None:
        return self.get_many([url]).get(url)

    def get_many(self, urls: list[str]) -> dict[str, CachedPage]:
        """Cached pages by URL, in one round trip (this runs for every question, over every source)."""
        if not urls:
            return {}
        with guarded(self.r):
            raws = self.r.mget([self._key(url) for url in urls])
        found = {}
        for url, raw in zip(urls, raws, strict=True):
            page = _decode(raw) if raw else None
            if page is not None:
                found[url] = page
        return found

    def is_fresh(self, page: CachedPage, now: float | None = None) -> bool:
        return page.age(now) < self.ttl

    def put(self, page: CachedPage) -> None:
        d = asdict(page)
        with guarded(self.r):
            self.r.set(self._key(page.url), json.dumps(d, ensure_ascii=False), ex=GARBAGE_AFTER_S)
        self.changes.note(page.url)

    def touch(self, page: CachedPage, now: float | None = None) -> CachedPage:
        """A 304 answer: same text, fresh again."""
        page.fetched_at = now or time.time()
        self.put(page)
        return page

    def invalidate(self, url: str) -> None:
        with guarded(self.r):
            self.r.delete(self._key(url))
        self.changes.note(url)


class VectorCache:
    """Passage vectors of the ranker, by content key (`model:sha256`), so a new process (or another
    replica) does not re-encode pages that have not changed. Values are float16 bytes."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.prefix = prefix

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        with guarded(self.r):
            raw = self.r.mget([f"{self.prefix}vec:{k}" for k in keys])
        return [v.encode("latin-1") if isinstance(v, str) else v for v in raw]

    def put_many(self, items: dict[str, bytes]) -> None:
        with guarded(self.r):
            pipe = self.r.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(f"{self.prefix}vec:{key}", value.decode("latin-1"), ex=GARBAGE_AFTER_S)
            pipe.execute()
