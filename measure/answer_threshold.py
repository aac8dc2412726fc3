"""The intranet answers' confidence threshold (`KATE_ANSWER_MIN_CONFIDENCE`), chosen and judged on HR
questions.

The confidence curve is fitted on dev questions (`kate qa calibrate`), but the threshold cannot be chosen
there: HR passages score lower than Wikipedia paragraphs, so a threshold chosen on dev files holds back
most right HR answers. It is chosen instead on HR-like questions, the demo intranet's, split in two halves
by topic: `kate qa calibrate` chooses the threshold on the *tune* half, and `kate bot eval` reports what
the bot does on the *judge* half, which had no say in it. A question and its translations share a topic
(the page and the first accepted answer), so a French twin never judges the threshold its English
original chose.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings

from .bench import write_section

TUNE, JUDGE = "tune", "judge"

# Questions an employee might ask that the demo intranet does not answer: the bot should say it is unsure.
# (topic, language, question): the topic keeps translations in one half.
UNANSWERABLE = [
    ("dpo", "en", "Who is the data protection officer?"),
    ("dpo", "fr", "Qui est le délégué à la protection des données ?"),
    ("dpo", "ja", "個人情報保護の担当者は誰ですか？"),
    ("dpo", "de", "Wer ist der Datenschutzbeauftragte?"),
    ("dog", "en", "Can I bring my dog to the office?"),
    ("dog", "fr", "Peut-on venir au bureau avec son chien ?"),
    ("dog", "ja", "犬を連れて出社できますか？"),
    ("dress", "en", "What is the dress code?"),
    ("dress", "fr", "Y a-t-il un code vestimentaire ?"),
    ("dress", "ja", "服装の規定はありますか？"),
    ("canteen", "en", "Is there a company canteen?"),
    ("canteen", "fr", "Y a-t-il une cantine d'entreprise ?"),
    ("canteen", "de", "Gibt es eine Kantine?"),
    ("room", "en", "How do I book a meeting room?"),
    ("room", "fr", "Comment réserver une salle de réunion ?"),
    ("room", "ja", "会議室の予約方法は？"),
    ("wifi", "en", "What is the password for the guest wifi?"),
    ("football", "en", "Who won the football match yesterday?"),
    ("weather", "fr", "Quel temps fera-t-il demain ?"),
    ("weather", "ja", "明日の天気は？"),
    ("shares", "en", "What is the company's share price today?"),
    ("shares", "de", "Wie hoch ist der Aktienkurs heute?"),
]


def half_of(topic: str) -> str:
    """TUNE or JUDGE, by a hash of the topic (stable across runs and machines)."""
    return (TUNE, JUDGE)[hashlib.sha256(topic.encode("utf-8")).digest()[0] % 2]


@dataclass
class ScoredAnswer:
    language: str
    question: str
    answer: str
    score: float  # the reader's raw score of its best answer (-inf: none)
    answerable: bool
    right: bool  # an answerable question whose best answer has F1 >= 0.5 against an accepted answer
    half: str  # TUNE or JUDGE

    def confidence(self, calibration: object) -> float:
        return 0.0 if self.score == float("-inf") else calibration.confidence(self.score)


def read_demo_questions(
    reader: object, ranker: object, *, read_top: int, weight: float
) -> list[ScoredAnswer]:
    """The best answer to every demo HR question and every UNANSWERABLE one, read as the bot reads them
    (ranker, then reader, over all demo pages at once)."""
    from knowledge import demo_passages, demo_questions
    from qa_engine.evaluate import best_over_gold, f1_score
    from qa_engine.ranker import rank_and_read

    passages = demo_passages()
    asked = [
        (i["lang"], i["question"], i["answers"], i["page"].split("/")[0], f"{i['page']}|{i['answers'][0]}")
        for i in demo_questions()
    ]
    asked += [(lang, q, [], lang, topic) for topic, lang, q in UNANSWERABLE]
    rows = []
    for lang, question, gold, page_lang, topic in asked:
        found = [
            a
            for a in rank_and_read(
                reader, ranker, question, passages, top_k=3, read_top=read_top, weight=weight
            )
            if a.passage is not None
        ]
        text, score = (found[0].text, found[0].score) if found else ("", float("-inf"))
        right = bool(gold) and best_over_gold(f1_score, text, gold, page_lang) >= 0.5
        rows.append(ScoredAnswer(lang, question, text, score, bool(gold), right, half_of(topic)))
    return rows


def choose_bot_threshold(rows: list[ScoredAnswer], calibration: object) -> float:
    """The confidence with the most right decisions on the TUNE half: give a right answer, hold back a
    wrong one or one to a question the pages do not answer."""
    from qa_engine.calibration import choose_threshold

    tune = [r for r in rows if r.half == TUNE]
    return choose_threshold([r.confidence(calibration) for r in tune], [r.right for r in tune])


def render_answers(rows: list[ScoredAnswer], calibration: object, threshold: float) -> str:
    """What the bot does on the JUDGE half at its threshold and around it (and, apart, on all questions)."""

    def given(group: list[ScoredAnswer], t: float) -> tuple[int, int, int, int, int]:
        ans = [r for r in group if r.answerable]
        una = [r for r in group if not r.answerable]
        return (
            sum(r.right and r.confidence(calibration) >= t for r in ans),
            sum(r.right for r in ans),
            sum(not r.right and r.confidence(calibration) >= t for r in ans),
            sum(r.confidence(calibration) < t for r in una),
            len(una),
        )

    judge = [r for r in rows if r.half == JUDGE]
    n_tune = sum(r.half == TUNE for r in rows)
    lines = [
        "Command: `kate bot eval --answers-only`: the demo intranet's HR questions (docs/qa-results.md) and "
        "questions it does not answer, each read as the bot reads it (ranker, then reader, over all demo "
        f"pages). They are split in two halves by topic: the threshold **{threshold:.2f}** was chosen "
        f"by `kate qa calibrate` on the tune half ({n_tune} questions, docs/calibration.md); the table "
        f"judges it on the other half ({len(judge)} questions). `KATE_ANSWER_MIN_CONFIDENCE` overrides "
        "it; below it the bot says it is unsure and links the most relevant pages.",
        "",
        "| half | confidence threshold | right answers given | wrong answers given "
        "| unanswerable held back |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in sorted({0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, round(threshold, 3)}):
        r, n_right, w, h, n_una = given(judge, t)
        mark = " (the bot's)" if t == round(threshold, 3) else ""
        lines.append(f"| judge | {t:g}{mark} | {r} of {n_right} | {w} | {h} of {n_una} |")
    r, n_right, w, h, n_una = given(rows, threshold)
    lines.append(
        f"| all (tune + judge) | {threshold:g} (the bot's) | {r} of {n_right} | {w} | {h} of {n_una} |"
    )
    lines += ["", "| | questions | confidence: min | median | max |", "|---|---:|---:|---:|---:|"]
    for name, group in (
        ("right answer", [r for r in rows if r.answerable and r.right]),
        ("wrong answer", [r for r in rows if r.answerable and not r.right]),
        ("not on the intranet", [r for r in rows if not r.answerable]),
    ):
        confs = sorted(r.confidence(calibration) for r in group)
        if confs:
            median = confs[len(confs) // 2]
            lines.append(f"| {name} | {len(confs)} | {confs[0]:.2f} | {median:.2f} | {confs[-1]:.2f} |")
    return "\n".join(lines)


def run_answers_eval(settings: Settings, output: Path) -> float:
    """`kate bot eval --answers-only`: the JUDGE half at the bot's threshold, into docs/bot-results.md."""
    from core.models import make_ranker, make_reader
    from qa_engine.calibration import for_model

    from .bot_eval import HEADER

    reader = make_reader(settings, None)
    ranker = make_ranker(settings, None, reader)
    calibration = for_model(settings.qa_model)
    rows = read_demo_questions(reader, ranker, read_top=settings.rank_top, weight=settings.rank_weight)
    threshold = settings.answer_min_confidence
    if threshold is None:
        threshold = calibration.threshold
    text = f"<!-- bench:answers -->\n{render_answers(rows, calibration, threshold)}\n<!-- /bench:answers -->"
    if not output.exists():
        output.write_text(HEADER, encoding="utf-8")
    write_section(output, text, "answers")
    print(text)
    return threshold
