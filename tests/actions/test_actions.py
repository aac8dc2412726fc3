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
    ActionContactHr,
    ActionLogFeedback,
    ActionScriptedAnswer,
    format_candidate,
    vote_buttons,
)
from actions.answering import KnowledgeAnswerer
from actions.messages import TEXTS, markdown_link
from actions.records import AnswerBook, AnswerRecord, Candidate
from knowledge.cache import PageCache
from knowledge.escalation import Contact, Escalations
from knowledge.feedback import FeedbackLog
from knowledge.library import FetchLimits, Knowledge, ReadingSet
from knowledge.scripted import ScriptedAnswer, ScriptedAnswers
from knowledge.sources import SourceRegistry
from knowledge.store import connect
from knowledge.unanswered import UnansweredLog

DOMAIN: dict = {}


@pytest.fixture
def rt(redis_client):
    registry = SourceRegistry(redis_client)
    knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=1, total_timeout=2))
    answerer = KnowledgeAnswerer(knowledge, reader=None, ranker=None, model_name="test-model")
    scripted = ScriptedAnswers(redis_client)
    scripted.put(ScriptedAnswer("offices", "en", "All our offices: Paris, Lyon."))
    scripted.put(ScriptedAnswer("offices", "en", "Lyon: 5 place Bellecour.", variant="lyon"))
    scripted.put(ScriptedAnswer("offices", "fr", "Nos bureaux : Paris, Lyon."))
    installed = runtime.Runtime(
        answerer,
        AnswerBook(redis_client),
        FeedbackLog(redis_client),
        UnansweredLog(redis_client),
        scripted,
        Escalations(redis_client),
        50,
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
    assert messages[0]["text"] == "Lyon: 5 place Bellecour."
    answer_id = events[0]["value"]
    assert messages[0]["buttons"] == vote_buttons(answer_id)
    record = rt.answers.get(answer_id)
    assert (record.kind, record.answer, record.source_title, record.score, record.conversation_id) == (
        "scripted", "Lyon: 5 place Bellecour.", "offices/lyon", 0.93, "conv-1"
    )  # fmt: skip
    plain, _ = run(ActionScriptedAnswer(), tracker("where are the offices?", "offices"))
    assert plain[0]["text"] == "All our offices: Paris, Lyon."
    # in French, the intent's French answer beats the variant's English one
    french, _ = run(
        ActionScriptedAnswer(),
        tracker(
            "où est le bureau de Lyon ?", "offices", "fr", entities=[{"entity": "city", "value": "Lyon"}]
        ),
    )
    assert french[0]["text"] == "Nos bureaux : Paris, Lyon."


def test_an_answer_in_another_language_only_is_introduced_as_such(rt):
    messages, _ = run(ActionScriptedAnswer(), tracker("東京オフィスはどこ？", "offices", "ja"))
    assert messages[0]["text"] == TEXTS["ja"]["other_language"].format(name="英語") + (
        "\n\nAll our offices: Paris, Lyon."
    )


def test_an_intent_the_company_wrote_nothing_for_goes_to_the_intranet(rt, page_server):
    """A fresh install has no scripted answers: the question is read from the company's own pages."""
    answerer_over_a_page(rt, page_server, FirstSentenceReader())
    messages, events = run(
        ActionScriptedAnswer(), tracker("How many days of leave do I get?", "leave_policy")
    )
    assert "Source: [" in messages[0]["text"] and "/site/en/leave.html" in messages[0]["text"]
    record = rt.answers.get(events[0]["value"])
    assert record.kind == "qa" and record.source_url.endswith("/site/en/leave.html")


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
    assert messages[1]["text"].endswith(TEXTS["fr"]["offer_hr"])
    assert [b["title"] for b in messages[1]["buttons"]] == ["Contacter les RH"]
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
    assert (
        messages[0]["text"] == "All our offices: Paris, Lyon." and not messages[0]["buttons"] and events == []
    )


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


def test_a_demoted_page_answers_only_after_every_other_page(rt):
    from qa_engine import Answer, Passage

    def answer(text, score, url):
        return Answer(text=text, score=score, passage=Passage(text + ".", url=url, title=url), sentence=text)

    found = [answer("archive", 9.0, "http://i/old"), answer("current", 5.0, "http://i/new")]
    outcome = rt.answerer._select(found, None, ReadingSet([], 2, demoted={"http://i/old"}))
    assert [c.answer for c in outcome.candidates] == ["current", "archive"]  # 👎 still reaches it
    assert [url for _, url in outcome.best_pages] == ["http://i/new", "http://i/old"]
    assert [c.answer for c in rt.answerer._select(found, None).candidates] == ["archive", "current"]


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


class FirstSentenceReader:  # an AnswersQuestions that answers with the start of the first passage
    def answer(self, question, passages, *, top_k=3, min_score=None, no_answer=False):
        from qa_engine import Answer

        p = passages[0]
        return [Answer(text=p.text[:40], score=5.0, passage=p, sentence=p.text[:80])]


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
        "action_contact_hr",
        "action_log_feedback",
        "action_scripted_answer",
    ]


