"""`kate bench index`: Kate over tens of thousands of pages, through the action server's own index.

Pages: paragraphs of the QA training sets (SQuAD, JaQuAD, PIAF, iApp, DRCD, CMRC, ARCD, XQuAD), each cut in
two at the sentence nearest its middle (a page of about 60 words, an intranet section's size; 36,000
paragraphs give 72,000 pages), shuffled with a fixed seed so every size mixes languages. They are written
into Redis as the fetcher writes them (registry entry, cached page) under a private prefix; fetching is
measured elsewhere (`kate bench scale`): here the question is what an action server does once pages are
cached.

For each size: the passage vectors (encoded once and kept on disk between runs, so a rerun does not
spend 20 minutes re-encoding; the encoding speed is measured on a fixed sample every run), the start-up
of an action server's index over every cached page (vectors read from Redis), its memory, one edited
page caught up, and questions of the training sets whose answer is on a page of the set, asked through
the action server's question path (`KnowledgeAnswerer.answer`): time and F1 of the best span, in bf16
(CPUs with AVX512-BF16 or AMX) and in fp32 (what a CPU without them runs).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.settings import Settings
from knowledge.cache import CachedPage, PageCache, VectorCache
from knowledge.library import Knowledge
from knowledge.live_index import LiveIndex
from knowledge.sources import SourceRegistry
from qa_engine import Passage, Reader
from qa_engine.budget import TokenCounter, token_cut
from qa_engine.calibration import for_model
from qa_engine.evaluate import best_over_gold, f1_score, language_of_file, squad_questions
from qa_engine.ranker import FirstReading, Ranker, Ranking, passage_key, read_first, select, sure_cut

from .bench import cpu_flags, machine_description, write_section

SECTION = "index"
MARGINS = (0.0, 0.1, 0.05, 0.03, 0.02)  # read-less cuts studied (0: read the best rank_top)
SURE = (0.5, 0.4, 0.3)  # first readings studied (KATE_READ_SURE), at KATE_RANK_MARGIN
TOKENS = (480, 640, 800)  # bounds on each reading studied (KATE_READ_TOKENS), with the default first reading


class Answerer(Protocol):
    """The action server's question path (actions.answering.KnowledgeAnswerer; given by the caller, since
    measurements do not import the action server)."""

    async def answer(self, question: str) -> Any: ...

    def close(self) -> None: ...


ENCODE_SAMPLE = 500  # passages encoded afresh every run to measure the encoding speed


@dataclass
class Page:
    passage: Passage
    language: str


@dataclass
class Asked:
    question: str
    answers: list[str]
    page: int  # index of the page that holds the answer
    language: str


def split_paragraph(text: str) -> tuple[str, str]:
    """Two halves, cut after the sentence end nearest the middle (no cut: the second half is empty)."""
    middle = len(text) // 2
    ends = [i + 1 for i, c in enumerate(text) if c in ".!?。！？" and 0 < i < len(text) - 1]
    if not ends:
        return text, ""
    cut = min(ends, key=lambda i: abs(i - middle))
    return text[:cut].strip(), text[cut:].strip()


def page_pool(train_dir: Path, seed: int = 0) -> tuple[list[Page], list[Asked]]:
    """Every training paragraph's halves as pages (shuffled), and every question with its page."""
    pages: list[Page] = []
    asked: list[Asked] = []
    for path in sorted(train_dir.glob("*.json")):
        language = language_of_file(path) or "en"
        seen: dict[str, tuple[int, int]] = {}
        for title, context, qa, answers in squad_questions(path):
            if context not in seen:
                first, second = split_paragraph(context)
                seen[context] = (len(pages), len(first) + 1)
                for half in (first, second):
                    if half:
                        pages.append(Page(Passage(half, title=title, language=language), language))
            start, cut = seen[context]
            where = answers[0].get("answer_start", 0)
            page = start if where < cut or pages[start].passage.text == context.strip() else start + 1
            asked.append(Asked(qa["question"], [a["text"] for a in answers], page, language))
    order = list(range(len(pages)))
    random.Random(seed).shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    shuffled = [pages[i] for i in order]
    for i, page in enumerate(shuffled):
        url = f"https://intranet.example/p/{i}"
        page.passage = Passage(
            page.passage.text, url=url, title=page.passage.title, id="0", language=page.language
        )
    for a in asked:
        a.page = position[a.page]
    return shuffled, asked


