"""`kate qa calibrate`: fit the reader's confidence on dev questions, choose the bot's threshold on others,
and report both on a third set (docs/calibration.md, with a reliability plot).

Every dev file becomes a small intranet: its paragraphs are the pages, and each question is answered the
way the bot answers (ranker, then reader over the best `rank_top` paragraphs, re-scored by relevance).
An answer is right when it comes from the question's own paragraph with F1 >= 0.5. Half of the questions
are also asked once more with their paragraph removed, so the curve learns what a question the intranet
does not answer scores (any answer is then wrong): the bot must hold those back.
Questions are split by a hash of their id into thirds (fit / threshold / report); translations of one
question share an id across files, so a question never helps fit the curve that then judges it.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa_engine import Passage
from qa_engine.calibration import Calibration, CalibrationReport, choose_threshold, fit_logistic, report
from qa_engine.evaluate import QAExample, best_over_gold, f1_score, language_of_file, load_squad
from qa_engine.ranker import rank_and_read

SPLITS = ("fit", "threshold", "report")


@dataclass
class Instance:
    file: str
    question_id: str
    answerable: bool  # False: the question's own paragraph was removed from the collection
    score: float  # the bot's score of its best answer (-inf when there was none)
    right: bool
    split: str


def _hash(qid: str) -> int:
    return int.from_bytes(hashlib.sha256(qid.encode()).digest()[:8], "big")


def split_of(qid: str) -> str:
    return SPLITS[_hash(qid) % 3]


def asks_without_its_page(qid: str) -> bool:
    return (_hash(qid) // 3) % 2 == 0


def balanced_sample(examples: list[QAExample], limit: int) -> list[QAExample]:
    """`limit` questions of one file, taken in turn from the fit, threshold and report splits.

    Translations share ids, so twelve XQuAD files limited to their 15 lowest-hash questions hold only 15
    distinct questions, and a plain cut let chance decide how many fell in each split (67 of 543 answers
    in the fit split once). Taking the splits in turn keeps them within one question of each other per
    file, and parallel files still choose the same ids."""
    by_split = {
        s: sorted((ex for ex in examples if split_of(ex.id) == s), key=lambda ex: _hash(ex.id))
        for s in SPLITS
    }
    chosen: list[QAExample] = []
    for i in range(max((len(v) for v in by_split.values()), default=0)):
        for s in SPLITS:
            if i < len(by_split[s]) and len(chosen) < limit:
                chosen.append(by_split[s][i])
    return chosen


def collect(
    reader: object,
    ranker: object,
    dev_files: list[Path],
    *,
    limit: int | None,
    read_top: int,
    weight: float,
    progress: bool = True,
) -> list[Instance]:
    from tqdm import tqdm

    plan = []
    for path in dev_files:
        examples = load_squad(path)
        contexts = list(dict.fromkeys(ex.context for ex in examples))
        chosen = balanced_sample(examples, limit) if limit else examples
        plan.append((path, contexts, chosen))
    total = sum(len(c) + sum(asks_without_its_page(ex.id) for ex in c) for _, _, c in plan)
    rows: list[Instance] = []
    with tqdm(total=total, desc="calibrating", unit="q", disable=not progress, file=sys.stderr) as bar:
        for path, contexts, chosen in plan:
            passages = [Passage(c, url=f"{path.name}#{i}", id=str(i)) for i, c in enumerate(contexts)]
            lang = language_of_file(path) or "en"
            for ex in chosen:
                own = contexts.index(ex.context)
                for answerable in (True, False):
                    if not answerable and not asks_without_its_page(ex.id):
                        continue
                    pool = passages if answerable else [p for i, p in enumerate(passages) if i != own]
                    found = rank_and_read(
                        reader, ranker, ex.question, pool, top_k=1, read_top=read_top, weight=weight
                    )
                    best = found[0] if found and found[0].passage is not None else None
                    right = (
                        answerable
                        and best is not None
                        and best.passage.id == str(own)
                        and best_over_gold(f1_score, best.text, ex.answers, lang) >= 0.5
                    )
                    score = best.score if best is not None else float("-inf")
                    rows.append(Instance(path.name, ex.id, answerable, score, bool(right), split_of(ex.id)))
                    bar.update(1)
    return rows


@dataclass
class CalibrationRun:
    calibration: Calibration
    on_report: CalibrationReport
    on_report_old: CalibrationReport | None  # the raw threshold Kate used before, on the same questions
    instances: list[Instance]


def fit_and_choose(
    rows: list[Instance],
    model: str,
    old_threshold: float | None = 6.5,
    bot_threshold: Callable[[Calibration], tuple[float, dict]] | None = None,
) -> CalibrationRun:
    """Fit the curve on the fit split and report on the report split. The threshold is the one the
    threshold split chooses, unless `bot_threshold` chooses it from the fitted curve (on HR questions:
    `answer_threshold`); the dev choice is then kept beside it for the record."""
    finite = [r for r in rows if r.score != float("-inf")]
    floor = min((r.score for r in finite), default=0.0) - 1.0
    scores = {id(r): (r.score if r.score != float("-inf") else floor) for r in rows}
    part = {s: [r for r in rows if r.split == s] for s in SPLITS}
    slope, intercept = fit_logistic([scores[id(r)] for r in part["fit"]], [r.right for r in part["fit"]])
    curve = Calibration(slope, intercept)
    threshold = on_dev = choose_threshold(
        [curve.confidence(scores[id(r)]) for r in part["threshold"]], [r.right for r in part["threshold"]]
    )
    chosen_on: dict = {"chosen_on": "dev threshold split"}
    if bot_threshold is not None:
        threshold, chosen_on = bot_threshold(curve)
        chosen_on["threshold_chosen_on_dev"] = on_dev
    conf = [curve.confidence(scores[id(r)]) for r in part["report"]]
    labels = [r.right for r in part["report"]]
    on_report = report(conf, labels, threshold)
    old = None
    if old_threshold is not None:  # the same questions judged by the old raw margin rule
        old = report(conf, labels, curve.confidence(old_threshold))
    counts = {
        s: {
            "questions": len(p),
            "right": sum(r.right for r in p),
            "without_page": sum(not r.answerable for r in p),
        }
        for s, p in part.items()
    }
    fitted = {
        "files": sorted({r.file for r in rows}),
        "splits": counts,
        "threshold_choice": chosen_on,
        "report": {
            "ece": round(on_report.ece, 4),
            "brier": round(on_report.brier, 4),
            "answered": on_report.answered,
            "right_answered": on_report.right_answered,
            "wrong_held_back": on_report.wrong_held_back,
            "n": on_report.n,
        },
    }
    calibration = Calibration(slope, intercept, threshold=threshold, model=model, fitted=fitted)
    return CalibrationRun(calibration, on_report, old, rows)


def plot_reliability(run: CalibrationRun, output: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.0), dpi=120)
    bins = run.on_report.bins
    left.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    left.plot([b[0] for b in bins], [b[1] for b in bins], "o-", label="Kate's reader (report split)")
    for mean, share, count in bins:
        left.annotate(str(count), (mean, share), textcoords="offset points", xytext=(4, -10), fontsize=7)
    left.axvline(
        run.calibration.threshold, color="C3", ls="--", label=f"bot threshold {run.calibration.threshold:.2f}"
    )
    left.set_xlabel("confidence")
    left.set_ylabel("share of answers right")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.legend(loc="upper left", fontsize=8)
    left.set_title("Reliability (questions not used to fit)")
    finite = [r for r in run.instances if r.score != float("-inf")]
    lo, hi = min(r.score for r in finite), max(r.score for r in finite)
    grid = [lo + (hi - lo) * i / 200 for i in range(201)]
    right.plot(grid, [run.calibration.confidence(x) for x in grid], color="C0", label="confidence")
    for kind, color, flag in (("right", "C2", True), ("wrong", "C3", False)):
        xs = [r.score for r in finite if r.right == flag]
        right.hist(
            xs, bins=40, range=(lo, hi), alpha=0.35, color=color, density=True, label=f"{kind} answers"
        )
    right.set_xlabel("reader score (margin minus ranker penalty)")
    right.legend(fontsize=8)
    right.set_title("Score to confidence")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return output


def threshold_sentence(c: Calibration) -> str:
    """Where the bot's threshold comes from, in words."""
    choice = c.fitted.get("threshold_choice", {})
    tail = (
        " `KATE_ANSWER_MIN_CONFIDENCE` overrides it; below it the bot says it is unsure and links the most "
        "relevant pages."
    )
    if choice.get("chosen_on", "").startswith("demo HR"):
        return (
            f"The bot's threshold ({c.threshold:.3f}) makes the most right decisions (give a right answer, "
            "hold back a wrong one or one the pages do not answer) on the tune half of the demo HR questions "
            f"({choice['questions']} questions, {choice['right']} answered right, "
            f"{choice['unanswerable']} not on the intranet; `measure/answer_threshold.py`), not on dev "
            "files: HR passages score lower than Wikipedia paragraphs, so the dev threshold split's choice "
            f"({choice['threshold_chosen_on_dev']:.3f}) may hold back many right HR answers. The other "
            "half of the HR questions judges it in docs/bot-results.md." + tail
        )
    return (
        f"The threshold ({c.threshold:.3f}) makes the most right decisions (give a right answer, hold back a "
        "wrong one) on the dev threshold split." + tail
    )


