"""`kate qa study`: the DeepPavlov study (M-BERT cross-lingual transfer for reading comprehension) on Kate's
reader, sized to the machine: fixed vs validated training, and the learning curve of a target language.

The paper's questions, asked of Kate's encoder:
- *Learning curve* (its Figures 2-3): F1 on the target language's dev set against the number of
  target-language training examples, starting from the base model (its "-SQuAD" curve) and from a reader
  first trained on English SQuAD (our cheap stand-in for its "+SQuAD" curve, which trains on both at once).
- *Fixed vs validated* (its Tables 1-3): a set number of epochs against training that stops when F1 on a
  validation set stops improving and keeps the best weights.

The dev file is cut in two by a seeded hash of the question ids: a *validation* part that only the
validated mode looks at, and a *test* part that every number is reported on, so early stopping never sees
the questions it is judged by. Every run is saved as it finishes (`study.json`), so an interrupted study
goes on where it stopped; `learning-curve.png` is redrawn at the end.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from qa_engine.train import TrainConfig, train

from .qa_curve import score_model

FROM_BASE = "from the base model"
FROM_ENGLISH = "from the English reader"
_SLUGS = {FROM_BASE: "base", FROM_ENGLISH: "english"}  # run folder names


@dataclass
class StudyRun:
    start: str  # FROM_BASE | FROM_ENGLISH
    mode: str  # fixed | validated | none (the start model, untrained on the target)
    target_examples: int
    f1: float
    exact_match: float
    steps: int
    train_seconds: float
    best_validation_f1: float | None = None


def split_dev(dev: Path, out_dir: Path, validation: int, test: int, seed: int = 0) -> tuple[Path, Path]:
    """Write `validation` and `test` questions of `dev` (disjoint, chosen by a seeded hash of their ids)
    as two SQuAD files that keep the source's language part in their names (the metric follows it)."""
    data = json.loads(dev.read_text(encoding="utf-8"))
    ids = [qa["id"] for art in data["data"] for par in art["paragraphs"] for qa in par["qas"]]
    order = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
    parts = {"val": set(order[:validation]), "test": set(order[validation : validation + test])}
    stem = dev.name.removesuffix(".json").removesuffix(".dev")
    paths = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for part, keep in parts.items():
        articles = []
        for art in data["data"]:
            paragraphs = []
            for par in art["paragraphs"]:
                qas = [qa for qa in par["qas"] if qa["id"] in keep]
                if qas:
                    paragraphs.append({**par, "qas": qas})
            if paragraphs:
                articles.append({**art, "paragraphs": paragraphs})
        path = out_dir / f"{stem}.{part}.json"
        path.write_text(json.dumps({"version": "kate-study", "data": articles}, ensure_ascii=False))
        paths.append(path)
    return paths[0], paths[1]


class Study:
    """The study's runs: each trained once, scored on the test part, recorded at once."""

    def __init__(
        self, base: TrainConfig, output_dir: Path, test_file: Path, val_file: Path, progress: bool = True
    ) -> None:
        self.base, self.output_dir, self.test_file, self.val_file = base, output_dir, test_file, val_file
        self.progress = progress
        self.record = output_dir / "study.json"
        saved = json.loads(self.record.read_text()) if self.record.is_file() else {}
        self.runs = {self._key(r): r for r in (StudyRun(**r) for r in saved.get("runs", []))}
        self.meta: dict = saved.get("meta", {})

    @staticmethod
    def _key(run: StudyRun) -> tuple[str, str, int]:
        return run.start, run.mode, run.target_examples

    def score(self, model: str) -> tuple[float, float]:
        return score_model(model, str(self.test_file), self.base.models_dir, self.base.device)

    def run(self, start: str, model: str, mode: str, files: list[str], samples: dict, n: int) -> StudyRun:
        key = (start, mode, n)
        if key in self.runs:
            return self.runs[key]
        print(f"study: {start}, {mode}, {n} target examples", file=sys.stderr, flush=True)
        if mode == "none":
            f1, em = self.score(model)
            result = StudyRun(start, mode, n, f1, em, 0, 0.0)
        else:
            folder = self.output_dir / "runs" / f"{_SLUGS[start]}-{mode}-{n}"
            cfg = replace(
                self.base,
                model=model,
                train_files=files,
                output_dir=str(folder),
                samples=samples,
                mode=mode,
                dev_files=[str(self.val_file)] if mode == "validated" else [],
            )
            summary = train(cfg, progress=self.progress)
            f1, em = self.score(str(folder))
            best = summary["best_dev_f1"]
            best = None if best is None else round(best, 2)
            result = StudyRun(start, mode, n, f1, em, summary["steps"], summary["seconds"], best)
        self.runs[key] = result
        self.save()
        return result

    def save(self) -> None:
        runs = sorted(self.runs.values(), key=lambda r: (r.start, r.mode, r.target_examples))
        self.record.write_text(json.dumps({"meta": self.meta, "runs": [asdict(r) for r in runs]}, indent=2))


