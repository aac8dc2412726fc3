"""`kate qa curve`: F1 on a target language against the number of target-language training examples,
with and without the other languages' data (the DeepPavlov study's Figure 2).

Each point is one `kate qa train` run from the same starting model, scored on the target dev file.
Points are saved as they finish (`curve.json`), so an interrupted curve goes on where it stopped.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from qa_engine import Reader, ReaderConfig
from qa_engine.evaluate import load_squad, score_file
from qa_engine.train import TrainConfig, train


@dataclass
class CurvePoint:
    setting: str  # "target only" | "with other languages"
    target_examples: int
    f1: float
    exact_match: float
    train_seconds: float


def score_model(model: str, dev: str, models_dir: str | None, device: str) -> tuple[float, float]:
    """(F1, EM) of a model (an offline spec, looked up in `models_dir`, or a folder) on one dev file."""
    reader = Reader(ReaderConfig(model=model, models_dir=models_dir, device=device))
    s = score_file(reader, dev, progress=False)
    return s.f1, s.exact_match


def run_curve(
    base: TrainConfig,
    target: str,
    dev: str,
    sizes: list[int | None],
    others: list[str],
    output_dir: Path,
    progress: bool = True,
    others_sample: int | None = None,
) -> list[CurvePoint]:
    """`sizes`: target examples per point (None: all of them); 0 with no other data scores the start model.
    `others_sample`: keep that many random examples of each other-language file (the same ones at every
    point: sampling is seeded), to size the runs to the machine."""
    output_dir.mkdir(parents=True, exist_ok=True)
    record = output_dir / "curve.json"
    done = {
        (p["setting"], p["target_examples"]): CurvePoint(**p)
        for p in (json.loads(record.read_text())["points"] if record.is_file() else [])
    }
    n_target = len(load_squad(target))
    settings = [("target only", [])] + ([("with other languages", others)] if others else [])
    for setting, extra in settings:
        for size in sizes:
            n = n_target if size is None else min(size, n_target)
            if (setting, n) in done:
                continue
            print(f"curve: {setting}, {n} target examples", file=sys.stderr, flush=True)
            files = ([target] if n else []) + list(extra)
            if not files:  # zero-shot start point: the model before any training
                f1, em = score_model(base.model, dev, base.models_dir, base.device)
                point = CurvePoint(setting, 0, f1, em, 0.0)
            else:
                run_dir = output_dir / "runs" / f"{setting.replace(' ', '-')}-{n}"
                cfg = TrainConfig(
                    **{
                        **asdict(base),
                        "train_files": files,
                        "output_dir": str(run_dir),
                        "samples": {target: n, **{o: others_sample for o in extra if others_sample}},
                        "mode": "fixed",
                        "dev_files": [],
                    }
                )
                summary = train(cfg, progress=progress)
                f1, em = score_model(str(run_dir), dev, None, base.device)
                point = CurvePoint(setting, n, f1, em, summary["seconds"])
            done[(setting, n)] = point
            points = sorted(done.values(), key=lambda p: (p.setting, p.target_examples))
            record.write_text(
                json.dumps(
                    {
                        "target": Path(target).name,
                        "dev": Path(dev).name,
                        "others": [Path(o).name for o in others],
                        "others_sample": others_sample,
                        "points": [asdict(p) for p in points],
                    },
                    indent=2,
                )
            )
    points = sorted(done.values(), key=lambda p: (p.setting, p.target_examples))
    plot_curve(points, Path(dev).name, output_dir / "learning-curve.png")
    return points


def plot_curve(points: list[CurvePoint], dev_name: str, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for setting, style in (("target only", "o-"), ("with other languages", "s--")):
        mine = [p for p in points if p.setting == setting]
        if mine:
            ax.plot([p.target_examples for p in mine], [p.f1 for p in mine], style, label=setting)
    ax.set_xlabel("target-language training examples")
    ax.set_ylabel(f"F1 on {dev_name}")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Kate reader: learning curve")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return output
