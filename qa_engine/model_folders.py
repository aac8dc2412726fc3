"""Model folders Kate writes itself: written whole or not at all, and verified before they are reused.

A folder is built in a sibling `<name>.partial` and only then swapped into place, so an interrupted build or
checkpoint never leaves half a model behind. Builds also record the sha256 of every file in a manifest,
checked before a folder is reused.

Hashing is remembered, as git remembers it: a manifest also records each file's size and modification
time, and a file whose size and time are still those is taken as unchanged without reading it again.
Writing a file, truncating it or copying another over it changes them; without this, every start of an
action server read about a gigabyte of weights just to find them unchanged. Builds of one folder by
several processes at once (replicas starting together on a shared volume) take turns on a lock file:
the first builds, the others find its build.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST = "kate-build.json"

logger = logging.getLogger(__name__)


_DIGESTS: dict[tuple[str, tuple[int, ...]], str] = {}  # (path, stat) -> sha256, for this process
_DIGESTS_LOCK = threading.Lock()


def file_stamp(path: Path) -> list[int]:
    """Size and modification time (ns): what changes when a file is written, as a manifest records it."""
    st = Path(path).stat()
    return [st.st_size, st.st_mtime_ns]


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """The file's sha256, read once per process while the file stays as it is (same inode, size, time)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    with _DIGESTS_LOCK:
        if key in _DIGESTS:
            return _DIGESTS[key]
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digest.hexdigest()
    return digest.hexdigest()


@contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Exclusive among processes of this machine (and of others sharing the volume, where it supports
    locks) while `target` is checked and built: `<target>.lock`, an advisory lock that the system
    releases when its holder ends, even killed."""
    lock = Path(target).with_name(Path(target).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    """Record `fields`, and the sha256, size and modification time of every file now in `folder`."""
    paths = [p for p in sorted(Path(folder).iterdir()) if p.is_file() and p.name != MANIFEST]
    files = {p.name: sha256_of(p) for p in paths}
    stamps = {p.name: file_stamp(p) for p in paths}
    (Path(folder) / MANIFEST).write_text(json.dumps({**fields, "files": files, "stamps": stamps}, indent=2))


def read_manifest(folder: Path) -> dict:
    """The manifest's fields, or {} when there is none or it does not parse."""
    try:
        recorded = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def _unchanged(path: Path, digest: str, stamp: object) -> bool:
    if not path.is_file():
        return False
    return stamp == file_stamp(path) or sha256_of(path) == digest


def manifest_matches(folder: Path, **expected: object) -> bool:
    """True when `folder` has a manifest with these fields and every file it lists is unchanged (the same
    size and time as recorded, or else the same sha256)."""
    recorded = read_manifest(folder)
    if not recorded or any(recorded.get(k) != v for k, v in expected.items()):
        return False
    files, stamps = recorded.get("files", {}), recorded.get("stamps", {})
    if not files or not all(
        _unchanged(Path(folder) / name, digest, stamps.get(name)) for name, digest in files.items()
    ):
        return False
    fresh = {name: file_stamp(Path(folder) / name) for name in files}
    if fresh != stamps:  # verified by reading (an older manifest, or copied files): next time by stamps
        _rewrite_manifest(folder, {**recorded, "stamps": fresh})
    return True


def _rewrite_manifest(folder: Path, recorded: dict) -> None:
    """Replace the manifest whole, so that a process reading it meanwhile sees the old one or the new one.
    On a read-only volume it stays as it is (and is verified by reading every time)."""
    staged = Path(folder) / f".{MANIFEST}.{os.getpid()}"
    with contextlib.suppress(OSError):
        staged.write_text(json.dumps(recorded, indent=2))
        os.replace(staged, Path(folder) / MANIFEST)


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
    target = Path(folder).with_name(Path(folder).name + suffix)
    with build_lock(target):
        recorded, stamp = read_manifest(target), file_stamp(weights)
        # the weights' sha256 as the export recorded it, while they keep the size and time it saw
        known = recorded.get("source_stamp") == stamp and recorded.get("source_sha256")
        source = known if isinstance(known, str) else sha256_of(weights)
        if not manifest_matches(target, source_sha256=source, format=format, **fields):
            logger.warning("exporting %s (once): %s", what, target)
            with staged_folder(target) as staging:
                write(staging)
                write_manifest(staging, source_sha256=source, source_stamp=stamp, format=format, **fields)
        elif known != source:  # the weights were read to find them unchanged: next time by their stamp
            _rewrite_manifest(target, {**read_manifest(target), "source_stamp": stamp})
    return target
