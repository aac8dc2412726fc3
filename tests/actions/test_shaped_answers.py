"""What the action server makes of the reader's spans: conflicts between pages, superseded sections,
the employee's audience first, shaped replies, follow-ups read with their question."""

from __future__ import annotations

import time

from rasa_sdk import Tracker

from actions.actions import format_candidate
from actions.answering import KnowledgeAnswerer, disagree
from actions.context import employee_of, in_context, is_follow_up, join
from actions.records import Candidate
from knowledge.audience import Employee, sign
from knowledge.library import ReadingSet
from knowledge.passages import html_to_passages
from qa_engine import Answer, Passage


def answerer(**options) -> KnowledgeAnswerer:
    return KnowledgeAnswerer(None, None, None, model_name="m", **options)  # type: ignore[arg-type]


def span(text: str, score: float, url: str, sentence: str = "", **passage) -> Answer:
    body = sentence or f"It is {text}."
    start = body.index(text)
    return Answer(text, score, Passage(body, url=url, title=url, **passage), start, start + len(text), body)


def test_two_current_pages_that_disagree_are_both_shown():
    found = [span("27 days", 2.0, "http://i/leave"), span("25 days", 1.9, "http://i/handbook")]
    outcome = answerer(conflict_margin=0.1)._select(found, None, ReadingSet([], 2), "How many days of leave?")
    assert outcome.best.answer == "27 days" and outcome.conflict.url == "http://i/handbook"
    text = format_candidate(outcome.best, "en", conflict=outcome.conflict)
    assert "http://i/leave" in text and "http://i/handbook" in text and "another page says" in text
    # not when the second is far less sure, when conflicts are off, or when the page is superseded
    far = [found[0], span("25 days", -1.0, "http://i/handbook")]
    assert answerer(conflict_margin=0.1)._select(far, None, ReadingSet([], 2)).conflict is None
    assert answerer(conflict_margin=0.0)._select(found, None, ReadingSet([], 2)).conflict is None
    demoted = ReadingSet([], 2, demoted={"http://i/handbook"})
    assert answerer(conflict_margin=0.1)._select(found, None, demoted).conflict is None


def test_only_figures_of_one_kind_disagree():
    assert disagree("27 days", "25 days") and disagree("月10日", "20日")
    assert not disagree("9 euros", "38 EUR")  # another unit: another fact
    assert not disagree("25 days", "25 working days") and not disagree("the manager", "HR")


def test_a_superseded_section_loses_to_the_current_one_of_the_same_page():
    old = span("24 days", 3.0, "http://i/leave", "Until 2025 you got 24 days.", outdated=True)
    new = span("27 days", 1.0, "http://i/leave", "Now you get 27 days.")
    outcome = answerer(conflict_margin=0.5)._select([old, new], None, ReadingSet([], 1))
    assert [c.answer for c in outcome.candidates] == ["27 days"] and outcome.conflict is None
    alone = answerer()._select([old], None, ReadingSet([], 1))  # the only answer: given, and said to be old
    assert alone.best.outdated and "outdated" in format_candidate(alone.best, "en")


def test_the_employees_own_page_goes_first_when_it_is_close():
    general = span("9 euros", 2.0, "http://i/meals")
    france = span("11 euros", 1.5, "http://i/france")
    mine = ReadingSet([], 2, preferred={"http://i/france"})
    outcome = answerer(audience_margin=0.5, conflict_margin=0.5)._select([general, france], None, mine)
    assert outcome.best.url == "http://i/france" and outcome.conflict is None  # an audience is no conflict
    theirs = ReadingSet([], 2, elsewhere={"http://i/france"})
    assert answerer()._select([france, general], None, theirs).best.url == "http://i/meals"


def test_a_list_answer_is_sent_as_items_and_steps_as_numbers():
    html = (
        "<main><h2>Documents to bring</h2><ul><li>your passport</li>"
        "<li>your contract [signed](javascript:x)</li></ul>"
        "<h2>Laptop</h2><ol><li>Sign in.</li><li>Install the VPN.</li></ol></main>"
    )
    passages = html_to_passages(html, url="http://i/onboarding")[1]
    docs, laptop = passages
    reading = ReadingSet(passages, 1)
    listed = answerer()._select(
        [Answer("your passport", 3.0, docs, 19, 32)], None, reading, "Which documents?"
    )
    text = format_candidate(listed.best, "en")
    assert text.startswith("**Documents to bring**\n- your passport\n- your contract [signed] (javascript:x)")
    assert "](javascript" not in text  # page text cannot become a link
    start = laptop.text.index("Install")
    steps = answerer()._select(
        [Answer("Install the VPN.", 3.0, laptop, start, start + 16)], None, reading, "How?"
    )
    assert "\n1. Sign in.\n2. Install the VPN." in format_candidate(steps.best, "fr")


def test_a_faq_answer_is_whole_with_the_span_in_bold():
    faq = Candidate("Fridays", "You can start any day except Fridays.", "http://i/faq", "FAQ", 1.0, 0.9,
                    kind="faq", heading="Can I start on a Wednesday?")  # fmt: skip
    text = format_candidate(faq, "en")
    assert "**Can I start on a Wednesday?**\n> You can start any day except **Fridays**." in text


def tracker(*turns: tuple[str, float], metadata: dict | None = None) -> Tracker:
    events = [{"event": "user", "text": text, "timestamp": at} for text, at in turns]
    latest = {"text": turns[-1][0], "metadata": metadata or {}}
    return Tracker("s", {}, latest, events, False, None, {}, "action_listen")


def test_a_follow_up_is_read_with_the_question_before_it():
    now = time.time()
    t = tracker(("What is the hotel cap per night in London?", now - 20), ("/feedback", now - 10),
                ("and in Munich?", now))  # fmt: skip
    assert in_context(t, "and in Munich?", 300) == "What is the hotel cap per night in Munich?"
    assert join("How many days of leave do full-time employees get?", "and for part-time staff?") == (
        "How many days of leave do part-time employees get?"
    )
    assert join("ロンドンのホテルの上限はいくらですか？", "大阪は？") == "大阪のホテルの上限はいくらですか？"
    assert join("Combien de jours de congés ?", "et pour les stagiaires ?") == (
        "Combien de jours de congés ? et pour les stagiaires ?"
    )


def test_a_new_question_or_a_late_one_is_read_alone():
    now = time.time()
    late = tracker(("What is the hotel cap in London?", now - 900), ("and in Munich?", now))
    assert in_context(late, "and in Munich?", 300) == "and in Munich?"
    first = tracker(("et à Lyon ?", now))
    assert in_context(first, "et à Lyon ?", 300) == "et à Lyon ?"
    for question in (
        "How long is the probation period?",
        "Quels justificatifs faut-il fournir ?",
        "給与は何日？",
    ):
        assert not is_follow_up(question)
    assert in_context(late, "and in Munich?", 0) == "and in Munich?"  # KATE_FOLLOWUP_WINDOW=0: off


def test_the_employee_comes_only_from_a_token_signed_with_kates_secret():
    token = sign(Employee(groups=("managers",)), "s3cret")
    assert employee_of(tracker(("hi", 0), metadata={"employee_token": token}), "s3cret").groups == (
        "managers",
    )
    assert employee_of(tracker(("hi", 0), metadata={"employee_token": token}), "other") is None
    assert employee_of(tracker(("hi", 0), metadata={"groups": ["managers"]}), "s3cret") is None
    assert employee_of(tracker(("hi", 0)), "s3cret") is None
