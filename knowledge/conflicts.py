"""Answers that disagreed: two current pages gave different figures for one question, and Kate showed both.

Kate cannot know which page is right ("25 days" on one, "27 days" on another); HR can, and should fix it
at the source. The action server logs each conflict it showed (a capped Redis stream); the console lists
the pairs of pages that disagreed, most frequent first, with the last question and both answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from .store import DEFAULT_PREFIX, guarded, stream_entries

MAX_ENTRIES = 50_000
MAX_READ = 50_000


@dataclass
class Conflict:
    question: str
    language: str
    url_a: str
    answer_a: str
    url_b: str
    answer_b: str
    time: float = 0.0


@dataclass
class PagePair:
    """Two pages that disagreed, and how often."""

    url_a: str
    url_b: str
    count: int = 0
    last: Conflict | None = None
    questions: list[str] = field(default_factory=list)  # the latest few, newest first


class ConflictLog:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.key = f"{prefix}conflicts"

    def add(self, c: Conflict) -> None:
        record = {
            "question": c.question[:1000], "language": c.language[:20], "url_a": c.url_a[:2000],
            "answer_a": c.answer_a[:500], "url_b": c.url_b[:2000], "answer_b": c.answer_b[:500],
            "time": repr(c.time or time.time()),
        }  # fmt: skip
        with guarded(self.r):
            self.r.xadd(self.key, record, maxlen=MAX_ENTRIES, approximate=True)

    def pairs(self, since: float = 0.0) -> list[PagePair]:
        """Pairs of pages that disagreed since `since`, most conflicts first."""
        found: dict[tuple[str, str], PagePair] = {}
        for _, raw in stream_entries(self.r, self.key, since=since, limit=MAX_READ):
            c = Conflict(
                question=raw.get("question", ""), language=raw.get("language", ""),
                url_a=raw.get("url_a", ""), answer_a=raw.get("answer_a", ""),
                url_b=raw.get("url_b", ""), answer_b=raw.get("answer_b", ""),
                time=float(raw.get("time") or 0),
            )  # fmt: skip
            a, b = sorted((c.url_a, c.url_b))
            pair = found.setdefault((a, b), PagePair(a, b))
            pair.count += 1
            pair.last = c
            pair.questions = [c.question, *[q for q in pair.questions if q != c.question]][:5]
        return sorted(found.values(), key=lambda p: (-p.count, p.url_a, p.url_b))
