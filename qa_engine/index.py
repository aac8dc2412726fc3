"""An in-process index of passages: their sentence vectors and BM25, searched together.

Why: answering used to re-read every page's passages and vectors for each question and rank them in
Python, a cost that grows with the intranet. The index is built once (and rebuilt in the background when
pages change, knowledge/index_sync.py), so a question costs one matrix-vector product over all passages
(float32, 50,000 x 384 is about 5 ms on two cores), one BM25 lookup of its terms, and the fusion
of the two on the best few hundred.

Fusion (`fuse`): each passage gets its cosine plus `lexical_weight` times its BM25 score over the
question's *exact terms* (codes, numbers, acronyms, names: qa_engine/lexical.py `exact_terms`), relative
to the most those terms could score. The cosine stays the scale (the reader's answer scores are re-scored
with it, qa_engine/ranker.py); BM25 only lifts the pages that carry the question's code or name. BM25 over
all the question's words was measured and rejected: it ranks pages of the question's own language first,
so a French question about an English page lost its page (recall@1 on the cross-lingual dev files with
200 distractors: 56.5 dense, 53.6 with all words at weight 0.05, 59.8 with exact terms), and on the two
test intranets, where every page says "leave" and "days", it lowered recall@5 from 85.6 to 82.1. The
weight was chosen on those measurements (`kate bench recall`, docs/benchmarks.md).

The index is immutable: a new one is swapped in whole, so a question never sees half an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .lexical import LexicalIndex, exact_terms
from .types import Passage

SHORTLIST = 200  # passages fused and handed on per question (ranking, lists, tables, FAQ pairs)
LEXICAL_WEIGHT = 0.05  # see the module docstring; 0 is dense only
# "hybrid words": the fusion with BM25 over all the question's words (measured, not shipped)
METHODS = ("dense", "lexical", "hybrid", "hybrid words")


def fuse(cosine: np.ndarray, lexical: np.ndarray, bound: float, weight: float) -> np.ndarray:
    """Cosine plus `weight` x the share of the exact terms' BM25 each passage matches (`bound`: the most
    they could score; see the module docstring)."""
    if weight <= 0 or bound <= 0:
        return cosine
    return cosine + weight * (lexical / bound)


def lexical_query(method: str, question: str) -> str:
    """What BM25 is asked: every word for the lexical ranking, the exact terms for the hybrid one."""
    return exact_terms(question) if method == "hybrid" else question


def method_scores(
    method: str, cosine: np.ndarray, lexical: np.ndarray, bound: float, weight: float
) -> np.ndarray:
    """The ranking score of one method of `METHODS` (evaluations compare them); `lexical`: BM25 of
    `lexical_query(method, question)`, `bound` its most."""
    if method == "dense":
        return cosine
    if method == "lexical":
        return lexical
    if method in ("hybrid", "hybrid words"):
        return fuse(cosine, lexical, bound, weight)
    raise ValueError(f"unknown ranking method {method!r}: one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class Shortlist:
    """The passages most worth a look for one question, best first (by `score`), with their rows in the
    index, cosines (the relevance the answer scores use) and fused scores."""

    rows: np.ndarray
    passages: list[Passage]
    cosines: np.ndarray
    scores: np.ndarray
    vectors: np.ndarray  # the passages' unit vectors, in shortlist order


class PassageIndex:
    """Passages with their unit vectors (one row each), searched by cosine, BM25, or both fused."""

    def __init__(
        self, passages: Sequence[Passage], vectors: np.ndarray, lexical_weight: float = LEXICAL_WEIGHT
    ) -> None:
        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        self.passages = list(passages)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.lexical_weight = lexical_weight
        self.lexical = LexicalIndex()
        self.lexical.add(f"{p.title}\n{p.text}" for p in self.passages)
        self.lexical.scores("")  # builds the postings now, not at the first question

    def __len__(self) -> int:
        return len(self.passages)

    def search(
        self,
        query_vector: np.ndarray,
        question: str,
        top: int = SHORTLIST,
        allowed: np.ndarray | None = None,
        method: str = "hybrid",
    ) -> Shortlist:
        """The `top` best passages among the `allowed` rows (a boolean mask; None: all)."""
        cosine = self.vectors @ query_vector.astype(np.float32) if len(self) else np.zeros(0, np.float32)
        asked = lexical_query(method, question) if method != "dense" else ""
        lexical = self.lexical.scores(asked) if asked else np.zeros_like(cosine)
        scores = method_scores(method, cosine, lexical, self.lexical.bound(asked), self.lexical_weight)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        n = int(np.count_nonzero(allowed)) if allowed is not None else len(self)
        top = min(top, n)
        if top <= 0:
            rows = np.zeros(0, dtype=np.int64)
        else:
            rows = np.argpartition(-scores, top - 1)[:top] if top < len(scores) else np.arange(len(scores))
            rows = rows[np.argsort(-scores[rows], kind="stable")]
        return Shortlist(
            rows=rows,
            passages=[self.passages[i] for i in rows],
            cosines=cosine[rows],
            scores=scores[rows],
            vectors=self.vectors[rows],
        )