def render(run: CalibrationRun, command: str, plot_name: str) -> str:
    c, r, old = run.calibration, run.on_report, run.on_report_old
    splits = c.fitted["splits"]

    def row(name: str, rep: CalibrationReport, threshold: str) -> str:
        wrong_given = rep.answered - rep.right_answered
        return (
            f"| {name} | {threshold} | {rep.answered} of {rep.n} | {rep.right_answered} of {rep.right} | "
            f"{wrong_given} | {rep.wrong_held_back} of {rep.n - rep.right} | "
            f"{100.0 * rep.right_answered / max(rep.answered, 1):.1f}% |"
        )

    lines = [
        "# Answer confidence: calibration and the bot's threshold",
        "",
        f"Model: `{c.model}`. Command: `{command}`.",
        "",
        "Each dev file's paragraphs are an intranet; each question is answered as the bot answers it "
        "(ranker, "
        "then reader), and half of them are asked again without their paragraph (the intranet does not "
        "answer them: any answer is wrong). Right = from the question's own paragraph with F1 >= 0.5. "
        "Questions are split by id into three sets: the curve is fitted on one, a dev threshold chosen on "
        "another, and everything below is measured on the third.",
        "",
        "| split | questions asked | right answers | asked without their paragraph |",
        "|---|---:|---:|---:|",
    ]
    for name in SPLITS:
        s = splits[name]
        lines.append(f"| {name} | {s['questions']} | {s['right']} | {s['without_page']} |")
    lines += [
        "",
        f"Confidence = 1 / (1 + exp(-({c.slope:.4f} x score {c.intercept:+.4f}))). "
        f"On the report split: expected calibration error **{100 * r.ece:.1f} points**, Brier score "
        f"{r.brier:.3f}.",
        "",
        f"![reliability]({plot_name})",
        "",
        "| rule | threshold | answers given | right answers given | wrong answers given "
        "| wrong or unanswerable held back | right when given |",
        "|---|---|---:|---:|---:|---:|---:|",
        row("calibrated (Kate's default)", r, f"confidence >= {c.threshold:.3f}"),
    ]
    if old is not None:
        lines.append(row("old raw margin rule", old, "score >= 6.5"))
    lines += [
        "",
        threshold_sentence(c),
        "",
    ]
    return "\n".join(lines)


