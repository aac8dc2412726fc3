"""Every 👍/👎 employees give, kept in a Redis stream: append-only, never trimmed.

It sits beside Kate's other Redis stores so the action server (which writes), the admin console and
`kate feedback export` (which read) share one definition without depending on Rasa. `add` returns only
once Redis has the entry (the stream id is the acknowledgement), so the bot thanks the employee for a
vote that is stored. Text fields are bounded: a 10,000-character message is kept, cut, not refused.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields

import redis

from .store import DEFAULT_PREFIX, guarded, stream_entries

VOTES = ("up", "down")
KINDS = ("qa", "scripted", "verified")
MAX_FIELD = 4000  # characters kept of any text field


class FeedbackError(ValueError):
    """An entry that cannot be stored as given (the message says which field)."""


@dataclass
class FeedbackEntry:
    conversation_id: str
    vote: str  # "up" | "down"
    kind: str  # "qa" (from the intranet) | "scripted" (HR's answer for the intent) | "verified" (by HR)
    question: str
    answer: str = ""  # the answer text, or the response name for a scripted answer
    source_url: str = ""
    source_title: str = ""
    score: float | None = None  # confidence in [0, 1]: Rasa's for scripted answers, calibrated for qa
    language: str = ""
    model: str = ""
    time: float = 0.0  # epoch seconds; set when stored
    id: str = ""  # the stream id; set when stored

    def validated(self) -> FeedbackEntry:
        if self.vote not in VOTES:
            raise FeedbackError(f"vote must be one of {VOTES}, got {self.vote!r}")
        if self.kind not in KINDS:
            raise FeedbackError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not self.conversation_id:
            raise FeedbackError("conversation_id is required")
        return self


class FeedbackLog:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.key = f"{prefix}feedback"

    def add(self, entry: FeedbackEntry) -> FeedbackEntry:
        """Store one vote; returns it with its id and time once Redis has it."""
        entry = entry.validated()
        entry.time = entry.time or time.time()
        record = {}
        for f in fields(FeedbackEntry):
            if f.name == "id":
                continue
            value = getattr(entry, f.name)
            record[f.name] = "" if value is None else str(value)[:MAX_FIELD]
        with guarded(self.r):
            entry.id = self.r.xadd(self.key, record)  # no MAXLEN: feedback is never trimmed
        return entry

    def entries(self, since: float | None = None, until: float | None = None) -> Iterator[FeedbackEntry]:
        """Oldest first, between two epoch times (inclusive), read in pages."""
        for stream_id, raw in stream_entries(self.r, self.key, since, until):
            yield _entry(stream_id, raw)

    def latest(self, limit: int) -> Iterator[FeedbackEntry]:
        """The newest `limit` entries, newest first (the admin console's view of a long log)."""
        for stream_id, raw in stream_entries(self.r, self.key, newest_first=True, limit=limit):
            yield _entry(stream_id, raw)

    def count(self) -> int:
        with guarded(self.r):
            return int(self.r.xlen(self.key))


def _entry(stream_id: str, raw: dict[str, str]) -> FeedbackEntry:
    score = raw.get("score", "")
    return FeedbackEntry(
        conversation_id=raw.get("conversation_id", ""),
        vote=raw.get("vote", ""),
        kind=raw.get("kind", ""),
        question=raw.get("question", ""),
        answer=raw.get("answer", ""),
        source_url=raw.get("source_url", ""),
        source_title=raw.get("source_title", ""),
        score=float(score) if score else None,
        language=raw.get("language", ""),
        model=raw.get("model", ""),
        time=float(raw.get("time") or 0),
        id=stream_id,
    )


def _cell(value: object) -> object:
    """Spreadsheet apps run cells that start with = + - @ as formulas; an employee's message must not."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export(entries: Iterator[FeedbackEntry], fmt: str) -> Iterator[str]:
    """Lines of CSV (with a header) or JSON Lines, streamed: the log can be long."""
    if fmt == "jsonl":
        for e in entries:
            yield json.dumps(asdict(e), ensure_ascii=False) + "\n"
        return
    if fmt != "csv":
        raise FeedbackError(f"format must be csv or jsonl, got {fmt!r}")
    names = [f.name for f in fields(FeedbackEntry)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names)
    writer.writeheader()
    for e in entries:
        writer.writerow({k: _cell(v) for k, v in asdict(e).items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
