"""What a 👍/👎 button rates: every answer Kate gives is kept for a while under a short id.

A button's payload carries that id (`/feedback{"vote":"down","answer_id":"..."}`), not the answer
itself: the question can be 10,000 characters and the payload travels through the chat channel. The
record holds what the feedback log needs (question, answer, source, score, language, model) and what a
👎 needs to go on: the other candidates, from other pages, the reader found for the same question.
Records expire (`KATE_ANSWER_TTL`); a vote on an expired one is answered, just not followed up.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass, field, fields

import redis

from knowledge.store import DEFAULT_PREFIX, guarded

logger = logging.getLogger(__name__)

MAX_QUESTION = 4000  # characters of the question kept in a record (the feedback log keeps as many)
# The shape of a stored record. 1: before records carried a version (read with defaults for what they
# lack); a record newer than this server, or of another shape, is refused (`RecordUnreadable`).
RECORD_VERSION = 2


class RecordUnreadable(ValueError):
    """A stored answer record this server cannot read (another version or shape); the message says why."""


def _known(cls: type, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class Candidate:
    """One answer span from one page."""

    answer: str
    sentence: str
    url: str
    title: str
    score: float  # the reader's raw score (margin over "no answer", minus the ranker's penalty)
    confidence: float | None = None  # calibrated probability that the answer is right
    # How to show it (knowledge/shapes.py): "span", or the whole "list" / numbered "steps" it sits in,
    # a table "row" (`sentence` is "label · column: cell"), a "faq" answer whole (`sentence`).
    kind: str = "span"
    heading: str = ""
    items: list[str] = field(default_factory=list)
    more: int = 0  # list items not shown
    outdated: bool = False  # from a section the page marks superseded or archived


@dataclass
class AnswerRecord:
    conversation_id: str
    kind: str  # "qa" | "scripted" | "verified"
    question: str
    language: str
    answer: str = ""  # the span (qa) or HR's text (scripted)
    source_url: str = ""
    source_title: str = ""
    score: float | None = None
    model: str = ""
    alternatives: list[Candidate] = field(default_factory=list)  # unused candidates, best first
    best_pages: list[tuple[str, str]] = field(default_factory=list)  # (title, url) most relevant first
    shown_urls: list[str] = field(default_factory=list)  # pages already offered for this question
    topic: str = ""  # the HR intent the question was recognised as, if any (picks the HR contact)
    downvotes: int = 0  # 👎 already given to earlier answers to this question
    # False: only the best-ranked passages were read (their answer was sure); a 👎 reads the rest first
    read_all: bool = True
    id: str = ""
    version: int = RECORD_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> AnswerRecord:
        """A stored record, of this version or an older one; `RecordUnreadable` for anything else."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise RecordUnreadable(f"an answer record is a JSON object, not {type(data).__name__}")
            version = data.get("version", 1)
            if not isinstance(version, int) or not 1 <= version <= RECORD_VERSION:
                raise RecordUnreadable(
                    f"answer record version {version!r}; this server reads 1 to {RECORD_VERSION}"
                )
            data = _known(cls, data)
            data["alternatives"] = [Candidate(**_known(Candidate, c)) for c in data.get("alternatives") or []]
            data["best_pages"] = [(str(p[0]), str(p[1])) for p in data.get("best_pages") or []]
            data["version"] = RECORD_VERSION
            return cls(**data)
        except RecordUnreadable:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise RecordUnreadable(f"not an answer record: {type(exc).__name__}: {exc}") from None


class AnswerBook:
    """Answer records in Redis, `<prefix>answer:<id>`, each with its own expiry."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX, ttl_s: float = 30 * 86400) -> None:
        self.r = client
        self.prefix = f"{prefix}answer:"
        self.ttl_s = int(ttl_s)

    def put(self, record: AnswerRecord) -> AnswerRecord:
        record.id = record.id or secrets.token_hex(8)
        record.question = record.question[:MAX_QUESTION]
        with guarded(self.r):
            self.r.set(self.prefix + record.id, record.to_json(), ex=self.ttl_s)
        return record

    def get(self, answer_id: str) -> AnswerRecord | None:
        if not answer_id or not answer_id.isalnum() or len(answer_id) > 64:
            return None
        with guarded(self.r):
            raw = self.r.get(self.prefix + answer_id)
        if raw is None:
            return None
        try:
            return AnswerRecord.from_json(raw)
        except RecordUnreadable as exc:  # written by another version of Kate: treated as expired
            logger.warning("answer record %s ignored: %s", answer_id, exc)
            return None

    def new_vote(self, answer_id: str, vote: str) -> bool:
        """Record `vote` on an answer; False when it repeats the last vote on it (a double click), so
        the feedback log counts one vote per answer and per change of mind."""
        with guarded(self.r):
            previous = self.r.set(f"{self.prefix}{answer_id}:vote", vote, ex=self.ttl_s, get=True)
        return previous != vote