def run_calibration(
    reader: object,
    ranker: object,
    dev_dir: Path,
    model: str,
    calibration_file: Path,
    docs: Path,
    *,
    command: str,
    limit: int | None,
    read_top: int,
    weight: float,
    weights_sha256: str = "",
    progress: bool = True,
    hr_threshold: bool = True,
) -> CalibrationRun:
    """Fit on dev files; with `hr_threshold`, choose the bot's threshold on the tune half of the demo HR
    questions (see `answer_threshold`), else on the dev threshold split."""
    from .answer_threshold import TUNE, choose_bot_threshold, read_demo_questions

    files = sorted(dev_dir.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no SQuAD dev files in {dev_dir}")
    rows = collect(reader, ranker, files, limit=limit, read_top=read_top, weight=weight, progress=progress)
    choose = None
    if hr_threshold:
        hr_rows = read_demo_questions(reader, ranker, read_top=read_top, weight=weight)
        tune = [r for r in hr_rows if r.half == TUNE]

        def choose(curve: Calibration) -> tuple[float, dict]:
            return choose_bot_threshold(hr_rows, curve), {
                "chosen_on": "demo HR questions, tune half",
                "questions": len(tune),
                "right": sum(r.right for r in tune),
                "unanswerable": sum(not r.answerable for r in tune),
            }

    run = fit_and_choose(rows, model, bot_threshold=choose)
    cal = run.calibration
    run.calibration = Calibration(
        cal.slope, cal.intercept, cal.threshold, cal.model, weights_sha256, {**cal.fitted, "command": command}
    )
    run.calibration.save(calibration_file)
    docs.mkdir(parents=True, exist_ok=True)
    plot = plot_reliability(run, docs / "calibration.png")
    (docs / "calibration.md").write_text(render(run, command, plot.name), encoding="utf-8")
    return run
