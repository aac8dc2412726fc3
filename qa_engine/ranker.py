"""Passage ranking before reading: a multilingual sentence encoder picks the passages worth reading.

Why: an extractive reader scores a span by how much it prefers it to "no answer" in its own chunk, and
some spans ("8:00 to 19:00", a lone figure in a table) look like answers to almost any question. Over
the 17 pages of the demo intranet the shipped reader alone picked such a span for 9 of 31 HR questions.
Multilingual E5 was trained for exactly this retrieval step (`query: ` / `passage: ` prefixes, mean
pooling, cosine), across languages, so it ranks the right page first for most questions, including a
French question on an English page. The reader then reads only the best `read_top` passages (faster),
and each answer's score becomes `margin - weight * (1 - cosine)`: a span far from the question must beat
"no answer" by more.

Passage vectors depend only on the text, so they are cached (in memory, and in any store given with
`get_many`/`put_many`, such as Redis), and a question costs one short forward pass.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .model_folders import sha256_of
from .model_store import ModelLoadError, resolve
from .reader import autocast, resolve_device, resolve_precision
from .sentence_encoder import OnnxEncoder, ranker_onnx
from .types import Answer, AnswersQuestions, Passage, RankerConfig

logger = logging.getLogger(__name__)

QUERY_CACHE = 512  # question vectors kept (Ranker.query_vectors)
CENTROID_PRIOR = 2  # passages' worth of the overall mean in each language's mean (language_offsets)


class VectorStore(Protocol):
    def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    def put_many(self, items: dict[str, bytes]) -> None: ...


class Ranker:
    def __init__(
        self, config: RankerConfig, store: VectorStore | None = None, tokenizer: object = None
    ) -> None:
        """`tokenizer`: an already loaded tokenizer identical to the model's (the reader's, when both come
        from the same base: loading XLM-R's 250k-entry tokenizer costs seconds)."""
        from transformers import AutoModel, AutoTokenizer

        self.config = config
        self.store = store
        location = resolve(config.model, config.models_dir)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        try:
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(location)
            self.model = AutoModel.from_pretrained(location).eval()
        except OSError as exc:
            raise ModelLoadError(f"cannot load ranker model {config.model!r}: {exc}") from exc
        self.device = resolve_device(config.device)
        self.model.to(self.device)
        self.autocast_dtype = None
        if self.device.type == "cuda":
            self.model.half()
        else:
            self.autocast_dtype = resolve_precision(config.precision, self.device)
        self.model_id = Path(location).name or config.model
        self.engine = "torch"
        self._onnx: OnnxEncoder | None = None
        if config.engine not in ("torch", "onnx", "auto"):
            raise ValueError(f"ranker engine must be torch, onnx or auto, got {config.engine!r}")
        fp32_cpu = self.device.type == "cpu" and self.autocast_dtype is None
        if config.engine == "onnx" or (config.engine == "auto" and fp32_cpu):
            self._use_onnx(Path(location))
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        # One question is encoded by several steps (ranking, the audience's own pages, FAQ/list/table
        # matching, verified answers, the gaps' vectors): the latest questions' vectors are kept.
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()

    def _use_onnx(self, folder: Path) -> None:
        """Encode through ONNX Runtime (same vectors, faster than torch fp32 on a CPU: `kate bench cpu`);
        on any failure (no local weights, no onnxruntime, an export error) the ranker stays on torch."""
        if self.device.type != "cpu":
            logger.warning("the ranker's ONNX engine is for the CPU; encoding with torch on %s", self.device)
            return
        try:
            self._onnx = OnnxEncoder(ranker_onnx(self.model, folder), self.config.num_threads)
            self.engine = "onnx"
        except (OSError, ImportError, RuntimeError) as exc:
            logger.warning("ranker encodes with torch: %s", exc)

    # -- vectors --------------------------------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = []
        with torch.inference_mode():
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths, little padding
            for i in range(0, len(order), self.config.batch_size):
                batch = [texts[j] for j in order[i : i + self.config.batch_size]]
                enc = self.tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=self.config.max_length,
                    return_tensors="pt" if self._onnx is None else "np",
                )
                if self._onnx is not None:  # mean pooling and the unit length are in the graph
                    vectors.append(self._onnx(enc["input_ids"], enc["attention_mask"]))
                    continue
                enc = enc.to(self.device)
                with autocast(self.device, self.autocast_dtype):
                    hidden = self.model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vectors.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        stacked = np.concatenate(vectors) if vectors else np.zeros((0, 1), dtype=np.float32)
        out = np.empty_like(stacked)
        out[order] = stacked
        return out

    def _key(self, passage: Passage) -> str:
        digest = hashlib.sha256(f"{passage.title}\n{passage.text}".encode()).hexdigest()[:32]
        return f"{self.model_id}:{digest}"

    def passage_vectors(self, passages: Sequence[Passage], *, remember: bool = True) -> np.ndarray:
        """Unit vectors of passages, in order: from this process's memory, else the store, else encoded
        (and stored). `remember=False` for a caller that keeps them itself (the action server's index):
        at 50,000 passages a second copy here would hold about 90 MB more."""
        keys = [self._key(p) for p in passages]
        found: dict[str, np.ndarray] = {k: self._memory[k] for k in keys if k in self._memory}
        wanted = [k for k in dict.fromkeys(keys) if k not in found]
        if wanted and self.store is not None:
            try:
                for key, raw in zip(wanted, self.store.get_many(wanted), strict=True):
                    if raw:
                        found[key] = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
            except Exception as exc:  # a store that is down only costs time: compute the vectors instead
                logger.warning("vector store unavailable (%s); computing passage vectors", exc)
        todo = {k: p for k, p in zip(keys, passages, strict=True) if k not in found}
        if todo:
            fresh = self._encode([f"passage: {p.title}\n{p.text}" for p in todo.values()])
            new = dict(zip(todo, fresh, strict=True))
            found.update(new)
            if self.store is not None:
                try:
                    self.store.put_many({k: v.astype(np.float16).tobytes() for k, v in new.items()})
                except Exception as exc:
                    logger.warning("vector store unavailable (%s); vectors kept in memory only", exc)
        for k in keys if remember else ():
            self._memory[k] = found[k]
            self._memory.move_to_end(k)
        while len(self._memory) > self.config.memory_cache:
            self._memory.popitem(last=False)
        dim = self.model.config.hidden_size
        return np.stack([found[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)

    def forget(self) -> None:
        """Drop the vectors kept in this process (the store, if any, keeps its own)."""
        self._memory.clear()

    def query_vectors(self, questions: Sequence[str]) -> np.ndarray:
        """Unit vectors of questions, in order (many at once: evaluation); the last `QUERY_CACHE` are
        kept, so the steps answering one question encode it once."""
        texts = [f"query: {q}" for q in questions]
        missing = [t for t in dict.fromkeys(texts) if t not in self._queries]
        if missing:
            self._queries.update(zip(missing, self._encode(missing), strict=True))
        for t in texts:
            self._queries.move_to_end(t)
        vectors = [self._queries[t] for t in texts]
        while len(self._queries) > max(QUERY_CACHE, len(set(texts))):
            self._queries.popitem(last=False)
        return (
            np.stack(vectors) if vectors else np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        )

    def similarities(self, question: str, passages: Sequence[Passage]) -> np.ndarray:
        """Cosine between the question and each passage, in passage order."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        q = self.query_vectors([question])[0]
        return self.passage_vectors(passages) @ q

    def warm_up(self) -> None:
        self._encode(["query: warm-up"])


def same_tokenizer(folder_a: str, folder_b: str) -> bool:
    """Whether two model folders carry byte-identical tokenizer files (one loaded tokenizer serves both)."""
    names = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    for name in names:
        a, b = Path(folder_a) / name, Path(folder_b) / name
        if a.is_file() != b.is_file() or (a.is_file() and sha256_of(a) != sha256_of(b)):
            return False
    return (Path(folder_a) / "tokenizer.json").is_file()


def passage_key(passage: Passage) -> tuple[str, str, str]:
    """What identifies a passage: its id, page and text, not Python object identity, which breaks as soon
    as any reader or cache rebuilds the passages (RemoteReader maps answers back to the caller's objects
    today; a reader that returns equal copies gets the same relevance)."""
    return passage.id, passage.url, passage.text


@dataclass(frozen=True)
class Ranking:
    """The passages chosen for reading, best first, and each one's cosine to the question."""

    passages: list[Passage]
    relevance: dict[tuple[str, str, str], float]  # passage_key(passage) -> cosine

    def of(self, passage: Passage) -> float:
        return self.relevance.get(passage_key(passage), 0.0)


def language_offsets(question: np.ndarray, vectors: np.ndarray, languages: Sequence[str]) -> np.ndarray:
    """What to add to each passage's cosine so that a page in another language than the question's
    competes as if it were written in the question's language.

    Why: multilingual E5 puts a question nearer every passage of its own language, relevant or not. On
    the Lumen test intranet a Japanese question on parental-leave documents ranked the Japanese pages'
    lists (pay, health check) above the English parental-leave list. The language is a direction shared
    by all of a language's passages, so each passage is compared to the question relative to the mean of
    its language's passages (the question's similarity to that mean is the language's bias), plus the
    largest bias, so that the passages of the question's own language keep their cosine and no passage
    loses relevance (the answer scores and their calibration were measured on plain cosines). A language
    with few passages has its mean drawn towards the mean of all (`CENTROID_PRIOR` passages' worth), so
    one or two pages in a language are not judged against themselves alone. Ranking on the Lumen tune
    questions: the right page first for 86% of them (70% on plain cosines). Used to choose a list
    section (actions/structured.py), not the passages read: ranking every passage this way answered fewer
    demo HR questions right (42 of 51 against 44: same-language answers lost to other languages' pages),
    so `rank` keeps plain cosines."""
    out = np.zeros(len(languages), dtype=np.float32)
    groups: dict[str, list[int]] = {}
    for i, language in enumerate(languages):
        groups.setdefault(language, []).append(i)
    if len(groups) < 2:
        return out
    overall = vectors.mean(axis=0)
    bias = {}
    for language, members in groups.items():
        centroid = (vectors[members].sum(axis=0) + CENTROID_PRIOR * overall) / (len(members) + CENTROID_PRIOR)
        bias[language] = float(centroid @ question)
    top = max(bias.values())
    for language, members in groups.items():
        out[members] = top - bias[language]
    return out


def rank(ranker: Ranker, question: str, passages: Sequence[Passage], read_top: int) -> Ranking:
    return rank_by(ranker.similarities(question, passages), passages, read_top)


def rank_by(
    sims: np.ndarray, passages: Sequence[Passage], read_top: int, order: np.ndarray | None = None
) -> Ranking:
    """The best `read_top` passages by `order` (default `sims`; one per passage, in passage order); their
    relevance is their cosine `sims` either way (the answer scores are re-scored with it)."""
    chosen = np.argsort(-(sims if order is None else order), kind="stable")[:read_top]
    return Ranking([passages[i] for i in chosen], {passage_key(passages[i]): float(sims[i]) for i in chosen})


def sure_cut(ranking: Ranking, margin: float, least: int = 2) -> Ranking:
    """Read less when the ranking is sure: keep the passages whose cosine is within `margin` of the best
    one's (at least `least`). A span's score is re-scored with `weight * (1 - cosine)`, so a passage far
    below the best must out-read it by that much to win; the cut skips the passages that almost never
    do. Measured (`kate bench index`, `kate qa structured`): at 0.05, 7 of the best 10 passages are read
    on average at 50,000 pages with the same F1, and the Lumen test intranet's 93 questions get exactly
    the same answers; tighter margins read less but changed Lumen answers both ways. `margin <= 0`: no
    cut."""
    if margin <= 0 or len(ranking.passages) <= least:
        return ranking
    best = max(ranking.of(p) for p in ranking.passages)
    kept = [p for i, p in enumerate(ranking.passages) if i < least or ranking.of(p) >= best - margin]
    return Ranking(kept, {passage_key(p): ranking.of(p) for p in kept})


def rescore(
    found: Sequence[Answer],
    ranking: Ranking,
    *,
    top_k: int,
    weight: float = 10.0,
    min_score: float | None = None,
) -> list[Answer]:
    """The reader's spans re-scored with their passage's relevance (`margin - weight * (1 - cosine)`)."""
    rescored = []
    for a in found:
        if a.passage is None:
            rescored.append(a)
            continue
        rel = ranking.of(a.passage)
        rescored.append(replace(a, score=a.score - weight * (1.0 - rel), relevance=rel))
    rescored.sort(key=lambda a: a.score, reverse=True)
    if min_score is not None:
        rescored = [a for a in rescored if a.passage is None or a.score >= min_score]
    return rescored[:top_k]


def read_ranked(
    reader: AnswersQuestions,
    question: str,
    passages: Sequence[Passage],
    ranking: Ranking | None,
    *,
    top_k: int,
    read_top: int,
    min_score: float | None = None,
) -> list[Answer]:
    """Stage 2 of answering: read what the ranking chose (every passage when there is no ranking)."""
    if ranking is None:
        return reader.answer(question, list(passages), top_k=top_k, min_score=min_score)
    return reader.answer(question, ranking.passages, top_k=max(top_k, read_top), min_score=None)


@dataclass(frozen=True)
class FirstReading:
    """Read the best-ranked passages first, and the rest of the ranking only when the best answer they
    give is not sure: most questions are answered from their first passages, and reading is most of a
    question's time. `sure_score` is a re-scored span score (`rescore`: the reader's margin minus the
    ranker's penalty); the action server takes it from a calibrated confidence (`KATE_READ_SURE`).

    Measured (docs/benchmarks.md, "Reading less for the same answers"): with the best 2 passages first
    and a confidence of 0.4, the demo intranet's 51 questions, 38 of the Lumen test intranet's and 150
    questions over 2,000 training paragraphs got exactly the answers that reading every ranked passage
    gives, from 16-25% fewer passages; at 0.3, two answers changed."""

    passages: int = 2
    sure_score: float = math.inf


@dataclass
class Reading:
    """What the reader found in the ranked passages, and whether it read all of them."""

    found: list[Answer]
    complete: bool = True
    read: int = 0  # passages read


def split_first(
    ranking: Ranking, first: FirstReading, also: Sequence[Passage] = ()
) -> tuple[list[Passage], list[Passage]]:
    """The passages read first (the ranking's first `first.passages`, and the ranked passages of `also`:
    pages meant for the employee, a FAQ pair or a table the page structure matched, whose answers must
    compete with theirs) and the rest of the ranking, each in ranking order."""
    wanted = {passage_key(p) for p in also}
    head = [p for i, p in enumerate(ranking.passages) if i < first.passages or passage_key(p) in wanted]
    rest = [p for p in ranking.passages[first.passages :] if passage_key(p) not in wanted]
    return head, rest


def read_first(
    reader: AnswersQuestions,
    question: str,
    ranking: Ranking,
    first: FirstReading,
    *,
    top_k: int,
    weight: float = 10.0,
    also: Sequence[Passage] = (),
    rest_only: bool = False,
) -> Reading:
    """Stage 2 in two steps: the passages `split_first` puts first, then, unless one of their spans
    re-scores at `first.sure_score` or more, the rest. `rest_only`: the rest alone (after a 👎 on an
    answer the first passages gave: their other answers are already known)."""
    head, rest = split_first(ranking, first, also)
    if rest_only:
        return Reading(reader.answer(question, rest, top_k=top_k) if rest else [], read=len(rest))
    if not rest:
        return Reading(reader.answer(question, head, top_k=top_k), read=len(head))
    found = reader.answer(question, head, top_k=top_k)
    best = rescore(found, ranking, top_k=1, weight=weight)
    if best and best[0].passage is not None and best[0].score >= first.sure_score:
        return Reading(found, complete=False, read=len(head))
    return Reading(found + reader.answer(question, rest, top_k=top_k), read=len(head) + len(rest))


def select(
    found: Sequence[Answer],
    ranking: Ranking | None,
    *,
    top_k: int,
    weight: float = 10.0,
    min_score: float | None = None,
) -> list[Answer]:
    """Stage 3: spans re-scored with their passage's relevance (when ranked), best `top_k`."""
    if ranking is None:
        return list(found[:top_k])
    return rescore(found, ranking, top_k=top_k, weight=weight, min_score=min_score)


def rank_and_read(
    reader: AnswersQuestions,
    ranker: Ranker | None,
    question: str,
    passages: Sequence[Passage],
    *,
    top_k: int = 3,
    read_top: int = 10,
    weight: float = 10.0,
    min_score: float | None = None,
) -> list[Answer]:
    """The best answers to `question`: rank the passages, read the best `read_top`, re-score the spans
    with their passage's relevance. With no ranker, the reader reads everything (its own scores).
    The one answering pipeline: the bot (actions/answering.py runs the same three stages, split across
    its threads), `kate ask`, the evaluations and the benchmarks all go through these functions."""
    ranking = None if ranker is None or len(passages) == 0 else rank(ranker, question, passages, read_top)
    found = read_ranked(
        reader, question, passages, ranking, top_k=top_k, read_top=read_top, min_score=min_score
    )
    return select(found, ranking, top_k=top_k, weight=weight, min_score=min_score)
