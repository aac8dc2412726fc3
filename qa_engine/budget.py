"""How much reading one question may cost: a bound in tokens on the ranked passages it reads.

Why: reading is most of a question's time, and it grows with the tokens read, not with the passages. The
ranking's margin (`sure_cut`) keeps the passages close to the best one, up to `KATE_RANK_TOP`; when many
long passages are close (thousands of pages of similar prose), an unsure question read them all, and
those questions made the p95 (1.2 s of reading on an AVX2-only CPU at 10,000 pages, `kate bench index`).
A bound reads the best-ranked passages until their tokens reach it, and leaves the rest: at 640 tokens
that p95 fell to 0.5 s and F1 rose (the passages it leaves mostly brought wrong answers). Intranet pages
cut into short sections stay under it: no question of the demo intranet or of the Lumen test intranet has
a ranking that reaches 640 tokens (docs/benchmarks.md, "A bound on each reading").
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from .ranker import Ranking, passage_key
from .types import Passage


class TokenCounter:
    """Counts a passage's tokens with a private copy of a fast tokenizer (no truncation, no padding), so
    any thread may count at any time: the copy is only ever read, never reconfigured, and the model's
    own tokenizer, which other threads reconfigure as they encode, is never touched."""

    def __init__(self, tokenizer: object) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError("counting tokens needs a fast (Rust) tokenizer")
        self._tokenizer = copy.deepcopy(backend)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def __call__(self, passages: Sequence[Passage]) -> list[int]:
        encoded = self._tokenizer.encode_batch([p.text for p in passages], add_special_tokens=False)
        return [len(e.ids) for e in encoded]


def token_cut(ranking: Ranking, budget: int, counts: Sequence[int], least: int = 2) -> Ranking:
    """The best-ranked passages of `ranking` whose tokens (`counts`, one per passage, in ranking order) add
    up to at most `budget`; the first `least` are kept whatever their length. `budget <= 0`: no bound."""
    if budget <= 0 or len(ranking.passages) <= least:
        return ranking
    kept: list[Passage] = []
    total = 0
    for i, (passage, count) in enumerate(zip(ranking.passages, counts, strict=True)):
        if i >= least and total + count > budget:
            break
        kept.append(passage)
        total += count
    if len(kept) == len(ranking.passages):
        return ranking
    return Ranking(kept, {passage_key(p): ranking.of(p) for p in kept})
