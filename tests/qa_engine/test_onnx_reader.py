"""The reader's forward pass through ONNX Runtime: the same spans and scores as torch's, batched or not."""

from __future__ import annotations

import pytest
from tiny_models import random_model, small_vocab_tokenizer

from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.onnx_reader import OnnxQA, export_qa_onnx

WORDS = (
    "employees get twenty five days of paid leave a year salary is paid monthly on the last day how many when"
)


def test_onnx_runtime_reads_like_torch(tmp_path):
    tok = small_vocab_tokenizer(WORDS)
    model = random_model(len(tok), layers=2, seed=4)
    path = export_qa_onnx(model, tmp_path / "reader-onnx")
    assert export_qa_onnx(model, tmp_path / "reader-onnx") == path  # exported once
    config = ReaderConfig(model=str(tmp_path), precision="fp32")
    torch_reader = Reader(config, model=model, tokenizer=tok)
    onnx_reader = Reader(config, model=OnnxQA(path, 1, model.config), tokenizer=tok)
    passages = [
        Passage("employees get twenty five days of paid leave a year", id="a"),
        Passage("salary is paid monthly on the last day", id="b"),
    ]
    for question in ("how many days of paid leave", "when is salary paid"):
        expected = torch_reader.answer(question, passages, top_k=5)
        found = onnx_reader.answer(question, passages, top_k=5)
        assert [(a.text, a.passage.id) for a in found] == [(a.text, a.passage.id) for a in expected]
        assert [a.score for a in found] == pytest.approx([a.score for a in expected], abs=1e-3)
