"""The knowledge layer in one object: enabled sources -> fresh (or, under time pressure, cached) passages.

`Knowledge.passages_for_answering()` is what the bot calls once per question. It reads the cache,
fetches in parallel only what is missing or stale (conditional GETs, so an unchanged page costs one
304), waits at most the question's time budget, and then answers with what it has: a page still
downloading is served from its stale cached copy and lands in the cache for the next question. A URL is
fetched at most once at a time in this process, however many questions want it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from qa_engine.types import Passage

from . import page_passages
from .audience import Audience, Employee
from .cache import CachedPage, PageCache
from .curation import Curation, visible
from .fetch import FetchError, fetch_page
from .fetch_policy import DEFAULT_POLICY, FetchPolicy
from .sources import FetchStatus, Source, SourceRegistry
from .store import StoreUnavailable

MAX_PASSAGES_PER_QUESTION = 50_000


@dataclass
class FetchLimits:
    timeout: float = 10.0  # read timeout per request
    total_timeout: float = 20.0  # whole download of one page
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    workers: int = 8  # pages fetched at once
    policy: FetchPolicy = DEFAULT_POLICY  # which addresses may be fetched (SSRF)


@dataclass
class ReadingSet:
    """What the reader gets for one question, and how it was obtained."""

    passages: list[Passage]
    sources: int  # enabled sources considered
    fetched: list[str] = field(default_factory=list)  # fetched (or revalidated) for this question
    stale: list[str] = field(
        default_factory=list
    )  # served from an out-of-date copy (budget ran out or fetch failed)
    missing: list[str] = field(default_factory=list)  # no text at all (never fetched successfully)
    demoted: set[str] = field(default_factory=set)  # pages whose answers come after every other page's
    preferred: set[str] = field(default_factory=set)  # pages meant for the asking employee's audience
    elsewhere: set[str] = field(default_factory=set)  # pages meant for another audience (not restricted)
    withheld: int = 0  # restricted pages left out: the employee is outside their audience
    seconds: float = 0.0


class Knowledge:
    def __init__(self, registry: SourceRegistry, cache: PageCache, limits: FetchLimits | None = None) -> None:
        self.registry = registry
        self.cache = cache
        self.limits = limits or FetchLimits()
        self.curation = Curation(cache.r, cache.prefix)
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="kate-fetch")
        self._inflight: dict[str, Future] = {}
        self._lock = threading.Lock()

    # -- one source ---------------------------------------------------------------------------------------
    def fetch_source(self, source: Source, force: bool = False) -> FetchStatus:
        """Fetch one source now, update its cache entry and its status. Never raises for a bad page:
        the reason is in the returned status, and the previous cached text is kept."""
        cached = self.cache.get(source.url)
        started = time.time()
        t0 = time.perf_counter()
        try:
            page = fetch_page(
                source.url,
                read_timeout=self.limits.timeout,
                total_timeout=self.limits.total_timeout,
                max_bytes=self.limits.max_bytes,
                max_redirects=self.limits.max_redirects,
                etag="" if force or cached is None else cached.etag,
                last_modified="" if force or cached is None else cached.last_modified,
                auth=source.auth,
                policy=self.limits.policy,
            )
        except FetchError as exc:
            status = FetchStatus(
                fetched_at=started,
                http_status=exc.http_status,
                error=str(exc),
                seconds=time.perf_counter() - t0,
                n_passages=len(cached.passages) if cached else 0,
            )
            self.registry.record_fetch(source.url, status)
            return status
        if page.not_modified and cached is not None:
            self.cache.touch(cached, started)
            status = FetchStatus(
                fetched_at=started,
                http_status=304,
                n_bytes=cached.n_bytes,
                n_passages=len(cached.passages),
                encoding=cached.encoding,
                seconds=time.perf_counter() - t0,
                not_modified=True,
            )
            self.registry.record_fetch(source.url, status)
            return status
        title, passages = page_passages(page)
        if source.language:
            passages = [replace(p, language=source.language) for p in passages]
        language = passages[0].language if passages else source.language
        error = "" if passages else "no text found on the page"
        self.cache.put(
            CachedPage(
                url=source.url,
                final_url=page.final_url,
                title=source.title or title,
                language=language,
                passages=[replace(p, title=source.title or p.title) for p in passages],
                fetched_at=started,
                etag=page.etag,
                last_modified=page.last_modified,
                encoding=page.encoding,
                n_bytes=page.n_bytes,
            )
        )
        status = FetchStatus(
            fetched_at=started,
            http_status=page.status,
            n_bytes=page.n_bytes,
            n_passages=len(passages),
            error=error,
            encoding=page.encoding,
            seconds=time.perf_counter() - t0,
        )
        self.registry.record_fetch(source.url, status)
        return status

    def _submit(self, source: Source, force: bool = False) -> Future:
        """One fetch per URL at a time in this process: a second caller shares the first one's."""
        with self._lock:
            running = self._inflight.get(source.url)
            if running is not None and not running.done():
                return running
            future = self._pool.submit(self._fetch_guarded, source, force)
            self._inflight[source.url] = future
            return future

    def _fetch_guarded(self, source: Source, force: bool) -> FetchStatus:
        try:
            return self.fetch_source(source, force)
        except StoreUnavailable as exc:  # Redis went away mid-fetch: report it, do not kill the pool thread
            return FetchStatus(fetched_at=time.time(), error=str(exc))
        finally:
            with self._lock:
                self._inflight.pop(source.url, None)

    def fetch_in_background(self, sources: list[Source]) -> list[Future]:
        """Start fetching these sources (one fetch per URL at a time); the futures give their statuses."""
        return [self._submit(s) for s in sources]

    # -- many sources -------------------------------------------------------------------------------------
    def refresh(self, sources: list[Source] | None = None, force: bool = False) -> dict[str, FetchStatus]:
        """Fetch the given sources (default: every enabled one) in parallel and wait for all of them.
        Each fetch is bounded by its own timeouts, so this returns."""
        if sources is None:
            sources = self.registry.list(enabled_only=True)
        futures = {s.url: self._submit(s, force) for s in sources}
        return {url: f.result() for url, f in futures.items()}

    def passages_for_answering(
        self, budget_s: float = 3.0, employee: Employee | None = None, *, all_pages: bool = False
    ) -> ReadingSet:
        """Passages of every enabled source `employee` may read (knowledge/audience.py: a restricted page
        outside their audience is not even looked at), within `budget_s` seconds of fetching. `all_pages`
        ignores audiences: for indexing, never for answering."""
        t0 = time.perf_counter()
        sources, preferred, elsewhere, withheld = [], set(), set(), 0
        for source in self.registry.list(enabled_only=True):
            audience = Audience.of(source.tags)
            if not all_pages and not audience.readable_by(employee):
                withheld += 1
                continue
            sources.append(source)
            if audience.targeted:
                (preferred if audience.includes(employee) else elsewhere).add(source.url)
        cached = self.cache.get_many([s.url for s in sources])
        now = time.time()
        due = [s for s in sources if s.url not in cached or not self.cache.is_fresh(cached[s.url], now)]
        futures = {s.url: self._submit(s) for s in due}
        if futures:
            wait(list(futures.values()), timeout=max(0.0, budget_s - (time.perf_counter() - t0)))
        hidden = self.curation.hidden_keys()
        result = ReadingSet(
            passages=[],
            sources=len(sources),
            demoted=self.curation.demoted_urls(),
            preferred=preferred,
            elsewhere=elsewhere,
            withheld=withheld,
        )
        for source in sources:
            future = futures.get(source.url)
            page = cached.get(source.url)
            if future is not None and future.done():
                status = future.result()
                result.fetched.append(source.url)
                if status.ok:
                    page = self.cache.get(source.url) or page
                elif page is not None:
                    result.stale.append(source.url)
            elif future is not None and page is not None:
                result.stale.append(source.url)  # still downloading: answer from the old copy
            if page is None:
                result.missing.append(source.url)
                continue
            room = MAX_PASSAGES_PER_QUESTION - len(result.passages)
            result.passages.extend(visible(page.passages, hidden)[: max(0, room)])
        result.seconds = time.perf_counter() - t0
        return result

    def readable(self, url: str, employee: Employee | None) -> bool:
        """Whether `employee` may be given an answer from `url`: anything but a restricted source outside
        their audience (a verified answer's page may have become restricted since HR verified it)."""
        source = self.registry.get(url) if url else None
        return source is None or Audience.of(source.tags).readable_by(employee)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