def memory_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def traced_mb(build: Callable[[], object]) -> float:
    """The memory what `build()` makes still holds once built (Python objects and numpy arrays, as
    tracemalloc sees them), in MB. Resident memory growth also counts the allocator's reuse of freed
    memory and the model's buffers, so it jumps between runs of the same load (27 to 126 MB at 10,000
    pages); this does not."""
    tracemalloc.start()
    try:
        held = build()
        size = tracemalloc.get_traced_memory()[0]
        del held
    finally:
        tracemalloc.stop()
    return size / 2**20


def index_vectors(ranker: Ranker) -> Callable[[list[Passage]], np.ndarray]:
    """How the action server's index gets its vectors: the index keeps them, the ranker does not."""
    return lambda passages: ranker.passage_vectors(passages, remember=False)


def index_held_mb(knowledge: Knowledge, ranker: Ranker) -> float:
    """What an action server's index over these pages holds, traced on a second load."""
    dim = ranker.model.config.hidden_size
    return traced_mb(lambda: LiveIndex(knowledge, index_vectors(ranker), dim).load())


@dataclass
class CutRow:
    margin: float
    sure: float = 0.0  # the best passages read first, the rest when their answer is below this confidence
    tokens: int = 0  # at most this many passage tokens read (0: no bound)
    f1: list[float] = field(default_factory=list)
    read: list[int] = field(default_factory=list)  # passages read
    seconds: list[float] = field(default_factory=list)  # reading them


def read_less_study(
    live: LiveIndex, reader: Reader, ranker: Ranker, chosen: Sequence[Asked], settings: Settings
) -> list[CutRow]:
    """F1 and reading time when only the passages within a margin of the best cosine are read, and when
    the best ones are read first (the rest only when their answer is not sure). The shortlist and the
    re-scoring are the action server's (index search, `select`); each cut's passages are read for real,
    so the time is measured, not estimated."""
    snapshot = live.snapshot
    assert snapshot is not None
    calibration = for_model(settings.qa_model)
    rows = [CutRow(m) for m in MARGINS] + [CutRow(settings.rank_margin, sure) for sure in SURE]
    rows += [CutRow(settings.rank_margin, settings.read_sure, tokens) for tokens in TOKENS]
    sures = {*SURE, settings.read_sure}
    firsts = {sure: FirstReading(settings.read_first, calibration.score_at(sure)) for sure in sures}
    count = TokenCounter(ranker.tokenizer)
    for item in chosen:
        asked = ranker.query_vectors([item.question])[0]
        found = snapshot.index.search(asked, item.question, top=settings.rank_top)
        relevance = {passage_key(p): float(c) for p, c in zip(found.passages, found.cosines, strict=True)}
        ranking = Ranking(found.passages, relevance)
        for row in rows:
            cut = sure_cut(ranking, row.margin)
            t0 = time.perf_counter()
            if row.tokens > 0:  # counting is part of the bound's cost
                cut = token_cut(cut, row.tokens, count(cut.passages))
            if row.sure > 0:
                first = firsts[row.sure]
                reading = read_first(reader, item.question, cut, first, top_k=10, weight=settings.rank_weight)
                spans, read = reading.found, reading.read
            else:
                spans, read = reader.answer(item.question, cut.passages, top_k=10), len(cut.passages)
            row.seconds.append(time.perf_counter() - t0)
            best = select(spans, cut, top_k=1, weight=settings.rank_weight)
            text = best[0].text if best else ""
            row.f1.append(100.0 * best_over_gold(f1_score, text, item.answers, item.language))
            row.read.append(read)
    return rows


@dataclass
class SizeRow:
    pages: int
    passages: int
    write_s: float  # registry entries and cached pages into Redis
    load_s: float  # an action server's index start-up over every cached page
    memory_mb: float  # resident memory the index added
    update_s: float  # one edited page caught up (re-encoded, index rebuilt)
    held_mb: float = 0.0  # memory a second load of the index holds, traced (vectors kept by the ranker too)
    times: dict[str, list[float]] = field(default_factory=dict)  # precision -> seconds per question
    f1: dict[str, list[float]] = field(default_factory=dict)
    languages: list[str] = field(default_factory=list)


