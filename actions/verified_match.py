"""Which verified answer (if any) a new question should get.

Nearness in meaning alone is not enough: measured (docs/verified-answers.md), the multilingual encoder
puts "how many days of leave do I get?" about as close to "until when can I carry leave over?" as to its
own French paraphrase, so no cosine gives many right matches without wrong ones. Reading only the
verified passage does not settle it either: an extractive reader made to read one short passage picks
its most answer-like span whatever the question. What works is both signals at once: the nearest
verified question (cosine at least `floor`; `top` nearest, 1 by default: measured, looking at the 3
nearest added right matches and more wrong ones) whose answer Kate's own
answering pipeline, over every page, finds as its best span in that same page. The verified answer is
then given first, marked as confirmed by HR, even where the reader alone was not confident enough.

A typed answer found in no passage matches only at cosine `strict` or above, and the same question
(case, width, spaces, punctuation aside) always matches. `floor` and `strict` are settings, chosen by
`kate feedback match-threshold`.

The verified set is small (hundreds): its question vectors stay in memory and are recomputed when the
store's version changes. Calls run on the action server's model thread, like every use of the models.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from knowledge.verified import VerifiedAnswer, VerifiedAnswers
from qa_engine.evaluate import same_span
from qa_engine.ranker import Ranker
from qa_engine.types import Answer


@dataclass
class Match:
    answer: VerifiedAnswer
    similarity: float
    confirmed_by_reader: bool = False  # the pipeline found it (else: the same question, or strict)


@dataclass
class Near:
    """A verified question close to the new one."""

    answer: VerifiedAnswer
    similarity: float
    same_question: bool = False


def normal_question(text: str) -> str:
    """Case, width, spaces and punctuation aside ("Payday?" and "payday ？" are the same question)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


class VerifiedMatcher:
    def __init__(
        self, store: VerifiedAnswers, ranker: Ranker | None, *, floor: float, strict: float, top: int = 1
    ) -> None:
        self.store = store
        self.ranker = ranker
        self.floor = floor
        self.strict = strict
        self.top = top
        self._version = -1
        self._answers: list[VerifiedAnswer] = []
        self._vectors: np.ndarray | None = None

    def _refresh(self) -> None:
        version = self.store.version()
        if version == self._version:
            return
        answers = self.store.all()
        vectors = None
        if self.ranker is not None and answers:
            vectors = self.ranker.query_vectors([a.question for a in answers])
        self._answers, self._vectors, self._version = answers, vectors, version

    def near(self, question: str) -> list[Near]:
        """Verified questions close to `question`, nearest first: the same question alone when there is
        one, else those at cosine `floor` or above (blocking: it encodes the question)."""
        self._refresh()
        if not self._answers:
            return []
        same = normal_question(question)
        for a in self._answers:
            if normal_question(a.question) == same:
                return [Near(a, 1.0, same_question=True)]
        if self.ranker is None or self._vectors is None:
            return []
        similarities = self._vectors @ self.ranker.query_vectors([question])[0]
        order = np.argsort(-similarities)[: self.top]
        return [
            Near(self._answers[i], float(similarities[i])) for i in order if similarities[i] >= self.floor
        ]

    def choose(self, near: list[Near], best: Answer | None) -> Match | None:
        """The match among `near`, given the answering pipeline's best span for the question (None when
        it was not run): the same question; a verified answer the pipeline found in its page; a typed
        one at `strict`."""
        for n in near:
            v = n.answer
            if n.same_question:
                return Match(v, n.similarity)
            found = best is not None and best.passage is not None and best.passage.url == v.source_url
            if v.context and found and same_span(best.text, v.answer):  # type: ignore[union-attr]
                return Match(v, n.similarity, confirmed_by_reader=True)
            if not v.context and n.similarity >= self.strict:
                return Match(v, n.similarity)
        return None

    @staticmethod
    def needs_reading(near: list[Near]) -> bool:
        """Whether `choose` needs the pipeline's best span (a candidate kept its passage)."""
        return any(n.answer.context and not n.same_question for n in near)
