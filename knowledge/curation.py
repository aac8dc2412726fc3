"""What HR tells Kate not to read: hidden passages (an outdated section) and demoted pages.

A page can hold one stale paragraph among good ones ("the 2024 holiday calendar"); disabling the whole
page would lose the rest. A hidden passage is never given to the reader again. It is known by a hash of
its page URL and its text, so when HR fixes the page the new text is read (it is another passage), and
until then a refetch of the same text stays hidden.

A demoted page is still read, but its answers come after every other page's: it answers only when no
other page has a confident answer (an archive, a page that duplicates a better one).

Two small Redis hashes, read once per question: the number of entries is bounded by what admins click.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

import redis

from qa_engine.types import Passage

from .changes import CURATION, ChangeLog
from .store import DEFAULT_PREFIX, guarded, json_record

MAX_HIDDEN = 10_000
EXCERPT = 160  # characters of a hidden passage kept to show it in the console


class CurationError(ValueError):
    """A change the store refuses (the message says why)."""


def passage_key(url: str, text: str) -> str:
    """A passage's identity across fetches: its page and its whitespace-normalised text."""
    return hashlib.sha256(f"{url}\0{' '.join(text.split())}".encode()).hexdigest()[:24]


@dataclass
class Hidden:
    key: str
    url: str
    section: str
    excerpt: str
    by: str
    at: float


@dataclass
class Demoted:
    url: str
    by: str
    at: float


class Curation:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.hidden_key = f"{prefix}hidden"
        self.demoted_key = f"{prefix}demoted"
        self.changes = ChangeLog(client, prefix)

    # -- passages ---------------------------------------------------------------------------------------
    def hide(self, passage: Passage, by: str) -> Hidden:
        entry = Hidden(
            passage_key(passage.url, passage.text), passage.url, passage.section,
            " ".join(passage.text.split())[:EXCERPT], by, time.time(),
        )  # fmt: skip
        with guarded(self.r):
            if self.r.hlen(self.hidden_key) >= MAX_HIDDEN and not self.r.hexists(self.hidden_key, entry.key):
                raise CurationError(f"Kate keeps at most {MAX_HIDDEN:,} hidden passages")
            self.r.hset(self.hidden_key, entry.key, json.dumps(asdict(entry), ensure_ascii=False))
        self.changes.note(CURATION)
        return entry

    def show(self, key: str) -> bool:
        with guarded(self.r):
            shown = bool(self.r.hdel(self.hidden_key, key))
        self.changes.note(CURATION)
        return shown

    def hidden(self, url: str | None = None) -> list[Hidden]:
        """Every hidden passage (of one page), newest first."""
        with guarded(self.r):
            raw = self.r.hvals(self.hidden_key)
        entries = [e for e in (json_record(v, Hidden) for v in raw) if e is not None]
        return sorted((e for e in entries if url is None or e.url == url), key=lambda e: -e.at)

    def hidden_keys(self) -> set[str]:
        with guarded(self.r):
            return set(self.r.hkeys(self.hidden_key))

    # -- pages ------------------------------------------------------------------------------------------
    def demote(self, url: str, by: str) -> Demoted:
        entry = Demoted(url, by, time.time())
        with guarded(self.r):
            self.r.hset(self.demoted_key, url, json.dumps(asdict(entry)))
        self.changes.note(CURATION)
        return entry

    def promote(self, url: str) -> bool:
        with guarded(self.r):
            promoted = bool(self.r.hdel(self.demoted_key, url))
        self.changes.note(CURATION)
        return promoted

    def demoted_urls(self) -> set[str]:
        with guarded(self.r):
            return set(self.r.hkeys(self.demoted_key))

    def forget_page(self, url: str) -> None:
        """A removed source takes its demotion and its hidden passages with it."""
        keys = [e.key for e in self.hidden(url)]
        with guarded(self.r):
            pipe = self.r.pipeline(transaction=True)
            pipe.hdel(self.demoted_key, url)
            if keys:
                pipe.hdel(self.hidden_key, *keys)
            pipe.execute()
        self.changes.note(CURATION)


def visible(passages: list[Passage], hidden: set[str]) -> list[Passage]:
    """The passages HR has not hidden."""
    if not hidden:
        return passages
    return [p for p in passages if passage_key(p.url, p.text) not in hidden]
