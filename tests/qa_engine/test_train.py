"""Training mechanics on tiny models: labels, data mixing, validated mode, exact resume, learning."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import random_model, small_vocab_tokenizer

import qa_engine.train as train_module
from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.features import encode
from qa_engine.train import TrainConfig, train
from qa_engine.train_data import LabelledExample, cross_lingual_pairs, label_chunk

WORDS = [
    "the",
    "leave",
    "policy",
    "gives",
    "employees",
    "paid",
    "days",
    "per",
    "year",
    "office",
    "opens",
    "at",
    "nine",
    "remote",
    "work",
    "allowed",
]
VOCAB = " ".join(WORDS) + " alpha what is answer where who " + " ".join(f"w{i}" for i in range(40))


def toy_file(path, n, seed=0, prefix="q"):
    """Each context hides 'alpha' among filler words; the question asks for it."""
    rng = random.Random(seed)
    paragraphs = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 20))]
        pos = rng.randint(0, len(words))
        words.insert(pos, "alpha")
        context = " ".join(words)
        start = len(" ".join(words[:pos])) + (1 if pos else 0)
        paragraphs.append(
            {
                "context": context,
                "qas": [
                    {
                        "id": f"{prefix}{i}",
                        "question": "what is the answer",
                        "answers": [{"text": "alpha", "answer_start": start}],
                    }
                ],
            }
        )
    path.write_text(json.dumps({"data": [{"title": "toy", "paragraphs": paragraphs}]}))
    return str(path)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    tok = small_vocab_tokenizer(VOCAB)
    random_model(len(tok), layers=2, seed=0, positions=128).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_labels_point_at_the_answer_or_cls():
    tok = small_vocab_tokenizer(VOCAB)
    text = " ".join(f"w{i}" for i in range(30)) + " alpha " + " ".join(f"w{i}" for i in range(30))
    start = text.index("alpha")
    chunks = encode(
        tok, ["what is the answer"], [[Passage(text)]], max_length=24, stride=6, max_question_tokens=16
    )
    labels = [label_chunk(c, start, start + 5) for c in chunks]
    inside = [(c, s, e) for c, (s, e) in zip(chunks, labels, strict=True) if s]
    assert inside and any(lab == (0, 0) for lab in labels)
    for chunk, s, e in inside:
        assert (chunk.offsets[s, 0], chunk.offsets[e, 1]) == (start, start + 5)


def test_cross_lingual_pairs_swap_questions_between_parallel_files():
    en = [("1", LabelledExample("How many days?", "Leave is 25 days.", 9, "25 days"))]
    fr = [("1", LabelledExample("Combien de jours ?", "Le congé est de 25 jours.", 16, "25 jours"))]
    pairs = cross_lingual_pairs({"en": en, "fr": fr, "x": [("2", en[0][1])]}, 1, random.Random(0))
    assert {(p.question, p.context) for p in pairs} == {
        ("Combien de jours ?", "Leave is 25 days."),
        ("How many days?", "Le congé est de 25 jours."),
    }


def test_training_learns_and_samples(tmp_path, tiny_dir):
    data = toy_file(tmp_path / "toy.en.train.json", 160)
    dev = toy_file(tmp_path / "toy.en.dev.json", 30, seed=1, prefix="d")
    cfg = TrainConfig(
        model=str(tiny_dir),
        train_files=[data],
        output_dir=str(tmp_path / "out"),
        epochs=6,
        learning_rate=3e-3,
        batch_size=16,
        dropout=0.0,
        max_length=64,
        seed=0,
        warmup=0.0,
        samples={"toy.en.train.json": 120},
    )
    summary = train(cfg, progress=False)
    assert summary["examples"] == {"toy.en.train.json": 120}
    assert summary["steps"] == 6 * 8
    reader = Reader(ReaderConfig(model=str(tmp_path / "out")))
    before = Reader(ReaderConfig(model=str(tiny_dir)))
    from qa_engine.evaluate import load_squad, predict, score_predictions

    examples = load_squad(dev)
    trained = score_predictions(examples, predict(reader, examples), "en").exact_match
    untrained = score_predictions(examples, predict(before, examples), "en").exact_match
    assert trained >= 80 and trained > untrained + 40


def test_validated_mode_stops_early_and_keeps_the_best(tmp_path, tiny_dir):
    data = toy_file(tmp_path / "toy.en.train.json", 64)
    dev = toy_file(tmp_path / "toy.en.dev.json", 10, seed=2, prefix="d")
    cfg = TrainConfig(
        model=str(tiny_dir),
        train_files=[data],
        output_dir=str(tmp_path / "out"),
        mode="validated",
        dev_files=[dev],
        epochs=50,
        learning_rate=0.0,
        batch_size=8,
        eval_every=2,
        patience=2,
        max_length=64,
    )
    summary = train(cfg, progress=False)  # lr 0: F1 never improves after the first evaluation
    assert summary["stopped_early"] and summary["steps"] == 6
    assert [h["step"] for h in summary["history"]] == [2, 4, 6]
    assert (tmp_path / "out" / "best" / "config.json").is_file()
    with pytest.raises(ValueError, match="dev"):
        train(
            TrainConfig(
                model=str(tiny_dir), train_files=[data], output_dir=str(tmp_path / "x"), mode="validated"
            )
        )


def test_interrupted_training_resumes_exactly(tmp_path, tiny_dir, monkeypatch):
    data = toy_file(tmp_path / "toy.en.train.json", 48)

    def cfg(out):
        return TrainConfig(
            model=str(tiny_dir),
            train_files=[data],
            output_dir=str(tmp_path / out),
            epochs=2,
            batch_size=8,
            max_length=64,
            checkpoint_every=3,
            learning_rate=1e-3,
        )

    straight = train(cfg("straight"), progress=False)
    real_collate, calls = train_module.collate, {"n": 0}

    def failing_collate(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # the machine stops mid-epoch, after the step-3 checkpoint
        return real_collate(*args, **kwargs)

    monkeypatch.setattr(train_module, "collate", failing_collate)
    with pytest.raises(KeyboardInterrupt):
        train(cfg("resumed"), progress=False)
    counted = {"n": 0}

    def counting_collate(*args, **kwargs):
        counted["n"] += 1
        return real_collate(*args, **kwargs)

    monkeypatch.setattr(train_module, "collate", counting_collate)
    resumed = train(cfg("resumed"), progress=False)
    assert resumed["steps"] == straight["steps"] == 12
    assert counted["n"] == 9  # it went on from the step-3 checkpoint, it did not start again
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def fast_learner(tiny_dir, **extra) -> TrainConfig:
    """The starting config of the experiment runners' tests: the tiny model learns the toy task in a few
    steps (high rate, no dropout or warm-up), so every point is cheap and its F1 means something."""
    return TrainConfig(
        model=str(tiny_dir),
        train_files=[],
        output_dir="",
        epochs=4,
        learning_rate=3e-3,
        batch_size=16,
        dropout=0.0,
        warmup=0.0,
        max_length=64,
        **extra,
    )


def test_learning_curve_points_resume_and_plot(tmp_path, tiny_dir):
    from measure.qa_curve import run_curve

    target = toy_file(tmp_path / "toy.en.train.json", 80)
    other = toy_file(tmp_path / "other.en.train.json", 60, seed=3, prefix="o")
    dev = toy_file(tmp_path / "toy.en.dev.json", 20, seed=4, prefix="d")
    base = fast_learner(tiny_dir)
    out = tmp_path / "curve"
    points = run_curve(base, target, dev, [0, 80], [other], out, progress=False)
    keys = {(p.setting, p.target_examples) for p in points}
    assert keys == {
        ("target only", 0),
        ("target only", 80),
        ("with other languages", 0),
        ("with other languages", 80),
    }
    by_key = {(p.setting, p.target_examples): p.f1 for p in points}
    assert by_key[("target only", 80)] > by_key[("target only", 0)] + 30
    assert (out / "learning-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "curve.json").read_text())
    assert len(saved["points"]) == 4
    again = run_curve(base, target, dev, [0, 80], [other], out, progress=False)  # all points cached
    assert [p.f1 for p in again] == [p.f1 for p in points]


def test_study_keeps_validation_apart_trains_both_starts_and_resumes(tmp_path, tiny_dir):
    """The DeepPavlov study in miniature: early stopping looks only at the validation part of the dev file,
    the English reader is a better start than the base model, and a second call reuses every run."""
    from measure.qa_study import FROM_BASE, FROM_ENGLISH, render_study, run_study

    target = toy_file(tmp_path / "toy.ja.train.json", 64)
    english = toy_file(tmp_path / "toy.en.train.json", 64, seed=3, prefix="e")
    dev = toy_file(tmp_path / "toy.ja.dev.json", 40, seed=4, prefix="d")
    base = fast_learner(tiny_dir, eval_every=4, patience=2)
    out = tmp_path / "study"
    kwargs = dict(target=target, dev=dev, english=english, english_examples=64, sizes=[0, 32])
    kwargs |= dict(modes_at=32, validation=15, test=20, output_dir=out, log=lambda line: None, progress=False)
    runs = run_study(base, **kwargs)
    val = json.loads((out / "split" / "toy.ja.val.json").read_text())
    test = json.loads((out / "split" / "toy.ja.test.json").read_text())
    ids = [{q["id"] for p in f["data"][0]["paragraphs"] for q in p["qas"]} for f in (val, test)]
    assert (len(ids[0]), len(ids[1])) == (15, 20) and not ids[0] & ids[1]
    by_key = {(r.start, r.mode, r.target_examples): r for r in runs}
    assert set(by_key) == {
        (start, mode, n)
        for start in (FROM_BASE, FROM_ENGLISH)
        for mode, n in (("none", 0), ("validated", 32), ("fixed", 32))
    }
    assert by_key[(FROM_ENGLISH, "none", 0)].f1 > by_key[(FROM_BASE, "none", 0)].f1 + 30
    assert by_key[(FROM_BASE, "validated", 32)].best_validation_f1 is not None
    assert by_key[(FROM_BASE, "fixed", 32)].best_validation_f1 is None
    assert (out / "learning-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_study(base, **kwargs)  # every run is in study.json: nothing trains again
    assert [r.f1 for r in again] == [r.f1 for r in runs]
    section = render_study(out / "study.json")
    rows = [line for line in section if line.startswith("| from ")]
    assert len(rows) == 6 and rows[0].startswith(f"| {FROM_BASE} | (no target training) | 0 |")
    assert "![learning curve](qa-runs/study/learning-curve.png)" in section
    with pytest.raises(ValueError, match="learning_rate"):  # other settings never reuse these runs
        run_study(replace(base, learning_rate=1e-3), **kwargs)


def test_time_budget_stops_cleanly_and_the_next_call_goes_on_exactly(tmp_path, tiny_dir, monkeypatch):
    """A run spanning working sessions: stop when the budget is spent, resume later (features from the
    cache, same data order, optimizer, schedule and RNG), and end with the uninterrupted run's weights.
    With gradient accumulation, so a step is several micro-batches."""
    data = toy_file(tmp_path / "toy.en.train.json", 48)

    def cfg(out, budget=None):
        return TrainConfig(
            model=str(tiny_dir),
            train_files=[data],
            output_dir=str(tmp_path / out),
            epochs=2,
            batch_size=4,
            grad_accumulation=2,
            max_length=64,
            learning_rate=1e-3,
            time_budget=budget,
        )

    straight = train(cfg("straight"), progress=False)
    assert straight["finished"] and straight["steps"] == straight["total_steps"] == 12
    clock = {"t": 1000.0}

    def fake_time():
        clock["t"] += 1.0  # every call to the clock is one second of training
        return clock["t"]

    monkeypatch.setattr(train_module.time, "time", fake_time)
    first = train(cfg("split", budget=15), progress=False)
    assert not first["finished"] and 0 < first["steps"] < 12
    encoded = {"n": 0}
    real_encode = train_module.build_feature_store.__globals__["encode"]

    def counting_encode(*args, **kwargs):
        encoded["n"] += 1
        return real_encode(*args, **kwargs)

    monkeypatch.setitem(train_module.build_feature_store.__globals__, "encode", counting_encode)
    second = train(cfg("split"), progress=False)
    assert second["finished"] and second["steps"] == 12
    assert encoded["n"] == 0  # the features came from the run's cache
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_samples_of_parallel_files_keep_the_same_questions(tmp_path):
    from qa_engine.train_data import MixSpec, gather_examples

    en = toy_file(tmp_path / "toy.en.train.json", 40, seed=0, prefix="q")
    de = toy_file(tmp_path / "toy.de.train.json", 40, seed=5, prefix="q")  # same ids, other texts...
    german = json.loads((tmp_path / "toy.de.train.json").read_text())
    for paragraph in german["data"][0]["paragraphs"]:
        paragraph["qas"][0]["question"] = "was ist die antwort"  # ...and another language's question
    (tmp_path / "toy.de.train.json").write_text(json.dumps(german))
    spec = MixSpec(files=(en, de), samples=(("toy.en.train.json", 10), ("toy.de.train.json", 10)),
                   cross_lingual=True, cross_lingual_max=15)  # fmt: skip
    examples, counts = gather_examples(spec)
    assert counts == {"toy.en.train.json": 10, "toy.de.train.json": 10, "cross-lingual pairs": 15}
    # every kept question has its translation kept too, so all 20 could pair; the cap keeps 15
    smaller, _ = gather_examples(MixSpec(files=(en,), samples=(("toy.en.train.json", 5),)))
    assert set(smaller) <= set(examples[:10])  # a smaller sample is part of a larger one


def test_sample_windows_give_disjoint_slices_for_training_stages(tmp_path):
    from qa_engine.train_data import MixSpec, gather_examples

    data = toy_file(tmp_path / "toy.en.train.json", 40)
    first, _ = gather_examples(MixSpec(files=(data,), samples=(("toy.en.train.json", 10),)))
    second, _ = gather_examples(MixSpec(files=(data,), samples=(("toy.en.train.json", (10, 25)),)))
    both, _ = gather_examples(MixSpec(files=(data,), samples=(("toy.en.train.json", 25),)))
    assert len(first) == 10 and len(second) == 15 and not set(first) & set(second)
    assert set(first) | set(second) == set(both)


def test_bench_train_times_fp32_and_bf16_on_the_same_batches(tmp_path, tiny_dir):
    from measure.bench_train import bench_train

    data = toy_file(tmp_path / "toy.en.train.json", 64)
    dev = toy_file(tmp_path / "toy.en.dev.json", 10, seed=1, prefix="d")
    out = tmp_path / "benchmarks.md"
    rows = bench_train(
        str(tiny_dir), [data], {}, [dev], output=out, steps=3, batch_size=8, limit=10, progress=False
    )
    assert [r.precision for r in rows] == ["fp32", "bf16"]
    assert all(r.features == 24 and r.seconds_per_feature > 0 for r in rows)  # 3 steps of 8, both runs
    assert rows[0].tokens == rows[1].tokens  # the same batches
    text = out.read_text()
    assert "<!-- bench:train -->" in text and "| fp32 |" in text and "| bf16 |" in text


def test_the_recipes_in_the_repository_are_complete(tmp_path):
    """Each recipe (how a shipped reader was or will be trained) names training files that exist and only
    settings `kate qa train` knows; a typo is refused, not ignored."""
    from pathlib import Path

    from core.settings import SHARED_QA_TRAIN
    from kate.cli import recipe_config

    if not SHARED_QA_TRAIN.is_dir():
        pytest.skip("../shared/data/qa/train is not beside this checkout")
    recipes = sorted((Path(train_module.__file__).parent / "recipes").glob("*.json"))
    assert {r.stem for r in recipes} >= {"stage1", "stage2", "stage3", "full-gpu"}
    for recipe in recipes:
        fields = recipe_config(recipe, SHARED_QA_TRAIN)
        TrainConfig(**fields, output_dir=str(tmp_path))  # every field is one TrainConfig knows
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": "m", "data": {}, "train": {"learning_rat": 1e-5}}))
    with pytest.raises(ValueError, match="learning_rat"):
        recipe_config(bad, SHARED_QA_TRAIN)


def test_verified_answers_exported_as_squad_train_the_reader(tmp_path, tiny_dir, redis_server, redis_client):
    """The training loop: answers HR verified (kept in Redis with their passages) are exported by
    `kate feedback export --format squad` and continue a reader's training; typed answers found in no
    passage are left out, and the count says so."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from knowledge.verified import VerifiedAnswer, VerifiedAnswers

    store = VerifiedAnswers(redis_client)
    toy = json.loads(Path(toy_file(tmp_path / "toy.json", 150)).read_text())
    for p in toy["data"][0]["paragraphs"]:
        store.put(VerifiedAnswer("what is the answer", "alpha", "en", "http://i/p", "P", p["context"]))
    store.put(VerifiedAnswer("who is the DPO", "Ana", "en"))  # typed, in no passage
    out = tmp_path / "verified.squad.json"
    kate = str(Path(sys.executable).parent / "kate")
    env = {**os.environ, "REDIS_URL": redis_server.url}
    done = subprocess.run([kate, "feedback", "export", "--format", "squad", "-o", str(out)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "150 of 151 verified answers exported" in done.stderr
    squad = json.loads(out.read_text())
    qas = [qa for d in squad["data"] for p in d["paragraphs"] for qa in p["qas"]]
    contexts = {p["context"]: p for d in squad["data"] for p in d["paragraphs"]}
    for context, p in contexts.items():
        for qa in p["qas"]:
            start = qa["answers"][0]["answer_start"]
            assert context[start : start + 5] == "alpha"
    summary = train(
        TrainConfig(model=str(tiny_dir), train_files=[str(out)], output_dir=str(tmp_path / "out"), epochs=6,
                    learning_rate=3e-3, batch_size=16, dropout=0.0, max_length=64, seed=0, warmup=0.0),
        progress=False,
    )  # fmt: skip
    assert sum(summary["examples"].values()) == len(qas)
    from qa_engine.evaluate import load_squad, predict, score_predictions

    dev = load_squad(toy_file(tmp_path / "toy.en.dev.json", 30, seed=1, prefix="d"))
    trained = score_predictions(dev, predict(Reader(ReaderConfig(model=str(tmp_path / "out"))), dev), "en")
    untrained = score_predictions(dev, predict(Reader(ReaderConfig(model=str(tiny_dir))), dev), "en")
    assert trained.exact_match >= 80 and trained.exact_match > untrained.exact_match + 40
