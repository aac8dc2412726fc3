"""The multilingual encoder as an ONNX graph, for the NLU in Rasa's process.

Why: Rasa 3.6 runs on Python 3.10 in its own environment, where no CPU build of torch can be installed from
the registries this project uses (PyPI's torch is the CUDA build, gigabytes). ONNX Runtime and the
`tokenizers` package are small wheels for 3.10, so the ranker's base encoder (multilingual-e5-small) is
exported once, in Kate's environment, as one graph that returns the mean-pooled, unit-length sentence
vector the ranker computes. The NLU featurizer (bot/components/dense.py) reads that folder: a French
message and its English twin get neighbouring features, which sparse n-grams cannot give.

The folder is rebuilt when the base build changes (its weights' sha256 is in the manifest) and is about
470 MB (the fp32 word embeddings), like the base build it comes from.

The ranker uses the same kind of graph in Kate's own process (`ranker_onnx`, `OnnxEncoder`) on CPUs
without bf16 instructions: there ONNX Runtime encodes passages faster than torch in fp32, with the same
vectors (`kate bench cpu`, the ranker's rows), which is what a cold index of thousands of pages costs.
"""

from __future__ import annotations

import copy
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from .model_folders import derived_once
from .offline_build import build_offline_base

BASE_NAME = "multilingual-e5-small"
FORMAT_VERSION = 1
QUERY_PREFIX = "query: "  # e5 was trained with it; questions and messages are queries
OPSET = 17


class _MeanPooled(torch.nn.Module):
    """Token states -> one unit vector per text, masked mean pooling (as qa_engine.ranker does)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)


def build_sentence_encoder(models_dir: str | Path, *, progress: bool = True) -> Path:
    """Export the offline base encoder to `<models_dir>/multilingual-e5-small-onnx` (idempotent)."""
    from transformers import AutoModel

    base = build_offline_base(Path(models_dir) / BASE_NAME, progress=progress)

    def write(staging: Path) -> None:
        export_mean_pooled(AutoModel.from_pretrained(base).eval(), staging / "model.onnx")
        shutil.copyfile(base / "tokenizer.json", staging / "tokenizer.json")

    what = "the NLU's sentence encoder to ONNX (about 20 s)"
    return derived_once(base, "-onnx", write, format=FORMAT_VERSION, what=what, prefix=QUERY_PREFIX)


def export_mean_pooled(encoder: torch.nn.Module, path: Path) -> None:
    """Write `encoder` (fp32) as an ONNX graph from token ids and mask to the unit sentence vector."""
    ids = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation at length
        torch.onnx.export(
            _MeanPooled(encoder),
            (ids, torch.ones_like(ids)),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "sentence": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def ranker_onnx(encoder: torch.nn.Module, folder: Path) -> Path:
    """The ranker's encoder (loaded from `folder`) as an ONNX graph beside that folder, exported once and
    again whenever the folder's weights change (their sha256 is in the export's manifest)."""

    def write(staging: Path) -> None:
        export_mean_pooled(copy.deepcopy(encoder).float().eval(), staging / "model.onnx")

    what = "the ranker's encoder to ONNX (about 20 s)"
    return derived_once(folder, "-ranker-onnx", write, format=FORMAT_VERSION, what=what) / "model.onnx"


class OnnxEncoder:
    """An exported encoder run by ONNX Runtime: token ids and attention mask in, unit vectors out."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # its threads sleep between calls instead of spinning: the reader and Rasa need those cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        return self.session.run(["sentence"], feeds)[0].astype(np.float32)
