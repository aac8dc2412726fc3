"""Every question Kate was asked and what it did with it, for the console's analytics.

Votes say how good the answers were, but not how often Kate answered at all: a question that got "I am
not sure" is never voted on. The action server adds one entry per question (not per follow-up after a
👎): how it was answered (`OUTCOMES`), its language, its topic and the page the answer came from. The
stream is capped (oldest dropped beyond `MAX_ENTRIES`): it is a measure, not a record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from .store import DEFAULT_PREFIX, guarded, stream_entries

# scripted: the company's answer for the intent; verified: an answer HR verified; qa: read from the
# intranet; unsure: no confident answer (pages linked); down: the sources, the reader or time failed
OUTCOMES = ("scripted", "verified", "qa", "unsure", "down")
ANSWERED = ("scripted", "verified", "qa")
MAX_ENTRIES = 500_000


@dataclass
class Asked:
    outcome: str
    language: str = ""
    topic: str = ""
    source_url: str = ""
    time: float = 0.0


class ActivityLog:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.key = f"{prefix}asked"

    def add(self, entry: Asked) -> None:
        if entry.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {entry.outcome!r}")
        record = {
            "outcome": entry.outcome, "language": entry.language[:20], "topic": entry.topic[:64],
            "source_url": entry.source_url[:2000], "time": repr(entry.time or time.time()),
        }  # fmt: skip
        with guarded(self.r):
            self.r.xadd(self.key, record, maxlen=MAX_ENTRIES, approximate=True)

    def since(self, moment: float, limit: int = MAX_ENTRIES) -> Iterator[Asked]:
        """Entries from `moment` on, oldest first."""
        for _, raw in stream_entries(self.r, self.key, since=moment, limit=limit):
            yield Asked(
                outcome=raw.get("outcome", ""), language=raw.get("language", ""), topic=raw.get("topic", ""),
                source_url=raw.get("source_url", ""), time=float(raw.get("time") or 0),
            )  # fmt: skip
