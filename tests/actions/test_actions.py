"""The custom actions on tracker fixtures (as Rasa's demo bot tests its actions), with a real Redis
and the real knowledge layer; the reader itself is exercised end to end in tests/bot."""

from __future__ import annotations

import asyncio
import json

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from redis_process import free_port

from actions import runtime
from actions.actions import (
    ActionAnswerFromKnowledge,
    ActionLogFeedback,
    ActionScriptedAnswer,
    format_candidate,
    vote_buttons,
)
from actions.answering import KnowledgeAnswerer
from actions.messages import TEXTS, markdown_link
from actions.records import AnswerBook, AnswerRecord, Candidate
from knowledge.cache import PageCache
from knowledge.feedback import FeedbackLog
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry
from knowledge.store import connect
from knowledge.unanswered import UnansweredLog

DOMAIN = {"responses": {"utter_offices": [{"text": "all offices"}], "utter_offices_lyon": [{"text": "Lyon"}]}}


@pytest.fixture
def rt(redis_client):
    registry = SourceRegistry(redis_client)
    knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=1, total_timeout=2))
    answerer = KnowledgeAnswerer(knowledge, reader=None, ranker=None, model_name="test-model")
    installed = runtime.Runtime(
        answerer, AnswerBook(redis_client), FeedbackLog(redis_client), UnansweredLog(redis_client), 50
    )
    runtime.install(installed)
    yield installed
    answerer.close()


def tracker(text: str, intent: str = "nlu_fallback", language: str = "en", entities=(), slots=None):
    entities = [{"entity": "language", "value": language}, *entities]
    message = {"text": text, "intent": {"name": intent, "confidence": 0.93}, "entities": entities}
    return Tracker("conv-1", slots or {}, message, [], False, None, {}, "action_listen")


def run(action, t, domain=DOMAIN):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, domain))
    return dispatcher.messages, events


def test_every_language_has_every_message():
    assert set(TEXTS["fr"]) == set(TEXTS["en"]) == set(TEXTS["ja"])


def test_scripted_answer_picks_the_city_response_and_rates_it(rt):
    messages, events = run(
        ActionScriptedAnswer(),
        tracker("where is the Lyon office?", "offices", entities=[{"entity": "city", "value": "Lyon"}]),
    )
    assert messages[0]["response"] == "utter_offices_lyon"
    answer_id = events[0]["value"]
    assert messages[0]["buttons"] == vote_buttons(answer_id)
    record = rt.answers.get(answer_id)
    assert (record.kind, record.answer, record.score, record.conversation_id) == (
        "scripted", "utter_offices_lyon", 0.93, "conv-1"
    )  # fmt: skip
    plain, _ = run(ActionScriptedAnswer(), tracker("where are the offices?", "offices"))
    assert plain[0]["response"] == "utter_offices"


def test_refusals_are_in_the_language_of_the_message(rt):
    messages, events = run(ActionAnswerFromKnowledge(), tracker("  ", language="ja"))
    assert messages[0]["text"] == TEXTS["ja"]["empty"] and events == []
    messages, _ = run(ActionScriptedAnswer(), tracker("x" * 51, "offices", language="fr"))
    assert messages[0]["text"].startswith("Votre message est trop long pour moi (51 caractères)")


def test_no_sources_gives_a_friendly_message(rt):
    messages, events = run(ActionAnswerFromKnowledge(), tracker("who is the DPO?", language="fr"))
    assert messages[0]["text"] == TEXTS["fr"]["sources_down"] and events == []


def test_vote_on_unknown_or_missing_answer(rt):
    vote = {"entity": "vote", "value": "up"}
    messages, _ = run(
        ActionLogFeedback(),
        tracker("/feedback", "feedback", entities=[vote, {"entity": "answer_id", "value": "nope"}]),
    )
    assert messages[0]["text"] == TEXTS["en"]["nothing_to_rate"]
    assert rt.feedback.count() == 0


