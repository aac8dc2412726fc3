"""Model folders Kate derives: verified by their manifest without re-reading unchanged files, and built
once when several processes ask at the same time."""

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from qa_engine import model_folders
from qa_engine.model_folders import MANIFEST, derived_once, manifest_matches, sha256_of, write_manifest


def _no_hashing(path, chunk=0):
    raise AssertionError(f"{path} was read again")


@pytest.fixture()
def folder(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights v1" * 1000)
    (model / "config.json").write_text("{}")
    return model


def test_a_manifest_verifies_unchanged_files_from_their_size_and_time(folder, monkeypatch):
    write_manifest(folder, build_version=1)
    monkeypatch.setattr(model_folders, "sha256_of", _no_hashing)
    assert manifest_matches(folder, build_version=1)
    assert not manifest_matches(folder, build_version=2)


def test_a_rewritten_file_is_hashed_and_a_changed_one_fails(folder):
    write_manifest(folder)
    weights = folder / "model.safetensors"
    # the same bytes written again: a new time, so it is read, and it still matches
    weights.write_bytes(weights.read_bytes())
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert manifest_matches(folder)
    # other bytes of the same size
    weights.write_bytes(b"weights v2" * 1000)
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert not manifest_matches(folder)


def test_a_manifest_without_stamps_is_still_verified_by_hashing(folder):
    write_manifest(folder, build_version=1)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["stamps"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert manifest_matches(folder, build_version=1)
    assert "stamps" in json.loads((folder / MANIFEST).read_text())  # recorded once verified
    (folder / "config.json").write_text('{"x": 1}')
    assert not manifest_matches(folder, build_version=1)


def test_a_file_hash_is_remembered_only_while_the_file_is_unchanged(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"a" * 100)
    first = sha256_of(path)
    assert sha256_of(path) == first
    path.write_bytes(b"b" * 101)
    assert sha256_of(path) != first


def _export(staging: Path) -> None:
    (staging / "model.onnx").write_bytes(b"exported")


def test_an_export_is_reused_without_reading_the_weights_again(folder, monkeypatch):
    calls = []

    def write(staging: Path) -> None:
        calls.append(staging)
        _export(staging)

    target = derived_once(folder, "-onnx", write, format=1, what="test export")
    assert (target / "model.onnx").read_bytes() == b"exported" and len(calls) == 1
    with monkeypatch.context() as patched:
        patched.setattr(model_folders, "sha256_of", _no_hashing)
        assert derived_once(folder, "-onnx", write, format=1, what="test export") == target
    assert len(calls) == 1
    # weights touched but not changed: read again, the same sha256, no new export; then by stamp again
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(time.time_ns(), time.time_ns() + 10**9))
    derived_once(folder, "-onnx", write, format=1, what="test export")
    assert len(calls) == 1
    with monkeypatch.context() as patched:
        patched.setattr(model_folders, "sha256_of", _no_hashing)
        derived_once(folder, "-onnx", write, format=1, what="test export")
    # new weights: a new export
    weights.write_bytes(b"weights v2" * 1000)
    derived_once(folder, "-onnx", write, format=1, what="test export")
    assert len(calls) == 2


def _slow_export_in_a_process(folder: str, log: str) -> None:
    def write(staging: Path) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        _export(staging)

    derived_once(Path(folder), "-onnx", write, format=1, what="test export")


def test_processes_exporting_at_once_take_turns_and_export_once(folder, tmp_path):
    log = tmp_path / "exports.log"
    context = multiprocessing.get_context("fork")
    args = (str(folder), str(log))
    workers = [context.Process(target=_slow_export_in_a_process, args=args) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert len(log.read_text().split()) == 1  # one exported; the others found its export
    target = folder.with_name("model-onnx")
    assert (target / "model.onnx").read_bytes() == b"exported"
    assert manifest_matches(target, format=1)
    assert not folder.with_name("model-onnx.partial").exists()
