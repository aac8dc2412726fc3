"""An in-process index of passages: their sentence vectors and BM25, searched together.

Why: answering used to re-read every page's passages and vectors for each question and rank them in
Python, a cost that grows with the intranet. The index is built once (and rebuilt in the background when
pages change, knowledge/live_index.py), so a question costs one matrix-vector product over all passages
(float32, 50,000 x 384 is about 5 ms on two cores), one BM25 lookup of its terms, and the fusion
of the two.

Fusion (`fuse`): each passage gets its cosine plus `lexical_weight` times its BM25 score over the
question's *exact terms* (codes, numbers, acronyms, names: qa_engine/lexical.py `exact_terms`), relative
to the most those terms could score. The cosine stays the scale (the reader's answer scores are re-scored
with it, qa_engine/ranker.py); BM25 only lifts the pages that carry the question's code or name. BM25 over
all the question's words was measured and rejected: it ranks pages of the question's own language first,
so a French question about an English page loses its page. Recall@1 with 2,000 distractor paragraphs
(`kate bench recall`, docs/benchmarks.md): same-language dev files 90.3 dense, 95.2 with all words, 91.5
with exact terms; cross-lingual files 39.9 dense, 35.9 with all words, 41.3 with exact terms (recall@10
63.8 / 60.5 / 67.0); on the two test intranets, where every page says "leave" and "days", all words
lowered recall@5 from 85.6 to 82.1, exact terms to 84.6, and recall@10 (what is read) stays 97.2. The
weight was chosen on those measurements.

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


def text_for_bm25(passage: Passage) -> str:
    return f"{passage.title}\n{passage.text}"


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
        self,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        lexical_weight: float = LEXICAL_WEIGHT,
        *,
        documents: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
        vocabulary: dict[str, int] | None = None,
    ) -> None:
        """`documents`: the passages already analysed for BM25 with `vocabulary` (`text_for_bm25`), so a
        rebuild after one page changed does not analyse the 50,000 others again."""
        if len(passages) != len(vectors):
            raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
        self.passages = list(passages)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.lexical_weight = lexical_weight
        self.lexical = LexicalIndex(vocabulary=vocabulary)
        if documents is None:
            self.lexical.add(text_for_bm25(p) for p in self.passages)
        else:
            self.lexical.add_analysed(documents)
        self.lexical.scores("")  # builds the postings now, not at the first question

    def __len__(self) -> int:
        return len(self.passages)

    def score_all(
        self, query_vector: np.ndarray, question: str, method: str = "hybrid", weight: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every row's cosine and ranking score by `method` (`weight`: the lexical weight, default this
        index's): one matrix-vector product and one BM25 lookup."""
        cosine = self.vectors @ query_vector.astype(np.float32) if len(self) else np.zeros(0, np.float32)
        asked = lexical_query(method, question) if method != "dense" else ""
        lexical = self.lexical.scores(asked) if asked else np.zeros_like(cosine)
        weight = self.lexical_weight if weight is None else weight
        return cosine, method_scores(method, cosine, lexical, self.lexical.bound(asked), weight)

    def search(
        self,
        query_vector: np.ndarray,
        question: str,
        top: int = SHORTLIST,
        allowed: np.ndarray | None = None,
        method: str = "hybrid",
    ) -> Shortlist:
        """The `top` best passages among the `allowed` rows (a boolean mask; None: all)."""
        cosine, scores = self.score_all(query_vector, question, method)
        rows = top_rows(scores, top, allowed)
        return Shortlist(
            rows=rows,
            passages=[self.passages[i] for i in rows],
            cosines=cosine[rows],
            scores=scores[rows],
            vectors=self.vectors[rows],
        )


def top_rows(scores: np.ndarray, top: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """The rows of the `top` best `scores` among the `allowed` ones (None: all), best first."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    top = min(top, int(np.count_nonzero(allowed)) if allowed is not None else len(scores))
    if top <= 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.argpartition(-scores, top - 1)[:top] if top < len(scores) else np.arange(len(scores))
    return rows[np.argsort(-scores[rows], kind="stable")]
