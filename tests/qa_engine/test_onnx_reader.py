"""The reader's forward pass through ONNX Runtime (`KATE_READER_ENGINE=onnx`, the fused export): the
same spans and scores as torch's."""

from __future__ import annotations

import os
import sys

import pytest
from tiny_models import tiny_model_folder

from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.batching import BatchingReader
from qa_engine.model_folders import MANIFEST

WORDS = (
    "employees get twenty five days of paid leave a year salary is paid monthly on the last day how many when"
)
PASSAGES = [
    Passage("employees get twenty five days of paid leave a year", id="a"),
    Passage("salary is paid monthly on the last day", id="b"),
]
QUESTIONS = ("how many days of paid leave", "when is salary paid")


def config(folder, **fields: object) -> ReaderConfig:
    return ReaderConfig(model=str(folder), device="cpu", precision="fp32", **fields)


def same_answers(found: Reader, expected: Reader) -> None:
    for question in QUESTIONS:
        want = expected.answer(question, PASSAGES, top_k=5)
        got = found.answer(question, PASSAGES, top_k=5)
        assert [(a.text, a.passage.id) for a in got] == [(a.text, a.passage.id) for a in want]
        assert [a.score for a in got] == pytest.approx([a.score for a in want], abs=1e-3)


def test_engine_setting_reads_through_the_fused_export(tmp_path):
    """`KATE_READER_ENGINE=onnx` on a CPU in fp32 exports the folder's model once, fused, beside the folder,
    and reads the same spans as torch; `torch` (the default) keeps torch."""
    folder = tiny_model_folder(tmp_path / "reader", WORDS, seed=3)
    torch_reader = Reader(config(folder, engine="torch"))
    fused = Reader(config(folder, engine="onnx"))
    assert torch_reader.engine == "torch" and torch_reader.worker_threads == []
    same_answers(fused, torch_reader)
    assert fused.engine == "onnx"
    export = tmp_path / "reader-reader-onnx"
    assert (export / "model.onnx").is_file() and (export / MANIFEST).is_file()
    written = (export / "model.onnx").stat().st_mtime_ns
    again = Reader(config(folder, engine="onnx"))
    same_answers(again, torch_reader)
    assert (export / "model.onnx").stat().st_mtime_ns == written  # not exported twice


def test_bf16_or_int8_readers_stay_on_torch(tmp_path):
    folder = tiny_model_folder(tmp_path / "reader", WORDS)
    int8 = Reader(config(folder, quantize="int8", engine="onnx"))
    int8.warm_up()
    assert int8.engine == "torch"
    with pytest.raises(ValueError, match="engine"):
        Reader(ReaderConfig(model=str(folder), engine="openvino"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities are Linux's")
def test_onnx_runtime_pool_threads_read_at_the_lower_priority(tmp_path):
    """ONNX Runtime starts its pool when the model loads (the action server loads it on its main thread):
    the batching reader lowers those threads too, not only its own."""
    folder = tiny_model_folder(tmp_path / "reader", WORDS)
    reader = Reader(config(folder, engine="onnx", num_threads=2))
    reader.warm_up()
    pool = reader.worker_threads
    assert pool, "ONNX Runtime with 2 threads starts at least one worker thread"
    before = {tid: os.getpriority(os.PRIO_PROCESS, tid) for tid in pool}
    batching = BatchingReader(reader, nice=5)
    try:
        assert batching.answer(QUESTIONS[0], PASSAGES, top_k=1)
        for tid in pool:
            assert os.getpriority(os.PRIO_PROCESS, tid) == before[tid] + 5
    finally:
        batching.close()
