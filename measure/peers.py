"""The readers a company would pick instead of Kate's, on the same model folder, pages and machine.

Peers: Haystack 2.x's `ExtractiveReader` and transformers 4.x's question-answering pipeline (transformers
5 removed it). Each is installed by this benchmark into a throwaway virtual environment of its own under
`~/.cache/kate/peers/` (kept between runs; never into Kate's), and run there by `peer_runner.py` on a job
written as JSON: Kate's own code is not imported, so each peer runs exactly as its users run it.

Speed: every question read against every passage of a page set, the same work as Kate's reader does in
`kate bench reader`, in chunks per second (Kate's chunk count: the peers use the same 384-token windows
and 128-token stride). F1: each question answered from its own paragraph (SQuAD's protocol), on three dev
files. Kate's reader is timed in the same run, between the peers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qa_engine import Passage, Reader
from qa_engine.evaluate import best_over_gold, f1_score, language_of_file, squad_questions
from qa_engine.model_store import resolve

from .bench import BENCH_QUESTIONS, PageSet, ReaderBench, machine_description, reader_twin

SECTION = "peers"
RUNNER = Path(__file__).with_name("peer_runner.py")
TORCH = "torch==2.13.0"  # the CPU wheel; any other pulls CUDA packages
PINS = {
    "haystack": [TORCH, "haystack-ai>=2.10,<3", "transformers[torch,sentencepiece]>=4.50,<5"],
    "transformers4": [TORCH, "transformers>=4.50,<5", "sentencepiece"],
}
LABELS = {
    "haystack": "Haystack 2.x ExtractiveReader",
    "transformers4": "transformers 4.x question-answering pipeline",
}
F1_FILES = ("xquad.en.dev.json", "asai2018.fr.dev.json", "asai2018.ja.dev.json")
INSTALL_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 1800


class PeerUnavailable(RuntimeError):
    """A peer could not be installed or run; the report says why instead of a row."""


def base_python() -> str:
    """A Python 3.11 that is not Kate's virtual environment (peers get their own)."""
    return getattr(sys, "_base_executable", None) or shutil.which("python3.11") or sys.executable


