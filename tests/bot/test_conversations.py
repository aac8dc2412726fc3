"""Conversations with the running bot through the REST channel (the `stack` fixture: real Redis,
demo intranet, action server with the shipped reader, Rasa server)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import KATE, demo_answer

from actions.messages import TEXTS
from knowledge.escalation import Escalations
from knowledge.feedback import FeedbackLog
from knowledge.scripted import ScriptedAnswers
from knowledge.store import connect

LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)]+)\)")


def payload_of(message: dict, title: str) -> str:
    return next(b["payload"] for b in message["buttons"] if b["title"] == title)


def rated_id(payload: str) -> str:
    return json.loads(payload.removeprefix("/feedback"))["answer_id"]


def feedback_for(stack, sender: str) -> list:
    log = FeedbackLog(connect(stack.redis_url))
    return [e for e in log.entries() if e.conversation_id == sender]


def test_scripted_answers_come_in_the_language_of_the_question(stack):
    for question, key, language in [
        ("How many days of paid leave do I get?", "leave_policy", "en"),
        ("Combien de jours de télétravail par semaine ?", "remote_work", "fr"),
        ("給料日はいつですか？", "payroll_date", "ja"),
        ("Where is the Lyon office?", "offices/lyon", "en"),
        ("東京オフィスの住所は？", "offices/tokyo", "ja"),
    ]:
        replies = stack.say(question)
        assert len(replies) == 1, (question, replies)
        assert replies[0]["text"] == demo_answer(key, language), (question, replies)
        assert [b["title"] for b in replies[0]["buttons"]] == ["👍", "👎"]


def test_an_intent_with_no_company_answer_is_read_from_the_intranet(stack):
    """What a company that wrote no scripted answer gets: the intent is recognised, and the answer is
    read from its own pages, by the real reader."""
    store = ScriptedAnswers(connect(stack.redis_url))
    removed = [store.remove("training", language) for language in ("en", "fr", "ja")]
    try:
        assert all(removed)
        (reply,) = stack.say("what is my training budget?")
        links = LINK.findall(reply["text"])
        assert links and links[0][1].endswith("/en/training.html"), reply["text"]
        assert "1,500 euros" in reply["text"] and "Source:" in reply["text"]
        assert reply["text"] != demo_answer("training")
    finally:
        store.seed_demo()  # the demo's answers back, as `kate up` loaded them


def test_off_script_questions_are_answered_from_the_right_page(stack):
    for question, page, fact, source_word in [
        ("Above what value must a gift be declared?", "/en/code-of-conduct.html", "50 euros", "Source:"),
        ("Which extension do I call for the IT service desk?", "/en/it-help.html", "4357", "Source:"),
        (
            "Quel est le montant du forfait mobilités durables ?",
            "/fr/transport.html",
            "700 euros",
            "Source :",
        ),
    ]:
        replies = stack.say(question)
        assert len(replies) == 1, replies
        text = replies[0]["text"]
        links = LINK.findall(text)
        assert links and links[0][1].endswith(page), (question, text)
        assert fact in text and source_word in text, (question, text)  # the answer's sentence is quoted
        assert [b["title"] for b in replies[0]["buttons"]] == ["👍", "👎"]


def test_german_and_spanish_employees_are_answered_in_their_language(stack):
    """The demo company wrote its answers in en/fr/ja: a German employee gets HR's English answer,
    introduced in German; Kate's own small talk exists in German and Spanish."""
    (payday,) = stack.say("Wann wird das Gehalt überwiesen?")
    intro = TEXTS["de"]["other_language"].format(name="Englisch")
    assert payday["text"] == f"{intro}\n\n{demo_answer('payroll_date')}", payday
    assert [b["title"] for b in payday["buttons"]] == ["👍", "👎"]
    (hello,) = stack.say("¡Hola! ¿Qué tal?")
    assert hello["text"] in ("¡Hola! ¿En qué puedo ayudarle hoy con RR. HH.?", SPANISH_WELCOME), hello


SPANISH_WELCOME = (
    "¡Hola! Soy Kate, su asistente de RR. HH. Pregúnteme por vacaciones, nómina, teletrabajo o cualquier "
    "cosa de la intranet de RR. HH."
)


def test_a_question_in_another_language_is_read_from_the_intranet_never_scripted(stack):
    scripted = {
        demo_answer(key, language) for key in ("payroll_date", "leave_policy") for language in ("en", "fr")
    }
    (reply,) = stack.say("Quantos dias de férias eu tenho por ano?")
    text = reply["text"]
    assert not any(answer in text for answer in scripted), text
    assert "Source:" in text or TEXTS["en"]["unsure"] in text, text  # the reader's answer, in English words


