"""What verifying answers does for questions nobody verified, on the demo intranet (`kate feedback
loop-demo`, docs/verified-loop.md).

HR verifies the answer to one phrasing of each demo question that has several (a question and its
translations); the other phrasings, held apart, are then asked as Kate answers them, through the whole
answering pipeline over every demo page. Two ways verified answers can reach them are measured:

1. Matching (what the action server does, actions/verified_match.py): a held-apart paraphrase gets the
   verified answer, marked confirmed, when it is close to a verified question and the pipeline's best
   span is that answer in that page, even where the reader alone was not confident enough to answer.
2. Training (`kate feedback export --format squad`, then `kate qa train`): the shipped reader trained a
   little further on the verified answers alone. The demo questions with a single phrasing are the
   control: questions nobody verified, which training should not make worse.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from core.settings import Settings


@dataclass
class LoopResult:
    verified: int  # questions whose answer HR verified (trained on)
    before: dict[str, tuple[int, int]]  # set -> (right, asked), the shipped reader
    after: dict[str, tuple[int, int]]  # the same after training on the verified answers
    epochs: float
    learning_rate: float
    seconds: float
    misses: list[tuple[str, str, str, str]]  # paraphrases still wrong: question, answer, page, right page
    given_before: int = 0  # held-apart paraphrases given the right answer (confident) before verifying
    given_after: int = 0  # ... with the verified answers matched (confident, or confirmed by a match)
    wrong_matches: int = 0  # held-apart paraphrases given another question's verified answer
    paraphrases: int = 0


def _split(rows: list, trained: set[str], paraphrases: set[str]) -> dict[str, tuple[int, int]]:
    sets = {"verified questions (trained on)": trained, "held-apart paraphrases": paraphrases}
    sets["control (not verified)"] = {r.item.question for r in rows} - trained - paraphrases
    return {
        name: (sum(r.ok for r in rows if r.item.question in qs), sum(r.item.question in qs for r in rows))
        for name, qs in sets.items()
    }


def run(settings: Settings, output: Path, epochs: float = 3.0, learning_rate: float = 3e-5) -> LoopResult:
    import time

    from core.models import make_ranker, make_reader, quiet_libraries
    from knowledge.verified import VerifiedAnswer, to_squad
    from qa_engine.train import TrainConfig, train

    from .match_threshold import demo_groups
    from .qa_report import hr_accuracy

    quiet_libraries()
    groups = [g for g in demo_groups() if len(g.questions) >= 2]
    verified = [
        VerifiedAnswer(g.questions[0], g.answer, context=g.context, id=str(i), source_title="demo")
        for i, g in enumerate(groups)
    ]
    trained = {v.question for v in verified}
    paraphrases = {q for g in groups for q in g.questions[1:]}
    reader = make_reader(settings, None)
    ranker = make_ranker(settings, None, reader)
    options = {"read_top": settings.rank_top, "weight": settings.rank_weight}
    _, rows = hr_accuracy(reader, ranker, **options)
    before = _split(rows, trained, paraphrases)
    matching = matched_paraphrases(settings, reader, ranker, groups)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kate-loop-") as tmp:
        data = Path(tmp) / "verified.squad.json"
        data.write_text(json.dumps(to_squad(verified), ensure_ascii=False), encoding="utf-8")
        model_dir = Path(tmp) / "reader"
        train(
            TrainConfig(
                model=settings.qa_model, train_files=[str(data)], output_dir=str(model_dir), epochs=epochs,
                learning_rate=learning_rate, batch_size=8, device=settings.device,
                models_dir=str(settings.models_dir), stride=settings.stride,
            ),
            progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        trained_reader = make_reader(settings, str(model_dir))
        _, rows_after = hr_accuracy(trained_reader, ranker, **options)
    after = _split(rows_after, trained, paraphrases)
    misses = [(r.item.question, r.text, r.page, r.item.page) for r in rows_after
              if r.item.question in paraphrases and not r.ok]  # fmt: skip
    result = LoopResult(len(verified), before, after, epochs, learning_rate, seconds, misses, *matching)
    output.with_suffix(".json").write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
    output.write_text(render(result), encoding="utf-8")
    return result


def matched_paraphrases(
    settings: Settings, reader: object, ranker: object, groups: list
) -> tuple[int, int, int, int]:
    """(given right before, given right with verified answers matched, wrong matches, paraphrases asked):
    the action server's matching rule (actions/verified_match.py, the settings' floor) on the demo."""
    from knowledge import demo_passages
    from qa_engine.calibration import for_model
    from qa_engine.evaluate import same_span
    from qa_engine.ranker import rank_and_read

    calibration = for_model(settings.qa_model)
    threshold = settings.answer_min_confidence
    threshold = calibration.threshold if threshold is None else threshold
    passages = demo_passages()
    verified_vectors = ranker.query_vectors([g.questions[0] for g in groups])  # type: ignore[attr-defined]
    given_before = given_after = wrong = asked = 0
    for gi, g in enumerate(groups):
        for q in g.questions[1:]:
            asked += 1
            found = rank_and_read(reader, ranker, q, passages, top_k=1, read_top=settings.rank_top,
                                  weight=settings.rank_weight)  # type: ignore[arg-type]  # fmt: skip
            best = found[0] if found and found[0].passage is not None else None
            right = best is not None and best.passage.text == g.context and same_span(best.text, g.answer)
            confident = best is not None and calibration.confidence(best.score) >= threshold
            sims = verified_vectors @ ranker.query_vectors([q])[0]  # type: ignore[attr-defined]
            match = next(
                (int(j) for j in sims.argsort()[::-1][:1] if sims[j] >= settings.verified_min_similarity
                 and best is not None and best.passage.text == groups[j].context
                 and same_span(best.text, groups[j].answer)),
                None,
            )  # fmt: skip
            given_before += right and confident
            given_after += (right and confident) or (match == gi)
            wrong += match is not None and match != gi
    return int(given_before), int(given_after), int(wrong), asked


def render(r: LoopResult) -> str:
    rows = "\n".join(
        f"| {name} | {r.before[name][0]} of {r.before[name][1]} | {r.after[name][0]} of {r.after[name][1]} |"
        for name in r.before
    )
    return (
        "# What verifying answers does for questions nobody verified\n\nWritten by `kate feedback "
        "loop-demo`, on the demo intranet.\n\n"
        "## Matching (what Kate does)\n\n"
        f"HR verifies the answer to one phrasing of each demo question that has several ({r.verified} "
        f"questions). Their {r.paraphrases} other phrasings (mostly the same question in another language), "
        "held apart, are asked as Kate answers them. Before verifying, Kate gives the right answer (the "
        f"right page, F1 ≥ 0.5, confident enough to answer) to **{r.given_before}** of them; with the "
        f"verified answers matched, to **{r.given_after}**, and another question's verified answer to "
        f"{r.wrong_matches}. What matching adds is confidence where the reader found the right span but "
        "would have said it was unsure, and HR's label; it does not change which span the pipeline finds "
        "(docs/verified-answers.md).\n\n"
        "## Training the reader on the verified answers\n\n"
        "The same verified answers, exported by `kate feedback export --format squad`, train the shipped "
        f"reader further, on them alone ({r.epochs:g} epochs, learning rate {r.learning_rate:g}, "
        f"{r.seconds:.0f} s on this machine's CPU). Every question is then asked through Kate's whole "
        "pipeline over every demo page; right = the right page and F1 ≥ 0.5 against an accepted answer.\n\n"
        "| questions | shipped reader | after training on the verified answers |\n|---|---:|---:|\n"
        f"{rows}\n\n"
        "The held-apart paraphrases (mostly the same question in another language) took no part in "
        "training: what they gain is what verifying answers teaches the reader about questions nobody "
        "verified in those words. The control questions share no answer with the verified ones.\n\n"
        "Held-apart paraphrases still answered wrong after training (a wrong page is the ranker's or "
        "the reader's choice among pages, which training the reader on one passage per question hardly "
        "moves):\n\n"
        "| question | Kate's answer | from | right page |\n|---|---|---|---|\n"
        + "\n".join(f"| {q} | {a or '—'} | {p or '—'} | {right} |" for q, a, p, right in r.misses)
        + "\n"
    )
