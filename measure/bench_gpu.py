"""`kate bench gpu`: the reader's throughput on an NVIDIA GPU at 384 tokens, against a published anchor.

Run on a GPU machine after `./kate.sh setup` (which builds the offline model): `KATE_DEVICE=cuda kate bench
gpu`. Every sequence is 384 tokens (SQuAD's usual window), batches of 1 to 256, in bf16 and fp16 autocast;
sequences per second are the median of timed batches after a warm-up, with CUDA synchronised around each.

The anchor: NVIDIA's TensorRT BERT-base (12 layers, hidden 768) reads about 2,500 sequences of 384 tokens a
second at batch 128 in fp16 on an A100. Kate's reader is smaller; the anchor is scaled by the ratio of the
two models' forward FLOPs at 384 tokens (`flops_per_sequence`: the dense layers' 24·L·h² and attention's
4·L²·h per layer), so the comparison says how close Kate's eager torch path comes to a compiled engine on
the same arithmetic. Different GPUs differ: the table names the one it ran on.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from qa_engine import Reader

from .bench import machine_description, write_section

SECTION = "gpu"
TOKENS = 384
BATCHES = (1, 8, 32, 64, 128, 256)
ANCHOR_SEQ_S = 2500.0  # TensorRT BERT-base, fp16, batch 128, 384 tokens, A100
ANCHOR_LAYERS, ANCHOR_HIDDEN = 12, 768


def flops_per_sequence(layers: int, hidden: int, tokens: int = TOKENS) -> float:
    """Forward FLOPs of a BERT encoder over one sequence: per layer, the dense layers (Q, K, V, output
    and a 4x feed-forward: 24·L·h²) and attention's scores and weighted sum (4·L²·h)."""
    return layers * (24.0 * tokens * hidden**2 + 4.0 * tokens**2 * hidden)


def scaled_anchor(layers: int, hidden: int) -> float:
    return (
        ANCHOR_SEQ_S * flops_per_sequence(ANCHOR_LAYERS, ANCHOR_HIDDEN) / flops_per_sequence(layers, hidden)
    )


def seq_per_s(model: torch.nn.Module, batch: int, dtype: torch.dtype, repeats: int) -> float:
    device = next(model.parameters()).device
    ids = torch.randint(5, 1000, (batch, TOKENS), device=device)
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype):
        for i in range(repeats + 2):
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            torch.cuda.synchronize(device)
            if i >= 2:  # the first passes pick kernels
                times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def bench_gpu(
    reader: Reader, *, output: Path, batches: Sequence[int] = BATCHES, repeats: int = 5, command: str = ""
) -> dict[str, dict[int, float]]:
    if not torch.cuda.is_available() or reader.device.type != "cuda":
        raise ValueError("kate bench gpu needs an NVIDIA GPU: run it with KATE_DEVICE=cuda on a GPU machine")
    model = reader.model
    cfg = model.config
    found: dict[str, dict[int, float]] = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        found[name] = {}
        for batch in batches:
            try:
                found[name][batch] = seq_per_s(model, batch, dtype, repeats)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                break
            print(
                f"bench gpu: {name} batch {batch}: {found[name][batch]:.0f} seq/s",
                file=sys.stderr,
                flush=True,
            )
    anchor = scaled_anchor(cfg.num_hidden_layers, cfg.hidden_size)
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## The reader on a GPU: sequences of 384 tokens per second",
        "",
        f"Command: `{command or 'kate bench gpu'}`  ",
        f"Model: `{reader.config.model}` ({cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}); "
        f"device: {machine_description(reader)}.",
        "",
        "| batch | " + " | ".join(f"{n} seq/s" for n in found) + " |",
        "|---:|" + "---:|" * len(found),
    ]
    for batch in batches:
        cells = " | ".join(f"{found[n][batch]:.0f}" if batch in found[n] else "out of memory" for n in found)
        lines.append(f"| {batch} | {cells} |")
    best = max((v for d in found.values() for v in d.values()), default=0.0)
    mine = flops_per_sequence(cfg.num_hidden_layers, cfg.hidden_size)
    theirs = flops_per_sequence(ANCHOR_LAYERS, ANCHOR_HIDDEN)
    lines += [
        "",
        f"Anchor: TensorRT BERT-base, fp16, batch 128, A100: about {ANCHOR_SEQ_S:,.0f} seq/s; scaled to "
        f"this model's FLOPs ({mine / 1e9:.1f} GFLOP a sequence against {theirs / 1e9:.1f}): "
        f"**{anchor:,.0f} seq/s**. Kate's best here: **{best:,.0f} seq/s** ({best / anchor:.2f}x the "
        "scaled anchor, on this GPU).",
        "",
        f"<!-- /bench:{SECTION} -->",
    ]
    write_section(output, "\n".join(lines), SECTION)
    return found
