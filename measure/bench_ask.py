"""`kate bench ask`: how long one question takes from the sources, cold and warm, stage by stage.

It runs the product path of `kate ask` in one process, on the demo intranet served on a free local
port and a private key prefix in Kate's Redis (removed afterwards):
- cold: empty page cache and vector cache: fetch + parse all pages, encode all passages, rank, read;
- warm: the same question again, everything cached (what an employee's question costs in production,
  where the models stay loaded);
and, side by side in the same run, the reader alone reading every passage, to show what the ranker
saves. Model loading is reported on its own: the action server pays it once, not per question.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from knowledge import DEMO_SITE, demo_questions
from knowledge.cache import PageCache, VectorCache
from knowledge.demo_server import serve_demo_site
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry
from qa_engine import Reader
from qa_engine.ranker import Ranker, rank_and_read

from .bench import machine_description, write_section

SECTION = "ask"


@dataclass
class AskTimings:
    fetch_s: float  # sources + cache + fetch/parse as needed
    rank_read_s: float
    n_passages: int

    @property
    def total_s(self) -> float:
        return self.fetch_s + self.rank_read_s


def time_question(
    kn: Knowledge, reader: Reader, ranker: Ranker | None, question: str, settings: Settings
) -> AskTimings:
    t0 = time.perf_counter()
    reading = kn.passages_for_answering(settings.fetch_budget)
    t1 = time.perf_counter()
    rank_and_read(
        reader,
        ranker,
        question,
        reading.passages,
        top_k=3,
        read_top=settings.rank_top,
        weight=settings.rank_weight,
    )
    return AskTimings(t1 - t0, time.perf_counter() - t1, len(reading.passages))


def bench_ask(
    settings: Settings,
    client: object,
    reader: Reader,
    ranker: Ranker,
    load_s: float,
    *,
    output: Path,
    repeats: int = 3,
) -> dict:
    questions = [i["question"] for i in demo_questions()]
    server, _ = serve_demo_site(0)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    prefix = f"{settings.redis_prefix}bench-{int(time.time())}:"
    limits = FetchLimits(
        timeout=settings.fetch_timeout,
        total_timeout=2 * settings.fetch_timeout,
        workers=settings.fetch_workers,
    )
    try:
        registry = SourceRegistry(client, prefix)  # type: ignore[arg-type]
        registry.import_yaml(settings.sources_file.read_text(encoding="utf-8"), {"KATE_DEMO_URL": base})
        cold: list[AskTimings] = []
        for r in range(repeats):
            for pattern in (f"{prefix}page:*", f"{prefix}vec:*"):  # empty caches: a cold start
                for key in client.scan_iter(pattern):  # type: ignore[attr-defined]
                    client.delete(key)  # type: ignore[attr-defined]
            ranker.store = VectorCache(client, prefix)  # type: ignore[arg-type]
            ranker.forget()
            kn = Knowledge(registry, PageCache(client, prefix, ttl=settings.cache_ttl), limits)
            cold.append(time_question(kn, reader, ranker, questions[r % len(questions)], settings))
            kn.close()
            print(f"bench ask: cold run {r + 1}: {cold[-1].total_s:.2f} s", file=sys.stderr, flush=True)
        kn = Knowledge(registry, PageCache(client, prefix, ttl=settings.cache_ttl), limits)
        ranker.forget()  # warm = Redis caches, as a freshly started action server would see them
        warm, alone = [], []
        for q in questions:  # ranker path and reader-alone path alternate, question by question
            warm.append(time_question(kn, reader, ranker, q, settings))
            alone.append(time_question(kn, reader, None, q, settings))
        kn.close()
        print(f"bench ask: {len(questions)} warm questions done", file=sys.stderr, flush=True)
    finally:
        server.shutdown()
        for key in client.scan_iter(f"{prefix}*"):  # type: ignore[attr-defined]
            client.delete(key)  # type: ignore[attr-defined]
    med = statistics.median
    result = {
        "questions": len(questions),
        "passages": warm[0].n_passages,
        "load_s": load_s,
        "cold_fetch_s": med(c.fetch_s for c in cold),
        "cold_rank_read_s": med(c.rank_read_s for c in cold),
        "warm_fetch_s": med(w.fetch_s for w in warm),
        "warm_rank_read_s": med(w.rank_read_s for w in warm),
        "warm_max_s": max(w.total_s for w in warm),
        "alone_read_s": med(a.rank_read_s for a in alone),
        "cold_runs": repeats,
    }
    command = f"kate bench ask --repeats {repeats}"
    write_section(output, render(result, reader, ranker, settings, command), SECTION)
    return result


def render(r: dict, reader: Reader, ranker: Ranker, settings: Settings, command: str) -> str:
    cold = r["cold_fetch_s"] + r["cold_rank_read_s"]
    warm = r["warm_fetch_s"] + r["warm_rank_read_s"]
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## One question from the sources: cold and warm",
        "",
        f"Command: `{command}`  ",
        f"Reader `{reader.config.model}`, ranker `{ranker.config.model}` (reads the best {settings.rank_top} "
        f"passages); device: {machine_description(reader)}.  ",
        f"The demo intranet ({len(list(DEMO_SITE.glob('*/*.html')))} pages, {r['passages']} passages) "
        f"served on 127.0.0.1, Kate's Redis, the {r['questions']} questions of "
        "`knowledge/demo_site/questions.json`.",
        "",
        "| stage | cold (empty caches) | warm (cached pages and vectors) |",
        "|---|---:|---:|",
        "| sources + pages (fetch and parse when cold, Redis when warm) | "
        f"{r['cold_fetch_s']:.2f} s | {r['warm_fetch_s']:.3f} s |",
        "| rank (encode passages when cold) + read | "
        f"{r['cold_rank_read_s']:.2f} s | {r['warm_rank_read_s']:.2f} s |",
        f"| **question to answer** | **{cold:.2f} s** | **{warm:.2f} s** "
        f"(slowest of {r['questions']}: {r['warm_max_s']:.2f} s) |",
        "",
        f"Loading both models, once per process (the action server keeps them): {r['load_s']:.1f} s. "
        f"A one-shot `kate ask` command pays it on every call, plus Python and library start-up.",
        "",
        f"Side by side, warm, same run: the reader alone reading all {r['passages']} passages takes "
        f"{r['alone_read_s']:.2f} s per question against {r['warm_rank_read_s']:.2f} s for rank + read "
        f"(**{r['alone_read_s'] / r['warm_rank_read_s']:.1f}x**), and answers fewer questions right "
        f"(docs/qa-results.md, HR sanity). Cold and warm figures are medians; cold runs: {r['cold_runs']}.",
        "",
        f"<!-- /bench:{SECTION} -->",
    ]
    return "\n".join(lines)