def test_thumbs_down_offers_the_next_page_then_the_links(rt):
    rated = rt.answers.put(
        AnswerRecord(
            conversation_id="conv-1", kind="qa", question="q?", language="fr", answer="a", source_url="http://i/1",
            score=3.0, model="m", shown_urls=["http://i/1"],
            alternatives=[Candidate("b", "b.", "http://i/1", "same page", 2.0),
                          Candidate("c", "c c.", "http://i/2", "T2", 1.0)],
            best_pages=[("T1", "http://i/1"), ("T2", "http://i/2")],
        )
    )  # fmt: skip
    down = [{"entity": "vote", "value": "down"}, {"entity": "answer_id", "value": rated.id}]
    messages, events = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=down))
    assert messages[0]["text"] == TEXTS["fr"]["thanks_down"]
    assert (
        messages[1]["text"].startswith(TEXTS["fr"]["another"]) and "[T2](http://i/2)" in messages[1]["text"]
    )
    second = rt.answers.get(events[0]["value"])
    assert second.shown_urls == ["http://i/1", "http://i/2"] and second.alternatives == []
    down[1]["value"] = second.id
    messages, _ = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=down))
    assert messages[1]["text"].startswith(TEXTS["fr"]["no_other"])
    assert "- [T1](http://i/1)\n- [T2](http://i/2)" in messages[1]["text"]
    assert [e.source_url for e in rt.feedback.entries()] == ["http://i/1", "http://i/2"]
    gaps = list(rt.unanswered.latest())  # no answer left: a knowledge gap for the admin console
    assert [(g.question, g.reason, g.language, g.conversation_id) for g in gaps] == [
        ("q?", "no_other", "fr", "conv-1")
    ]


def test_vote_with_redis_down_says_so_and_claims_nothing(rt):
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    rt.answers = AnswerBook(dead)
    entities = [{"entity": "vote", "value": "up"}, {"entity": "answer_id", "value": "abc"}]
    messages, events = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=entities))
    assert messages[0]["text"] == TEXTS["en"]["vote_lost"] and events == []


def test_links_from_page_titles_cannot_inject_markup():
    assert (
        markdown_link("Evil](javascript:alert(1))[", "http://i/x")
        == "[Evil)(javascript:alert(1))(](http://i/x)"
    )
    assert markdown_link("T", "javascript:alert(1)") == "T"
    assert json.loads(vote_buttons("ab12")[1]["payload"].removeprefix("/feedback")) == {
        "vote": "down",
        "answer_id": "ab12",
    }


def test_scripted_answer_still_comes_when_it_cannot_be_kept(rt):
    rt.answers = AnswerBook(connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5))
    messages, events = run(ActionScriptedAnswer(), tracker("where are the offices?", "offices"))
    assert messages[0]["response"] == "utter_offices" and not messages[0]["buttons"] and events == []


def test_answer_text_from_a_page_cannot_form_links():
    link = "[prize](javascript:alert(1))"
    evil = Candidate(link, f"Win a {link} now.", "http://i/p", "T", 9.0)
    text = format_candidate(evil, "ja")
    assert "](javascript" not in text and text.endswith("出典：[T](http://i/p)")
    assert "> Win a [prize] (javascript:alert(1)) now." in text


def test_the_bot_answers_only_above_the_calibrated_confidence(rt):
    """The threshold is a probability from the reader's calibration, not a raw score; candidates carry
    their confidence (the feedback log keeps it), and the pages are linked either way."""
    from qa_engine import Answer, Passage
    from qa_engine.calibration import Calibration

    def answer(text, score, url):
        return Answer(text=text, score=score, passage=Passage(text + ".", url=url, title=url), sentence=text)

    found = [
        answer("sure", 9.0, "http://i/a"),
        answer("maybe", 5.0, "http://i/b"),
        answer("no", 1.0, "http://i/c"),
    ]
    cal = Calibration(slope=1.0, intercept=-6.0, threshold=0.6)  # 9 -> 0.95, 5 -> 0.27, 1 -> 0.007
    answerer = KnowledgeAnswerer(rt.answerer.knowledge, None, None, model_name="m", calibration=cal)
    outcome = answerer._select(found, None)
    assert [c.answer for c in outcome.candidates] == ["sure"]
    assert outcome.candidates[0].confidence == pytest.approx(0.9526, abs=1e-3)
    assert [url for _, url in outcome.best_pages] == ["http://i/a", "http://i/b", "http://i/c"]
    looser = KnowledgeAnswerer(
        rt.answerer.knowledge, None, None, model_name="m", calibration=cal, min_confidence=0.2
    )
    assert [c.answer for c in looser._select(found, None).candidates] == ["sure", "maybe"]
    nothing = KnowledgeAnswerer(
        rt.answerer.knowledge, None, None, model_name="m", calibration=cal, min_confidence=0.99
    )
    assert nothing._select(found, None).status == "unsure"


