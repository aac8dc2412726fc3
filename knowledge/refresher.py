"""The background refresher: every source is re-checked on its own schedule, no question needed.

Why: pages used to be re-fetched only when an employee asked after their TTL, so an edit by HR waited for
a question to show up (and the question waited for the fetch). Here one refresher per deployment walks a
schedule in Redis (`refresh:next`, URL -> when to check it next) and revalidates what is due with
conditional GETs (an unchanged page costs one 304), at most `per_host` requests at once to any one host.
A changed page is re-parsed and re-cached; the change log (knowledge/changes.py) then tells every action
server's index to re-read and re-encode that page alone.

One per deployment, not one per replica: every action server runs a `Refresher`, and the one holding the
Redis lock (`refresh:lock`, a lease renewed every tick) does the work; if it dies, its lease expires and
another takes over within `lease_s`.

The schedule is reconciled with the registry every `reconcile_s`: new sources are checked at once (or when
their cached copy is due), removed or disabled ones leave it. The console shows each source's last check
(its fetch status) and the next one (`next_check`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from .library import Knowledge
from .sources import Source
from .store import StoreUnavailable, guarded

logger = logging.getLogger(__name__)

BATCH = 200  # due sources taken per tick (a bound on one tick's work)

# Renew the lease only if it is still ours (another refresher may have taken an expired one).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def next_checks(client: redis.Redis, prefix: str, urls: list[str]) -> dict[str, float]:
    """When each of these sources is checked next (absent: not scheduled yet); for the console."""
    if not urls:
        return {}
    with guarded(client):
        scores = client.zmscore(f"{prefix}refresh:next", urls)
    return {u: float(s) for u, s in zip(urls, scores, strict=True) if s is not None}


@dataclass
class RefreshSettings:
    every_s: float = 3600.0  # default interval between two checks of a page (a source may set its own)
    tick_s: float = 5.0  # how often the schedule is looked at
    per_host: int = 2  # requests at once to one host
    workers: int = 8  # requests at once in all
    lease_s: float = 30.0  # the lock's lifetime without renewal
    reconcile_s: float = 60.0  # how often the schedule is compared with the registry


class Refresher:
    def __init__(self, knowledge: Knowledge, settings: RefreshSettings | None = None) -> None:
        self.knowledge = knowledge
        self.settings = settings or RefreshSettings()
        self.r: redis.Redis = knowledge.cache.r
        prefix = knowledge.cache.prefix
        self.lock_key = f"{prefix}refresh:lock"
        self.schedule_key = f"{prefix}refresh:next"
        self.me = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reconciled = 0.0
        self.checked = 0  # pages checked by this refresher (tests, logs)

    # -- the lock ------------------------------------------------------------------------------------
    def holds_lock(self) -> bool:
        """Take the lock if it is free, renew it if it is ours; whether this refresher works this tick."""
        lease = int(self.settings.lease_s * 1000)
        with guarded(self.r):
            if self.r.set(self.lock_key, self.me, nx=True, px=lease):
                return True
            return bool(self.r.eval(_RENEW, 1, self.lock_key, self.me, lease))

    def release(self) -> None:
        try:
            with guarded(self.r):
                self.r.eval(_RELEASE, 1, self.lock_key, self.me)
        except StoreUnavailable:
            pass  # the lease expires by itself

    # -- the schedule --------------------------------------------------------------------------------
    def interval(self, source: Source) -> float:
        return source.every or self.settings.every_s

    def reconcile(self, now: float) -> None:
        """Every enabled source in the schedule (when its cached copy is due), nothing else."""
        sources = {s.url: s for s in self.knowledge.registry.list(enabled_only=True)}
        with guarded(self.r):
            scheduled = set(self.r.zrange(self.schedule_key, 0, -1))
        new = [url for url in sources if url not in scheduled]
        pages = self.knowledge.cache.get_many(new)  # only the new ones' cached copies are read
        with guarded(self.r):
            pipe = self.r.pipeline(transaction=False)
            for url in new:
                page = pages.get(url)
                due = now if page is None else page.fetched_at + self.interval(sources[url])
                pipe.zadd(self.schedule_key, {url: due})
            gone = scheduled - set(sources)
            if gone:
                pipe.zrem(self.schedule_key, *gone)
            pipe.execute()
        self._reconciled = now

    def next_check(self, urls: list[str]) -> dict[str, float]:
        return next_checks(self.r, self.knowledge.cache.prefix, urls)

    def due(self, now: float) -> list[str]:
        with guarded(self.r):
            return list(self.r.zrangebyscore(self.schedule_key, "-inf", now, start=0, num=BATCH))

    # -- one tick ------------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> int:
        """Check what is due, if this refresher holds the lock; how many pages it checked."""
        now = time.time() if now is None else now
        if not self.holds_lock():
            return 0
        if now - self._reconciled >= self.settings.reconcile_s:
            self.reconcile(now)
        urls = self.due(now)
        if not urls:
            return 0
        by_host: dict[str, list[Source]] = defaultdict(list)
        for url in urls:
            source = self.knowledge.registry.get(url)
            if source is None or not source.enabled:
                with guarded(self.r):
                    self.r.zrem(self.schedule_key, url)
                continue
            by_host[urlsplit(url).hostname or ""].append(source)
        checked = 0
        lanes = [
            group[i :: self.settings.per_host]
            for group in by_host.values()
            for i in range(self.settings.per_host)
        ]
        with ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="kate-refresh") as pool:
            for done in pool.map(self._check_lane, [lane for lane in lanes if lane]):
                checked += done
        self.checked += checked
        return checked

    def _check_lane(self, lane: list[Source]) -> int:
        """Check one host's share of sources one after the other (so a host gets `per_host` at once)."""
        for source in lane:
            if self._stop.is_set():
                break
            self.knowledge.fetch_source(source)  # conditional GET; never raises for a bad page
            with guarded(self.r):
                self.r.zadd(self.schedule_key, {source.url: time.time() + self.interval(source)})
        return len(lane)

    # -- the thread ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kate-refresher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                checked = self.tick()
                if checked:
                    logger.info("refresher: %d pages checked", checked)
            except StoreUnavailable as exc:
                logger.warning("refresher: %s", exc)
            except Exception as exc:  # one bad tick must not end refreshing
                logger.exception("refresher: %s", exc)
            self._stop.wait(self.settings.tick_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.release()