def press(button: dict, language: str = "en"):
    """The payload of a button as Rasa parses it: `/contact_hr{"offer_id": ...}`."""
    intent, _, data = button["payload"].removeprefix("/").partition("{")
    entities = [{"entity": k, "value": v} for k, v in json.loads("{" + data).items()]
    return tracker(button["payload"], intent, language, entities=entities)


def test_the_second_thumbs_down_offers_a_person_and_the_request_names_the_question(rt):
    rt.escalations.put_contact(Contact(topic="", language="fr", email="rh@company.example", label="RH"))
    rt.escalations.put_contact(Contact(topic="payroll_date", language="", url="https://desk.example/paie"))
    candidates = [Candidate(x, f"{x}.", f"http://i/{x}", x.upper(), 1.0) for x in ("a", "b", "c", "d")]
    rated = rt.answers.put(
        AnswerRecord(conversation_id="conv-1", kind="qa", question="Quand suis-je payé ?", language="fr",
                     answer="a", source_url="http://i/a", model="m", shown_urls=["http://i/a"],
                     alternatives=candidates[1:], topic="leave_policy")
    )  # fmt: skip
    down = [{"entity": "vote", "value": "down"}, {"entity": "answer_id", "value": rated.id}]
    messages, events = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=down))
    assert [b["title"] for b in messages[1]["buttons"]] == ["👍", "👎"]  # the first 👎: another answer
    down[1]["value"] = events[0]["value"]
    messages, events = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=down))
    buttons = messages[1]["buttons"]
    assert [b["title"] for b in buttons] == ["👍", "👎", "Contacter les RH"]  # the second: a person too
    down[1]["value"] = events[0]["value"]
    messages, _ = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=down))
    assert [b["title"] for b in messages[1]["buttons"]] == ["👍", "👎"]  # offered once per question
    reply, _ = run(ActionContactHr(), press(buttons[2]))
    text = reply[0]["text"]
    assert text.startswith(TEXTS["fr"]["contact_intro"])  # in the question's language, not the button's
    assert "[rh@company.example](mailto:rh@company.example?subject=" in text
    assert "body=Quand%20suis-je%20pay%C3%A9%20%3F" in text  # the question is in the mail
    run(ActionContactHr(), press(buttons[2]))  # a double click is one request
    log = list(rt.escalations.latest())
    assert [(e.event, e.reason, e.topic) for e in log] == [
        ("requested", "second_down", "leave_policy"), ("offered", "second_down", "leave_policy")
    ]  # fmt: skip


def test_contacts_by_topic_and_language_then_the_setting_then_none(rt):
    rt.scripted.put(ScriptedAnswer("contact_hr", "en", "HR sits on the 2nd floor."))
    messages, _ = run(ActionContactHr(), tracker("how do I reach HR?", "contact_hr"))
    assert messages[0]["text"] == "HR sits on the 2nd floor.\n\n" + TEXTS["en"]["no_contact"]
    rt.default_contact = Contact(label="HR", phone="+33 1 23 45 67 89")
    messages, _ = run(ActionContactHr(), tracker("how do I reach HR?", "contact_hr"))
    assert messages[0]["text"].endswith("- Phone: +33 1 23 45 67 89")
    rt.escalations.put_contact(
        Contact(topic="contact_hr", language="en", url="https://desk.example/new", label="Desk")
    )
    rt.escalations.put_contact(Contact(topic="", language="", email="all@company.example"))
    messages, _ = run(ActionContactHr(), tracker("how do I reach HR?", "contact_hr"))
    assert messages[0]["text"].endswith("- Ticket: [Desk](https://desk.example/new)")
    messages, _ = run(ActionContactHr(), tracker("人事に連絡したい", "contact_hr", "ja"))
    assert "[all@company.example](mailto:all@company.example?" in messages[0]["text"]
    assert [(e.event, e.reason, e.language) for e in rt.escalations.latest()] == [
        ("requested", "asked", "ja"), ("requested", "asked", "en"), ("requested", "asked", "en"),
        ("requested", "asked", "en"),
    ]  # fmt: skip


