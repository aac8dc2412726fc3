"""The multilingual encoder as an ONNX graph, for the NLU in Rasa's process.

Why: Rasa 3.6 runs on Python 3.10 in its own environment, where no CPU build of torch can be installed from
the registries this project uses (PyPI's torch is the CUDA build, gigabytes). ONNX Runtime and the
`tokenizers` package are small wheels for 3.10, so the ranker's base encoder (multilingual-e5-small) is
exported once, in Kate's environment, as one graph that returns the mean-pooled, unit-length sentence
vector the ranker computes. The NLU featurizer (bot/components/dense.py) reads that folder: a French
message and its English twin get neighbouring features, which sparse n-grams cannot give.

The folder is rebuilt when the base build changes (its weights' sha256 is in the manifest) and is about
470 MB (the fp32 word embeddings), like the base build it comes from.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import torch

from .model_folders import manifest_matches, sha256_of, staged_folder, write_manifest
from .offline_build import build_offline_base

logger = logging.getLogger(__name__)

ENCODER_NAME = "multilingual-e5-small-onnx"
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


def build_sentence_encoder(models_dir: str | Path, *, progress: bool = True, force: bool = False) -> Path:
    """Export the offline base encoder to `<models_dir>/multilingual-e5-small-onnx` (idempotent)."""
    from transformers import AutoModel

    models_dir = Path(models_dir)
    base = build_offline_base(models_dir / BASE_NAME, progress=progress)
    source = sha256_of(base / "model.safetensors")
    target = models_dir / ENCODER_NAME
    if not force and manifest_matches(target, source_sha256=source, format=FORMAT_VERSION):
        return target
    if progress:
        logger.warning("exporting the NLU's sentence encoder to ONNX (once, about 20 s): %s", target)
    model = _MeanPooled(AutoModel.from_pretrained(base).eval())
    ids = torch.ones(2, 8, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with staged_folder(target) as staging, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation at length
        torch.onnx.export(
            model,
            (ids, torch.ones_like(ids)),
            str(staging / "model.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "sentence": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        shutil.copyfile(base / "tokenizer.json", staging / "tokenizer.json")
        write_manifest(staging, source_sha256=source, format=FORMAT_VERSION, prefix=QUERY_PREFIX)
    return target
