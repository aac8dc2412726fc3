"""`kate qa report`: every QA results table of docs/qa-results.md, produced by one command.

Each table stands beside published numbers: the Kate paper (mBERT trained on English SQuAD, tested on
the French/Japanese and cross-lingual sets) and a public mBERT SQuAD v1.1 checkpoint's zero-shot XQuAD
scores. Experiments that need training runs (fixed vs validated, learning curves) are read from
`docs/qa-runs/*.json` when those runs have been made; a table without runs says so instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa_engine import Reader
from qa_engine.evaluate import FileScore, best_over_gold, f1_score, score_file
from qa_engine.ranker import Ranker, rank_and_read

# Kate paper (Siblini et al. 2019), Table 2: mBERT trained on English SQuAD; F1/EM by
# (context language, question language).
KATE_PAPER_MBERT = {
    ("en", "en"): (90.57, 81.96),
    ("en", "fr"): (78.55, 67.28),
    ("en", "ja"): (66.22, 52.91),
    ("fr", "en"): (81.10, 65.14),
    ("fr", "fr"): (76.65, 61.77),
    ("fr", "ja"): (60.28, 42.20),
    ("ja", "en"): (58.95, 57.49),
    ("ja", "fr"): (47.19, 45.26),
    ("ja", "ja"): (61.83, 59.93),
}
# Asai et al. 2018 runtime-MT baseline, as quoted by the Kate paper (F1/EM).
ASAI_BASELINE = {"fr": (61.88, 40.67), "ja": (52.19, 37.00)}
# salti/bert-base-multilingual-cased-finetuned-squad (mBERT, 88k English SQuAD v1.1 examples), zero-shot on
# the full XQuAD (1190 questions per language; our dev split is 182 of them), from its model card. F1/EM.
MBERT_XQUAD = {
    "ar": (57.80, 42.19),
    "de": (72.56, 55.88),
    "el": (62.21, 45.21),
    "en": (85.01, 73.53),
    "es": (76.41, 58.07),
    "hi": (55.29, 40.59),
    "ru": (71.62, 55.13),
    "th": (39.97, 26.89),
    "tr": (51.14, 34.87),
    "vi": (68.13, 47.98),
    "zh": (58.93, 47.40),
}
# Issue 15's floors (what the shipped reader must reach on dev/) and goals (the papers' mBERT).
FLOORS = {"xquad": 60.0, "fr": 68.0, "ja": 62.0, "cross": 55.0}
GOALS = {"xquad": 64.0, "fr": 76.65, "ja": 61.83, "cross": None}
CROSS_CELLS = [(c, q) for c in ("en", "fr", "ja") for q in ("en", "fr", "ja") if c != q]


@dataclass
class HRItem:
    lang: str  # "en", or "fr>en" for a French question about an English page
    question: str
    answers: list[str]
    page: str  # "en/leave.html", relative to the demo site

    @property
    def cross_language(self) -> bool:
        return ">" in self.lang


@dataclass
class HRResult:
    item: HRItem
    text: str  # Kate's top answer
    page: str  # the page it came from ("" when none)
    ok: bool  # right answer from the right page


def hr_accuracy(
    reader: Reader, ranker: Ranker | None = None, read_top: int = 10, weight: float = 10.0
) -> tuple[float, list[HRResult]]:
    """Top-1 accuracy on the demo intranet's HR questions, over all demo pages at once (with the ranker
    when one is given, as Kate answers). An answer counts when it comes from the page that holds the
    answer and its F1 against an accepted answer is at least 0.5 (in the page's language)."""
    from knowledge import DEMO_SITE, demo_passages, demo_questions

    passages = demo_passages()
    root = DEMO_SITE.resolve().as_uri() + "/"
    rows = []
    for raw in demo_questions():
        item = HRItem(raw["lang"], raw["question"], raw["answers"], raw["page"])
        answers = rank_and_read(
            reader, ranker, item.question, passages, top_k=1, read_top=read_top, weight=weight
        )
        best = answers[0] if answers and answers[0].passage is not None else None
        text = best.text if best else ""
        page = best.passage.url.removeprefix(root) if best else ""
        page_lang = item.page.split("/")[0]
        ok = page == item.page and best_over_gold(f1_score, text, item.answers, page_lang) >= 0.5
        rows.append(HRResult(item, text, page, ok))
    return 100.0 * sum(r.ok for r in rows) / max(len(rows), 1), rows


def hr_split(rows: list[HRResult]) -> dict[str, tuple[int, int]]:
    """(right, asked) for same-language and cross-language questions."""
    out = {}
    for name, cross in (("same language", False), ("cross-language", True)):
        part = [r for r in rows if r.item.cross_language == cross]
        out[name] = (sum(r.ok for r in part), len(part))
    return out


def _cell(score: FileScore | None) -> str:
    return f"{score.f1:.2f} / {score.exact_match:.2f}" if score else "n/a"


def _ref(pair: tuple[float, float] | None) -> str:
    return f"{pair[0]:.2f} / {pair[1]:.2f}" if pair else ""


def evaluate_dev(reader: Reader, dev_dir: Path, progress: bool) -> dict[str, FileScore]:
    return {path.name: score_file(reader, path, progress=progress) for path in sorted(dev_dir.glob("*.json"))}


def _language_matrix(cell: Callable[[str, str], str]) -> list[str]:
    """The Kate paper's Table 2 layout: context language rows, question language columns (en, fr, ja)."""
    langs = ("en", "fr", "ja")
    lines = ["| context \\ question | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
    lines += [f"| {c} | " + " | ".join(cell(c, q) for q in langs) + " |" for c in langs]
    return lines


def _load_runs(runs_dir: Path, kind: str) -> list[dict]:
    found = []
    for path in sorted(runs_dir.glob("*.json")) if runs_dir.is_dir() else []:
        record = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(record, dict) and record.get("kind") == kind:
            found.append(record)
    return found


def _runs_section(runs_dir: Path) -> list[str]:
    """Training experiments recorded in docs/qa-runs/ (each JSON carries its own command)."""
    lines = ["## Fixed vs validated training", ""]
    modes = _load_runs(runs_dir, "mode")
    if not modes:
        lines += [
            "Not measured yet: no `kind: mode` run in `docs/qa-runs/`. Each needs two training runs "
            "(`kate qa train --mode fixed` and `--mode validated --dev ...`) on the same data.",
            "",
        ]
    else:
        lines += [
            "As in the DeepPavlov study's tables: the same data, start and seed, trained for a fixed number "
            "of epochs or with validation on the target dev set (best checkpoint kept, early stop).",
            "",
            "| start | data | mode | steps run | kept | dev F1 / EM | train time |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for r in modes:
            lines.append(
                f"| {r['start']} | {r['data']} | {r['mode']} | {r['steps']} | {r.get('kept', r['steps'])} | "
                f"{r['f1']:.2f} / {r['exact_match']:.2f} | {r['seconds'] / 60:.0f} min |"
            )
        lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in modes] + [""]
    lines += ["## Learning curve", ""]
    curve = runs_dir / "learning-curve.png"
    points = _load_runs(runs_dir, "curve")
    if curve.is_file() and points:
        c = points[0]
        lines += [
            f"F1 on `{c['dev']}` against the number of `{c['target']}` training examples, from "
            f"`{c['start']}`, without and with {c['others_sample']} examples of "
            f"{', '.join(f'`{o}`' for o in c['others'])} (the study's Figure 2).",
            "",
            f"![learning curve](qa-runs/{curve.name})",
            "",
            "| setting | target examples | F1 | EM |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {p['setting']} | {p['target_examples']} | {p['f1']:.2f} | {p['exact_match']:.2f} |"
            for p in c["points"]
        ]
        lines += ["", f"Command: `{c['command']}`", ""]
    else:
        lines += [
            "Not measured yet: it needs one training run per point (target-language examples 0, 100, "
            "300, 1000, all; with and without the other languages).",
            "",
        ]
    study = runs_dir / "deeppavlov" / "study.json"
    if study.is_file():
        from .qa_study import render_study

        lines += render_study(study)
    pairs = _load_runs(runs_dir, "cross-lingual")
    if pairs:
        x = pairs[0]["cells"]
        lines += [
            "## Cross-lingual pairs (`--cross-lingual`)",
            "",
            pairs[0]["about"],
            "F1 without pairs → with pairs; context rows, question columns.",
            "",
        ]

        def change(c: str, q: str) -> str:
            a, b = x[f"q-{q}.c-{c}"]["without_pairs"]["f1"], x[f"q-{q}.c-{c}"]["with_pairs"]["f1"]
            return f"{a:.1f} → **{b:.1f}** ({b - a:+.1f})"

        lines += _language_matrix(change)
        lines += ["", "Commands:", ""] + [f"- `{cmd}`" for cmd in pairs[0]["commands"]] + [""]
    return lines


def render(
    scores: dict[str, FileScore],
    hr: tuple[float, list],
    alone: float | None,
    model: str,
    command: str,
    training: dict | None,
    runs_dir: Path,
    large: dict[str, FileScore] | None = None,
) -> str:
    xquad = {n.split(".")[1]: s for n, s in scores.items() if n.startswith("xquad.")}
    asai = {n.split(".")[1]: s for n, s in scores.items() if n.startswith("asai2018.")}
    mean_xquad = sum(s.f1 for s in xquad.values()) / len(xquad) if xquad else 0.0
    lines = [
        "# Kate's reader: QA results",
        "",
        f"Model: `{model}`. Command: `{command}` (dev files: `../shared/data/qa/dev/`).",
        "Scores are F1 / EM in percent: SQuAD v1.1 rules for space-separated languages, character tokens for "
        "zh/ja/th ([guide.md](guide.md), Evaluation). Published numbers are for mBERT (178M parameters) "
        "trained on 88k English SQuAD examples; Kate's reader is a 4-bit-derived multilingual-e5-small "
        "(117M, 21.5M of them trained) trained as [model-card.md](model-card.md) says.",
        "",
    ]
    if training:
        ex = training.get("examples", {})
        summary = (
            f"Training: {sum(ex.values())} examples ({', '.join(f'{k} {v}' for k, v in ex.items())}), "
            f"{training.get('steps')} steps in {training.get('seconds', 0) / 60:.0f} min; recipe in "
            "[model-card.md](model-card.md)."
        )
        if training.get("averaged"):
            summary += (
                f" That is the last training stage; the model is the mean of {len(training['averaged'])} "
                "readers' weights, this stage's among them (`kate qa average`)."
            )
        lines += [summary, ""]
    cross = [scores.get(f"multilingualqa.q-{q}.c-{c}.dev.json") for c, q in CROSS_CELLS]
    mean_cross = sum(x.f1 for x in cross if x) / len(cross) if all(cross) else None
    paper_cross = sum(KATE_PAPER_MBERT[cell][0] for cell in CROSS_CELLS) / len(CROSS_CELLS)
    measures = [(f"mean F1 over the {len(xquad)} XQuAD dev languages", mean_xquad, "xquad")]
    measures += [(f"Asai {lang} dev F1", asai[lang].f1, lang) for lang in ("fr", "ja") if lang in asai]
    if mean_cross is not None:
        measures.append(("mean F1 over the six cross-language cells", mean_cross, "cross"))
    lines += [
        "## Floors and goals (issue 15)",
        "",
        "| measure | value | floor | goal (the papers' mBERT) | floor met |",
        "|---|---:|---:|---:|:-:|",
    ]
    for name, value, key in measures:
        goal = GOALS[key] if GOALS[key] is not None else paper_cross
        met = "yes" if value >= FLOORS[key] else "no"
        lines.append(f"| {name} | {value:.2f} | {FLOORS[key]:g} | {goal:.2f} | {met} |")
    lines += [
        "",
        "## XQuAD dev (182 questions per language)",
        "",
        "| language | Kate F1 / EM | mBERT SQuAD zero-shot, full XQuAD (F1 / EM) |",
        "|---|---:|---:|",
    ]
    for lang, s in sorted(xquad.items()):
        lines.append(f"| {lang} | {_cell(s)} | {_ref(MBERT_XQUAD.get(lang))} |")
    lines += [
        "",
        "## Asai et al. French and Japanese SQuAD (46 questions each)",
        "",
        "| language | Kate F1 / EM | Kate paper mBERT | Asai runtime-MT baseline |",
        "|---|---:|---:|---:|",
    ]
    for lang, s in sorted(asai.items()):
        lines.append(
            f"| {lang} | {_cell(s)} | {_ref(KATE_PAPER_MBERT[(lang, lang)])} | {_ref(ASAI_BASELINE[lang])} |"
        )
    lines += [
        "",
        "## Cross-lingual: context language (rows) x question language (columns)",
        "",
        "Laid out as Table 2 of the Kate paper; each cell is Kate F1 / EM, then the paper's mBERT in "
        "brackets.",
        "",
    ]
    lines += _language_matrix(
        lambda c, q: (
            f"{_cell(scores.get(f'multilingualqa.q-{q}.c-{c}.dev.json'))} ({_ref(KATE_PAPER_MBERT[(c, q)])})"
        )
    )
    from knowledge import DEMO_SITE

    accuracy, rows = hr
    split = hr_split(rows)
    lines += [
        "",
        "## HR sanity: the demo intranet",
        "",
        f"Top-1 accuracy over all {len(list(DEMO_SITE.glob('*/*.html')))} demo pages at once"
        + (" with the passage ranker (Kate's default)" if alone is not None else "")
        + f": **{accuracy:.0f}%** ({sum(r.ok for r in rows)} of {len(rows)}; "
        "`knowledge/demo_site/questions.json`; right means the right answer from the right page; "
        "a > b means a question in a about a page in b)."
        + (f" The reader alone, reading every passage: {alone:.0f}%." if alone is not None else ""),
        "",
        "| questions | right | asked | top-1 |",
        "|---|---:|---:|---:|",
    ]
    for name, (right, asked) in split.items():
        lines.append(f"| {name} | {right} | {asked} | {100.0 * right / max(asked, 1):.0f}% |")
    lines += [
        "",
        "| lang | question | Kate's answer | from | ok |",
        "|---|---|---|---|:-:|",
    ]
    for r in rows:
        shown = " ".join(r.text.split()).replace("|", "/")
        lines.append(
            f"| {r.item.lang} | {r.item.question} | {shown} | {r.page or '-'} | {'yes' if r.ok else 'no'} |"
        )
    lines.append("")
    if large:
        lines += [
            "## The larger dev sets (`../shared/data/qa/dev-large/`)",
            "",
            "Native-language sets (not translations of SQuAD), the first questions of each file.",
            "",
            "| file | questions | Kate F1 / EM |",
            "|---|---:|---:|",
        ]
        lines += [f"| {name} | {s.n} | {_cell(s)} |" for name, s in sorted(large.items())]
        lines.append("")
    lines += _runs_section(runs_dir)
    return "\n".join(lines)


def run_report(
    reader: Reader,
    dev_dir: Path,
    output: Path,
    command: str,
    progress: bool = True,
    ranker: Ranker | None = None,
    large_dir: Path | None = None,
    large_limit: int = 500,
) -> dict:
    scores = evaluate_dev(reader, dev_dir, progress)
    large = {}
    if large_dir is not None and large_dir.is_dir():
        large = {
            p.name: score_file(reader, p, limit=large_limit, progress=progress)
            for p in sorted(large_dir.glob("*.json"))
        }
    hr = hr_accuracy(reader, ranker)
    alone = hr_accuracy(reader)[0] if ranker is not None else None
    training_file = Path(reader.model.name_or_path) / "training.json"
    training = json.loads(training_file.read_text()) if training_file.is_file() else None
    text = render(scores, hr, alone, reader.config.model, command, training, output.parent / "qa-runs", large)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return {"scores": {k: vars(v) for k, v in scores.items()}, "hr_accuracy": hr[0]}
