"""Shipping a fine-tuned reader as a small weight file, and putting it back together."""

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import random_model, small_vocab_tokenizer
from transformers import BertModel

from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.model_store import load_qa_model
from qa_engine.shipped import ShippedWeightsError, build_kate_reader, export_weights


@pytest.fixture()
def base_and_trained(tmp_path):
    """A tiny 'base encoder' folder and a QA model 'fine-tuned' from it with frozen word embeddings."""
    tok = small_vocab_tokenizer("alpha beta gamma delta what is the answer leave days")
    qa = random_model(len(tok), layers=1, seed=7)
    base = BertModel(qa.config, add_pooling_layer=False)
    base.load_state_dict(qa.bert.state_dict())
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    with torch.no_grad():  # "training": everything but the word embeddings moves
        for name, p in qa.named_parameters():
            if "word_embeddings" not in name:
                p.add_(0.01 * torch.randn_like(p))
    qa.save_pretrained(tmp_path / "trained")
    tok.save_pretrained(tmp_path / "trained")
    return tmp_path / "base", tmp_path / "trained", tok


def test_export_then_build_gives_back_the_trained_reader(tmp_path, base_and_trained):
    base, trained, tok = base_and_trained
    shipped = tmp_path / "weights" / "reader.safetensors"
    summary = export_weights(trained, base, shipped)
    stored = load_file(shipped)
    assert "bert.embeddings.word_embeddings.weight" not in stored
    assert all(t.dtype == torch.float16 for t in stored.values())
    assert summary["tensors"] == len(stored)

    target = tmp_path / "models" / "kate-reader"
    build_kate_reader(target, shipped=shipped, base_dir=base, progress=False)
    original, _ = load_qa_model(str(trained))
    rebuilt, _ = load_qa_model(str(target))
    assert type(rebuilt).__name__ == "BertForQuestionAnswering"
    text, question = "alpha beta gamma delta leave days", "what is the answer"
    a = Reader(ReaderConfig(model="a"), model=original, tokenizer=tok).answer(
        question, [Passage(text)], top_k=3
    )
    b = Reader(ReaderConfig(model="b"), model=rebuilt, tokenizer=tok).answer(
        question, [Passage(text)], top_k=3
    )
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.score for x in a] == pytest.approx([x.score for x in b], abs=0.05)  # fp16 storage

    stamp = (target / "model.safetensors").stat().st_mtime_ns
    build_kate_reader(target, shipped=shipped, base_dir=base, progress=False)  # verified, not rebuilt
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp


def test_trained_word_embeddings_cannot_be_shipped(tmp_path, base_and_trained):
    base, trained, _ = base_and_trained
    model, _ = load_qa_model(str(trained))
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[5, 0] += 1.0
    model.save_pretrained(trained)
    with pytest.raises(ShippedWeightsError, match="freeze-embeddings"):
        export_weights(trained, base, tmp_path / "w.safetensors")


def test_weights_for_another_base_are_refused(tmp_path, base_and_trained):
    base, trained, _ = base_and_trained
    shipped = tmp_path / "reader.safetensors"
    export_weights(trained, base, shipped)
    other = random_model(len(small_vocab_tokenizer("x y")), layers=1, seed=8)
    BertModel(other.config, add_pooling_layer=False).save_pretrained(tmp_path / "other-base")
    with pytest.raises(ShippedWeightsError, match="another build"):
        build_kate_reader(
            tmp_path / "m" / "r", shipped=shipped, base_dir=tmp_path / "other-base", progress=False
        )
    with pytest.raises(ShippedWeightsError, match="missing"):
        build_kate_reader(tmp_path / "m" / "r", shipped=tmp_path / "none.safetensors", base_dir=base)


def test_averaging_two_copies_of_a_reader_gives_the_mean_weights_and_a_working_reader(tmp_path):
    from qa_engine.model_folders import average_models

    tok = small_vocab_tokenizer("alpha beta gamma delta what is the answer leave days")
    folders = []
    for seed in (1, 2):
        model = random_model(len(tok), layers=1, seed=seed)
        model.save_pretrained(tmp_path / f"m{seed}")
        tok.save_pretrained(tmp_path / f"m{seed}")
        folders.append(tmp_path / f"m{seed}")
    average_models(folders, tmp_path / "mean")
    a, b, mean = (load_file(str(f / "model.safetensors")) for f in (*folders, tmp_path / "mean"))
    for k in a:
        assert torch.allclose(mean[k], (a[k] + b[k]) / 2, atol=1e-6), k
    reader = Reader(ReaderConfig(model=str(tmp_path / "mean"), device="cpu", max_length=32))
    assert reader.answer(
        "what is the answer", [Passage("alpha beta gamma")], top_k=1, min_score=float("-inf")
    )
    other = random_model(len(tok) + 1, layers=1, seed=3)  # another vocabulary: not a copy of the same model
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ValueError):
        average_models([folders[0], tmp_path / "other"], tmp_path / "bad")