@pytest.fixture
def page_server():
    from servers import FixtureServer

    with FixtureServer() as s:
        yield s


def answerer_over_a_page(rt, page_server, reader, **options) -> KnowledgeAnswerer:
    rt.answerer.knowledge.registry.add(page_server.url("/site/en/leave.html"))
    rt.answerer.knowledge.refresh()
    rt.answerer = KnowledgeAnswerer(rt.answerer.knowledge, reader, None, model_name="test", **options)
    return rt.answerer


class RaisingReader:  # an AnswersQuestions whose model fails
    def answer(self, question, passages, *, top_k=3, min_score=None, no_answer=False):
        raise RuntimeError("the reader broke")


class SlowReader:
    def answer(self, question, passages, *, top_k=3, min_score=None, no_answer=False):
        import time

        time.sleep(1.5)
        return []


def test_a_reader_that_raises_still_gets_the_employee_a_reply(rt, page_server, caplog):
    answerer_over_a_page(rt, page_server, RaisingReader())
    with caplog.at_level("ERROR", logger="actions.actions"):
        messages, events = run(
            ActionAnswerFromKnowledge(), tracker("combien de jours de congés ?", language="fr")
        )
    assert [m["text"] for m in messages] == [TEXTS["fr"]["internal_error"]] and events == []
    failure = next(r for r in caplog.records if "action_answer_from_knowledge failed" in r.getMessage())
    assert failure.exc_info and "the reader broke" in str(failure.exc_info[1])  # with its traceback


def test_a_reader_past_the_answer_budget_says_the_intranet_is_slow(rt, page_server):
    answerer_over_a_page(rt, page_server, SlowReader(), answer_budget_s=0.5)
    messages, events = run(ActionAnswerFromKnowledge(), tracker("有給休暇は何日？", language="ja"))
    assert [m["text"] for m in messages] == [TEXTS["ja"]["too_slow"]] and events == []


@pytest.mark.parametrize(
    "raw",
    [
        "[1, 2, 3]",
        '{"unexpected": "shape"}',
        '{"conversation_id": "c", "kind": "qa", "question": "q", "language": "en", "version": 99}',
        "not json at all",
    ],
)
def test_a_record_of_another_shape_or_version_is_refused_cleanly(rt, redis_client, raw):
    redis_client.set("kate:answer:odd1", raw)
    assert rt.answers.get("odd1") is None
    entities = [{"entity": "vote", "value": "down"}, {"entity": "answer_id", "value": "odd1"}]
    messages, _ = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=entities))
    assert [m["text"] for m in messages] == [TEXTS["en"]["nothing_to_rate"]]


def test_a_record_from_before_versions_is_still_read(rt, redis_client):
    old = {
        "conversation_id": "c", "kind": "qa", "question": "q?", "language": "fr", "answer": "a",
        "source_url": "http://i/1", "score": 3.0, "model": "m", "shown_urls": ["http://i/1"],
        "alternatives": [{"answer": "b", "sentence": "b.", "url": "http://i/2", "title": "T2", "score": 1.0}],
        "best_pages": [["T1", "http://i/1"]], "id": "old1",
    }  # fmt: skip
    redis_client.set("kate:answer:old1", json.dumps(old))
    record = rt.answers.get("old1")
    assert (
        record.version == 2
        and record.alternatives[0].confidence is None
        and record.best_pages == [("T1", "http://i/1")]
    )
    entities = [{"entity": "vote", "value": "down"}, {"entity": "answer_id", "value": "old1"}]
    messages, _ = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=entities))
    assert messages[1]["text"].startswith(TEXTS["fr"]["another"])


def test_the_action_server_registers_exactly_kates_actions():
    """rasa_sdk registers every subclass of Action it finds: a nameless helper base class would stop the
    action server at start-up."""
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    assert sorted(executor.actions) == [
        "action_answer_from_knowledge",
        "action_log_feedback",
        "action_scripted_answer",
    ]
