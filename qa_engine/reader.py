"""Kate's extractive reader: the best answer spans for a question across many passages, in one batched pass.

Stage 2 of 3 (the model) lives here, between `features.encode` and `decoding`. Every (question, chunk)
pair of every passage goes into batches sorted by length and padded per batch, so short intranet
passages cost what they are, not 384 tokens each.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .decoding import SpanCandidate, candidates_from_chunk, enclosing_sentence, select_spans, top_spans
from .features import Chunk, effective_max_length, encode, pad_inputs
from .model_store import load_qa_model, resolve
from .onnx_reader import OnnxQA, reader_onnx
from .types import Answer, Passage, ReaderConfig

logger = logging.getLogger(__name__)


def resolve_device(wanted: str) -> torch.device:
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(wanted)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {wanted!r} asked for, but no CUDA GPU is available")
    return device


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles). There, bf16 matrix products
    run about twice as fast as fp32 at no measured F1 cost (`kate bench cpu`); without them torch emulates
    bf16 and it is slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    except RuntimeError:  # pragma: no cover - an exotic build without the cpuinfo probes
        return False


def resolve_precision(wanted: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    auto: bf16 (or fp16 where bf16 is missing) on CUDA; on a CPU, bf16 only when the CPU has bf16
    instructions, fp32 otherwise. fp16 is CUDA-only (CPUs have no fast fp16 path and its range is too
    small for fp32-trained logits)."""
    if device.type != "cuda":
        if wanted == "fp16":
            logger.warning("precision fp16 ignored on %s: running fp32", device)
        if wanted in ("fp16", "fp32"):
            return None
        native = cpu_has_native_bf16()
        if wanted == "bf16" and not native:
            logger.warning("this CPU has no bf16 instructions: bf16 is emulated and slower than fp32")
        return torch.bfloat16 if wanted == "bf16" or native else None
    if wanted == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[wanted]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device` (matrix products in half precision, norms and softmax in fp32),
    or nothing when `dtype` is None (plain fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def quantize_int8(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Dynamic int8 quantisation of the Linear layers (weights int8, activations quantised per batch):
    the CPU path that trades F1 for speed (`kate bench cpu` measures both). A copy; CPU only."""
    if device.type != "cpu":
        logger.warning("int8 quantisation is for the CPU; running %s unquantised", device)
        return model
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class Reader:
    """Answers a question from passages. Load once (`warm_up`), then call `answer` from any thread."""

    def __init__(
        self, config: ReaderConfig, model: torch.nn.Module | None = None, tokenizer: object = None
    ) -> None:
        if config.max_answer_tokens < 1 or config.batch_size < 1 or config.stride < 0:
            raise ValueError("max_answer_tokens and batch_size must be >= 1, stride >= 0")
        if config.quantize not in ("none", "int8"):
            raise ValueError(f"quantize must be none or int8, got {config.quantize!r}")
        if config.engine not in ("torch", "onnx"):
            raise ValueError(f"engine must be torch or onnx, got {config.engine!r}")
        self.config = config
        self._model = model
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # one forward pass at a time: torch already uses every core
        self._load_lock = threading.Lock()  # concurrent first calls load the model once
        self.device = resolve_device(config.device)
        # int8 Linear layers (CPU only) take fp32 activations: no autocast on top of them
        self._int8 = config.quantize == "int8" and self.device.type == "cpu"
        self.autocast_dtype = None if self._int8 else resolve_precision(config.precision, self.device)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)  # process-wide: the reader is the process's main work
        if model is not None:
            self._prepare(model)

    # -- loading -------------------------------------------------------------------------------------------
    def _prepare(self, model: torch.nn.Module) -> None:
        model.eval()
        model.to(self.device)
        if self.config.quantize == "int8":
            model = quantize_int8(model, self.device)
        self._model = model

    def _ensure_loaded(self) -> None:
        if self._model is not None and self._tokenizer is not None:
            return
        with self._load_lock:
            if self._model is None or self._tokenizer is None:
                model, tokenizer = load_qa_model(
                    self.config.model, self.config.models_dir, **self.config.extra
                )
                self._tokenizer = tokenizer
                self._prepare(model)
                if self._wants_onnx():
                    self._use_onnx(model)

    @property
    def engine(self) -> str:
        """What runs the forward pass: torch or onnx (ONNX Runtime)."""
        return "onnx" if isinstance(self._model, OnnxQA) else "torch"

    @property
    def worker_threads(self) -> list[int]:
        """Native ids of threads the engine started on its own (ONNX Runtime's pool), for whoever lowers
        the reading's priority; torch's threads belong to the thread that reads, so none are listed. A
        model not loaded yet has none: the thread that loads it then starts the pool, at its priority."""
        return list(getattr(self._model, "worker_threads", []))

    def _wants_onnx(self) -> bool:
        fp32_cpu = self.device.type == "cpu" and self.autocast_dtype is None and not self._int8
        if self.config.engine == "onnx" and not fp32_cpu:
            logger.warning("the reader's ONNX engine is for fp32 on a CPU; reading with torch")
        return self.config.engine == "onnx" and fp32_cpu

    def _use_onnx(self, model: torch.nn.Module) -> None:
        """Read through ONNX Runtime (the same spans as torch fp32; `kate bench cpu` times both). On any
        failure (weights not in a local folder, no onnxruntime, an export error) torch reads."""
        try:
            folder = Path(resolve(self.config.model, self.config.models_dir))
            path = reader_onnx(model, folder)
            threads = self.config.num_threads or torch.get_num_threads()
            self._model = OnnxQA(path, threads, model.config)
        except (OSError, ImportError, RuntimeError, ValueError) as exc:
            logger.warning("the reader reads with torch: %s", exc)

    @property
    def model(self) -> torch.nn.Module:
        self._ensure_loaded()
        return self._model

    @property
    def tokenizer(self) -> object:
        self._ensure_loaded()
        return self._tokenizer

    @property
    def precision(self) -> str:
        """What the forward pass really computes in, for logs and benchmarks: fp32, bf16, fp16 or int8."""
        if self._int8:
            return "int8"
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]

    @property
    def max_length(self) -> int:
        return effective_max_length(self.tokenizer, self.model.config, self.config.max_length)

    def warm_up(self) -> None:
        """Load the model and run one small pass, so the first employee does not pay for it."""
        self.answer("warm up?", [Passage("Kate is warming up.")], top_k=1)

    # -- answering -----------------------------------------------------------------------------------------
    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        top_k: int = 3,
        min_score: float | None = None,
        no_answer: bool = False,
    ) -> list[Answer]:
        """The `top_k` best spans across all passages, best first.

        `min_score` drops weaker spans. With `no_answer`, the list also holds one no-answer verdict
        (`Answer.is_no_answer`), ranked by its score among the spans: when it comes first, the model
        thinks none of the passages answers the question.
        """
        return self.answer_many(
            [(question, passages)], top_k=top_k, min_score=min_score, no_answer=no_answer
        )[0]

    def answer_many(
        self,
        requests: Sequence[tuple[str, Sequence[Passage]]],
        *,
        top_k: int = 3,
        min_score: float | None = None,
        no_answer: bool = False,
    ) -> list[list[Answer]]:
        """`answer` for several questions at once: all their chunks share the same batches (evaluation,
        or a service gathering concurrent requests)."""
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        questions = [q for q, _ in requests]
        if any(not q or not q.strip() for q in questions):
            raise ValueError("the question is empty")
        passage_lists = [list(ps) for _, ps in requests]
        chunks = encode(
            self.tokenizer,
            questions,
            passage_lists,
            max_length=self.max_length,
            stride=self.config.stride,
            max_question_tokens=self.config.max_question_tokens,
        )
        if len(chunks) > self.config.max_chunks:
            logger.warning(
                "%d chunks for one call, reading the first %d", len(chunks), self.config.max_chunks
            )
            chunks = chunks[: self.config.max_chunks]
        candidates, nulls = self._score_chunks(chunks, passage_lists)
        results = []
        for r, passages in enumerate(passage_lists):
            texts = [p.text for p in passages]
            chosen = select_spans(candidates[r], texts, top_k)
            answers = [self._to_answer(c, passages[c.passage]) for c in chosen]
            if min_score is not None:
                answers = [a for a in answers if a.score >= min_score]
            if no_answer and nulls[r]:
                # Scores are margins over each chunk's null score, so "no answer" sits at 0: it wins
                # when no span of any chunk beats its own chunk's null (SQuAD 2.0's rule, threshold 0).
                verdict = Answer(text="", score=0.0, passage=None, no_answer_score=min(nulls[r]))
                answers.append(verdict)
                answers.sort(key=lambda a: a.score, reverse=True)
            results.append(answers)
        return results

    @staticmethod
    def _to_answer(cand: SpanCandidate, passage: Passage) -> Answer:
        s_start, s_end = enclosing_sentence(passage.text, cand.start, cand.end)
        s_start, s_end = min(s_start, cand.start), max(s_end, cand.end)
        return Answer(
            text=passage.text[cand.start : cand.end],
            score=cand.margin,
            passage=passage,
            start=cand.start,
            end=cand.end,
            sentence=passage.text[s_start:s_end],
            sentence_start=s_start,
            span_score=cand.score,
            no_answer_score=cand.null_score,
        )

    def _batches(self, chunks: list[Chunk]) -> list[list[Chunk]]:
        """Longest first, so padding is small and an out-of-memory error shows on the first batch.

        A batch closes at `batch_size` chunks or `max_batch_tokens` padded tokens: on a CPU the forward
        pass is compute-bound and bigger batches only spill the caches (about 2k tokens is best on the
        2-core test machine), while a GPU wants batches as large as its memory allows.
        """
        budget = self.config.max_batch_tokens or (65_536 if self.device.type == "cuda" else 2_048)
        ordered = sorted(chunks, key=len, reverse=True)
        batches: list[list[Chunk]] = []
        for chunk in ordered:
            current = batches[-1] if batches else None
            if (
                current
                and len(current) < self.config.batch_size
                and len(current[0]) * (len(current) + 1) <= budget
            ):
                current.append(chunk)
            else:
                batches.append([chunk])
        return batches

    def _score_chunks(
        self, chunks: list[Chunk], passage_lists: list[list[Passage]]
    ) -> tuple[list[list[SpanCandidate]], list[list[float]]]:
        """Run the model over all chunks (longest first, padded per batch) and decode each chunk's spans."""
        candidates: list[list[SpanCandidate]] = [[] for _ in passage_lists]
        nulls: list[list[float]] = [[] for _ in passage_lists]
        if not chunks:
            return candidates, nulls
        model, cfg = self.model, self.config
        pad_id = self.tokenizer.pad_token_id or 0
        pin = self.device.type == "cuda"
        with self._lock, torch.inference_mode():
            for batch in self._batches(chunks):
                inputs = pad_inputs([c.input_ids for c in batch], [c.token_type_ids for c in batch], pad_id)
                context = np.zeros(tuple(inputs["input_ids"].shape), dtype=bool)
                for row, chunk in enumerate(batch):
                    context[row, : len(chunk)] = chunk.context
                tensors = {
                    k: (t.pin_memory() if pin else t).to(self.device, non_blocking=pin)
                    for k, t in inputs.items()
                }
                with autocast(self.device, self.autocast_dtype):
                    out = model(**tensors)
                start, end = out.start_logits.float(), out.end_logits.float()
                ctx = torch.from_numpy(context).to(self.device)
                scores, starts, ends = top_spans(start, end, ctx, cfg.max_answer_tokens, cfg.n_best_per_chunk)
                null = (start[:, 0] + end[:, 0]).cpu().numpy()
                scores, starts, ends = scores.cpu().numpy(), starts.cpu().numpy(), ends.cpu().numpy()
                for row, chunk in enumerate(batch):
                    text = passage_lists[chunk.request][chunk.passage].text
                    candidates[chunk.request].extend(
                        candidates_from_chunk(
                            text,
                            chunk.offsets,
                            scores[row],
                            starts[row],
                            ends[row],
                            request=chunk.request,
                            passage=chunk.passage,
                            null_score=float(null[row]),
                        )
                    )
                    nulls[chunk.request].append(float(null[row]))
        return candidates, nulls
