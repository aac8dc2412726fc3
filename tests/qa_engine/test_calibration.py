"""Calibrated confidence: a logistic fit that means what it says, a threshold chosen apart, the lookup."""

import math
import random

import pytest

from qa_engine.calibration import (
    UNCALIBRATED,
    Calibration,
    choose_threshold,
    fit_logistic,
    for_model,
    report,
)


def synthetic(n: int, seed: int) -> tuple[list[float], list[bool]]:
    """Scores whose true P(right) is sigmoid(0.8 * score - 4)."""
    rng = random.Random(seed)
    scores = [rng.uniform(-2, 12) for _ in range(n)]
    labels = [rng.random() < 1 / (1 + math.exp(-(0.8 * s - 4))) for s in scores]
    return scores, labels


def test_fit_recovers_the_curve_and_is_calibrated_on_new_data():
    slope, intercept = fit_logistic(*synthetic(4000, 0))
    assert slope == pytest.approx(0.8, rel=0.15) and intercept == pytest.approx(-4, rel=0.15)
    cal = Calibration(slope, intercept)
    scores, labels = synthetic(4000, 1)  # questions the curve never saw
    rep = report([cal.confidence(s) for s in scores], labels, 0.5)
    assert rep.ece < 0.03
    raw = report([min(1.0, max(0.0, s / 12)) for s in scores], labels, 0.5)  # a naive squashing of the score
    assert rep.ece < raw.ece


def test_confidence_is_a_probability_even_for_extreme_scores():
    cal = Calibration(2.0, -1.0)
    assert cal.confidence(-1e6) == 0.0 and cal.confidence(1e6) == 1.0
    assert 0 < cal.confidence(0.0) < 1 and cal.confidence(0.5) == pytest.approx(0.5)
    assert UNCALIBRATED.confidence(6.5) == pytest.approx(0.5)  # the old margin rule, when nothing is fitted


def test_fit_refuses_one_class_only():
    with pytest.raises(ValueError, match="both"):
        fit_logistic([1.0, 2.0, 3.0], [True, True, True])


def test_threshold_makes_the_most_right_decisions():
    conf = [0.1, 0.2, 0.4, 0.6, 0.7, 0.9]
    right = [False, False, False, True, True, True]
    threshold = choose_threshold(conf, right)  # any value in (0.4, 0.6] splits them; the lowest tried wins
    assert 0.4 < threshold <= 0.6
    rep = report(conf, right, threshold)
    assert (rep.answered, rep.right_answered, rep.wrong_held_back) == (3, 3, 3)


def test_a_model_folder_carries_its_own_calibration(tmp_path):
    Calibration(1.5, -3.0, threshold=0.42, model=str(tmp_path)).save(tmp_path / "calibration.json")
    loaded = for_model(str(tmp_path))
    assert (loaded.slope, loaded.intercept, loaded.threshold) == (1.5, -3.0, 0.42)
    assert for_model(str(tmp_path / "elsewhere")) is UNCALIBRATED  # nothing fitted: the old rule


def test_shipped_calibration_belongs_to_the_shipped_weights():
    from qa_engine.model_folders import sha256_of
    from qa_engine.shipped import SHIPPED_CALIBRATION, SHIPPED_FILE
    from qa_engine.types import DEFAULT_MODEL

    assert SHIPPED_CALIBRATION.is_file(), "run `kate qa calibrate` after changing the shipped weights"
    shipped = Calibration.load(SHIPPED_CALIBRATION)
    assert shipped.weights_sha256 == sha256_of(SHIPPED_FILE)
    assert for_model(DEFAULT_MODEL) == shipped
    assert 0.0 < shipped.threshold < 1.0 and shipped.slope > 0
    assert shipped.fitted["splits"]["fit"]["questions"] >= 40


def test_a_limited_calibration_run_keeps_its_three_splits_balanced():
    """`kate qa calibrate --limit N` takes each file's questions from the fit, threshold and report splits in
    turn: a plain lowest-hash cut once left 67 of 543 answers to fit the curve on."""
    from measure.qa_calibrate import SPLITS, balanced_sample, split_of
    from qa_engine.evaluate import QAExample

    examples = [QAExample(f"q{i}", "?", "c", ("a",)) for i in range(300)]
    for limit in (7, 15, 30):
        chosen = balanced_sample(examples, limit)
        sizes = [sum(split_of(ex.id) == s for ex in chosen) for s in SPLITS]
        assert len(chosen) == limit and max(sizes) - min(sizes) <= 1, sizes
        assert len({ex.id for ex in chosen}) == limit
    # parallel files (the same ids in another order) choose the same questions
    ids = {e.id for e in balanced_sample(examples, 15)}
    assert {e.id for e in balanced_sample(examples[::-1], 15)} == ids
    # a file smaller than the limit gives all its questions
    assert len(balanced_sample(examples[:5], 15)) == 5
