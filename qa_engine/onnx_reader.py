"""The reader's forward pass through ONNX Runtime (`KATE_READER_ENGINE=onnx`), beside torch's.

Why try it: eager torch spends about a third of a small BERT's fp32 forward pass outside the matrix
products (bias copies, GELU, residual adds, layer norms: torch's profiler on e5-small). The export here is
fused by ONNX Runtime's BERT optimizer (bias + GELU, residual + layer norm in one kernel each), and its
threads sleep instead of spinning. Why it is not the default: on an AVX2-only CPU it read as fast as torch
fp32 alone and slower under a crowd (docs/benchmarks.md), and where the CPU has bf16 instructions torch
reads in bf16, which ONNX Runtime's CPU provider cannot. `kate bench cpu` keeps measuring both, speed and
F1, side by side.

`OnnxQA` is a drop-in for the torch model inside `Reader` (same inputs, same start/end logits), so the
batching, span decoding and scores are Kate's own either way.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .model_folders import derived_once

OPSET = 17
FORMAT_VERSION = 1  # of the fused export below: a change rebuilds every reader's export


@dataclass
class QAOutput:
    start_logits: torch.Tensor
    end_logits: torch.Tensor


class _Logits(torch.nn.Module):
    """The QA model with plain tensor outputs (what the exporter traces)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.start_logits, out.end_logits


def reader_onnx(model: torch.nn.Module, folder: Path) -> Path:
    """The reader loaded from `folder` as a fused ONNX graph beside that folder (`<name>-reader-onnx`),
    exported once and again whenever the folder's weights change."""

    def write(staging: Path) -> None:
        plain = staging / "plain.onnx"
        _export(model, plain)
        _fuse(plain, staging / "model.onnx", model.config)
        plain.unlink()

    what = "the reader to ONNX (about a minute)"
    return derived_once(folder, "-reader-onnx", write, format=FORMAT_VERSION, what=what) / "model.onnx"


def _fuse(source: Path, target: Path, config: object) -> None:
    """ONNX Runtime's BERT fusions (bias + GELU, residual + layer norm), written as a portable graph:
    the session applies its own hardware-specific optimisations when it loads it."""
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(getattr(config, "num_attention_heads", 0)),
        hidden_size=int(getattr(config, "hidden_size", 0)),
        opt_level=0,
    )
    fused.save_model_to_file(str(target))


def _export(model: torch.nn.Module, path: Path) -> None:
    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation at length
        torch.onnx.export(
            _Logits(model.float().eval()),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["start_logits", "end_logits"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "start_logits": axes,
                "end_logits": axes,
            },
            opset_version=OPSET,
            dynamo=False,
        )


class OnnxQA(torch.nn.Module):
    """An ONNX Runtime session that `Reader` calls as it calls a torch model."""

    def __init__(self, path: Path, threads: int, config: object) -> None:
        """`config`: the exported model's transformers config (the reader reads its position limit)."""
        import onnxruntime as ort

        super().__init__()
        self.config = config
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # threads sleep between calls: spinning ones would slow torch's runs alternating with these
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        before = _thread_ids()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # the session's own worker threads, started just now by this thread (Linux; a thread another part
        # of the process starts at the same moment would be listed too); torch's threads are started by
        # whichever thread reads, and share its priority, but these must be lowered by hand
        self.worker_threads = sorted(_thread_ids() - before)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> QAOutput:
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": types}
        start, end = self.session.run(
            ["start_logits", "end_logits"], {k: v.cpu().numpy() for k, v in feeds.items()}
        )
        return QAOutput(torch.from_numpy(start), torch.from_numpy(end))


def _thread_ids() -> set[int]:
    """This process's native thread ids (Linux: /proc/self/task); empty elsewhere."""
    if not sys.platform.startswith("linux"):
        return set()
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()
