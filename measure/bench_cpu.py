"""`kate bench cpu`: the ways to make the reader faster on a CPU, side by side, each with its F1 cost.

Variants, all on the same loaded weights and the same passages, timed alternately in one process:
- fp32 on every core, fp32 on one core (what threads buy),
- bf16 autocast (Kate's default on CPUs with bf16 instructions: `KATE_PRECISION=auto`),
- int8 dynamic quantisation of the Linear layers (`KATE_QUANTIZE=int8`),
- ONNX Runtime in fp32 (its CPU provider has no bf16), the model exported once next to Kate's models.
Speed is chunks per second over the QA dev paragraphs (long passages, the reader's real work); F1 is
`kate qa eval`'s on the first `limit` questions of a few dev files, so a speed-up is never reported
without what it costs in answers.

The ranker's encoder gets the same treatment (torch fp32, torch bf16, ONNX Runtime): passages encoded per
second, and how far each engine's vectors are from torch fp32's (the ranking they give is what matters,
so they must be the same vectors, not merely close ones).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from qa_engine import Reader
from qa_engine.evaluate import score_file
from qa_engine.model_store import resolve
from qa_engine.onnx_reader import OnnxQA, reader_onnx
from qa_engine.ranker import Ranker
from qa_engine.reader import cpu_has_native_bf16, quantize_int8

from .bench import BENCH_QUESTIONS, machine_description, reader_twin, squad_pages, write_section

SECTION = "cpu"
RANKER_PASSAGES = 48  # as many as the reader's speed runs read
F1_FILES = ("xquad.en", "xquad.zh", "asai2018.fr", "multilingualqa.q-fr.c-en")


@dataclass
class Variant:
    name: str
    setting: str
    reader: Reader
    threads: int
    times: list[float]
    f1: dict[str, float]


@dataclass
class EncoderRow:
    name: str
    setting: str
    ranker: Ranker
    times: list[float]
    distance: float = 0.0  # the largest 1 - cosine between its vector and torch fp32's, over the passages


def bench_ranker(ranker: Ranker, texts: list[str], repeats: int) -> list[EncoderRow]:
    """The ranker's encoder on `texts` with each engine, alternating runs, on the same weights."""
    config = ranker.config
    native = cpu_has_native_bf16()

    def twin(precision: str, engine: str) -> Ranker:
        return Ranker(
            replace(config, precision=precision, engine=engine, device="cpu"), None, ranker.tokenizer
        )

    rows = [
        EncoderRow("torch fp32", "`KATE_RANKER_ENGINE=torch KATE_PRECISION=fp32`", twin("fp32", "torch"), []),
        EncoderRow(
            "torch bf16" + ("" if native else " (emulated here: no bf16 instructions)"),
            "`KATE_RANKER_ENGINE=torch` on a bf16 CPU" + (" (what `auto` picks here)" if native else ""),
            twin("bf16", "torch"),
            [],
        ),
    ]
    onnx = twin("fp32", "onnx")
    if onnx.engine == "onnx":
        how = "`KATE_RANKER_ENGINE=onnx`" + ("" if native else " (what `auto` picks here)")
        rows.append(EncoderRow("ONNX Runtime fp32", how, onnx, []))
    reference = rows[0].ranker._encode(texts)
    for row in rows:
        vectors = row.ranker._encode(texts)  # also the warm-up
        row.distance = float(np.max(1.0 - np.sum(vectors * reference, axis=1)))
    for _ in range(repeats):
        for row in rows:
            t0 = time.perf_counter()
            row.ranker._encode(texts)
            row.times.append(time.perf_counter() - t0)
    return rows


