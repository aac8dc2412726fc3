"""Answer confidence in [0, 1] that keeps its meaning when the reader is retrained.

A reader's score is a logit margin (span over "no answer", minus the ranker's penalty): its scale is
whatever training made it, so a raw threshold such as "6.5" means something else after every retraining.
`Calibration` maps a score to the probability that the answer is right, with a logistic curve fitted on
dev questions (`kate qa calibrate`), and carries the bot's threshold, chosen on questions it was not
fitted on (the tune half of the demo HR questions, `measure/answer_threshold.py`) and judged on others.
Each reader carries its own calibration: `calibration.json` in its model folder, or, for the shipped
reader, a file beside its weights that names their sha256 (a calibration never silently outlives the
weights it was fitted for).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

FILE_NAME = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    slope: float
    intercept: float
    threshold: float = 0.5  # the bot answers at or above this confidence (KATE_ANSWER_MIN_CONFIDENCE)
    model: str = ""  # what it was fitted for
    weights_sha256: str = ""  # the shipped weight file it belongs to (shipped reader only)
    fitted: dict = field(default_factory=dict)  # how: data, counts, scores on the report split

    def confidence(self, score: float) -> float:
        z = self.slope * float(score) + self.intercept
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def score_at(self, confidence: float) -> float:
        """The score whose confidence is `confidence` (the inverse of `confidence`); +inf when no score
        reaches it (a flat or decreasing curve, or a confidence of 1 or more)."""
        if self.slope <= 0 or confidence >= 1.0:
            return math.inf
        if confidence <= 0.0:
            return -math.inf
        return (math.log(confidence / (1.0 - confidence)) - self.intercept) / self.slope

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


# Without a fitted calibration: a curve centred on the margin the bot used before calibration existed
# (6.5), so an uncalibrated reader behaves as Kate did, with a warning that says so.
UNCALIBRATED = Calibration(slope=1.0, intercept=-6.5, threshold=0.5, model="uncalibrated")


def for_model(spec: str) -> Calibration:
    """The calibration of a reader: `calibration.json` in its folder (a local model folder), the shipped
    one for the shipped reader (when it names the weights in this checkout), else `UNCALIBRATED` with a
    warning."""
    folder = Path(spec).expanduser()
    if not spec.startswith("offline:") and (folder / FILE_NAME).is_file():
        return Calibration.load(folder / FILE_NAME)
    from .model_folders import sha256_of
    from .shipped import SHIPPED_CALIBRATION, SHIPPED_FILE
    from .types import DEFAULT_MODEL

    if spec == DEFAULT_MODEL and SHIPPED_CALIBRATION.is_file():
        calibration = Calibration.load(SHIPPED_CALIBRATION)
        if calibration.weights_sha256 == sha256_of(SHIPPED_FILE):
            return calibration
        logger.warning("%s was fitted for other weights: run `kate qa calibrate`", SHIPPED_CALIBRATION.name)
    else:
        logger.warning("no calibration for reader %r: confidences are a guess; run `kate qa calibrate`", spec)
    return UNCALIBRATED


# -- fitting ----------------------------------------------------------------------------------------------
def fit_logistic(scores: Sequence[float], labels: Sequence[bool], l2: float = 1e-4) -> tuple[float, float]:
    """(slope, intercept) of P(right | score) by Newton's method on the log-likelihood (a tiny L2 keeps
    it finite when the two classes separate)."""
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(x) < 2 or y.min() == y.max():
        raise ValueError("calibration needs both right and wrong answers")
    mean, std = x.mean(), x.std() or 1.0
    z = (x - mean) / std  # fit on standardised scores, then map back
    w = np.zeros(2)
    design = np.stack([z, np.ones_like(z)], axis=1)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + l2 * np.array([w[0], 0.0])
        hess = (design * (p * (1 - p))[:, None]).T @ design + l2 * np.diag([1.0, 0.0])
        step = np.linalg.solve(hess + 1e-9 * np.eye(2), grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    slope = w[0] / std
    return float(slope), float(w[1] - slope * mean)


def choose_threshold(confidences: Sequence[float], labels: Sequence[bool]) -> float:
    """The confidence with the most good decisions (answer when right, hold back when wrong or when the
    pages do not answer); ties go to the lower one (answer more)."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(labels, dtype=bool)
    best_t, best_good = 0.5, -1
    for t in np.unique(np.round(np.concatenate([conf, [0.5]]), 3)):
        good = int(((conf >= t) == right).sum())
        if good > best_good:
            best_t, best_good = float(t), good
    return best_t


@dataclass
class CalibrationReport:
    n: int
    right: int
    ece: float  # expected calibration error, 10 equal-width bins, in points of probability
    brier: float
    answered: int  # at the threshold
    right_answered: int
    wrong_held_back: int
    bins: list[tuple[float, float, int]]  # (mean confidence, share right, count) per non-empty bin


def report(confidences: Sequence[float], labels: Sequence[bool], threshold: float) -> CalibrationReport:
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(labels, dtype=bool)
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, 9)
    bins, ece = [], 0.0
    for b in range(10):
        mask = which == b
        if mask.any():
            bins.append((float(conf[mask].mean()), float(right[mask].mean()), int(mask.sum())))
            ece += mask.sum() / len(conf) * abs(conf[mask].mean() - right[mask].mean())
    given = conf >= threshold
    return CalibrationReport(
        n=len(conf),
        right=int(right.sum()),
        ece=float(ece),
        brier=float(((conf - right) ** 2).mean()),
        answered=int(given.sum()),
        right_answered=int((given & right).sum()),
        wrong_held_back=int((~given & ~right).sum()),
        bins=bins,
    )