def test_the_same_question_gets_the_verified_answer_and_a_thumbs_down_reads_the_intranet(rt, redis_client):
    from actions.verified_match import VerifiedMatcher
    from knowledge.verified import VerifiedAnswer, VerifiedAnswers

    store = VerifiedAnswers(redis_client)
    rt.answerer.verified = VerifiedMatcher(store, None, floor=0.85, strict=0.935)
    store.put(VerifiedAnswer("Where are the offices?", "Paris and Lyon", "en", "http://i/offices", "Offices"))
    messages, events = run(ActionScriptedAnswer(), tracker("where are the OFFICES ?", "offices", "fr"))
    assert messages[0]["text"] == (
        "Paris and Lyon\n\n✔ " + TEXTS["fr"]["verified"] + "\n\nSource : [Offices](http://i/offices)"
    )
    record = rt.answers.get(events[0]["value"])
    assert (record.kind, record.score, record.model.startswith("verified:")) == ("verified", 1.0, True)
    down = [{"entity": "vote", "value": "down"}, {"entity": "answer_id", "value": record.id}]
    messages, _ = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=down))
    assert messages[1]["text"] == TEXTS["fr"]["sources_down"]  # read the intranet (none in this test)
    (entry,) = rt.feedback.entries()
    assert (entry.kind, entry.answer) == ("verified", "Paris and Lyon")


def test_a_close_question_needs_the_pipeline_to_find_the_verified_answer_in_its_page():
    from actions.verified_match import Near, VerifiedMatcher
    from knowledge.verified import VerifiedAnswer
    from qa_engine import Answer, Passage

    matcher = VerifiedMatcher(None, None, floor=0.85, strict=0.935)
    kept = VerifiedAnswer(
        "How many days of leave?", "25 days", "en", "http://i/leave", "Leave", "We get 25 days."
    )
    typed = VerifiedAnswer("Who is the DPO?", "Ana Lima", "en")
    leave = Passage("We get 25 days.", url="http://i/leave")

    def best(text, url):
        return Answer(text=text, score=1.0, passage=Passage(leave.text, url=url), sentence=text)

    assert matcher.choose([Near(kept, 0.9)], best("25 days", "http://i/leave")).confirmed_by_reader
    assert matcher.choose([Near(kept, 0.9)], best("25", "http://i/other")) is None  # another page
    assert matcher.choose([Near(kept, 0.9)], best("31 March", "http://i/leave")) is None  # another span
    assert matcher.choose([Near(kept, 0.99)], None) is None and matcher.needs_reading([Near(kept, 0.99)])
    assert matcher.choose([Near(typed, 0.93)], None) is None
    assert matcher.choose([Near(typed, 0.94)], None).answer is typed  # a typed answer: strict only
    assert not matcher.needs_reading([Near(typed, 0.94)])


def test_with_redis_down_the_employee_still_gets_the_contact_of_the_settings(rt):
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    rt.escalations, rt.scripted = Escalations(dead), ScriptedAnswers(dead)
    rt.default_contact = Contact(label="HR", email="hr@company.example")
    messages, _ = run(ActionContactHr(), tracker("je veux parler aux RH", "contact_hr", "fr"))
    assert messages[0]["text"].startswith(TEXTS["fr"]["contact_intro"])
    assert "[hr@company.example](mailto:hr@company.example?" in messages[0]["text"]
    messages, _ = run(ActionScriptedAnswer(), tracker("where are the offices?", "offices"))
    assert messages[0]["text"] == TEXTS["en"]["sources_down"]  # said plainly, not a crash


@pytest.mark.parametrize("read_all", [False, True])
def test_a_thumbs_down_on_an_answer_from_the_first_passages_reads_the_others(rt, page_server, read_all):
    """An answer the best-ranked passages gave alone (KATE_READ_SURE): its record says so, and a 👎 on it
    reads the passages they left before offering another page. An answer from a whole reading offers
    what it had."""
    answerer_over_a_page(rt, page_server, FirstSentenceReader())
    page = page_server.url("/site/en/leave.html")
    rated = rt.answers.put(
        AnswerRecord(
            conversation_id="conv-1", kind="qa", question="How many days of leave?", language="en",
            answer="a", source_url="http://i/1", score=0.9, model="m", shown_urls=["http://i/1"],
            best_pages=[("T1", "http://i/1")], read_all=read_all,
        )
    )  # fmt: skip
    down = [{"entity": "vote", "value": "down"}, {"entity": "answer_id", "value": rated.id}]
    messages, events = run(ActionLogFeedback(), tracker("/feedback", "feedback", entities=down))
    if read_all:
        assert messages[1]["text"].startswith(TEXTS["en"]["no_other"]) and page not in messages[1]["text"]
        return
    assert messages[1]["text"].startswith(TEXTS["en"]["another"]) and page in messages[1]["text"]
    second = rt.answers.get(events[0]["value"])
    assert second.shown_urls == ["http://i/1", page] and second.read_all


def test_the_record_of_an_answer_says_whether_every_ranked_passage_was_read(rt, page_server):
    answerer = answerer_over_a_page(rt, page_server, FirstSentenceReader())
    whole = answerer.answer

    async def first_passages_only(question, employee=None, *, rest_only=False):
        outcome = await whole(question, employee, rest_only=rest_only)
        outcome.read_all = False
        return outcome

    answerer.answer = first_passages_only
    _, events = run(ActionAnswerFromKnowledge(), tracker("How many days of leave do I get?"))
    assert rt.answers.get(events[0]["value"]).read_all is False