def run_study(
    base: TrainConfig,
    *,
    target: str,
    dev: str,
    english: str,
    english_examples: int,
    sizes: list[int],
    modes_at: int,
    validation: int,
    test: int,
    output_dir: Path,
    command: str = "",
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> list[StudyRun]:
    """The learning curve in validated mode from both starts at each of `sizes` target examples (0: the
    start model itself), and the fixed mode beside it at `modes_at` examples."""
    output_dir.mkdir(parents=True, exist_ok=True)
    val_file, test_file = split_dev(Path(dev), output_dir / "split", validation, test)
    study = Study(base, output_dir, test_file, val_file, progress)
    meta = {
        "target": Path(target).name,
        "dev": Path(dev).name,
        "validation_questions": validation,
        "test_questions": test,
        "english": Path(english).name,
        "english_examples": english_examples,
        "base": base.model,
        "epochs": base.epochs,
        "learning_rate": base.learning_rate,
        "batch_size": base.batch_size,
        "eval_every": base.eval_every,
        "patience": base.patience,
        "precision": base.precision,
        "command": command,
    }
    changed = sorted(k for k in meta if k != "command" and k in study.meta and study.meta[k] != meta[k])
    if study.runs and changed:
        raise ValueError(
            f"{study.record} holds runs made with other settings ({', '.join(changed)}): "
            "give this study another output folder"
        )
    study.meta = meta
    english_dir = output_dir / "runs" / "english-reader"
    if not (english_dir / "training.json").is_file():
        log(f"study: the English reader ({english_examples} SQuAD examples, fixed mode)")
        train(
            replace(
                base,
                train_files=[english],
                output_dir=str(english_dir),
                samples={english: english_examples},
                mode="fixed",
                epochs=1.0,
            ),
            progress=progress,
        )
    starts = [(FROM_BASE, base.model), (FROM_ENGLISH, str(english_dir))]
    for start, model in starts:
        for n in sizes:
            if n == 0:
                study.run(start, model, "none", [], {}, 0)
            else:
                study.run(start, model, "validated", [target], {target: n}, n)
    for start, model in starts:
        study.run(start, model, "fixed", [target], {target: modes_at}, modes_at)
    plot_study(list(study.runs.values()), Path(dev).name, output_dir / "learning-curve.png")
    return sorted(study.runs.values(), key=lambda r: (r.start, r.mode, r.target_examples))


def render_study(record: Path) -> list[str]:
    """docs/qa-results.md's section for a study recorded in `record` (study.json): the plot and the table."""
    saved = json.loads(record.read_text(encoding="utf-8"))
    meta, runs = saved["meta"], [StudyRun(**r) for r in saved["runs"]]
    order = {"none": 0, "validated": 1, "fixed": 2}
    runs.sort(key=lambda r: (r.start != FROM_BASE, r.target_examples, order[r.mode]))
    lines = [
        "## The DeepPavlov study on Japanese (CPU-sized)",
        "",
        f"F1 on {meta['test_questions']} questions of `{meta['dev']}` against the number of "
        f"`{meta['target']}` training examples, from the base model `{meta['base']}` (no QA head) and "
        f"from an English reader (the base model after one epoch over {meta['english_examples']} "
        f"questions of `{meta['english']}`). Validated mode evaluates every {meta['eval_every']} steps "
        f"on {meta['validation_questions']} other questions of the same dev file, stops after "
        f"{meta['patience']} evaluations without progress and keeps the best weights; fixed mode trains "
        f"its {meta['epochs']:g} epochs through (lr {meta['learning_rate']:g}, batches of "
        f"{meta['batch_size']}, word embeddings frozen).",
        "",
        f"![learning curve](qa-runs/{record.parent.name}/learning-curve.png)",  # docs/qa-results.md's link
        "",
        "| start | mode | target examples | steps | F1 | EM | best validation F1 | train time |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        best = "" if r.best_validation_f1 is None else f"{r.best_validation_f1:.1f}"
        lines.append(
            f"| {r.start} | {r.mode if r.mode != 'none' else '(no target training)'} | {r.target_examples} | "
            f"{r.steps} | {r.f1:.1f} | {r.exact_match:.1f} | {best} | {r.train_seconds / 60:.0f} min |"
        )
    if meta.get("command"):
        lines += ["", f"Command: `{meta['command']}`"]
    return [*lines, ""]


def plot_study(runs: list[StudyRun], dev_name: str, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for start, style in ((FROM_BASE, "o-"), (FROM_ENGLISH, "s-")):
        curve = sorted(
            (r for r in runs if r.start == start and r.mode in ("none", "validated")),
            key=lambda r: r.target_examples,
        )
        if curve:
            ax.plot([r.target_examples for r in curve], [r.f1 for r in curve], style, label=start)
        for r in runs:
            if r.start == start and r.mode == "fixed":
                ax.plot([r.target_examples], [r.f1], "x", color="grey", markersize=8)
    ax.plot([], [], "x", color="grey", label="fixed mode (same data)")
    ax.set_xlabel("target-language training examples")
    ax.set_ylabel(f"F1 on {dev_name} (test part)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("Kate reader: the DeepPavlov learning curve, CPU-sized")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return output
