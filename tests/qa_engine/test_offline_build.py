"""The offline model build from registry packages: verified, idempotent, loadable, really multilingual."""

import struct

import numpy as np
import pytest
import torch

from qa_engine.model_folders import MANIFEST
from qa_engine.model_store import ModelLoadError, load_qa_model, resolve
from qa_engine.offline_build import (
    OfflineBuildError,
    build_offline_base,
    dequantize_q4_0,
    read_e5s1,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_offline_base(tmp_path_factory.mktemp("models") / "multilingual-e5-small", progress=False)


def test_q4_0_block_decoding():
    # One block: scale 0.5; byte j holds value j (low nibble) and value j+16 (high nibble).
    low = np.arange(16, dtype=np.uint8) % 16
    high = (np.arange(16, dtype=np.uint8) * 3) % 16
    block = struct.pack("<e", 0.5) + bytes((low | (high << 4)).tolist())
    values = dequantize_q4_0(memoryview(block), 32)
    expected = np.concatenate([low, high]).astype(np.float32) - 8
    assert np.array_equal(values, expected * 0.5)
    with pytest.raises(OfflineBuildError):
        dequantize_q4_0(memoryview(block[:-1]), 32)


def test_truncated_or_foreign_files_are_refused():
    with pytest.raises(OfflineBuildError, match="magic"):
        read_e5s1(memoryview(b"GGUF" + bytes(100)))
    with pytest.raises(OfflineBuildError, match="truncated"):
        read_e5s1(memoryview(b"E5S1" + bytes(10)))


def test_build_is_idempotent_and_verified(built):
    weights = built / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert build_offline_base(built, progress=False) == built
    assert weights.stat().st_mtime_ns == stamp  # verified, not rebuilt
    assert (built / MANIFEST).is_file()
    # A damaged file is noticed and the folder rebuilt.
    config = built / "tokenizer_config.json"
    config.write_text(config.read_text() + " ")
    build_offline_base(built, progress=False)
    assert weights.stat().st_mtime_ns != stamp
    assert not built.with_name(built.name + ".partial").exists()


def test_checkpoint_loads_with_no_missing_or_unexpected_keys(built):
    from transformers import BertModel

    _, info = BertModel.from_pretrained(built, add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    # As a QA model, only the (untrained) QA head is new; it is seeded, so two loads agree.
    model_a, tok = load_qa_model("offline:multilingual-e5-small", built.parent)
    model_b, _ = load_qa_model(str(built))
    assert torch.equal(model_a.qa_outputs.weight, model_b.qa_outputs.weight)
    assert tok.is_fast and len(tok) == 250002


def test_embeddings_are_cross_lingual(built):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built)
    model = AutoModel.from_pretrained(built).eval()

    def embed(texts):
        batch = tok(texts, padding=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None]
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    question = embed(["query: How many days of paid annual leave do employees get?"])
    same_fact = embed(
        [
            "passage: Les salariés ont droit à 25 jours de congés payés par an.",
            "passage: 従業員は年間25日の有給休暇を取得できます。",
        ]
    )
    unrelated = embed(
        [
            "passage: The cafeteria serves lunch from noon to 2 pm.",
            "passage: Le parking est réservé aux visiteurs le vendredi.",
        ]
    )
    near, far = question @ same_fact.T, question @ unrelated.T
    assert near.min() > far.max() + 0.03


def test_model_specs_resolve_clearly(tmp_path):
    with pytest.raises(ModelLoadError, match="build-model"):
        resolve("offline:multilingual-e5-small", tmp_path)
    with pytest.raises(ModelLoadError, match="unknown offline model"):
        resolve("offline:nope", tmp_path)
    with pytest.raises(ModelLoadError, match="not a model folder"):
        resolve("./missing-folder", tmp_path)
    assert resolve("salti/bert-base-multilingual-cased-finetuned-squad", tmp_path).startswith("salti/")
    with pytest.raises(ModelLoadError, match="hub"):
        load_qa_model("kate-test/no-such-model-anywhere")  # no hub here: a clear error, not a traceback
