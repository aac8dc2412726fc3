"""The action server's copy of every enabled page, searchable: passages, vectors and BM25 in memory.

Why: answering used to read every source and every cached page from Redis and look up every passage's
vector for each question, a cost that grows with the intranet (seconds at 10,000 pages). Here the pages
are loaded once (`load`), and each question only asks Redis whether anything changed (one GET on the
change log, knowledge/changes.py); when something did, only the changed pages are re-read and only their
new passages encoded (`catch_up`), and a new immutable `Snapshot` is swapped in. A page refreshed with
the same text (a 304) changes nothing but its age. Redis stays the truth: another action server, the
console or the refresher may change it, and every replica catches up within one question or one poll.

A snapshot answers what the old per-question path computed: which passages an employee may read (their
audience: a mask over the rows, computed once per distinct set of tags, not per page), which pages are
theirs or another audience's, which pages are demoted, and which sources are due for a fetch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa_engine.index import PassageIndex, text_for_bm25
from qa_engine.lexical import LexicalIndex
from qa_engine.types import Passage

from .audience import Audience, Employee
from .cache import CachedPage
from .changes import CURATION, ChangeLog
from .curation import visible
from .library import Knowledge
from .sources import MAX_SOURCES, Source

logger = logging.getLogger(__name__)

DUE_PER_QUESTION = 32  # sources one question may fetch (never fetched, or stale), most urgent first
CATCH_UP_PAGES = 256  # changed pages applied by one question's catch-up (the rest: the next, or the poller)


@dataclass
class PageEntry:
    """One enabled source: its cached page (None: never fetched), every passage with its vector and BM25
    terms, and which passages HR has not hidden."""

    source: Source
    page: CachedPage | None
    passages: list[Passage] = field(default_factory=list)
    vectors: np.ndarray | None = None
    documents: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    shown: list[int] = field(default_factory=list)  # positions of the visible passages

    def same_text(self, page: CachedPage | None) -> bool:
        """Whether `page` has exactly these passages (text, title, layout, language...): a 304 does."""
        return (self.page.passages if self.page else []) == (page.passages if page else [])


@dataclass(frozen=True)
class Readable:
    """What one employee may read in a snapshot."""

    allowed: np.ndarray  # one boolean per row of the index
    preferred: set[str]  # pages meant for the employee's audience
    elsewhere: set[str]  # pages meant for another audience (not restricted)
    withheld: int  # restricted pages outside the employee's audience
    sources: int  # sources the employee may read


class Snapshot:
    """An immutable view: the index over every visible passage of every enabled source, in registry
    order, and what is needed to tell who may read which row."""

    def __init__(
        self, entries: dict[str, PageEntry], demoted: set[str], vocabulary: dict[str, int], dim: int
    ):
        self.entries = entries
        self.demoted = frozenset(demoted)
        passages: list[Passage] = []
        blocks: list[np.ndarray] = []
        documents: list[tuple[np.ndarray, np.ndarray]] = []
        page_rows: list[int] = []
        self.urls = list(entries)
        for number, entry in enumerate(entries.values()):
            if entry.vectors is None or not entry.shown:
                continue
            if len(entry.shown) == len(entry.passages):  # nothing hidden (most pages): no copies
                passages.extend(entry.passages)
                blocks.append(entry.vectors)
                documents.extend(entry.documents)
            else:
                passages.extend(entry.passages[i] for i in entry.shown)
                blocks.append(entry.vectors[entry.shown])
                documents.extend(entry.documents[i] for i in entry.shown)
            page_rows.extend([number] * len(entry.shown))
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, dim), dtype=np.float32)
        self.index = PassageIndex(passages, vectors, documents=documents, vocabulary=vocabulary)
        self.page_of_row = np.asarray(page_rows, dtype=np.int32)
        # pages grouped by their source's tags: an audience is judged once per group, not once per page
        groups: dict[tuple[str, ...], int] = {}
        self.group_of_page = np.asarray(
            [groups.setdefault(tuple(e.source.tags), len(groups)) for e in entries.values()], dtype=np.int32
        )
        self.audiences = [Audience.of(list(tags)) for tags in groups]

    def __len__(self) -> int:
        return len(self.index)

    def readable(self, employee: Employee | None) -> Readable:
        may = np.array([a.readable_by(employee) for a in self.audiences], dtype=bool)
        pages = may[self.group_of_page] if len(self.group_of_page) else np.zeros(0, dtype=bool)
        preferred, elsewhere = set(), set()
        targeted = [g for g, a in enumerate(self.audiences) if a.targeted and may[g]]
        for g in targeted:
            mine = self.audiences[g].includes(employee)
            for number in np.flatnonzero(self.group_of_page == g):
                (preferred if mine else elsewhere).add(self.urls[number])
        allowed = pages[self.page_of_row] if len(self.page_of_row) else np.zeros(0, dtype=bool)
        return Readable(allowed, preferred, elsewhere, int((~pages).sum()), int(pages.sum()))

    def page_passages(self, urls: Sequence[str]) -> list[Passage]:
        """The visible passages of these pages, in page order (lists that span passages need them)."""
        out: list[Passage] = []
        for url in dict.fromkeys(urls):
            entry = self.entries.get(url)
            if entry is not None:
                out.extend(entry.passages[i] for i in entry.shown)
        return out

    def rows_of(self, urls: set[str]) -> np.ndarray:
        """A boolean mask of the rows of these pages."""
        numbers = [i for i, url in enumerate(self.urls) if url in urls]
        return np.isin(self.page_of_row, numbers)

    def due(
        self, ttl: float, now: float, employee: Employee | None = None, limit: int = DUE_PER_QUESTION
    ) -> list[Source]:
        """`employee`'s sources to fetch: never fetched first, then the stalest, at most `limit` (a
        question waits for a few, never for a mass refresh: that is the refresher's job)."""
        may = [a.readable_by(employee) for a in self.audiences]
        missing, stale = [], []
        for number, entry in enumerate(self.entries.values()):
            if not may[self.group_of_page[number]]:
                continue
            if entry.page is None:
                missing.append(entry.source)
            elif now - entry.page.fetched_at >= ttl:
                stale.append((entry.page.fetched_at, entry.source))
        stale.sort(key=lambda x: x[0])
        return (missing + [s for _, s in stale])[:limit]


