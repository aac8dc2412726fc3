"""Training data for `kate qa train`: labelled examples, mixing, cross-lingual pairs, and a feature cache.

At SQuAD scale (150k examples, ~180k chunks) features are tokenised once, in blocks, into flat arrays on
disk (`FeatureStore`) and memory-mapped, so a run that resumes in a later session does not tokenise again
and the training process never holds every chunk as Python objects. Chunks come from `features.encode`,
the reader's own tokenisation and chunking, so the model is trained on exactly what it will read; a chunk
that does not contain the answer points at [CLS].
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .evaluate import squad_questions
from .features import Chunk, encode
from .model_folders import staged_folder
from .types import Passage

FEATURE_FORMAT = 1


@dataclass(frozen=True)
class LabelledExample:
    question: str
    context: str
    answer_start: int  # characters
    answer_text: str


@dataclass
class TrainFeature:
    input_ids: np.ndarray
    token_type_ids: np.ndarray | None
    start: int  # token index of the answer start, 0 ([CLS]) when the chunk does not hold the answer
    end: int


@dataclass(frozen=True)
class MixSpec:
    """What goes into a run: files, per-file caps, pairs. The same spec and seed give the same examples."""

    files: tuple[str, ...]
    # (file name or path, examples kept): N keeps the first N in the file's seeded order, (a, b) keeps
    # positions a to b of that order, so successive training stages can take disjoint slices of a file
    samples: tuple[tuple[str, int | tuple[int, int]], ...] = ()
    cross_lingual: bool = False
    cross_lingual_per_example: int = 1
    cross_lingual_max: int | None = None  # cap on the number of pairs (None: all)
    seed: int = 42


def load_labelled(path: str | Path) -> list[tuple[str, LabelledExample]]:
    """(question id, example) with the first gold answer's character position."""
    out = []
    for _, context, qa, answers in squad_questions(path):
        a = answers[0]
        start = int(a["answer_start"])
        if context[start : start + len(a["text"])] != a["text"]:  # a few datasets are off by some chars
            start = context.find(a["text"])
            if start < 0:
                continue
        out.append((str(qa["id"]), LabelledExample(qa["question"], context, start, a["text"])))
    return out


def cross_lingual_pairs(
    files: dict[str, list[tuple[str, LabelledExample]]], per_example: int, rng: random.Random
) -> list[LabelledExample]:
    """Parallel sets (XQuAD's 12 languages, Asai's fr/ja) share question ids: pair the question of one
    language with the context and answer of another, so the model learns to cross languages."""
    by_id: dict[str, list[LabelledExample]] = {}
    for examples in files.values():
        for qid, ex in examples:
            by_id.setdefault(qid, []).append(ex)
    pairs = []
    for versions in by_id.values():
        if len(versions) < 2:
            continue
        for target in versions:
            others = [v for v in versions if v.question != target.question]
            for source in rng.sample(others, min(per_example, len(others))):
                pairs.append(
                    LabelledExample(source.question, target.context, target.answer_start, target.answer_text)
                )
    return pairs


def _sample_size(samples: Sequence[tuple[str, int | tuple[int, int]]], path: str) -> tuple[int, int] | None:
    for key, n in samples:
        if Path(key).name == Path(path).name or key == path:
            return (0, n) if isinstance(n, int) else (int(n[0]), int(n[1]))
    return None


def _sample(
    examples: list[tuple[str, LabelledExample]], window: tuple[int, int], seed: int
) -> list[tuple[str, LabelledExample]]:
    """Positions window[0] to window[1] of the examples in an order set by (seed, question id): a smaller
    sample is part of a larger one (learning curves), successive windows are disjoint (training stages), a
    file's sample does not depend on the other files, and parallel files (the same ids in several
    languages) keep the same questions, so their cross-lingual pairs survive sampling."""

    def key(item: tuple[str, LabelledExample]) -> bytes:
        return hashlib.sha256(f"{seed}:{item[0]}".encode()).digest()

    return sorted(examples, key=key)[window[0] : window[1]]


def gather_examples(spec: MixSpec) -> tuple[list[LabelledExample], dict[str, int]]:
    """The run's examples in file order (batching shuffles them), and how many came from each file."""
    rng = random.Random(spec.seed)
    per_file: dict[str, list[tuple[str, LabelledExample]]] = {}
    for path in spec.files:
        examples = load_labelled(path)
        window = _sample_size(spec.samples, path)
        if window is not None and (window[0] > 0 or window[1] < len(examples)):
            examples = _sample(examples, window, spec.seed)
        per_file[path] = examples
    examples = [ex for exs in per_file.values() for _, ex in exs]
    counts = {Path(p).name: len(v) for p, v in per_file.items()}
    if spec.cross_lingual:
        pairs = cross_lingual_pairs(per_file, spec.cross_lingual_per_example, rng)
        if spec.cross_lingual_max is not None and len(pairs) > spec.cross_lingual_max:
            pairs = rng.sample(pairs, spec.cross_lingual_max)
        examples += pairs
        counts["cross-lingual pairs"] = len(pairs)
    return examples, counts


def label_chunk(chunk: Chunk, answer_start: int, answer_end: int) -> tuple[int, int]:
    """Token positions of [answer_start, answer_end) in the chunk, or (0, 0) when it is not wholly inside."""
    ctx = np.flatnonzero(chunk.context)
    if len(ctx) == 0:
        return 0, 0
    starts, ends = chunk.offsets[ctx, 0], chunk.offsets[ctx, 1]
    if starts[0] > answer_start or ends[-1] < answer_end:
        return 0, 0
    s = int(ctx[np.flatnonzero(ends > answer_start)[0]])
    e = int(ctx[np.flatnonzero(starts < answer_end)[-1]])
    return (s, e) if e >= s else (0, 0)


