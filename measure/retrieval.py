"""Recall@K of dense, lexical and hybrid ranking (qa_engine/index.py), on collections Kate was not tuned on.

A question is found at K when one of its gold passages is among the K passages ranked first. Collections:

- each QA dev file alone (its 8 to 40 paragraphs are the pages);
- each QA dev file mixed with `distractors` paragraphs of the training sets (SQuAD, PIAF, JaQuAD: English,
  French, Japanese articles on other subjects), a large intranet in Kate's three languages where the
  gold paragraph must win against thousands;
- the demo intranet and the Lumen test intranet (a company Kate was not built on), with their HR
  questions; gold: any passage of the page the question is about.

The ranking runs on the index itself (`PassageIndex.score_all`), so what is measured is what answers.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge import page_passages, read_local_page
from qa_engine.evaluate import squad_questions
from qa_engine.index import LEXICAL_WEIGHT, PassageIndex
from qa_engine.ranker import Ranker
from qa_engine.types import Passage

from .bench_scale import load_dev

KS = (1, 3, 5, 10)
DISTRACTOR_FILES = ("squad.en.train.json", "piaf.fr.train.json", "jaquad.ja.train.json")


@dataclass
class Collection:
    name: str
    language: str
    passages: list[Passage]
    questions: list[tuple[str, frozenset[int]]]  # question, its gold passages' positions


def dev_collection(path: Path) -> Collection:
    """A SQuAD-format file: its paragraphs are the pages, each question's gold is its own paragraph."""
    dev = load_dev(path)
    questions = [(q, frozenset([gold])) for q, gold, _ in dev.questions]
    return Collection(dev.name, dev.language, dev.paragraphs, questions)


def site_collection(name: str, site: Path, items: Sequence[dict]) -> Collection:
    """A test intranet's HTML files parsed as Kate parses fetched pages; gold: the item's page."""
    passages: list[Passage] = []
    pages: dict[str, list[int]] = {}
    for path in sorted(site.glob("*/*.html")):
        relative = f"{path.parent.name}/{path.name}"
        found = page_passages(read_local_page(path))[1]
        pages[relative] = list(range(len(passages), len(passages) + len(found)))
        passages.extend(found)
    questions = [
        (it["question"], frozenset(pages[it["page"]])) for it in items if pages.get(it.get("page", ""))
    ]
    return Collection(name, "mixed", passages, questions)


def distractors(train_dir: Path, n: int, seed: int = 0) -> list[Passage]:
    """`n` paragraphs drawn evenly from the training files (other articles than any dev file's)."""
    if n <= 0:
        return []
    rng = random.Random(seed)
    files = [train_dir / f for f in DISTRACTOR_FILES if (train_dir / f).is_file()]
    out: list[Passage] = []
    for i, path in enumerate(files):
        paragraphs = list(dict.fromkeys((t, c) for t, c, _, _ in squad_questions(path)))
        share = n // len(files) + (1 if i < n % len(files) else 0)
        for title, context in rng.sample(paragraphs, min(share, len(paragraphs))):
            out.append(Passage(context, title=title, id=f"d{len(out)}", url=f"#d{len(out)}"))
    return out


def cross_lingual(name: str) -> bool:
    """Whether a dev file asks in one language about paragraphs in another (multilingualqa.q-fr.c-en)."""
    parts = dict(p.split("-", 1) for p in name.split(".") if p[:2] in ("q-", "c-"))
    return "q" in parts and parts.get("q") != parts.get("c")


def positions_of_gold(scores: np.ndarray, gold: frozenset[int]) -> int:
    """How many passages rank above the best-ranked gold passage (0: a gold passage is first)."""
    best = max(scores[g] for g in gold)
    return int((scores > best).sum())


def recall(
    ranker: Ranker,
    collection: Collection,
    methods: dict[str, tuple[str, float]],
    extra: Sequence[Passage] = (),
    extra_vectors: np.ndarray | None = None,
    ks: Sequence[int] = KS,
) -> dict[str, dict[int, float]]:
    """Recall@K (percent) of each named method (`name -> (method, lexical weight)`), with `extra` passages
    (and their vectors) added to the collection as distractors."""
    passages = [*collection.passages, *extra]
    vectors = ranker.passage_vectors(collection.passages)
    if len(extra):
        vectors = np.concatenate(
            [vectors, extra_vectors if extra_vectors is not None else ranker.passage_vectors(extra)]
        )
    index = PassageIndex(passages, vectors)
    asked = ranker.query_vectors([q for q, _ in collection.questions])
    found: dict[str, list[int]] = {name: [] for name in methods}
    for (question, gold), q in zip(collection.questions, asked, strict=True):
        for name, (method, weight) in methods.items():
            _, scores = index.score_all(q, question, method, weight)
            found[name].append(positions_of_gold(scores, gold))
    return {name: {k: 100.0 * float(np.mean(np.asarray(p) < k)) for k in ks} for name, p in found.items()}


DEFAULT_METHODS = {
    "dense": ("dense", 0.0),
    "BM25": ("lexical", 0.0),
    f"hybrid, all words {LEXICAL_WEIGHT:g}": ("hybrid words", LEXICAL_WEIGHT),
    f"hybrid, exact terms {LEXICAL_WEIGHT:g} (shipped)": ("hybrid", LEXICAL_WEIGHT),
    "hybrid, exact terms 0.2": ("hybrid", 0.2),
}


