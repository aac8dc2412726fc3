"""The naive reader Kate's batched reader is measured against (`kate bench reader`).

It reads the way transformers' old question-answering pipeline did with its defaults: one passage at
a time, one chunk per forward pass (no padding, batch of 1), a softmax over each chunk's start and end
logits, the best spans of each chunk scored by the product of those probabilities. It exists only
for the benchmark: per-chunk probabilities are not comparable across pages, which is why the real
reader does not work this way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .decoding import snap_span
from .features import cap_question
from .types import Answer, Passage


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def naive_answer(
    model: torch.nn.Module,
    tokenizer: object,
    question: str,
    passages: Sequence[Passage],
    *,
    top_k: int = 3,
    max_length: int = 384,
    stride: int = 128,
    max_answer_tokens: int = 30,
) -> list[Answer]:
    question = cap_question(tokenizer, question, 64)
    found: list[Answer] = []
    with torch.inference_mode():
        for passage in passages:
            if not passage.text.strip():
                continue
            enc = tokenizer(
                question,
                passage.text,
                truncation="only_second",
                max_length=max_length,
                stride=stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
            for row in range(len(enc["input_ids"])):
                inputs = {"input_ids": torch.tensor([enc["input_ids"][row]])}
                inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
                if "token_type_ids" in enc:
                    inputs["token_type_ids"] = torch.tensor([enc["token_type_ids"][row]])
                out = model(**inputs)
                context = np.array([s == 1 for s in enc.sequence_ids(row)])
                start = np.where(context, out.start_logits[0].numpy(), -1e4)
                end = np.where(context, out.end_logits[0].numpy(), -1e4)
                p_start, p_end = _softmax(start), _softmax(end)
                pairs = np.triu(np.outer(p_start, p_end))
                pairs = np.tril(pairs, max_answer_tokens - 1)
                best = np.argsort(-pairs.ravel())[:top_k]
                offsets = enc["offset_mapping"][row]
                for flat in best:
                    s, e = np.unravel_index(flat, pairs.shape)
                    if not (context[s] and context[e]):
                        continue
                    cs, ce = snap_span(passage.text, offsets[s][0], offsets[e][1])
                    if ce > cs:
                        found.append(Answer(passage.text[cs:ce], float(pairs[s, e]), passage, cs, ce))
    found.sort(key=lambda a: a.score, reverse=True)
    return found[:top_k]
