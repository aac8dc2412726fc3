"""The bot's answer threshold is chosen on one half of the HR questions and judged on the other."""

from __future__ import annotations

from measure.answer_threshold import (
    JUDGE,
    TUNE,
    UNANSWERABLE,
    ScoredAnswer,
    choose_bot_threshold,
    half_of,
    render_answers,
)
from qa_engine.calibration import Calibration

IDENTITY = Calibration(slope=1.0, intercept=0.0)  # confidence = sigmoid(score)


def row(score: float, right: bool, half: str, answerable: bool = True) -> ScoredAnswer:
    return ScoredAnswer("en", "q", "a", score, answerable, right, half)


def test_halves_are_stable_and_both_used():
    assert half_of("dpo") == half_of("dpo")
    topics = {t for t, _, _ in UNANSWERABLE}
    assert {half_of(t) for t in topics} == {TUNE, JUDGE}


def test_translations_of_a_demo_question_share_a_half():
    from knowledge import demo_questions

    halves: dict[str, set[str]] = {}
    for item in demo_questions():
        topic = f"{item['page']}|{item['answers'][0]}"
        halves.setdefault(topic, set()).add(half_of(topic))
    assert all(len(h) == 1 for h in halves.values())
    assert {h for hs in halves.values() for h in hs} == {TUNE, JUDGE}


def test_the_threshold_is_chosen_on_the_tune_half_only():
    tune = [row(3.0, True, TUNE), row(2.0, True, TUNE), row(-1.0, False, TUNE), row(-2.0, False, TUNE)]
    t = choose_bot_threshold(tune, IDENTITY)
    assert IDENTITY.confidence(-1.0) < t <= IDENTITY.confidence(2.0)
    # judge rows that would pull the threshold elsewhere have no say
    judge = [row(-3.0, True, JUDGE)] * 5 + [row(4.0, False, JUDGE)] * 5
    assert choose_bot_threshold(tune + judge, IDENTITY) == t


def test_the_report_counts_the_judge_half_at_the_threshold():
    rows = [
        row(3.0, True, TUNE),
        row(2.0, True, JUDGE),  # given, right
        row(-2.0, True, JUDGE),  # held back although right
        row(1.0, False, JUDGE),  # given, wrong
        row(-3.0, False, JUDGE, answerable=False),  # held back
        row(2.5, False, JUDGE, answerable=False),  # given although unanswerable
    ]
    text = render_answers(rows, IDENTITY, 0.5)
    assert "| judge | 0.5 (the bot's) | 1 of 2 | 1 | 1 of 2 |" in text
    assert "| all (tune + judge) | 0.5 (the bot's) | 2 of 3 | 1 | 1 of 2 |" in text
    assert "tune half (1 questions" in text and "other half (5 questions)" in text
