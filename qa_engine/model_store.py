"""Where reader models come from: a hub id, a local folder, or an offline build from registry packages.

A model spec is one string (KATE_QA_MODEL):
- `offline:<name>`: a folder Kate builds itself under `<models_dir>/<name>` (no hub needed);
- a path to a local folder holding a Hugging Face checkpoint;
- anything else is a hub id (`org/name`), loaded by `from_pretrained` as real deployments do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from .offline_build import build_offline_base
from .shipped import build_kate_reader
from .types import OFFLINE_PREFIX, ModelLoadError

logger = logging.getLogger(__name__)

# name -> builder(target_folder, progress=...) for the models Kate can build without a hub.
OFFLINE_BUILDS: dict[str, Callable[..., Path]] = {
    "multilingual-e5-small": build_offline_base,  # the base encoder (untrained QA head)
    "kate-reader-e5-small": build_kate_reader,  # Kate's fine-tuned reader (base + shipped weights)
}
HEAD_INIT_SEED = 0  # a checkpoint without a QA head gets a reproducible random one


def offline_name(spec: str) -> str | None:
    return spec[len(OFFLINE_PREFIX) :] if spec.startswith(OFFLINE_PREFIX) else None


def resolve(spec: str, models_dir: str | Path | None) -> str:
    """Turn a spec into what `from_pretrained` takes (a folder path or a hub id)."""
    name = offline_name(spec)
    if name is not None:
        if name not in OFFLINE_BUILDS:
            known = ", ".join(OFFLINE_PREFIX + n for n in OFFLINE_BUILDS)
            raise ModelLoadError(f"unknown offline model {spec!r} (known: {known})")
        if models_dir is None:
            raise ModelLoadError(f"{spec!r} needs a models folder (KATE_HOME)")
        folder = Path(models_dir) / name
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"{spec!r} is not built yet in {folder}: run `kate qa build-model`")
        return str(folder)
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists() or spec.startswith((".", "/", "~")):
        raise ModelLoadError(f"{spec!r} is not a model folder")
    return spec


def build_offline(spec: str, models_dir: str | Path, *, progress: bool = True, force: bool = False) -> Path:
    """Build (or verify) the offline model a spec names; idempotent."""
    name = offline_name(spec)
    if name is None or name not in OFFLINE_BUILDS:
        raise ModelLoadError(f"{spec!r} is not an offline model Kate can build")
    return OFFLINE_BUILDS[name](Path(models_dir) / name, progress=progress, force=force)


def load_qa_model(
    spec: str, models_dir: str | Path | None = None, model_kwargs: dict | None = None, **kwargs: object
) -> tuple:
    """Load (model, fast tokenizer) for extractive QA, in eval mode on the CPU.

    A checkpoint without a trained QA head (such as the offline base encoder) still loads, with a warning
    and a head initialised from a fixed seed, so results are reproducible from run to run.
    `kwargs` go to both `from_pretrained` calls (revision, token...), `model_kwargs` to the model's only
    (config overrides such as dropout).
    """
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    location = resolve(spec, models_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(HEAD_INIT_SEED)
            model, info = AutoModelForQuestionAnswering.from_pretrained(
                location, output_loading_info=True, **kwargs, **(model_kwargs or {})
            )
    except OSError as exc:
        hint = (
            "" if Path(location).is_dir() else " (not a local folder, and the model hub may be unreachable)"
        )
        raise ModelLoadError(f"cannot load QA model {spec!r}{hint}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{spec!r} has no fast tokenizer; the reader needs character offsets")
    missing = sorted(info.get("missing_keys") or [])
    if any(k.startswith("qa_outputs") for k in missing):
        logger.warning(
            "%s has no trained QA head: its answers are meaningless until it is fine-tuned (kate qa train)",
            spec,
        )
    elif missing:
        logger.warning("%s: weights missing from the checkpoint: %s", spec, ", ".join(missing[:10]))
    model.eval()
    return model, tokenizer
