"""`kate bench scale`: Kate with hundreds of pages. Three measurements, one run, one report section:

1. **Ranker recall@K**: for every question of every QA dev file, is its gold paragraph among the K
   passages the ranker puts first, when the file's paragraphs are the page collection?
2. **F1 against K**: the reader reads only the ranker's best K paragraphs (K = all: no ranker), on the
   XQuAD files (40 paragraphs each): F1 and time per question, side by side for every K.
3. **Answer latency against the number of pages**: 1 to 500 pages (QA dev paragraphs written as HTML
   files, served on 127.0.0.1 by the demo intranet's server, fetched, parsed and cached in Kate's Redis
   under a private prefix), the product path of an employee question (sources and pages from Redis,
   rank, read), with and without the ranker, plus the cold case: empty caches, the product's fetch
   budget, every passage vector still to compute.
"""

from __future__ import annotations

import html
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.settings import Settings
from knowledge.cache import PageCache, VectorCache
from knowledge.demo_server import serve_demo_site
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry
from qa_engine import Passage, Reader
from qa_engine.evaluate import best_over_gold, f1_score, language_of_file, squad_questions
from qa_engine.ranker import Ranker, rank_and_read

from .bench import machine_description, write_section
from .bench_ask import time_question

SECTION = "scale"
RECALL_KS = (1, 3, 5, 10)
TRADEOFF_KS = (1, 3, 5, 10)


@dataclass
class DevFile:
    name: str
    language: str
    paragraphs: list[Passage]
    questions: list[tuple[str, int, list[str]]]  # question, gold paragraph index, gold answers


def load_dev(path: Path) -> DevFile:
    paragraphs: dict[str, int] = {}
    passages: list[Passage] = []
    questions = []
    for title, context, qa, answers in squad_questions(path):
        if context not in paragraphs:
            paragraphs[context] = len(passages)
            passages.append(Passage(context, title=title, id=str(len(passages)), url=f"#{len(passages)}"))
        questions.append((qa["question"], paragraphs[context], [a["text"] for a in answers]))
    return DevFile(path.name.removesuffix(".dev.json"), language_of_file(path) or "en", passages, questions)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


# -- 1. recall@K -----------------------------------------------------------------------------------------
def recall_at_k(ranker: Ranker, dev: DevFile, ks: Sequence[int] = RECALL_KS) -> dict[int, float]:
    vectors = ranker.passage_vectors(dev.paragraphs)
    queries = ranker.query_vectors([q for q, _, _ in dev.questions])
    sims = queries @ vectors.T
    gold = np.array([g for _, g, _ in dev.questions])
    gold_sim = sims[np.arange(len(gold)), gold]
    position = (sims > gold_sim[:, None]).sum(axis=1)  # passages ranked above the gold one
    return {k: 100.0 * float((position < k).mean()) for k in ks}


# -- 2. F1 and time against K ----------------------------------------------------------------------------
@dataclass
class TradeoffPoint:
    k: str
    f1: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # the dev file's language of each F1

    def f1_of(self, language: str) -> float:
        """Mean F1 of one language's questions: the mean over languages hides that the small reader is
        strong in some (en, zh) and weak in others (ru)."""
        return statistics.fmean(
            f for f, lang in zip(self.f1, self.languages, strict=True) if lang == language
        )


