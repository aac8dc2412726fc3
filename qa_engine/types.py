"""The reader's records: what goes in (passages) and what comes out (answers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Model names (here, not in model_store or ranker, so settings can name them without importing torch)
OFFLINE_PREFIX = "offline:"
DEFAULT_MODEL = OFFLINE_PREFIX + "kate-reader-e5-small"  # Kate's own fine-tuned reader
DEFAULT_RANKER = OFFLINE_PREFIX + "multilingual-e5-small"


class ModelLoadError(RuntimeError):
    """The spec names no loadable model; the message says what to do."""


@dataclass
class RankerConfig:
    model: str = DEFAULT_RANKER
    models_dir: str | None = None
    device: str = "auto"
    precision: str = "auto"  # as the reader's: bf16 on CPUs with bf16 instructions (cold indexing 2x faster)
    max_length: int = 256  # passages are sections of a page: the head of a long one is enough to rank it
    batch_size: int = 32
    memory_cache: int = 50_000  # passage vectors kept in this process
    num_threads: int | None = None
    # torch | onnx | auto: ONNX Runtime on a CPU that would run torch in fp32 (no bf16 instructions)
    engine: str = "torch"


@dataclass(frozen=True)
class Passage:
    """A piece of a page the reader may answer from.

    `id` only has to be unique within one call; `url` and `title` travel with every answer so the user
    can be shown the source. `language` is optional (the reader is multilingual and does not need it).
    """

    text: str
    url: str = ""
    title: str = ""
    id: str = ""
    language: str | None = None
    section: str = ""  # heading path on the page ("Leave > Annual leave"), for display
    # One token per line of `text`, saying what the line was on the page: "h" heading, "q" a FAQ question
    # (a heading, <summary>, <dt> or "Q:" line), "p" paragraph, "u3"/"o3" item of the page's 3rd bulleted
    # / numbered list, "t2" row of its 2nd table. Lets an answer found in one list item give the whole
    # list, a table cell its row and column, a FAQ answer all of itself (knowledge/shapes.py).
    layout: str = ""
    outdated: bool = False  # the page marks this section superseded / archived: current text wins


@dataclass(frozen=True)
class Answer:
    """One answer span, or the "no answer" verdict (`passage is None`, empty text).

    `score` ranks answers across chunks, passages and pages: the span's start + end logits minus the
    [CLS] (null) logits of the chunk it came from, i.e. how much more the model believes in this span than
    in "not in this chunk". Raw logit sums (`span_score`) are not comparable across passages: some
    passages draw high logits for any question, and ranking by them picked the right passage for 21 of 50
    XQuAD questions over 40 passages, against 46 of 50 with this margin (docs/qa-results.md). No softmax
    is involved. The no-answer verdict scores 0: a span ranks above it when the model prefers it to "no
    answer" in its chunk (the SQuAD 2.0 decision rule with threshold 0; `min_score` moves the threshold).
    `start`/`end` are character offsets into `passage.text`, so `passage.text[start:end] == text`.
    `sentence` is the sentence (or list item / line) that encloses the span, for display.
    """

    text: str
    score: float
    passage: Passage | None
    start: int = 0
    end: int = 0
    sentence: str = ""
    sentence_start: int = 0
    span_score: float = 0.0  # start + end logits
    no_answer_score: float = 0.0  # [CLS] start + end logits of the span's chunk
    relevance: float | None = None  # question-passage cosine when a ranker chose the passage (ranker.py)

    @property
    def is_no_answer(self) -> bool:
        return self.passage is None


@dataclass(frozen=True)
class ReaderConfig:
    """How the reader tokenises, batches and decodes. Defaults follow the SQuAD recipe
    (384 tokens, 128 overlapping, answers up to 30 tokens)."""

    model: str
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | fp16 | bf16 (auto: bf16 on GPUs and CPUs that have it)
    batch_size: int = 64  # at most this many chunks per forward pass...
    max_batch_tokens: int | None = (
        None  # ...and at most this many (padded) tokens; None: 2048 on CPU, 65536 on GPU
    )
    max_length: int = 384  # tokens per chunk, question included
    stride: int = 128  # tokens shared by consecutive chunks of one passage
    max_question_tokens: int = 64  # longer questions are cut, so the passage always gets room
    max_answer_tokens: int = 30
    n_best_per_chunk: int = 20  # span candidates kept per chunk before merging across chunks
    max_chunks: int = 20_000  # bound on work for one call; extra chunks are dropped with a warning
    num_threads: int | None = None  # torch intra-op threads on CPU; None keeps torch's default
    quantize: str = "none"  # none | int8 (dynamic int8 Linear layers, CPU only: faster, costs F1)
    # torch | onnx (ONNX Runtime, for fp32 on a CPU); applies to the model the reader loads itself, from a
    # folder with its weights
    engine: str = "torch"
    models_dir: str | None = None  # where `offline:<name>` models are built (KATE_HOME/models)
    extra: dict = field(default_factory=dict)  # from_pretrained keyword arguments (revision, token...)


@runtime_checkable
class AnswersQuestions(Protocol):
    """What every reader offers (`Reader` in this process, `BatchingReader` gathering concurrent callers,
    `RemoteReader` over HTTP): the best spans for one question over some passages, best first,
    scores comparable across passages."""

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        top_k: int = 3,
        min_score: float | None = None,
        no_answer: bool = False,
    ) -> list[Answer]: ...