def render_ranker(rows: list[EncoderRow], count: int) -> list[str]:
    base = statistics.median(rows[0].times)
    lines = [
        "",
        f"### The ranker's encoder: {count} passages (the first 60 words of QA dev paragraphs), medians",
        "",
        "| engine | how | passages/s | speed vs torch fp32 | largest 1 - cosine to torch fp32 |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        t = statistics.median(row.times)
        lines.append(
            f"| {row.name} | {row.setting} | {count / t:.1f} | **{base / t:.2f}x** | {row.distance:.1e} |"
        )
    return lines


def bench_cpu(
    reader: Reader,
    data_dir: Path,
    *,
    output: Path,
    limit: int = 40,
    repeats: int = 2,
    ranker: Ranker | None = None,
) -> list[Variant]:
    if reader.device.type != "cpu":
        raise ValueError("kate bench cpu measures the CPU reader: set KATE_DEVICE=cpu")
    cores = torch.get_num_threads()

    fp32, bf16 = reader_twin(reader, "fp32"), reader_twin(reader, "bf16")
    int8 = reader_twin(reader, "fp32", quantize_int8(reader.model, reader.device))

    def how(precision: str, setting: str) -> str:
        return f"{setting} (what `auto` picks here)" if precision == reader.precision else setting

    variants = [
        Variant(f"fp32, {cores} threads", how("fp32", "`KATE_PRECISION=fp32`"), fp32, cores, [], {}),
        Variant("fp32, 1 thread", "`KATE_PRECISION=fp32 KATE_THREADS=1`", fp32, 1, [], {}),
        Variant(f"bf16 autocast, {cores} threads", how("bf16", "`KATE_PRECISION=bf16`"), bf16, cores, [], {}),
        Variant(f"int8 dynamic, {cores} threads", how("int8", "`KATE_QUANTIZE=int8`"), int8, cores, [], {}),
    ]
    try:
        folder = Path(resolve(reader.config.model, reader.config.models_dir))
        onnx = OnnxQA(reader_onnx(reader.model, folder), cores, reader.model.config)
    except (ImportError, OSError) as exc:  # onnxruntime missing, or no local weights: say so
        print(f"bench cpu: ONNX Runtime not measured: {exc}", file=sys.stderr, flush=True)
    else:
        twin = reader_twin(reader, "fp32", onnx)
        setting = "`KATE_READER_ENGINE=onnx`"
        variants.append(Variant(f"ONNX Runtime fp32 (fused), {cores} threads", setting, twin, cores, [], {}))
    pages = squad_pages(data_dir, 48)
    if pages is None:
        raise ValueError(f"no QA dev files in {data_dir}")

    def read(v: Variant) -> float:
        torch.set_num_threads(v.threads)
        t0 = time.perf_counter()
        for q in BENCH_QUESTIONS:
            v.reader.answer(q, pages.passages, top_k=3)
        return time.perf_counter() - t0

    for v in variants:
        read(v)  # warm up
    for r in range(repeats):
        for v in variants:
            v.times.append(read(v))
        print(f"bench cpu: speed run {r + 1} of {repeats} done", file=sys.stderr, flush=True)
    torch.set_num_threads(cores)
    files = [data_dir / f"{name}.dev.json" for name in F1_FILES if (data_dir / f"{name}.dev.json").is_file()]
    for v in variants:
        if v.threads != cores:
            continue  # threads change speed, not answers
        for path in files:
            score = score_file(v.reader, path, limit=limit, progress=False)
            v.f1[path.name.removesuffix(".dev.json")] = score.f1
        print(f"bench cpu: F1 of {v.name} done", file=sys.stderr, flush=True)
    chunks = _count_chunks(reader, pages.passages)
    command = f"kate bench cpu --limit {limit} --repeats {repeats}"
    extra: list[str] = []
    if ranker is not None:
        texts = [f"passage: {' '.join(p.text.split()[:60])}" for p in pages.passages][:RANKER_PASSAGES]
        extra = render_ranker(bench_ranker(ranker, texts, repeats), len(texts))
        print("bench cpu: ranker engines done", file=sys.stderr, flush=True)
    text = render(variants, reader, chunks, len(pages.passages), limit, command, extra)
    write_section(output, text, SECTION)
    return variants


def _count_chunks(reader: Reader, passages: list) -> int:
    from qa_engine.features import encode

    cfg = reader.config
    total = 0
    for q in BENCH_QUESTIONS:
        chunks = encode(
            reader.tokenizer,
            [q],
            [passages],
            max_length=reader.max_length,
            stride=cfg.stride,
            max_question_tokens=cfg.max_question_tokens,
        )
        total += len(chunks)
    return total


def render(
    variants: list[Variant],
    reader: Reader,
    chunks: int,
    passages: int,
    limit: int,
    command: str,
    extra: list[str] | None = None,
) -> str:
    base = variants[0]
    base_s = statistics.median(base.times)
    names = list(base.f1)
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## The reader and the ranker on a CPU: threads, bf16, int8 and ONNX Runtime, with their cost",
        "",
        f"Command: `{command}`  ",
        f"Model: `{reader.config.model}`; {machine_description(reader)}.  ",
        f"Speed: the {len(BENCH_QUESTIONS)} benchmark questions over {passages} QA dev paragraphs ({chunks} "
        "chunks), runs alternating between variants, medians. F1: the first "
        f"{limit} questions of each file, the same metric as `kate qa eval`.",
        "",
        "| variant | how | chunks/s | speed vs fp32 | "
        + " | ".join(f"F1 {n}" for n in names)
        + " | mean F1 |",
        "|---|---|---:|---:|" + "---:|" * (len(names) + 1),
    ]
    for v in variants:
        s = statistics.median(v.times)
        f1 = [f"{v.f1[n]:.1f}" for n in names] if v.f1 else ["(same as fp32)"] * len(names)
        mean = f"{statistics.fmean(v.f1.values()):.1f}" if v.f1 else "(same)"
        lines.append(
            f"| {v.name} | {v.setting} | {chunks / s:.1f} | **{base_s / s:.2f}x** | "
            + " | ".join(f1)
            + f" | {mean} |"
        )
    base_f1 = statistics.fmean(base.f1.values()) if base.f1 else None
    notes = []
    for v in variants[2:]:
        if v.f1 and base_f1 is not None:
            change = statistics.fmean(v.f1.values()) - base_f1
            notes.append(
                f"{v.name} reads {base_s / statistics.median(v.times):.2f}x as fast as fp32 and "
                f"changes F1 by {change:+.1f} points on average"
            )
    if notes:
        lines += [
            "",
            "; ".join(notes) + ". Kate reads in bf16 where the CPU has bf16 instructions (AVX512-BF16 or "
            "AMX; fp32 elsewhere, where bf16 is emulated and slow) and keeps int8 as a setting for machines "
            "where speed matters more than answers. ONNX Runtime's CPU provider computes in fp32 (it has "
            "no bf16 kernels): it is compared with torch fp32 (the CPUs without bf16 instructions) and "
            "with torch bf16 (the ones with), and is a setting, not the default. On a GPU the reader uses "
            "bf16/fp16 autocast.",
        ]
    lines += [*(extra or []), "", f"<!-- /bench:{SECTION} -->"]
    return "\n".join(lines)
