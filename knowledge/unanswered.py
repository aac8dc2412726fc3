"""Questions Kate could not answer from the intranet: the knowledge gaps HR should write pages for.

A 👎 says an answer was wrong; a question the reader found no confident answer to (or no other answer
to after a 👎) never gets a vote at all, so the action server records it here. The admin console puts
the two together in its "knowledge gaps" list. Unlike the feedback log this is a signal, not a record
of what employees said about answers, so the stream is capped (oldest dropped beyond `MAX_ENTRIES`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from .store import DEFAULT_PREFIX, guarded, stream_entries

REASONS = ("unsure", "no_other")  # no confident answer; 👎 and no answer from another page
MAX_ENTRIES = 100_000
MAX_FIELD = 4000


@dataclass
class Unanswered:
    question: str
    reason: str
    language: str = ""
    conversation_id: str = ""
    time: float = 0.0
    id: str = ""


class UnansweredLog:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.key = f"{prefix}unanswered"

    def add(self, entry: Unanswered) -> Unanswered:
        if entry.reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {entry.reason!r}")
        entry.time = entry.time or time.time()
        record = {
            "question": entry.question[:MAX_FIELD],
            "reason": entry.reason,
            "language": entry.language[:20],
            "conversation_id": entry.conversation_id[:200],
            "time": repr(entry.time),
        }
        with guarded(self.r):
            entry.id = self.r.xadd(self.key, record, maxlen=MAX_ENTRIES, approximate=True)
        return entry

    def latest(self, limit: int = MAX_ENTRIES) -> Iterator[Unanswered]:
        """The newest `limit` entries, newest first."""
        for stream_id, raw in stream_entries(self.r, self.key, newest_first=True, limit=limit):
            yield Unanswered(
                question=raw.get("question", ""),
                reason=raw.get("reason", ""),
                language=raw.get("language", ""),
                conversation_id=raw.get("conversation_id", ""),
                time=float(raw.get("time") or 0),
                id=stream_id,
            )