def f1_against_k(
    reader: Reader, ranker: Ranker, devs: Sequence[DevFile], per_file: int, weight: float
) -> list[TradeoffPoint]:
    points = {str(k): TradeoffPoint(str(k)) for k in TRADEOFF_KS} | {"all": TradeoffPoint("all")}
    for dev in devs:
        ranker.passage_vectors(dev.paragraphs)  # page vectors are cached in production: not timed
        step = max(1, len(dev.questions) // per_file)
        for question, _, golds in dev.questions[::step][:per_file]:
            for k in [*TRADEOFF_KS, "all"]:  # every K on the same question, one after the other
                t0 = time.perf_counter()
                found = rank_and_read(
                    reader,
                    None if k == "all" else ranker,
                    question,
                    dev.paragraphs,
                    top_k=1,
                    read_top=len(dev.paragraphs) if k == "all" else int(k),
                    weight=weight,
                )
                point = points[str(k)]
                point.seconds.append(time.perf_counter() - t0)
                prediction = found[0].text if found else ""
                point.f1.append(100.0 * best_over_gold(f1_score, prediction, golds, dev.language))
                point.languages.append(dev.language)
        print(f"bench scale: F1 against K, {dev.name} done", file=sys.stderr, flush=True)
    return list(points.values())


# -- 3. latency against the number of pages --------------------------------------------------------------
def page_html(passage: Passage, language: str) -> bytes:
    title = html.escape(f"{passage.title} ({passage.id})")
    body = html.escape(passage.text)
    return (
        f"<!doctype html><html lang='{language}'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><main><h1>{title}</h1><p>{body}</p></main></body></html>"
    ).encode()


@dataclass
class ScaleRow:
    pages: int
    passages: int
    cold_s: float  # first question, empty caches, product fetch budget
    cold_pages: int  # pages the cold question could read (fetched within the budget)
    refresh_s: float  # fetching and parsing every page (the cache warm-up)
    index_s: float  # encoding every passage vector (the ranker's warm-up)
    ranked: list[float]
    alone: list[float]


def latency_by_pages(
    settings: Settings,
    client: object,
    reader: Reader,
    ranker: Ranker,
    devs: Sequence[DevFile],
    sizes: Sequence[int],
    questions: int,
    alone_budget_s: float,
) -> list[ScaleRow]:
    pool = [(p, d.language) for d in devs for p in d.paragraphs]
    asked = [(q, base + g) for d, base in _offsets(devs) for q, g, _ in d.questions]
    if max(sizes) > len(pool):
        raise ValueError(f"{max(sizes)} pages asked for, the dev files hold {len(pool)} paragraphs")
    folder = tempfile.TemporaryDirectory(prefix="kate-bench-pages-")
    (Path(folder.name) / "p").mkdir()
    for i, (passage, language) in enumerate(pool[: max(sizes)]):
        (Path(folder.name) / "p" / f"{i}.html").write_bytes(page_html(passage, language))
    server, _ = serve_demo_site(0, root=Path(folder.name))  # the demo intranet's server, ETags included
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    limits = FetchLimits(timeout=settings.fetch_timeout, total_timeout=2 * settings.fetch_timeout, workers=8)
    rows = []
    try:
        for n in sizes:
            prefix = f"{settings.redis_prefix}bench-scale-{int(time.time())}-{n}:"
            registry = SourceRegistry(client, prefix)  # type: ignore[arg-type]
            for i in range(n):
                registry.add(f"{base_url}/p/{i}.html")
            ranker.store = VectorCache(client, prefix)  # type: ignore[arg-type]
            ranker.forget()
            kn = Knowledge(registry, PageCache(client, prefix, ttl=settings.cache_ttl), limits)
            try:
                in_set = [q for q, page in asked if page < n] or [asked[0][0]]
                cold = time_question(kn, reader, ranker, in_set[0], settings)
                t0 = time.perf_counter()
                kn.refresh()
                refresh_s = time.perf_counter() - t0
                reading = kn.passages_for_answering(settings.fetch_budget)
                t0 = time.perf_counter()
                ranker.passage_vectors(reading.passages)
                index_s = time.perf_counter() - t0
                ranked, alone = [], []
                spent_alone = 0.0
                for j in range(questions):
                    q = in_set[(j * 7) % len(in_set)]
                    ranked.append(time_question(kn, reader, ranker, q, settings).total_s)
                    if spent_alone < alone_budget_s or len(alone) < 2:  # the reader alone: bounded time
                        alone.append(time_question(kn, reader, None, q, settings).total_s)
                        spent_alone += alone[-1]
                rows.append(
                    ScaleRow(
                        n,
                        len(reading.passages),
                        cold.total_s,
                        cold.n_passages,
                        refresh_s,
                        index_s,
                        ranked,
                        alone,
                    )
                )
                print(
                    f"bench scale: {n} pages: p95 {percentile(ranked, 95):.2f} s with the ranker, "
                    f"{percentile(alone, 95):.2f} s without",
                    file=sys.stderr,
                    flush=True,
                )
            finally:
                kn.close()
                for key in client.scan_iter(f"{prefix}*"):  # type: ignore[attr-defined]
                    client.delete(key)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        folder.cleanup()
    return rows


def _offsets(devs: Sequence[DevFile]) -> list[tuple[DevFile, int]]:
    out, base = [], 0
    for d in devs:
        out.append((d, base))
        base += len(d.paragraphs)
    return out


# -- the report ------------------------------------------------------------------------------------------
def bench_scale(
    settings: Settings,
    client: object,
    reader: Reader,
    ranker: Ranker,
    data_dir: Path,
    *,
    output: Path,
    sizes: Sequence[int] = (1, 10, 100, 500),
    questions: int = 20,
    per_file: int = 10,
    alone_budget_s: float = 60.0,
    tradeoff_languages: Sequence[str] = ("en", "de", "ru", "zh"),
    command: str = "kate bench scale",
) -> dict:
    files = sorted(data_dir.glob("*.json"))
    if not files:
        raise ValueError(f"no QA dev files in {data_dir}")
    devs = [load_dev(f) for f in files]
    recall = {d.name: (len(d.paragraphs), len(d.questions), recall_at_k(ranker, d)) for d in devs}
    print("bench scale: recall@K done", file=sys.stderr, flush=True)
    xquad = [d for d in devs if d.name.startswith("xquad") and d.language in tradeoff_languages] or devs
    tradeoff = f1_against_k(reader, ranker, xquad, per_file, settings.rank_weight)
    # Pages: XQuAD first (40 paragraphs per language), then the rest, so 500 pages mix 12+ languages.
    ordered = sorted(devs, key=lambda d: (not d.name.startswith("xquad"), d.name))
    rows = latency_by_pages(settings, client, reader, ranker, ordered, sizes, questions, alone_budget_s)
    text = render(recall, tradeoff, rows, reader, ranker, settings, command, per_file, len(xquad))
    write_section(output, text, SECTION)
    return {
        "recall": {k: v[2] for k, v in recall.items()},
        "tradeoff": {p.k: (statistics.fmean(p.f1), statistics.median(p.seconds)) for p in tradeoff},
        "latency": {r.pages: (percentile(r.ranked, 50), percentile(r.ranked, 95)) for r in rows},
    }


def render(
    recall: dict,
    tradeoff: list[TradeoffPoint],
    rows: list[ScaleRow],
    reader: Reader,
    ranker: Ranker,
    settings: Settings,
    command: str,
    per_file: int,
    n_files: int,
) -> str:
    ks = RECALL_KS
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## Hundreds of pages: ranker recall, F1 against K, latency against pages",
        "",
        f"Command: `{command}`  ",
        f"Reader `{reader.config.model}`, ranker `{ranker.config.model}`; "
        f"device: {machine_description(reader)}.",
        "",
        "### Ranker recall@K of the gold paragraph (each dev file's paragraphs are the page collection)",
        "",
        "| dev file | paragraphs | questions | " + " | ".join(f"R@{k}" for k in ks) + " |",
        "|---|---:|---:|" + "---:|" * len(ks),
    ]
    for name, (n_par, n_q, r) in recall.items():
        lines.append(f"| {name} | {n_par} | {n_q} | " + " | ".join(f"{r[k]:.1f}" for k in ks) + " |")
    means = {k: statistics.fmean(v[2][k] for v in recall.values()) for k in ks}
    lines.append("| **mean** | | | " + " | ".join(f"**{means[k]:.1f}**" for k in ks) + " |")
    n_tr = len(tradeoff[0].f1)
    languages = list(dict.fromkeys(tradeoff[0].languages))
    lines += [
        "",
        f"### F1 and time per question against K (XQuAD, 40 paragraphs per file, {n_files} languages, "
        f"{per_file} questions each, {n_tr} in all)",
        "",
        "The reader reads the ranker's best K paragraphs; *all* is the reader alone on all 40. Every K runs "
        "on the same question one after the other. Passage vectors are computed beforehand (they are "
        "cached in production), so the time is the question's encoding, ranking and reading. F1 per "
        "language beside the mean: the mean mixes languages the reader reads well and badly, and F1 hardly "
        "moves with K because the ranker's first paragraph is already the gold one for nearly every "
        "question (recall@1 above).",
        "",
        "| K | F1 | " + " | ".join(f"F1 {lang}" for lang in languages) + " | time p50 | time p95 | vs all |",
        "|---|---:|" + "---:|" * len(languages) + "---:|---:|---:|",
    ]
    all_p50 = statistics.median(tradeoff[-1].seconds)
    for p in tradeoff:
        p50 = statistics.median(p.seconds)
        per_language = " | ".join(f"{p.f1_of(lang):.1f}" for lang in languages)
        lines.append(
            f"| {p.k} | {statistics.fmean(p.f1):.1f} | {per_language} | {p50:.3f} s | "
            f"{percentile(p.seconds, 95):.3f} s | {all_p50 / p50:.1f}x faster |"
        )
    lines += [
        "",
        "### Answer latency against the number of cached pages",
        "",
        "Each page is one dev paragraph served as HTML on 127.0.0.1 (XQuAD's 12 languages first, then the "
        "other files), fetched and cached in Redis; the question path is the action server's: enabled "
        f"sources and cached pages from Redis, rank (best {settings.rank_top}), read. *Without the ranker* "
        "the reader reads every passage, so it is run on fewer questions where it takes minutes.",
        "",
        "| pages | passages | with ranker p50 | **p95** | n | without ranker p50 | p95 | n | "
        "cold question | fetch all (cache warm-up) | encode all (vector warm-up) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.pages} | {r.passages} | {percentile(r.ranked, 50):.2f} s "
            f"| **{percentile(r.ranked, 95):.2f} s** | {len(r.ranked)} "
            f"| {percentile(r.alone, 50):.2f} s | {percentile(r.alone, 95):.2f} s | {len(r.alone)} "
            f"| {r.cold_s:.2f} s ({r.cold_pages} passages) | {r.refresh_s:.2f} s | {r.index_s:.2f} s |"
        )
    lines += [
        "",
        "*Cold question*: empty page and vector caches, the product's fetch budget "
        f"(KATE_FETCH_BUDGET={settings.fetch_budget:g} s): it reads the pages fetched within the budget (the "
        "passage count says how many made it) and encodes their vectors first. The action server encodes "
        "the vectors of every cached page when it starts (in the background, shared through Redis), so "
        "after a restart employees get the warm figures; a mass import of pages pays the encoding once.",
        "",
        f"<!-- /bench:{SECTION} -->",
    ]
    return "\n".join(lines)
