"""docs/qa-results.md's experiment sections come from the JSON records in docs/qa-runs/."""

from __future__ import annotations

import json

from measure.qa_report import _runs_section


def test_runs_section_says_what_is_missing(tmp_path):
    text = "\n".join(_runs_section(tmp_path))
    assert text.count("Not measured yet") == 2 and "Cross-lingual pairs" not in text


def test_runs_section_renders_every_recorded_experiment(tmp_path):
    mode = {"kind": "mode", "start": "base", "data": "en 200 + fr 205", "steps": 81, "f1": 28.72,
            "exact_match": 15.22, "seconds": 1218.0, "command": "kate qa train --mode fixed"}  # fmt: skip
    (tmp_path / "mode-fixed.json").write_text(json.dumps({**mode, "mode": "fixed"}))
    (tmp_path / "mode-validated.json").write_text(
        json.dumps({**mode, "mode": "validated", "kept": 40, "f1": 31.0})
    )
    point = {"setting": "target only", "target_examples": 50, "f1": 3.5, "exact_match": 1.0}
    curve = {"kind": "curve", "target": "fr.train", "dev": "fr.dev", "start": "base", "others": ["en.train"],
             "others_sample": 200, "command": "kate qa curve", "points": [point]}  # fmt: skip
    (tmp_path / "curve.json").write_text(json.dumps(curve))
    (tmp_path / "learning-curve.png").write_bytes(b"\x89PNG")
    cells = {f"q-{q}.c-{c}": {"without_pairs": {"f1": 40.0}, "with_pairs": {"f1": 45.5}}
             for q in ("en", "fr", "ja") for c in ("en", "fr", "ja")}  # fmt: skip
    (tmp_path / "pairs.json").write_text(
        json.dumps(
            {"kind": "cross-lingual", "about": "Pairs.", "commands": ["kate qa train"], "cells": cells}
        )
    )
    text = "\n".join(_runs_section(tmp_path))
    assert "Not measured yet" not in text
    assert "| base | en 200 + fr 205 | fixed | 81 | 81 | 28.72 / 15.22 | 20 min |" in text
    assert "| validated | 81 | 40 | 31.00 / 15.22 |" in text
    assert (
        "![learning curve](qa-runs/learning-curve.png)" in text
        and "| target only | 50 | 3.50 | 1.00 |" in text
    )
    assert text.count("40.0 → **45.5** (+5.5)") == 9


def test_report_says_when_the_reader_is_an_average(tmp_path):
    """An averaged reader carries its last stage's training summary: the report must not pass that stage off
    as the whole model's training."""
    from measure.qa_report import render

    stage = {"examples": {"piaf.fr.train.json": 2569}, "steps": 520, "seconds": 3002.2}
    plain = render({}, (0.0, []), None, "m", "kate qa report", stage, tmp_path)
    averaged = render({}, (0.0, []), None, "m", "kate qa report", {**stage, "averaged": ["a", "b"]}, tmp_path)
    assert "Training: 2569 examples (piaf.fr.train.json 2569), 520 steps in 50 min" in plain
    assert "mean of" not in plain
    assert "the model is the mean of 2 readers' weights" in averaged
