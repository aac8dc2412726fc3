"""Stage 1 of 3: question + passages -> strided token chunks that remember where every token came from.

Kept separate from the model and from decoding so that training (later) tokenises exactly as reading does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .types import Passage

logger = logging.getLogger(__name__)


@dataclass
class Chunk:
    """One model input: the question and a window of one passage.

    `offsets[t]` is the (start, end) character range of token t in the passage text, valid only where
    `context[t]` is true (question and special tokens are never part of an answer).
    """

    request: int  # index of the question in the call
    passage: int  # index of the passage within that question's passages
    input_ids: np.ndarray  # int64 [length]
    token_type_ids: np.ndarray | None  # int64 [length], when the tokenizer produces them
    context: np.ndarray  # bool [length]
    offsets: np.ndarray  # int32 [length, 2]

    def __len__(self) -> int:
        return len(self.input_ids)


def effective_max_length(tokenizer: object, model_config: object, wanted: int) -> int:
    """The chunk length actually usable: the wanted one, capped by what the tokenizer and the position
    embeddings allow (RoBERTa-style models reserve pad_token_id + 1 positions)."""
    limit = wanted
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 100_000:
        limit = min(limit, tok_max)
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        reserved = 0
        if getattr(model_config, "model_type", "") in {"roberta", "xlm-roberta", "camembert"}:
            reserved = (getattr(model_config, "pad_token_id", 1) or 1) + 1
        limit = min(limit, positions - reserved)
    return limit


def cap_question(tokenizer: object, question: str, max_tokens: int) -> str:
    """Cut a question to `max_tokens` tokens on a token boundary (a 10k-character message must not
    push the passage out of the window, nor make the tokenizer refuse to truncate)."""
    question = " ".join(question[: max_tokens * 32].split())  # no token is longer than 32 characters
    if not question:
        raise ValueError("the question is empty")
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_tokens:
        return question
    cut = question[: offsets[max_tokens - 1][1]].rstrip()
    logger.info("question cut from %d to %d tokens", len(offsets), max_tokens)
    return cut


def encode(
    tokenizer: object,
    questions: Sequence[str],
    passages: Sequence[Sequence[Passage]],
    *,
    max_length: int,
    stride: int,
    max_question_tokens: int,
) -> list[Chunk]:
    """Tokenise every (question, passage) pair into chunks of at most `max_length` tokens.

    Passages longer than one chunk are split with `stride` overlapping tokens (`only_second` truncation:
    the question is never cut here), so an answer that straddles a chunk border is whole in the next one.
    """
    if len(questions) != len(passages):
        raise ValueError("one list of passages per question")
    pair_specials = tokenizer.num_special_tokens_to_add(pair=True)
    chunks: list[Chunk] = []
    for request, (question, request_passages) in enumerate(zip(questions, passages, strict=True)):
        kept = [(i, p.text) for i, p in enumerate(request_passages) if p.text and p.text.strip()]
        if not kept:
            continue
        # The question never takes more than half the window: the passage needs room too.
        question = cap_question(
            tokenizer, question, min(max_question_tokens, (max_length - pair_specials) // 2)
        )
        question_len = len(tokenizer(question, add_special_tokens=False)["input_ids"])
        room = max_length - question_len - pair_specials
        if room < 8:
            raise ValueError(f"max_length {max_length} leaves no room for the passage after the question")
        window_stride = min(stride, room // 2)  # the tokenizer refuses a stride as large as the window
        enc = tokenizer(
            [question] * len(kept),
            [text for _, text in kept],
            truncation="only_second",
            max_length=max_length,
            stride=window_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        has_types = "token_type_ids" in enc
        for row, sample in enumerate(enc["overflow_to_sample_mapping"]):
            sequence_ids = enc.sequence_ids(row)
            context = np.fromiter((s == 1 for s in sequence_ids), dtype=bool, count=len(sequence_ids))
            chunks.append(
                Chunk(
                    request=request,
                    passage=kept[sample][0],
                    input_ids=np.asarray(enc["input_ids"][row], dtype=np.int64),
                    token_type_ids=np.asarray(enc["token_type_ids"][row], dtype=np.int64)
                    if has_types
                    else None,
                    context=context,
                    offsets=np.asarray(enc["offset_mapping"][row], dtype=np.int32).reshape(-1, 2),
                )
            )
    return chunks


def pad_inputs(
    input_ids: Sequence[np.ndarray], token_type_ids: Sequence[np.ndarray | None], pad_id: int
) -> dict[str, torch.Tensor]:
    """Model inputs for a batch of token sequences, padded to the longest: input_ids, attention_mask, and
    token_type_ids when the tokenizer made them. Reading and training both pad through here."""
    width = max(len(ids) for ids in input_ids)
    batch = {
        "input_ids": torch.full((len(input_ids), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(input_ids), width), dtype=torch.long),
    }
    with_types = token_type_ids[0] is not None
    if with_types:
        batch["token_type_ids"] = torch.zeros((len(input_ids), width), dtype=torch.long)
    for row, ids in enumerate(input_ids):
        batch["input_ids"][row, : len(ids)] = torch.from_numpy(ids)
        batch["attention_mask"][row, : len(ids)] = 1
        if with_types:
            batch["token_type_ids"][row, : len(ids)] = torch.from_numpy(token_type_ids[row])
    return batch
