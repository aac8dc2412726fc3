"""Stage 3 of 3: start/end logits -> answer spans with exact character offsets.

Spans are ranked by logits relative to their chunk's null ([CLS]) logits, never by a per-chunk softmax: a
softmax makes every chunk's best span look confident, so a weak chunk of an irrelevant page could
outrank the right page.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import torch

from .spans import whole_span

# Characters that belong to the grapheme before them: a span must never end just before one of these
# (it would cut "é" written as e + U+0301, a flag, a skin tone, or a ZWJ emoji sequence in half).
_ZWJ = "\u200d"
_EMOJI_MODIFIERS = range(0x1F3FB, 0x1F400)
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))

_CJK_SENTENCE_END = "。！？｡"
_LATIN_SENTENCE_END = ".!?;"


def _extends_previous(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or ch == _ZWJ
        or cp in _EMOJI_MODIFIERS
        or any(cp in r for r in _VARIATION_SELECTORS)
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences (subdivision flags)
    )


def snap_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim whitespace and widen [start, end) to whole graphemes. Returns an empty span if nothing is left."""
    start, end = max(0, start), min(len(text), end)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return start, start
    while start > 0 and _extends_previous(text[start]):
        start -= 1
    while end < len(text) and (_extends_previous(text[end]) or text[end - 1] == _ZWJ):
        end += 1
    return start, end


def enclosing_sentence(text: str, start: int, end: int, max_chars: int = 400) -> tuple[int, int]:
    """The sentence, list item or line around [start, end): what the user sees for context.

    Boundaries are line breaks, CJK full stops, and Latin ./!/?/; followed by a space (so "3.5" or
    "example.com" do not end a sentence). Bounded to `max_chars` on each side.
    """
    left = start
    lower = max(0, start - max_chars)
    for i in range(start - 1, lower - 1, -1):
        ch = text[i]
        if (
            ch == "\n"
            or ch in _CJK_SENTENCE_END
            or (ch in _LATIN_SENTENCE_END and i + 1 < len(text) and text[i + 1].isspace())
        ):
            left = i + 1
            break
    else:
        left = lower
    right = end
    upper = min(len(text), end + max_chars)
    for i in range(end, upper):
        ch = text[i]
        if ch == "\n":
            right = i
            break
        if ch in _CJK_SENTENCE_END or (
            ch in _LATIN_SENTENCE_END and (i + 1 == len(text) or text[i + 1].isspace())
        ):
            right = i + 1
            break
    else:
        right = upper
    while left < right and text[left].isspace():
        left += 1
    while right > left and text[right - 1].isspace():
        right -= 1
    return left, right


def top_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    context: torch.Tensor,
    max_answer_tokens: int,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k best (start, end) token pairs of every chunk of a batch, all at once.

    Only context tokens may start or end a span, end >= start and end - start < max_answer_tokens.
    Returns (scores, starts, ends), each [batch, k]; impossible slots score -inf.
    """
    batch, length = start_logits.shape
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float32, device=start_logits.device)
    s = torch.where(context, start_logits.float(), neg_inf)
    e = torch.where(context, end_logits.float(), neg_inf)
    positions = torch.arange(length, device=start_logits.device)
    span_len = positions[None, :] - positions[:, None]  # [start, end] -> end - start
    allowed = (span_len >= 0) & (span_len < max_answer_tokens)
    pair = s[:, :, None] + e[:, None, :]
    pair = torch.where(allowed[None], pair, neg_inf)
    k = min(k, length * length)
    scores, flat = pair.reshape(batch, -1).topk(k, dim=1)
    return scores, flat // length, flat % length


@dataclass
class SpanCandidate:
    request: int
    passage: int
    start: int  # characters
    end: int
    score: float  # start + end logits
    null_score: float  # [CLS] start + end logits of the chunk

    @property
    def margin(self) -> float:
        return self.score - self.null_score


def candidates_from_chunk(
    text: str,
    offsets: np.ndarray,
    scores: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    request: int,
    passage: int,
    null_score: float,
) -> list[SpanCandidate]:
    """Map one chunk's token spans to character spans of the passage text, widened to whole words,
    numbers with their units and balanced brackets (`spans.whole_span`). A span may not cross a line
    break: passage lines are headings, list items and table rows, and an answer never runs from one into
    the next."""
    out = []
    for score, s, e in zip(scores.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if score == float("-inf"):
            break  # topk is sorted: the rest are impossible too
        char_start, char_end = snap_span(text, int(offsets[s, 0]), int(offsets[e, 1]))
        char_start, char_end = whole_span(text, char_start, char_end)
        if char_end > char_start and "\n" not in text[char_start:char_end]:
            out.append(SpanCandidate(request, passage, char_start, char_end, score, null_score))
    return out


def _normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def select_spans(candidates: list[SpanCandidate], texts: list[str], top_k: int) -> list[SpanCandidate]:
    """Best-first by margin over the chunk's null score (comparable across chunks and passages), skipping
    spans that overlap or repeat (same text) an already chosen span of the same passage: overlapping
    chunks and nested n-best spans would otherwise fill the top-k with one answer."""
    chosen: list[SpanCandidate] = []
    taken: dict[int, list[tuple[int, int, str]]] = {}
    for cand in sorted(candidates, key=lambda c: c.margin, reverse=True):
        if len(chosen) >= top_k:
            break
        norm = _normalised(texts[cand.passage][cand.start : cand.end])
        spans = taken.setdefault(cand.passage, [])
        if any((cand.start < e and s < cand.end) or norm == t for s, e, t in spans):
            continue
        spans.append((cand.start, cand.end, norm))
        chosen.append(cand)
    return chosen