def peer_env(name: str, root: Path) -> Path:
    """The peer's environment (created and installed the first time); its Python."""
    pins = PINS[name]
    folder = root / f"{name}-{hashlib.sha256(' '.join(pins).encode()).hexdigest()[:10]}"
    python = folder / "bin" / "python"
    stamp = folder / ".installed"
    if stamp.is_file():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    print(f"bench peers: installing {LABELS[name]} into {folder} ...", file=sys.stderr, flush=True)
    steps = [[base_python(), "-m", "venv", str(folder)], [str(python), "-m", "pip", "install", "-q", *pins]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise PeerUnavailable(f"{LABELS[name]}: installing took over {INSTALL_TIMEOUT_S} s") from exc
        if done.returncode != 0:
            raise PeerUnavailable(
                f"{LABELS[name]}: {' '.join(step[:4])} failed: {done.stderr.strip()[-500:]}"
            )
    stamp.write_text(" ".join(pins))
    return python


def run_peer(python: Path, job: dict) -> dict:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    try:
        done = subprocess.run(
            [str(python), str(RUNNER)], input=json.dumps(job), capture_output=True, text=True,
            timeout=RUN_TIMEOUT_S, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise PeerUnavailable(f"{job['peer']}: ran over {RUN_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        raise PeerUnavailable(f"{job['peer']}: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout)


@dataclass
class F1Item:
    question: str
    context: str
    answers: list[str]
    language: str


def f1_items(dev_dir: Path, per_file: int) -> list[F1Item]:
    items = []
    for name in F1_FILES:
        path = dev_dir / name
        if not path.is_file():
            continue
        found = [
            F1Item(qa["question"], context, [a["text"] for a in answers], language_of_file(path) or "en")
            for _, context, qa, answers in squad_questions(path)
        ]
        step = max(1, len(found) // per_file)
        items.extend(found[::step][:per_file])
    return items


@dataclass
class PeerRow:
    name: str
    versions: str = ""
    chunks_per_s: dict[str, float] = field(default_factory=dict)  # page set -> chunks/s
    f1: float | None = None
    problem: str = ""


def kate_rows(
    reader: Reader, sets: Sequence[tuple[PageSet, ReaderBench]], items: Sequence[F1Item], repeats: int
) -> list[PeerRow]:
    rows = []
    twins = [("Kate's reader (" + reader.precision + ")", reader)]
    if reader.precision != "fp32":
        twins.append(("Kate's reader (fp32)", reader_twin(reader, "fp32")))
    for name, r in twins:
        row = PeerRow(name, "this checkout")
        for pages, bench in sets:
            r.answer(BENCH_QUESTIONS[0], pages.passages[:4], top_k=3)
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for q in BENCH_QUESTIONS:
                    r.answer(q, pages.passages, top_k=3)
                runs.append(time.perf_counter() - t0)
            row.chunks_per_s[pages.name] = bench.chunks / statistics.median(runs)
        answers = [r.answer(it.question, [Passage(it.context, id="0")], top_k=1) for it in items]
        row.f1 = _f1([a[0].text if a else "" for a in answers], items)
        rows.append(row)
    return rows


def _f1(predictions: Sequence[str], items: Sequence[F1Item]) -> float:
    scores = [
        100.0 * best_over_gold(f1_score, p, it.answers, it.language)
        for p, it in zip(predictions, items, strict=True)
    ]
    return statistics.fmean(scores) if scores else float("nan")


def peer_rows(
    names: Sequence[str],
    reader: Reader,
    sets: Sequence[tuple[PageSet, ReaderBench]],
    items: Sequence[F1Item],
    repeats: int,
    root: Path,
) -> list[PeerRow]:
    model = resolve(reader.config.model, reader.config.models_dir)
    rows = []
    for name in names:
        row = PeerRow(LABELS[name])
        try:
            python = peer_env(name, root)
            for pages, bench in sets:
                job = {
                    "peer": name, "model": str(model), "kind": "speed", "repeats": repeats,
                    "questions": list(BENCH_QUESTIONS), "passages": [p.text for p in pages.passages],
                }  # fmt: skip
                out = run_peer(python, job)
                row.chunks_per_s[pages.name] = bench.chunks / statistics.median(out["seconds"])
                row.versions = ", ".join(f"{k} {v}" for k, v in out["versions"].items())
                print(f"bench peers: {name} on {pages.name} done", file=sys.stderr, flush=True)
            job = {
                "peer": name, "model": str(model), "kind": "f1",
                "items": [{"question": it.question, "context": it.context} for it in items],
            }  # fmt: skip
            row.f1 = _f1(run_peer(python, job)["answers"], items)
        except PeerUnavailable as exc:
            row.problem = str(exc)
            print(f"bench peers: {exc}", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def render_peers(
    rows: Sequence[PeerRow],
    sets: Sequence[tuple[PageSet, ReaderBench]],
    reader: Reader,
    n_items: int,
    command: str,
) -> str:
    names = [pages.name for pages, _ in sets]
    peers = [r for r in rows if not r.name.startswith("Kate") and not r.problem]
    kate = rows[0]
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## Kate's reader against the readers a company would pick instead",
        "",
        f"Command: `{command}`  ",
        f"Same model folder (`{reader.config.model}`), same pages, same machine "
        f"({machine_description(reader)}), one run. Each peer runs in a throwaway environment of "
        "its own, installed by the benchmark (`~/.cache/kate/peers/`), as its users run it: Haystack's "
        "`ExtractiveReader` with 384-token windows and stride 128, transformers 4.x's "
        "`pipeline('question-answering')` with the same. Speed: three questions (en, fr, ja) against "
        "every passage of each set, in Kate's chunks per second (median of the runs). F1: each question "
        f"of {', '.join(f.removesuffix('.dev.json') for f in F1_FILES)} answered from its own paragraph "
        f"({n_items} questions).",
        "",
        "| reader | versions | " + " | ".join(f"{n} chunks/s" for n in names) + " | F1 |",
        "|---|---|" + "---:|" * len(names) + "---:|",
    ]
    for r in rows:
        if r.problem:
            lines.append(f"| {r.name} | not run: {r.problem[:300]} |" + " |" * len(names) + " |")
            continue
        cells = " | ".join(f"{r.chunks_per_s[n]:.1f}" for n in names)
        lines.append(f"| {r.name} | {r.versions} | {cells} | {r.f1:.1f} |")
    if peers:
        lines += ["", "Kate's reader against the fastest peer on each set:", ""]
        for n in names:
            fastest = max(peers, key=lambda r: r.chunks_per_s[n])
            lines.append(f"- {n}: **{kate.chunks_per_s[n] / fastest.chunks_per_s[n]:.1f}x** ({fastest.name})")
    lines += ["", f"<!-- /bench:{SECTION} -->"]
    return "\n".join(lines)