def vectors_for(ranker: Ranker, pages: Sequence[Page], cache_dir: Path) -> np.ndarray:
    """Every page's vector, from the disk cache of an earlier run when the texts and model match."""
    digest = hashlib.sha256(ranker.model_id.encode())
    for page in pages:
        digest.update(page.passage.title.encode() + b"\n" + page.passage.text.encode() + b"\0")
    path = cache_dir / f"bench-index-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    print(
        f"bench index: encoding {len(pages):,} passages (once; kept in {path})", file=sys.stderr, flush=True
    )
    out = []
    step = 2048
    t0 = time.perf_counter()
    for i in range(0, len(pages), step):
        out.append(
            ranker._encode([f"passage: {p.passage.title}\n{p.passage.text}" for p in pages[i : i + step]])
        )
        done = min(i + step, len(pages))
        rate = done / (time.perf_counter() - t0)
        print(f"bench index: {done:,}/{len(pages):,} encoded, {rate:.0f}/s", file=sys.stderr, flush=True)
    vectors = np.concatenate(out).astype(np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def encode_speed(ranker: Ranker, pages: Sequence[Page]) -> float:
    texts = [f"passage: {p.passage.title}\n{p.passage.text}" for p in pages[:ENCODE_SAMPLE]]
    t0 = time.perf_counter()
    ranker._encode(texts)
    return len(texts) / (time.perf_counter() - t0)


def write_pages(
    client: object, prefix: str, pages: Sequence[Page], vectors: np.ndarray, ranker: Ranker
) -> float:
    """Sources, cached pages and their vectors, as fetching and encoding would leave them in Redis."""
    registry = SourceRegistry(client, prefix)  # type: ignore[arg-type]
    cache = PageCache(client, prefix)  # type: ignore[arg-type]
    store = VectorCache(client, prefix)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    now = time.time()
    for page, vector in zip(pages, vectors, strict=True):
        p = page.passage
        registry.add(p.url, language=page.language)
        cache.put(CachedPage(p.url, p.url, p.title, page.language, [p], now))
        store.put_many({ranker._key(p): vector.astype(np.float16).tobytes()})
    return time.perf_counter() - t0


def ask(answerer: Answerer, item: Asked) -> tuple[float, float]:
    t0 = time.perf_counter()
    outcome = asyncio.run(answerer.answer(item.question))
    seconds = time.perf_counter() - t0
    text = outcome.top.text if outcome.top is not None else ""
    return seconds, 100.0 * best_over_gold(f1_score, text, item.answers, item.language)


def bench_index(
    settings: Settings,
    client: object,
    reader: Reader,
    ranker: Ranker,
    train_dir: Path,
    answerer_for: Callable[[Knowledge, LiveIndex], Answerer],
    *,
    output: Path,
    sizes: Sequence[int] = (1_000, 10_000, 50_000),
    questions: int = 30,
    study: int = 60,
    cache_dir: Path | None = None,
    command: str = "kate bench index",
) -> dict:
    pages, asked = page_pool(train_dir)
    if max(sizes) > len(pages):
        raise ValueError(f"{max(sizes):,} pages asked for, the training sets give {len(pages):,}")
    cache_dir = cache_dir or settings.models_dir.parent / "bench"
    speed = encode_speed(ranker, pages)
    vectors = vectors_for(ranker, pages[: max(sizes)], cache_dir)
    prefix = f"{settings.redis_prefix}bench-index-{int(time.time())}:"
    # where Kate reads in bf16, fp32 too (what a CPU without bf16 instructions runs); elsewhere fp32 is
    # all Kate runs, measured once
    precisions = {"fp32": (None, None)}
    if reader.autocast_dtype is not None:
        precisions = {"bf16": (reader.autocast_dtype, ranker.autocast_dtype), **precisions}
    rows: list[SizeRow] = []
    cuts: list[CutRow] = []
    written = 0
    rng = random.Random(1)
    try:
        for n in sorted(sizes):
            write_s = write_pages(client, prefix, pages[written:n], vectors[written:n], ranker)
            written = n
            registry = SourceRegistry(client, prefix)  # type: ignore[arg-type]
            knowledge = Knowledge(registry, PageCache(client, prefix, ttl=settings.cache_ttl))  # type: ignore[arg-type]
            ranker.store = VectorCache(client, prefix)  # type: ignore[arg-type]
            ranker.forget()
            before = memory_mb()
            live = LiveIndex(knowledge, index_vectors(ranker), ranker.model.config.hidden_size)
            snapshot = live.load()
            row = SizeRow(n, len(snapshot), write_s, live.loaded_s, memory_mb() - before, 0.0)
            row.held_mb = index_held_mb(knowledge, ranker)
            edited = pages[rng.randrange(n)].passage
            changed = Passage(edited.text + " Updated by HR.", url=edited.url, title=edited.title, id="0")
            knowledge.cache.put(
                CachedPage(edited.url, edited.url, edited.title, "en", [changed], time.time())
            )
            t0 = time.perf_counter()
            live.catch_up()
            row.update_s = time.perf_counter() - t0
            answerer = answerer_for(knowledge, live)
            chosen = [a for a in asked if a.page < n and a.page != int(edited.url.rsplit("/", 1)[1])]
            chosen = random.Random(n).sample(chosen, min(questions, len(chosen)))
            ask(answerer, chosen[0])  # warm-up: first forward passes allocate
            for name, (reader_dtype, ranker_dtype) in precisions.items():
                reader.autocast_dtype, ranker.autocast_dtype = reader_dtype, ranker_dtype
                row.times[name], row.f1[name] = [], []
                for item in chosen:
                    seconds, f1 = ask(answerer, item)
                    row.times[name].append(seconds)
                    row.f1[name].append(f1)
            reader.autocast_dtype, ranker.autocast_dtype = next(iter(precisions.values()))
            row.languages = [a.language for a in chosen]
            answerer.close()
            if n == max(sizes) and study > 0:
                pool = [a for a in asked if a.page < n and a not in chosen]
                cuts = read_less_study(live, reader, ranker, random.Random(7).sample(pool, study), settings)
            rows.append(row)
            print(
                f"bench index: {n:,} pages: start-up {row.load_s:.1f} s, p95 "
                + ", ".join(f"{k} {np.percentile(v, 95):.2f} s" for k, v in row.times.items()),
                file=sys.stderr,
                flush=True,
            )
    finally:
        for key in client.scan_iter(f"{prefix}*", count=5000):  # type: ignore[attr-defined]
            client.delete(key)  # type: ignore[attr-defined]
    text = render(rows, cuts, speed, reader, ranker, settings, command)
    write_section(output, text, SECTION)
    return {
        str(r.pages): {k: float(np.percentile(v, 95)) for k, v in r.times.items()} | {"load_s": r.load_s}
        for r in rows
    }


def render(
    rows: list[SizeRow],
    cuts: list[CutRow],
    speed: float,
    reader: Reader,
    ranker: Ranker,
    settings: Settings,
    command: str,
) -> str:
    per_10k = rows[-1].held_mb / rows[-1].pages * 10_000
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## Tens of thousands of pages: the action server's index",
        "",
        f"Command: `{command}`  ",
        f"Reader `{reader.config.model}`, ranker `{ranker.config.model}` "
        f"(reads the best {settings.rank_top}, `KATE_RANK_MARGIN={settings.rank_margin:g}`); "
        f"device: {machine_description(reader)}; CPU flags: {cpu_flags()}.",
        "",
        "Pages: QA training paragraphs cut in two at a sentence (about 60 words each), shuffled, in every "
        "language of the training sets, written into Redis as fetching leaves them. Questions: training "
        "questions whose answer is on a page of the set, asked through the action server's question path "
        "(change check, audience mask, hybrid search of the index, ranking, reading, answer selection). "
        + (
            "*fp32* is what a CPU without bf16 instructions runs (measured here by turning bf16 off, on "
            "the same cores: an AVX2-only CPU is slower still per core)."
            if "bf16" in rows[0].times
            else "This CPU has no bf16 instructions: Kate reads in fp32 here, the one precision measured."
        ),
        "",
        "| pages | passages | answer p50 | **p95** | "
        + ("p95 fp32 | F1 | F1 fp32 | " if "bf16" in rows[0].times else "F1 | ")
        + "questions | index start-up | memory held | resident growth | one edited page | write into Redis |",
        "|---:|---:|---:|---:|"
        + ("---:|" * 3 if "bf16" in rows[0].times else "---:|")
        + "---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        main = next(iter(r.times))  # bf16 where Kate reads in it, else fp32
        fp32 = f"| {np.percentile(r.times['fp32'], 95):.2f} s " if main != "fp32" else ""
        f1 = f"| {statistics.fmean(r.f1[main]):.1f} " + (
            f"| {statistics.fmean(r.f1['fp32']):.1f} " if main != "fp32" else ""
        )
        lines.append(
            f"| {r.pages:,} | {r.passages:,} | {np.percentile(r.times[main], 50):.2f} s "
            f"| **{np.percentile(r.times[main], 95):.2f} s** {fp32}{f1}"
            f"| {len(r.times[main])} "
            f"| {r.load_s:.1f} s | {r.held_mb:.0f} MB | {r.memory_mb:.0f} MB | {r.update_s:.2f} s "
            f"| {r.write_s:.0f} s |"
        )
    big = rows[-1]
    lines += [
        "",
        f"Encoding passages (the ranker, {ranker_engine(ranker)}): **{speed:.0f} passages/s**, so a mass "
        f"import costs about {10_000 / speed / 60:.0f} minutes of one action server's model thread per "
        "10,000 new pages (in the background, a piece at a time: questions go on meanwhile); a restart "
        "costs only the start-up above, the vectors being in Redis. Memory of the index: about "
        f"{per_10k:.0f} MB per 10,000 pages at the largest size (*memory held*: what a second load of the "
        "index holds, traced by tracemalloc: the vector matrix, the vectors the ranker keeps, BM25 "
        "postings, the passages' text and the page records; *resident growth*: what the first load added "
        "to the process, which also counts freed memory the allocator kept). "
        f"At {big.pages:,} pages the questions' languages were: "
        + ", ".join(f"{lang} {n}" for lang, n in sorted(_count(big.languages).items()))
        + ".",
        "",
    ]
    if cuts:
        lines += [
            f"### Reading less when the ranking is sure ({big.pages:,} pages, "
            f"{len(cuts[0].f1)} other questions)",
            "",
            "Of the best passages the index ranks, only those whose cosine is within the margin of the best "
            "one are read (`KATE_RANK_MARGIN`; at least 2). *First*: of those, the best "
            f"{settings.read_first} are read first, and the others only when the best answer they give has "
            "a calibrated confidence under the one named (`KATE_READ_FIRST`, `KATE_READ_SURE`). *Tokens*: "
            "the best-ranked passages are kept until their tokens reach the bound (`KATE_READ_TOKENS`; the "
            "best 2 always). Same shortlist, same re-scoring; each cut read for real, in "
            f"{reader.precision}.",
            "",
            "| margin | first | tokens | passages read (mean) | reading time p50 | p95 | F1 |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for c in cuts:
            label = f"none (best {settings.rank_top})" if c.margin <= 0 else f"{c.margin:g}"
            first = f"best {settings.read_first}, sure at {c.sure:g}" if c.sure > 0 else "-"
            tokens = f"{c.tokens}" if c.tokens > 0 else "-"
            p50, p95 = np.percentile(c.seconds, [50, 95])
            lines.append(
                f"| {label} | {first} | {tokens} | {statistics.fmean(c.read):.1f} | {p50:.2f} s "
                f"| {p95:.2f} s | {statistics.fmean(c.f1):.1f} |"
            )
        lines.append("")
    lines += [
        f"<!-- /bench:{SECTION} -->",
    ]
    return "\n".join(lines)


def ranker_engine(ranker: Ranker) -> str:
    if ranker.engine == "onnx":
        return "ONNX Runtime, fp32"
    return "torch, " + ("bf16" if ranker.autocast_dtype is not None else "fp32")


def _count(items: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out