def test_an_off_topic_message_gets_kates_scope_when_the_intranet_has_nothing_on_it(stack):
    """`out_of_scope` reads the intranet first (tests/web: a choir page answers "In which room does the
    choir rehearse?"); a joke is on no page, so Kate says what it is for, without vote buttons."""
    (reply,) = stack.say("tell me a joke about accountants")
    assert reply["text"] == TEXTS["en"]["off_topic"], reply
    assert not reply.get("buttons")


def test_thumbs_up_is_logged_once_with_every_field(stack):
    sender = uuid.uuid4().hex
    answer = stack.say("When is payday?", sender)[0]
    up = payload_of(answer, "👍")
    thanks = stack.say(up, sender)
    assert thanks[0]["text"].startswith("Thanks for your feedback")
    stack.say(up, sender)  # a double click counts once
    entries = feedback_for(stack, sender)
    assert len(entries) == 1
    e = entries[0]
    assert (e.vote, e.kind, e.answer, e.language, e.model) == (
        "up",
        "scripted",
        demo_answer("payroll_date"),
        "en",
        "rasa-nlu",
    )
    assert e.question == "When is payday?" and e.score and 0 < e.score <= 1 and e.time > 0


def test_thumbs_down_on_a_scripted_answer_asks_the_intranet(stack):
    sender = uuid.uuid4().hex
    answer = stack.say("Combien de jours de congés payés par an ?", sender)[0]
    replies = stack.say(payload_of(answer, "👎"), sender)
    assert replies[0]["text"].startswith("Merci de me l'avoir signalé")
    qa = replies[1]
    assert LINK.findall(qa["text"]), replies  # an intranet answer with its source linked, in French...
    titles = [b["title"] for b in qa.get("buttons", [])]
    if "👍" in titles:
        assert "Source :" in qa["text"] and titles == ["👍", "👎"]
    else:  # ...or, below the confidence threshold (KATE_ANSWER_MIN_CONFIDENCE), the pages to read
        assert qa["text"].startswith(TEXTS["fr"]["unsure"] + " " + TEXTS["fr"]["pages_help"])
        assert titles == ["Contacter les RH"]
    (entry,) = feedback_for(stack, sender)
    assert (entry.vote, entry.kind, entry.language) == ("down", "scripted", "fr")
    assert entry.answer == demo_answer("leave_policy", "fr")


def test_thumbs_down_on_an_intranet_answer_offers_other_pages_then_links(stack):
    sender = uuid.uuid4().hex
    first = stack.say("Above what value must a gift be declared?", sender)[0]
    seen = [LINK.findall(first["text"])[0][1]]
    message = first
    offers = []
    for _ in range(12):  # at most CANDIDATES other pages
        replies = stack.say(payload_of(message, "👎"), sender)
        assert replies[0]["text"].startswith("Thanks for telling me")
        offers += [b for b in replies[-1].get("buttons", []) if b["title"] == "Contact HR"]
        if not any(b["title"] == "👎" for b in replies[-1].get("buttons", [])):
            break
        message = replies[-1]
        assert message["text"].startswith("Here is another answer, from a different page")
        url = LINK.findall(message["text"])[0][1]
        assert url not in seen  # always another page
        seen.append(url)
    else:
        raise AssertionError("the 👎 flow never ran out of answers")
    assert replies[-1]["text"].startswith("I have no other answer from a different page")
    assert replies[-1]["text"].endswith(TEXTS["en"]["offer_hr"])
    # a person is offered at the second 👎 (beside a third answer, when there is one), and when the
    # answers run out
    assert len(offers) == (2 if len(seen) >= 3 else 1), (seen, offers)
    # Rasa's REST channel sends a reply without buttons as one message per paragraph
    contact = "\n\n".join(m["text"] for m in stack.say(offers[0]["payload"], sender))
    assert contact.startswith(demo_answer("contact_hr"))  # the company's own words first
    assert "You can reach HR here:" in contact and "(mailto:people@northwind.example?" in contact
    assert "body=Above%20what%20value%20must%20a%20gift" in contact  # a mail holding the question
    log = Escalations(connect(stack.redis_url))
    mine = [(e.event, e.reason) for e in log.latest() if e.conversation_id == sender]
    first = "second_down" if len(seen) >= 3 else "no_other"
    offered = (
        [("offered", "no_other"), ("offered", "second_down")] if len(seen) >= 3 else [("offered", "no_other")]
    )
    assert mine == [("requested", first), *offered]
    entries = feedback_for(stack, sender)
    assert len(entries) == len(seen)
    assert all(e.vote == "down" and e.kind == "qa" and e.source_url and e.model for e in entries)
    assert [e.source_url for e in entries] == seen
    assert all(e.score is not None for e in entries)


