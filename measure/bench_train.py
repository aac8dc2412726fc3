"""`kate bench train`: what a training example costs in fp32 and in bf16 on this machine, and what each
precision's training gives in F1, side by side.

Both runs start from the same reader, see the same examples in the same batches with the same seed, and
are scored the same way (fp32 reading), so the only difference is the precision of the training forward
and backward passes. bf16 autocast keeps fp32 master weights, optimizer state and loss; on a CPU without
bf16 instructions it is emulated and slower, which is why `--precision auto` only picks it where the
hardware has it. A short run: it checks that bf16 does not cost answers, it does not train a reader.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from qa_engine import Reader, ReaderConfig
from qa_engine.evaluate import score_file
from qa_engine.train import TrainConfig, train

from .bench import write_section

SECTION = "train"


@dataclass
class TrainBench:
    precision: str
    seconds_per_feature: float
    tokens: int
    features: int
    f1: dict[str, float]


def bench_train(
    model: str,
    train_files: list[Path],
    samples: dict[str, int],
    dev_files: list[Path],
    *,
    output: Path,
    steps: int = 32,
    batch_size: int = 16,
    limit: int = 60,
    models_dir: str | None = None,
    progress: bool = True,
) -> list[TrainBench]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="kate-bench-train-") as tmp:
        for precision in ("fp32", "bf16"):
            run = Path(tmp) / precision
            cfg = TrainConfig(
                model=model,
                train_files=[str(f) for f in train_files],
                output_dir=str(run),
                samples=samples,
                epochs=1,
                max_steps=steps,
                batch_size=batch_size,
                learning_rate=3e-5,
                freeze_word_embeddings=True,
                precision=precision,
                device="cpu",
                seed=7,
                checkpoint_every=10**9,
                checkpoint_minutes=10**9,
                models_dir=models_dir,
            )
            summary = train(cfg, progress=progress)
            reader = Reader(ReaderConfig(model=str(run), device="cpu", precision="fp32"))
            f1 = {Path(p).name: score_file(reader, p, limit=limit, progress=False).f1 for p in dev_files}
            rows.append(
                TrainBench(
                    precision,
                    summary["seconds_per_feature"],
                    summary["tokens_this_call"],
                    summary["features_this_call"],
                    f1,
                )
            )
    write_section(output, render(rows, model, steps, batch_size, limit), SECTION)
    return rows


def cpu_description() -> str:
    import platform

    import torch

    from qa_engine.reader import cpu_has_native_bf16

    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    bf16 = "with" if cpu_has_native_bf16() else "without"
    return (
        f"CPU, {torch.get_num_threads()} threads ({cpu}, {bf16} bf16 instructions); torch {torch.__version__}"
    )


def render(rows: list[TrainBench], model: str, steps: int, batch_size: int, limit: int) -> str:
    files = list(rows[0].f1)
    base = rows[0].seconds_per_feature
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## Training: fp32 against bf16 autocast",
        "",
        f"Command: `kate bench train --steps {steps}`. {cpu_description()}. Both runs: {steps} steps of "
        f"{batch_size} from `{model}`, the same examples and batches, scored in fp32 on the first {limit} "
        "questions of each file.",
        "",
        "| training precision | s per chunk | speed | " + " | ".join(f"F1 {f}" for f in files) + " |",
        "|---|---:|---:|" + "---:|" * len(files),
    ]
    for r in rows:
        f1 = " | ".join(f"{r.f1[f]:.1f}" for f in files)
        speed = base / r.seconds_per_feature
        lines.append(f"| {r.precision} | {r.seconds_per_feature:.3f} | {speed:.2f}x | {f1} |")
    lines.append(f"<!-- /bench:{SECTION} -->")
    return "\n".join(lines)
