"""Model folders Kate writes itself: written whole or not at all, and verified before they are reused.

A folder is built in a sibling `<name>.partial` and only then swapped into place, so an interrupted build or
checkpoint never leaves half a model behind. Builds also record the sha256 of every file in a manifest,
checked before a folder is reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MANIFEST = "kate-build.json"


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
