"""`kate bench reader`: the batched reader against the naive loop, side by side in one run.

Both read the same passages with the same model, tokenisation and machine; runs alternate
(naive, batched, naive, ...) so that machine noise hits both, and the median of each is compared.
Results go into their own marked section of docs/benchmarks.md, so other benchmarks can share the file.
"""

from __future__ import annotations

import json
import platform
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from core.settings import SHARED_QA_DEV
from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.baseline import naive_answer
from qa_engine.features import encode

BENCH_QUESTIONS = (
    "How many days of paid leave do employees get?",
    "Quand le salaire est-il versé ?",
    "在宅勤務は週に何日できますか？",
)
SECTION = "reader"


@dataclass
class PageSet:
    name: str
    passages: list[Passage]


@dataclass
class ReaderBench:
    name: str
    passages: int
    chunks: int
    mean_tokens: float
    naive_s: float
    batched_s: float
    batched_fp32_s: float | None = None  # the batched reader forced to fp32, when its default is not

    @property
    def ratio(self) -> float:
        return self.naive_s / self.batched_s


def demo_pages(copies: int) -> PageSet:
    """The demo intranet's passages (short: sections, list items, table rows), `copies` times over
    (as if the company listed that many similar pages)."""
    from knowledge import demo_passages

    base = demo_passages()
    passages = [
        Passage(p.text, url=f"{p.url}?copy={i}", title=p.title, id=f"{p.id}/{i}")
        for i in range(copies)
        for p in base
    ]
    return PageSet(f"demo intranet passages (x{copies})", passages)


def squad_pages(data_dir: Path, limit: int) -> PageSet | None:
    """Paragraphs of SQuAD-format files (long passages: 100-250 tokens each)."""
    passages: list[Passage] = []
    for path in sorted(data_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for article in data["data"]:
            for para in article["paragraphs"]:
                passages.append(Passage(para["context"], url=path.name, id=f"{path.name}#{len(passages)}"))
        if len(passages) >= limit:
            break
    return PageSet(f"QA dev paragraphs ({data_dir.name}/)", passages[:limit]) if passages else None


def _time_once(fn: object) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def reader_twin(reader: Reader, precision: str, model: torch.nn.Module | None = None) -> Reader:
    """A reader on the same weights (or on `model`, e.g. a quantised copy) in another precision, so
    variants are timed side by side without loading the model twice."""
    config = ReaderConfig(**{**vars(reader.config), "precision": precision, "quantize": "none"})
    return Reader(config, model=model or reader.model, tokenizer=reader.tokenizer)


def run_reader_bench(reader: Reader, pages: PageSet, repeats: int) -> ReaderBench:
    tokenizer, model = reader.tokenizer, reader.model
    # fp32 too when the reader is not: splits the speed-up into what batching and what bf16 give
    fp32 = reader_twin(reader, "fp32") if reader.precision != "fp32" else None
    all_chunks = [
        chunk
        for q in BENCH_QUESTIONS
        for chunk in encode(
            tokenizer,
            [q],
            [pages.passages],
            max_length=reader.max_length,
            stride=reader.config.stride,
            max_question_tokens=reader.config.max_question_tokens,
        )
    ]
    chunks, tokens = len(all_chunks), sum(len(c) for c in all_chunks)

    def batched(r: Reader = reader) -> None:
        for q in BENCH_QUESTIONS:
            r.answer(q, pages.passages, top_k=3)

    def naive() -> None:
        for q in BENCH_QUESTIONS:
            naive_answer(
                model,
                tokenizer,
                q,
                pages.passages,
                top_k=3,
                max_length=reader.max_length,
                stride=reader.config.stride,
                max_answer_tokens=reader.config.max_answer_tokens,
            )

    batched()  # warm every path (allocator, kernels) before timing
    naive()
    if fp32:
        batched(fp32)
    naive_times, batched_times, fp32_times = [], [], []
    for _ in range(repeats):
        naive_times.append(_time_once(naive))
        batched_times.append(_time_once(batched))
        if fp32:
            fp32_times.append(_time_once(lambda: batched(fp32)))
    return ReaderBench(
        pages.name,
        len(pages.passages),
        chunks,
        tokens / max(chunks, 1),
        statistics.median(naive_times),
        statistics.median(batched_times),
        statistics.median(fp32_times) if fp32_times else None,
    )


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (elsewhere, what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The instruction sets that decide the reader's speed on a CPU: which kind of CPU a figure is from."""
    try:
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return "unknown"
    found = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    return ", ".join(found) or "none of avx2/avx512"


def machine_description(reader: Reader) -> str:
    cpu = cpu_model()
    device = reader.device
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"CPU, {torch.get_num_threads()} threads ({cpu})"
    versions = f"torch {torch.__version__}; Python {platform.python_version()}"
    return f"{device_name}; reads in {reader.precision}; {versions}"


def render(results: list[ReaderBench], reader: Reader, command: str) -> str:
    split = all(r.batched_fp32_s is not None for r in results)
    kate = f"Kate's reader ({reader.precision})"
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## Reader: batched vs naive loop",
        "",
        f"Command: `{command}`  ",
        f"Model: `{reader.config.model}`; device: {machine_description(reader)}; "
        f"batch: up to {reader.config.batch_size} chunks / "
        f"{reader.config.max_batch_tokens or ('65536' if reader.device.type == 'cuda' else '2048')} tokens; "
        f"chunks of at most {reader.max_length} tokens, stride {reader.config.stride}.",
        "",
        "Each run answers the same three questions (en, fr, ja) from every passage of the set. *Naive* reads "
        "one chunk per forward pass in fp32 (no padding, per-chunk softmax: transformers' old QA pipeline "
        "with its defaults); *batched* is Kate's reader (all chunks of all passages sorted by length, "
        "padded per batch, scores relative to each chunk's null score)"
        + (
            f", timed both forced to fp32 (*batched fp32*: what batching alone gives) and as shipped "
            f"(*{kate}*: `KATE_PRECISION=auto`)"
            if split
            else ""
        )
        + ". Times are medians of alternating runs in one process; the ratio is the figure to read, "
        "absolute times on a shared CPU are not.",
        "",
    ]
    head = "| page set | passages | chunks | mean tokens/chunk | naive chunks/s |"
    if split:
        lines += [
            f"{head} batched fp32 chunks/s | {kate} chunks/s | batching alone | **{kate} vs naive** |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines += [f"{head} batched chunks/s | speed-up |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        row = f"| {r.name} | {r.passages} | {r.chunks} | {r.mean_tokens:.0f} | {r.chunks / r.naive_s:.1f} |"
        if split:
            fp32_s = r.batched_fp32_s or r.batched_s
            row += f" {r.chunks / fp32_s:.1f} | {r.chunks / r.batched_s:.1f} | {r.naive_s / fp32_s:.2f}x |"
        else:
            row += f" {r.chunks / r.batched_s:.1f} |"
        lines.append(f"{row} **{r.ratio:.2f}x** |")
    if reader.device.type == "cpu":
        lines += [
            "",
            "Reading the ratios on a CPU: once a batch holds a few thousand tokens the forward pass is "
            "bound by arithmetic (matrix products at the cores' peak), so batching cannot make the model's "
            "work smaller; what it removes is the fixed cost of each forward call and the poor use of the "
            "cores by one short sequence. Its gain is therefore largest for short chunks (intranet "
            "sections, list items, table rows) and small for chunks of 200+ tokens. Sorting by length keeps "
            "padding near zero in both sets.",
        ]
        if split:
            lines.append(
                "The rest comes from the CPU's bf16 instructions (AVX512-BF16 or AMX): Kate's reader "
                "runs its matrix products in bf16 under autocast where the CPU has them (layer norms, "
                "softmax and span scores stay fp32), which doubles the arithmetic per cycle and costs no F1 "
                "on the dev files (section *The reader on a CPU* below, and `test_bf16_reads_like_fp32`). "
                "On a CPU without them Kate reads in fp32 and only the batching column applies."
            )
    lines += ["", f"<!-- /bench:{SECTION} -->"]
    return "\n".join(lines)


def write_section(output: Path, section_text: str, section: str = SECTION) -> None:
    """Replace one benchmark's marked section in `output`, keeping everything else."""
    header = "# Kate benchmarks\n\nGenerated by `kate bench`; each section is rewritten by its own command.\n"
    current = output.read_text(encoding="utf-8") if output.exists() else header
    pattern = re.compile(rf"<!-- bench:{section} -->.*?<!-- /bench:{section} -->", re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: section_text, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + section_text
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


def bench_reader(
    reader: Reader,
    *,
    output: Path,
    repeats: int = 3,
    quick: bool = False,
    data_dir: Path | None = None,
    peers: Sequence[str] = (),
    peers_root: Path | None = None,
    f1_per_file: int = 40,
) -> list[ReaderBench]:
    """The reader section; with `peers` (measure/peers.py), their section too, from the same run."""
    sets = [demo_pages(1 if quick else 8)]
    if data_dir is None:
        data_dir = SHARED_QA_DEV if SHARED_QA_DEV.is_dir() else None
    if data_dir is not None:
        squad = squad_pages(data_dir, 8 if quick else 96)
        if squad:
            sets.append(squad)
    results = []
    for pages in sets:
        print(f"bench reader: {pages.name} ...", file=sys.stderr, flush=True)
        result = run_reader_bench(reader, pages, repeats)
        print(
            f"  {result.chunks} chunks: naive {result.naive_s:.2f} s, batched {result.batched_s:.2f} s "
            f"({reader.precision}), {result.ratio:.2f}x",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    command = "kate bench reader" + (" --quick" if quick else "") + f" --repeats {repeats}"
    write_section(output, render(results, reader, command))
    if peers:
        from .peers import f1_items, kate_rows, peer_rows, render_peers

        paired = list(zip(sets, results, strict=True))
        items = f1_items(data_dir or SHARED_QA_DEV, f1_per_file)
        root = peers_root or Path.home() / ".cache" / "kate" / "peers"
        rows = kate_rows(reader, paired, items, repeats)
        rows += peer_rows(peers, reader, paired, items, repeats, root)
        command += f" --peers {','.join(peers)} --f1-per-file {f1_per_file}"
        write_section(output, render_peers(rows, paired, reader, len(items), command), "peers")
    return results