# -- the feature cache ------------------------------------------------------------------------------------
class FeatureStore:
    """Tokenised training chunks as flat memory-mapped arrays: tokens (int32), token types (int8, when
    the tokenizer makes them), bounds ([n+1] offsets into tokens) and labels ([n, 2] start, end)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        meta = json.loads((self.folder / "meta.json").read_text())
        self.meta = meta
        self.bounds = np.load(self.folder / "bounds.npy")
        self.labels = np.load(self.folder / "labels.npy")
        self.tokens = np.load(self.folder / "tokens.npy", mmap_mode="r")
        types = self.folder / "types.npy"
        self.types = np.load(types, mmap_mode="r") if types.is_file() else None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.bounds)

    def __getitem__(self, i: int) -> TrainFeature:
        a, b = int(self.bounds[i]), int(self.bounds[i + 1])
        types = None if self.types is None else np.asarray(self.types[a:b], dtype=np.int64)
        return TrainFeature(
            np.asarray(self.tokens[a:b], dtype=np.int64),
            types,
            int(self.labels[i, 0]),
            int(self.labels[i, 1]),
        )


def feature_key(
    spec: MixSpec, tokenizer: object, max_length: int, stride: int, max_question_tokens: int
) -> str:
    """What the cached features depend on: the data (file contents), the mix, the tokenizer, the chunking."""
    digest = hashlib.sha256()
    for path in spec.files:
        with Path(path).open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    vocab = getattr(tokenizer, "vocab_size", None), len(tokenizer), type(tokenizer).__name__
    digest.update(
        json.dumps(
            [
                FEATURE_FORMAT,
                [Path(p).name for p in spec.files],
                list(spec.samples),
                spec.cross_lingual,
                spec.cross_lingual_per_example,
                spec.cross_lingual_max,
                spec.seed,
                vocab,
                max_length,
                stride,
                max_question_tokens,
            ]
        ).encode()
    )
    return digest.hexdigest()


def build_feature_store(
    tokenizer: object,
    spec: MixSpec,
    folder: Path,
    *,
    max_length: int,
    stride: int,
    max_question_tokens: int,
    progress: bool = True,
    block: int = 256,
) -> tuple[FeatureStore, dict[str, int]]:
    """The run's features in `folder`, tokenised now or reused when the key matches. Written in blocks of
    `block` examples (memory stays flat) into a staged folder, so an interruption leaves no half cache."""
    from tqdm import tqdm

    folder = Path(folder)
    key = feature_key(spec, tokenizer, max_length, stride, max_question_tokens)
    meta_file = folder / "meta.json"
    if meta_file.is_file() and json.loads(meta_file.read_text()).get("key") == key:
        store = FeatureStore(folder)
        return store, store.meta["examples"]
    examples, counts = gather_examples(spec)
    with staged_folder(folder) as tmp:
        token_file = (tmp / "tokens.bin").open("wb")
        type_file = None
        bounds, labels, total = [0], [], 0
        with tqdm(
            total=len(examples), desc="tokenising", unit="ex", disable=not progress, file=sys.stderr
        ) as bar:
            for first in range(0, len(examples), block):
                part = examples[first : first + block]
                chunks = encode(
                    tokenizer,
                    [e.question for e in part],
                    [[Passage(e.context)] for e in part],
                    max_length=max_length,
                    stride=stride,
                    max_question_tokens=max_question_tokens,
                )
                for chunk in chunks:
                    ex = part[chunk.request]
                    labels.append(label_chunk(chunk, ex.answer_start, ex.answer_start + len(ex.answer_text)))
                    token_file.write(chunk.input_ids.astype(np.int32).tobytes())
                    if chunk.token_type_ids is not None:
                        if type_file is None:
                            type_file = (tmp / "types.bin").open("wb")
                        type_file.write(chunk.token_type_ids.astype(np.int8).tobytes())
                    total += len(chunk)
                    bounds.append(total)
                bar.update(len(part))
        token_file.close()
        _to_npy(tmp / "tokens.bin", tmp / "tokens.npy", np.int32)
        if type_file is not None:
            type_file.close()
            _to_npy(tmp / "types.bin", tmp / "types.npy", np.int8)
        np.save(tmp / "bounds.npy", np.asarray(bounds, dtype=np.int64))
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.int32).reshape(-1, 2))
        (tmp / "meta.json").write_text(json.dumps({"key": key, "examples": counts, "features": len(labels)}))
    return FeatureStore(folder), counts


def _to_npy(raw: Path, out: Path, dtype: type) -> None:
    """A raw little-endian dump as a .npy file that np.load can memory-map, copied in 64 MB pieces."""
    n = raw.stat().st_size // np.dtype(dtype).itemsize
    target = np.lib.format.open_memmap(out, mode="w+", dtype=dtype, shape=(n,))
    source = np.memmap(raw, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype=dtype)
    step = 1 << 24
    for i in range(0, n, step):
        target[i : i + step] = source[i : i + step]
    target.flush()
    del target, source
    raw.unlink()


def batch_order(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar lengths (sorted within pools of 50 batches): little padding, which
    is most of the cost on a CPU, while batches still mix the data."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for first in range(0, len(order), pool):
        chunk = sorted(order[first : first + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches
