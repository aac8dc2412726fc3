"""Answers HR verified: the right answer to a question employees asked, given first from then on.

An admin marks it from the console (a feedback entry or a knowledge gap): one of the candidates Kate
found, a span selected in a page's passages, or a typed answer with its source. The action server then
gives it, marked as confirmed by HR, to that question and to any question close enough in meaning, in
any language (actions/verified_match.py compares multilingual embeddings). Each one keeps the passage
it came from (`context`), so `kate feedback export --format squad` can turn them into training data.

One Redis hash (`kate:verified`, id -> JSON) and a version counter that changes with every edit, so
the action server re-reads and re-encodes the set only when HR changed it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, fields

import redis

from .store import DEFAULT_PREFIX, guarded, json_record

MAX_VERIFIED = 5000
MAX_QUESTION = 1000
MAX_ANSWER = 2000
MAX_CONTEXT = 10_000


class VerifiedError(ValueError):
    """A verified answer that cannot be stored as given (the message says which field)."""


@dataclass
class VerifiedAnswer:
    question: str
    answer: str
    language: str = ""
    source_url: str = ""
    source_title: str = ""
    context: str = ""  # the passage the answer was taken from; "" for a typed answer found in no passage
    by: str = ""
    at: float = 0.0
    id: str = ""

    def validated(self) -> VerifiedAnswer:
        self.question, self.answer = " ".join(self.question.split()), self.answer.strip()
        self.language, self.source_url = self.language.strip().lower()[:20], self.source_url.strip()
        if not self.question:
            raise VerifiedError("the question is empty")
        if not self.answer:
            raise VerifiedError("the answer is empty")
        if len(self.question) > MAX_QUESTION:
            raise VerifiedError(
                f"the question is too long ({len(self.question):,} characters, at most {MAX_QUESTION:,})"
            )
        if len(self.answer) > MAX_ANSWER:
            raise VerifiedError(
                f"the answer is too long ({len(self.answer):,} characters, at most {MAX_ANSWER:,})"
            )
        if self.source_url and not self.source_url.startswith(("http://", "https://")):
            raise VerifiedError(f"the source must be an http(s) URL, got {self.source_url[:200]!r}")
        self.context = self.context[:MAX_CONTEXT]
        if self.context and self.answer not in self.context:
            self.context = ""  # an edited answer no longer in its passage: served, not exported
        return self

    @property
    def answer_start(self) -> int:
        """Where the answer starts in its passage (-1: no passage), as SQuAD counts it."""
        return self.context.find(self.answer) if self.context else -1


def find_context(answer: str, passages: list) -> tuple[str, str]:
    """(passage text, title) of the first passage that holds `answer`, or ("", "")."""
    for p in passages:
        if answer and answer in p.text:
            return p.text, p.title
    return "", ""


class VerifiedAnswers:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.key = f"{prefix}verified"
        self.version_key = f"{prefix}verified:version"

    def put(self, answer: VerifiedAnswer) -> VerifiedAnswer:
        answer = answer.validated()
        answer.id = answer.id or secrets.token_hex(6)
        answer.at = answer.at or time.time()
        with guarded(self.r):
            if not self.r.hexists(self.key, answer.id) and self.r.hlen(self.key) >= MAX_VERIFIED:
                raise VerifiedError(f"Kate keeps at most {MAX_VERIFIED:,} verified answers")
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(self.key, answer.id, json.dumps(asdict(answer), ensure_ascii=False))
            pipe.incr(self.version_key)
            pipe.execute()
        return answer

    def remove(self, answer_id: str) -> bool:
        with guarded(self.r):
            pipe = self.r.pipeline(transaction=True)
            pipe.hdel(self.key, answer_id)
            pipe.incr(self.version_key)
            removed, _ = pipe.execute()
        return bool(removed)

    def get(self, answer_id: str) -> VerifiedAnswer | None:
        with guarded(self.r):
            raw = self.r.hget(self.key, answer_id)
        return _verified(raw)

    def all(self) -> list[VerifiedAnswer]:
        """Every verified answer, newest first."""
        with guarded(self.r):
            raw = self.r.hvals(self.key)
        return sorted((v for v in map(_verified, raw) if v is not None), key=lambda v: -v.at)

    def version(self) -> int:
        with guarded(self.r):
            return int(self.r.get(self.version_key) or 0)

    def export_jsonl(self) -> str:
        return "".join(json.dumps(asdict(v), ensure_ascii=False) + "\n" for v in self.all())

    def import_jsonl(self, text: str, by: str) -> int:
        """Add (or replace, by id) the answers of an export; nothing is written if a line is refused."""
        answers = []
        for n, line in enumerate(text.splitlines()[:MAX_VERIFIED], 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                names = {f.name for f in fields(VerifiedAnswer)}
                answer = VerifiedAnswer(**{k: v for k, v in data.items() if k in names}).validated()
            except (ValueError, TypeError) as exc:
                raise VerifiedError(f"line {n}: {exc}") from None
            answer.by = answer.by or by
            answers.append(answer)
        for answer in answers:
            self.put(answer)
        return len(answers)


def to_squad(answers: list[VerifiedAnswer]) -> dict:
    """The verified answers that kept their passage, as SQuAD JSON (one paragraph per passage), for
    `kate qa train --data`: Kate's own usage turned into training examples in its employees' words."""
    paragraphs: dict[str, dict] = {}
    titles: dict[str, str] = {}
    for v in answers:
        if v.answer_start < 0:
            continue  # a typed answer found in no passage: nothing to point the reader at
        paragraph = paragraphs.setdefault(v.context, {"context": v.context, "qas": []})
        titles.setdefault(v.context, v.source_title or v.source_url)
        paragraph["qas"].append(
            {
                "id": f"verified-{v.id}",
                "question": v.question,
                "answers": [{"text": v.answer, "answer_start": v.answer_start}],
            }
        )
    data = [{"title": titles[c], "paragraphs": [p]} for c, p in paragraphs.items()]
    return {"version": "kate-verified-answers", "data": data}


def _verified(raw: str | None) -> VerifiedAnswer | None:
    return json_record(raw, VerifiedAnswer)
