"""The company's scripted answers in a real Redis: lookup order, validation, the demo company's answers
(loaded only with the demo intranet), export and import, and a Redis restart."""

from __future__ import annotations

import pytest
import yaml

from core.settings import Settings
from core.wiring import demo_base_url, sync_demo_answers
from knowledge.cache import PageCache
from knowledge.escalation import Contact, Escalations
from knowledge.library import FetchLimits, Knowledge
from knowledge.scripted import (
    DEMO_AUTHOR,
    DEMO_CONTENT,
    MAX_TEXT,
    ScriptedAnswer,
    ScriptedAnswers,
    ScriptedError,
)
from knowledge.sources import SourceRegistry
from knowledge.store import StoreUnavailable, connect


@pytest.fixture
def answers(redis_client):
    return ScriptedAnswers(redis_client)


def test_the_employees_language_and_the_named_variant_come_first(answers):
    answers.put(ScriptedAnswer("offices", "en", "All offices."))
    answers.put(ScriptedAnswer("offices", "fr", "Tous les bureaux."))
    answers.put(ScriptedAnswer("offices", "en", "Lyon office.", variant="Lyon"))
    assert answers.find("offices", "en", "LYON").text == "Lyon office."
    assert answers.find("offices", "fr", "lyon").text == "Tous les bureaux."  # own language first
    assert answers.find("offices", "ja", "lyon").text == "Lyon office."  # then any, variant first
    assert answers.find("offices", "ja").text == "All offices."
    assert answers.find("payroll_date", "en") is None  # nothing written: the intranet answers
    answers.put(ScriptedAnswer("payroll_date", "de", "Am 25."))
    assert answers.find("payroll_date", "fr").language == "de"  # outside the fallback list, still found


@pytest.mark.parametrize(
    "bad, words",
    [
        (ScriptedAnswer("leave policy!", "en", "x"), "intent must be"),
        (ScriptedAnswer("leave_policy", "english", "x"), "language must be"),
        (ScriptedAnswer("leave_policy", "en", "   "), "empty"),
        (ScriptedAnswer("leave_policy", "en", "x" * (MAX_TEXT + 1)), "too long"),
        (ScriptedAnswer("offices", "en", "x", variant="<script>"), "variant must be"),
    ],
)
def test_bad_answers_are_refused_with_the_field_named(answers, bad, words):
    with pytest.raises(ScriptedError, match=words):
        answers.put(bad)
    assert answers.count() == 0


def test_demo_answers_are_added_once_and_only_unedited_ones_are_dropped(answers):
    demo = yaml.safe_load(DEMO_CONTENT.read_text(encoding="utf-8"))["answers"]
    total = sum(len(texts) for texts in demo.values())
    assert answers.seed_demo() == total and answers.seed_demo() == 0
    assert answers.find("offices", "en", "lyon").text == demo["offices/lyon"]["en"]
    answers.put(ScriptedAnswer("leave_policy", "en", "Our own leave policy.", by="alice"))
    assert answers.seed_demo() == 0  # an admin's edit is never overwritten by the demo's text
    assert answers.drop_demo() == total - 1
    assert [(a.intent, a.text, a.by) for a in answers.all()] == [
        ("leave_policy", "Our own leave policy.", "alice")
    ]


def test_export_then_import_gives_the_same_answers(answers, redis_client):
    answers.put(ScriptedAnswer("offices", "ja", "東京オフィス：丸の内。", variant="tokyo", by="hr"))
    answers.put(ScriptedAnswer("payroll_date", "fr", "Le 25 : « paie ».", by="hr"))
    exported = answers.export_yaml()
    redis_client.flushdb()
    assert answers.import_yaml(exported, by="bob") == 2
    assert [(a.key, a.language, a.text, a.by) for a in answers.all()] == [
        ("offices/tokyo", "ja", "東京オフィス：丸の内。", "bob"),
        ("payroll_date", "fr", "Le 25 : « paie ».", "bob"),
    ]


@pytest.mark.parametrize(
    "text, words",
    [
        ("answers: [1, 2]", "no `answers:`"),
        ("answers:\n  leave_policy: just text", "mapping of language"),
        ("answers:\n  leave_policy:\n    en: ok\n    english: no", "leave_policy \\(english\\)"),
        ("answers: {unclosed", "not a readable YAML"),
    ],
)
def test_an_import_with_one_bad_entry_writes_nothing(answers, text, words):
    with pytest.raises(ScriptedError, match=words):
        answers.import_yaml(text, by="bob")
    assert answers.count() == 0


def test_answers_survive_a_redis_restart_and_a_stopped_redis_is_a_clear_error(redis_server, answers):
    answers.put(ScriptedAnswer("training", "fr", "Deux jours de formation par an.", by="hr"))
    redis_server.crash()  # SIGKILL: only what Redis had written survives
    redis_server.start()
    again = ScriptedAnswers(connect(redis_server.url))
    assert again.find("training", "fr").text == "Deux jours de formation par an."
    dead = ScriptedAnswers(connect("redis://127.0.0.1:1/0", timeout=0.5))
    with pytest.raises(StoreUnavailable):
        dead.find("training", "fr")


def test_the_demo_answers_follow_the_sources(redis_client, redis_server):
    """With the demo intranet, Kate answers as the demo company; pointed at a company's own pages, the
    demo company's text is gone (what an admin edited stays)."""
    settings = Settings.from_env({"REDIS_URL": redis_server.url, "KATE_DEMO_PORT": "8765"})
    registry = SourceRegistry(redis_client)
    knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=1, total_timeout=2))
    answers = ScriptedAnswers(redis_client)
    registry.add(demo_base_url(settings) + "/en/leave.html")
    assert "loaded" in sync_demo_answers(settings, knowledge)
    assert answers.find("leave_policy", "en").by == DEMO_AUTHOR
    contacts = Escalations(redis_client)
    assert contacts.contact_for("payroll_date", "fr").email == "payroll@northwind.example"
    contacts.put_contact(Contact(topic="", language="fr", email="hr@company.example", by="hr"))
    answers.put(ScriptedAnswer("payroll_date", "en", "Paid on the last working day.", by="hr"))
    registry.remove(demo_base_url(settings) + "/en/leave.html")
    registry.add("https://intranet.company.example/hr/leave")
    assert "removed" in sync_demo_answers(settings, knowledge)
    assert answers.find("leave_policy", "en") is None
    assert [c.email for c in contacts.contacts()] == ["hr@company.example"]
    assert [a.text for a in answers.all()] == ["Paid on the last working day."]
    assert sync_demo_answers(settings, knowledge) == ""