@dataclass
class RecallRow:
    collection: str
    passages: int
    questions: int
    by_method: dict[str, dict[int, float]]
    kind: str = "file"  # file | distractors | cross-lingual (with distractors) | intranet


def recall_study(
    ranker: Ranker,
    collections: Sequence[Collection],
    pool: Sequence[Passage] = (),
    methods: dict[str, tuple[str, float]] | None = None,
) -> list[RecallRow]:
    """Every collection alone, and (when `pool` is given) every QA dev file again with the pool added."""
    methods = methods or DEFAULT_METHODS
    rows = []
    pool_vectors = ranker.passage_vectors(pool) if pool else None
    for c in collections:
        site = c.language == "mixed"
        alone = recall(ranker, c, methods)
        rows.append(
            RecallRow(c.name, len(c.passages), len(c.questions), alone, "intranet" if site else "file")
        )
        if pool and not site:
            mixed = recall(ranker, c, methods, pool, pool_vectors)
            kind = "cross-lingual" if cross_lingual(c.name) else "distractors"
            name = f"{c.name} + {len(pool):,} distractors"
            rows.append(RecallRow(name, len(c.passages) + len(pool), len(c.questions), mixed, kind))
        print(f"recall: {c.name} done", file=sys.stderr, flush=True)
    return rows


def render_recall(rows: Sequence[RecallRow], ks: Sequence[int] = (1, 5, 10)) -> list[str]:
    """A markdown table: one row per collection, R@K per method, and the means."""
    names = list(rows[0].by_method)
    head = " | ".join(f"{n} R@{k}" for n in names for k in ks)
    lines = [
        f"| collection | passages | questions | {head} |",
        "|---|---:|---:|" + "---:|" * (len(names) * len(ks)),
    ]
    for r in rows:
        cells = " | ".join(f"{r.by_method[n][k]:.1f}" for n in names for k in ks)
        lines.append(f"| {r.collection} | {r.passages:,} | {r.questions} | {cells} |")
    groups = {
        "mean, files alone": [r for r in rows if r.kind == "file"],
        "mean, same-language files with distractors": [r for r in rows if r.kind == "distractors"],
        "mean, cross-lingual files with distractors": [r for r in rows if r.kind == "cross-lingual"],
        "mean, test intranets": [r for r in rows if r.kind == "intranet"],
    }
    for label, chosen in groups.items():
        if chosen:
            cells = " | ".join(
                f"**{np.mean([r.by_method[n][k] for r in chosen]):.1f}**" for n in names for k in ks
            )
            lines.append(f"| **{label}** | | | {cells} |")
    return lines


SECTION = "recall"


def bench_recall(
    ranker: Ranker,
    dev_dir: Path,
    train_dir: Path,
    *,
    output: Path,
    n_distractors: int = 2000,
    command: str = "kate bench recall",
) -> dict[str, dict[str, dict[int, float]]]:
    """Recall@K of dense, BM25 and hybrid ranking on every collection; one section of `output`."""
    import json

    from knowledge import DEMO_SITE, demo_questions

    from .bench import write_section

    collections = [dev_collection(p) for p in sorted(dev_dir.glob("*.json"))]
    collections.append(site_collection("demo intranet", DEMO_SITE, demo_questions()))
    site = Path(__file__).parent / "data"
    lumen = json.loads((site / "lumen-questions.json").read_text(encoding="utf-8"))["items"]
    collections.append(site_collection("Lumen test intranet", site / "lumen-intranet", lumen))
    pool = distractors(train_dir, n_distractors)
    print(f"recall: encoding {len(pool):,} distractor paragraphs", file=sys.stderr, flush=True)
    rows = recall_study(ranker, collections, pool)
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## Ranking: dense, BM25 and hybrid recall@K",
        "",
        f"Command: `{command}`  ",
        f"Ranker `{ranker.config.model}`. A question is found at K when a gold passage (its paragraph; for "
        "the intranets, any passage of its page) is among the K passages ranked first. *+ distractors*: the "
        f"file's paragraphs mixed with {len(pool):,} paragraphs of SQuAD, PIAF and JaQuAD training articles "
        "(en, fr, ja), a large intranet where the gold paragraph must win against thousands. *Hybrid*: the "
        "cosine plus the weight times BM25 relative to the most the question's terms could score "
        "(qa_engine/index.py); *all words* runs BM25 on the whole question, *exact terms* on its codes, "
        "numbers, acronyms and names only (what Kate ships).",
        "",
        *render_recall(rows),
        "",
        "Reading it: BM25 on every word ranks pages of the question's own language first, which costs the "
        "cross-lingual questions their page and, on the intranets (every page says *leave* and *days*), "
        "the right page its place; on exact terms it lifts the page that carries the question's code or "
        "name and leaves the rest to the vectors.",
        "",
        f"<!-- /bench:{SECTION} -->",
    ]
    write_section(output, "\n".join(lines), SECTION)
    return {r.collection: r.by_method for r in rows}
