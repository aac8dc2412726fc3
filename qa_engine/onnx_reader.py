"""The reader's forward pass through ONNX Runtime, so it can be measured against torch on the same CPU.

Why: ONNX Runtime fuses a BERT's attention and layer norms and is often faster than eager torch in fp32;
torch, on the other hand, reads in bf16 where the CPU has bf16 instructions, which ONNX Runtime's CPU
provider does not. Which wins depends on the CPU, so `kate bench cpu` measures both, speed and F1, side
by side, and Kate's default follows the measurement (docs/benchmarks.md, *The reader on a CPU*).

`OnnxQA` is a drop-in for the torch model inside `Reader` (same inputs, same start/end logits), so the
batching, span decoding and scores are Kate's own either way.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

OPSET = 17


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


def export_qa_onnx(model: torch.nn.Module, target: Path) -> Path:
    """Write `model` (a question-answering model, fp32) as `target/model.onnx`; idempotent per folder."""
    path = target / "model.onnx"
    if path.is_file():
        return path
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation at length
        torch.onnx.export(
            _Logits(model.float().eval()),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(staging / "model.onnx"),
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
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return path


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
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

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
