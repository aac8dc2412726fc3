"""Vectors of the questions employees asked, so the console can group them by meaning in any language.

The console runs no model (the web app loads no torch); the action server does. When it notes a
question it could not answer, or a 👎, it also encodes the question with the ranker's multilingual
encoder and keeps the vector here; the console then reads the vectors of the knowledge gaps and puts
"Combien de jours de congés ?" and "How many days of leave?" in one group (admin/feedback_view.py).

One Redis hash: a digest of the normalised question -> its unit vector as float16 bytes. Bounded by
`MAX_QUESTIONS` (beyond it, new questions are simply not grouped).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np
import redis

from .store import DEFAULT_PREFIX, guarded

MAX_QUESTIONS = 100_000


def question_key(text: str) -> str:
    """Questions that differ only in case, spacing, width or punctuation count as one."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())[:300]


def digest(normal_question: str) -> str:
    return hashlib.sha256(normal_question.encode("utf-8")).hexdigest()[:24]


class QuestionVectors:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.key = f"{prefix}question-vectors"

    def missing(self, normal_questions: list[str]) -> list[str]:
        if not normal_questions:
            return []
        with guarded(self.r):
            have = self.r.hmget(self.key, [digest(q) for q in normal_questions])
        return [q for q, v in zip(normal_questions, have, strict=True) if v is None]

    def put(self, vectors: dict[str, np.ndarray]) -> None:
        with guarded(self.r):
            if self.r.hlen(self.key) >= MAX_QUESTIONS:
                return
            self.r.hset(
                self.key,
                mapping={
                    digest(q): v.astype(np.float16).tobytes().decode("latin-1") for q, v in vectors.items()
                },
            )

    def get(self, normal_questions: list[str]) -> dict[str, np.ndarray]:
        """The vectors kept for these (normalised) questions; absent ones are left out."""
        if not normal_questions:
            return {}
        with guarded(self.r):
            raw = self.r.hmget(self.key, [digest(q) for q in normal_questions])
        return {
            q: np.frombuffer(v.encode("latin-1"), dtype=np.float16).astype(np.float32)
            for q, v in zip(normal_questions, raw, strict=True)
            if v is not None
        }