class LiveIndex:
    """Keeps a `Snapshot` in step with Redis. `encode(passages)` gives the passages' unit vectors (the
    ranker's, through its Redis vector cache); `dim` is their width."""

    def __init__(self, knowledge: Knowledge, encode: Callable[[list[Passage]], np.ndarray], dim: int) -> None:
        self.knowledge = knowledge
        self.encode = encode
        self.dim = dim
        self.changes = ChangeLog(knowledge.cache.r, knowledge.cache.prefix)
        self.vocabulary: dict[str, int] = {}
        self._analyser = LexicalIndex(vocabulary=self.vocabulary)
        self._entries: dict[str, PageEntry] = {}
        self._hidden: set[str] = set()
        self._demoted: set[str] = set()
        self._applied = -1  # the last change number applied (-1: nothing loaded yet)
        self._lock = threading.Lock()
        self.snapshot: Snapshot | None = None
        self.loaded_s = 0.0  # how long the last full load took

    # -- entries -------------------------------------------------------------------------------------
    def _entries_of(self, pages: list[tuple[Source, CachedPage | None, PageEntry | None]]) -> list[PageEntry]:
        """Each (source, cached page, entry before) as an entry: the one before when the text is the same,
        else a new one. The new ones' vectors are asked for in one call, not one per page: at a start over
        50,000 pages, one Redis round trip per page was a third of the time."""
        out: list[PageEntry] = []
        fresh: list[PageEntry] = []
        for source, page, before in pages:
            if before is not None and before.same_text(page) and before.vectors is not None:
                before.source, before.page = source, page  # same text: only its age (or settings) changed
                self._filter(before)
                out.append(before)
                continue
            entry = PageEntry(source, page, [] if page is None else list(page.passages))
            fresh.append(entry)
            out.append(entry)
        passages = [p for entry in fresh for p in entry.passages]
        vectors = self.encode(passages) if passages else np.zeros((0, self.dim), dtype=np.float32)
        start = 0
        for entry in fresh:
            end = start + len(entry.passages)
            entry.vectors = vectors[start:end].copy()  # its own: an edit later frees it alone
            entry.documents = [self._analyser.analyse(text_for_bm25(p)) for p in entry.passages]
            self._filter(entry)
            start = end
        return out

    def _filter(self, entry: PageEntry) -> None:
        kept = {id(p) for p in visible(entry.passages, self._hidden)}
        entry.shown = [i for i, p in enumerate(entry.passages) if id(p) in kept]

    def _snapshot(self) -> Snapshot:
        self.snapshot = Snapshot(dict(self._entries), self._demoted, self.vocabulary, self.dim)
        return self.snapshot

    def _curation(self) -> None:
        self._hidden = self.knowledge.curation.hidden_keys()
        self._demoted = self.knowledge.curation.demoted_urls()

    # -- loading and catching up ---------------------------------------------------------------------
    def load(self) -> Snapshot:
        """Every enabled source and its cached page, from Redis (an action server's start)."""
        with self._lock:
            if self._applied >= 0 and self.snapshot is not None:
                return self.snapshot  # another thread loaded it while this one waited
            t0 = time.perf_counter()
            version = self.changes.version()  # first: a change made during the load is applied later
            self._curation()
            sources = self.knowledge.registry.list(enabled_only=True)
            pages = self.knowledge.cache.get_many([s.url for s in sources])
            old = self._entries
            made = self._entries_of([(s, pages.get(s.url), old.get(s.url)) for s in sources])
            self._entries = {source.url: entry for source, entry in zip(sources, made, strict=True)}
            self._applied = version
            snapshot = self._snapshot()
            self.loaded_s = time.perf_counter() - t0
            logger.info(
                "index: %d passages of %d sources in %.1f s", len(snapshot), len(sources), self.loaded_s
            )
            return snapshot

    def catch_up(
        self, limit: int = CATCH_UP_PAGES, wait: bool = True, wait_s: float | None = None
    ) -> Snapshot | None:
        """Apply the changes noted since the last call (at most `limit` pages) and return the snapshot.
        `wait=False`: when another thread is loading (None before the first load) or applying changes,
        return the current snapshot at once. `wait_s`: when changes are waiting and another thread is
        applying them, wait for it up to this long, then return the snapshot as it is; so a question
        sees a page added just before it, and waits for a mass import no longer than that."""
        if self._applied < 0:
            if (not wait or wait_s is not None) and self._lock.locked():
                return self.snapshot
            return self.load()
        if wait_s is not None:
            if self.changes.version() <= self._applied:
                return self.snapshot  # nothing new: no wait, whoever holds the lock
            acquired = self._lock.acquire(timeout=max(wait_s, 0.0))
        else:
            acquired = self._lock.acquire(blocking=wait)
        if not acquired:
            return self.snapshot
        try:
            version = self.changes.version()
            if version <= self._applied:
                return self.snapshot
            found = self.changes.since(self._applied, version, limit)
            upto = version
            if len(found) >= limit:  # apply whole change numbers only: the rest waits for the next call
                last = found[-1][1]
                whole = [c for c in found if c[1] < last]
                found = whole or self.changes.since(last - 1, last, MAX_SOURCES)
                upto = found[-1][1]
            changed = self._apply([url for url, _ in found])
            snapshot = self._snapshot() if changed or self.snapshot is None else self.snapshot
            self._applied = upto  # after the snapshot: a question that sees it applied finds it there
            return snapshot
        finally:
            self._lock.release()

    def _apply(self, urls: list[str]) -> bool:
        """Reload these pages (and the curation state when it changed); whether the index changes."""
        changed = False
        if CURATION in urls:
            self._curation()
            for entry in self._entries.values():
                self._filter(entry)
            changed = True
        urls = [u for u in dict.fromkeys(urls) if u != CURATION]
        pages = self.knowledge.cache.get_many(urls)
        kept: list[tuple[Source, CachedPage | None, PageEntry | None]] = []
        keys: list[str] = []
        for url in urls:
            source = self.knowledge.registry.get(url)
            if source is None or not source.enabled:
                changed |= self._entries.pop(url, None) is not None
                continue
            kept.append((source, pages.get(url), self._entries.get(url)))
            keys.append(url)
        tags = [None if before is None else list(before.source.tags) for _, _, before in kept]
        made = self._entries_of(kept)
        for url, (source, _, before), was, entry in zip(keys, kept, tags, made, strict=True):
            changed |= entry is not before or was != source.tags  # new text, a new page, a new audience
            self._entries[url] = entry
        return changed