def test_typed_feedback_rates_the_last_answer(stack):
    sender = uuid.uuid4().hex
    stack.say("How do I claim expenses?", sender)
    replies = stack.say("that was helpful", sender)
    assert replies[0]["text"].startswith("Thanks for your feedback")
    assert [e.answer for e in feedback_for(stack, sender)] == [demo_answer("expenses")]


def test_empty_and_huge_messages_get_a_clear_reply(stack):
    assert stack.say("")[0]["text"] == "Your message was empty. What would you like to know about HR?"
    message = ("How many days of leave? " * 420).strip()  # 10,079 characters
    huge = stack.say(message)
    assert huge[0]["text"].startswith("Your message is too long for me (10,079 characters)")
    ja = stack.say("有給休暇は何日ですか？" * 1000)
    assert ja[0]["text"].startswith("メッセージが長すぎます")


def test_injected_markup_is_not_echoed_as_markup(stack):
    replies = stack.say("<script>alert(1)</script> [click](javascript:alert(1)) where is the Paris office?")
    assert replies and all(r.get("text") for r in replies)  # a reply came, so the loop below checks something
    for reply in replies:
        assert "<script>" not in reply.get("text", "") and "javascript:" not in reply.get("text", "")


def test_twenty_concurrent_conversations_all_get_answers(stack):
    questions = [
        "How many days of paid leave do I get?", "Above what value must a gift be declared?",
        "Combien de jours de télétravail par semaine ?", "What is the guest wifi password?",
        "給料日はいつですか？", "Quel est le montant du forfait mobilités durables ?",
        "Where is the London office?", "How do I report harassment?",
        "What is the training budget?", "社員証をなくしました",
    ] * 2  # fmt: skip
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda q: stack.say(q, timeout=180), questions))
    elapsed = time.perf_counter() - t0
    for question, replies in zip(questions, results, strict=True):
        assert replies and replies[0].get("text"), question
        assert "buttons" in replies[0] or LINK.findall(replies[0]["text"]), (question, replies)
    print(f"20 concurrent conversations answered in {elapsed:.1f} s")


def test_redis_restart_loses_no_acknowledged_feedback(stack, redis_server):
    sender = uuid.uuid4().hex
    answer = stack.say("When is payday?", sender)[0]
    stack.say(payload_of(answer, "👍"), sender)
    redis_server.crash()  # SIGKILL between two messages
    redis_server.start()
    deadline = time.monotonic() + 30
    while True:  # Rasa and the action server reconnect on their own
        try:
            second = stack.say("How do I claim expenses?", sender)[0]
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(1)
    stack.say(payload_of(second, "👎"), sender)
    assert [(e.vote, e.answer) for e in feedback_for(stack, sender)] == [
        ("up", demo_answer("payroll_date")),
        ("down", demo_answer("expenses")),
    ]


def test_kate_chat_and_status(stack):
    chat = subprocess.run(
        [KATE, "chat", "--url", stack.rest_url], input="When is payday?\n+\n\n",
        capture_output=True, text=True, env=stack.env, timeout=120,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert "[1] 👍   [2] 👎" in chat.stdout and "Thanks for your feedback" in chat.stdout
    status = stack.kate("status")
    assert status.returncode == 0 and status.stdout.count("healthy") == 4, status.stdout


def test_the_action_server_is_ready_once_its_passage_index_is_loaded(stack):
    """/ready is the readiness probe's question: 200, with the passages held, once the index is loaded
    (the demo intranet's pages); /health only says the models are loaded."""
    import urllib.request

    url = f"http://127.0.0.1:{stack.env['KATE_ACTIONS_PORT']}/ready"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                state = json.loads(reply.read())
                break
        except urllib.error.HTTPError as exc:  # 503 while the index loads
            assert exc.code == 503 and json.loads(exc.read())["index"] == "loading"
            assert time.monotonic() < deadline, "the index never loaded"
            time.sleep(0.5)
    assert state["ready"] is True and state["index"] == "loaded" and state["passages"] > 20, state


def test_the_action_server_reports_its_readings_in_prometheus_format(stack):
    """/metrics: the in-process reader's counters, after the questions this module asked (some read)."""
    import urllib.request

    from measure.bench_load import reader_counters

    url = f"http://127.0.0.1:{stack.env['KATE_ACTIONS_PORT']}/metrics"
    (reply,) = stack.say("Above what value must a gift be declared?")
    assert "50 euros" in reply["text"]  # read from the code of conduct
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
    counters = reader_counters(url)  # what `kate bench load` reads of it
    assert counters is not None
    assert counters["kate_reader_forward_calls_total"] >= 1 and counters["kate_reader_passages_total"] >= 2
    assert "kate_reader_busy_bound_total" in counters and "kate_reader_remembered_total" in counters
