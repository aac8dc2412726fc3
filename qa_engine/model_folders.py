"""Model folders Kate writes itself: written whole or not at all, and verified before they are reused.

A folder is built in a sibling `<name>.partial` and only then swapped into place, so an interrupted build or
checkpoint never leaves half a model behind. Builds also record the sha256 of every file in a manifest,
checked before a folder is reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST = "kate-build.json"

logger = logging.getLogger(__name__)


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """An empty folder beside `target` to write into; it replaces `target` when the block ends cleanly."""
    target = Path(target)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    yield staging
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def write_manifest(folder: Path, **fields: object) -> None:
    """Record `fields` and the sha256 of every file now in `folder`."""
    files = {p.name: sha256_of(p) for p in sorted(Path(folder).iterdir()) if p.is_file()}
    (Path(folder) / MANIFEST).write_text(json.dumps({**fields, "files": files}, indent=2))


def manifest_matches(folder: Path, **expected: object) -> bool:
    """True when `folder` has a manifest with these fields and every file it lists is unchanged."""
    manifest = Path(folder) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return False
    if any(recorded.get(k) != v for k, v in expected.items()):
        return False
    files = recorded.get("files", {})
    return bool(files) and all(
        (Path(folder) / name).is_file() and sha256_of(Path(folder) / name) == digest
        for name, digest in files.items()
    )


def average_models(folders: list[Path], output: Path) -> dict:
    """The mean of the weights of several fine-tuned copies of one model (same architecture, same
    tensors), written as a model folder: config and tokenizer of the first, the last one's training summary
    travel along. Averaging two checkpoints of one training path keeps much of what each learned (a
    later stage's gains and an earlier stage's strengths) at no training cost."""
    import torch
    from safetensors.torch import load_file, save_file

    if len(folders) < 2:
        raise ValueError("averaging needs at least two model folders")
    states = [load_file(str(Path(f) / "model.safetensors")) for f in folders]
    keys = states[0].keys()
    if any(s.keys() != keys or any(s[k].shape != states[0][k].shape for k in keys) for s in states[1:]):
        raise ValueError("the models do not have the same tensors: not copies of one model")
    mean = {}
    for k in keys:
        first = states[0][k]
        if first.is_floating_point():
            total = sum(s[k].to(torch.float32) for s in states)
            mean[k] = (total / len(states)).to(first.dtype).contiguous()
        else:
            mean[k] = first
    with staged_folder(output) as stage:
        for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (Path(folders[0]) / name).is_file():
                shutil.copy(Path(folders[0]) / name, stage / name)
        save_file(mean, str(stage / "model.safetensors"), metadata={"format": "pt"})
        summary_file = Path(folders[-1]) / "training.json"
        summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
        summary["averaged"] = [str(f) for f in folders]
        (stage / "training.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return {"output": str(output), "models": [str(f) for f in folders], "tensors": len(mean)}


def derived_once(
    folder: Path, suffix: str, write: Callable[[Path], None], *, format: int, what: str, **fields: object
) -> Path:
    """`<folder><suffix>/`, a folder derived from the model in `folder` (an ONNX export): written by
    `write(staging)` once, and again whenever the folder's weights (their sha256, in the manifest),
    `format` or the other manifest `fields` change. `what` names it in the log line a build writes."""
    weights = Path(folder) / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no model.safetensors in {folder}")
    source = sha256_of(weights)
    target = Path(folder).with_name(Path(folder).name + suffix)
    if not manifest_matches(target, source_sha256=source, format=format, **fields):
        logger.warning("exporting %s (once): %s", what, target)
        with staged_folder(target) as staging:
            write(staging)
            write_manifest(staging, source_sha256=source, format=format, **fields)
    return target
