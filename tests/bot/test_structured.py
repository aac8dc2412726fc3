"""Answers an employee can act on, through the running bot (REST channel, real Rasa, real action server
and reader, real pages over HTTP): whole lists, numbered steps, table cells, FAQ answers, a conflict,
a follow-up, and a page restricted to managers."""

from __future__ import annotations

import re
import uuid

import pytest
from lumen import SECRET, lumen_intranet

from knowledge.audience import Employee, sign


@pytest.fixture(scope="module")
def lumen(stack):
    with lumen_intranet(stack) as site:
        yield site


def ask(stack, question: str, sender: str | None = None, employee: Employee | None = None,
        secret: str = SECRET) -> str:  # fmt: skip
    import json
    import urllib.request

    body: dict = {"sender": sender or uuid.uuid4().hex, "message": question}
    if employee is not None:
        body["metadata"] = {"employee_token": sign(employee, secret)}
    request = urllib.request.Request(
        stack.rest_url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return "\n\n".join(m.get("text") or "" for m in json.loads(response.read()))


def test_a_list_question_gets_every_item_and_steps_come_numbered(stack, lumen):
    reply = ask(stack, "Which documents do I need to bring on my first day?")
    for item in ("passport or national identity card", "employment contract", "IBAN", "social security card",
                 "passport-size photo"):  # fmt: skip
        assert item in reply, reply
    assert lumen.url("en/onboarding.html") in reply
    steps = ask(stack, "Quelles sont les étapes pour ajouter un ayant droit à la mutuelle ?")
    assert "1. Connectez-vous" in steps and "5. Validez" in steps, steps


def test_a_table_cell_comes_with_its_row_and_column(stack, lumen):
    reply = ask(stack, "What is the hotel cap per night in London?")
    assert "London · Hotel cap per night: 210 GBP" in reply and lumen.url("en/travel.html") in reply


def test_a_faq_question_gets_the_faq_answer_whole(stack, lumen):
    reply = ask(stack, "Can I start on a Wednesday instead of a Monday?")
    # the whole FAQ answer, with the reader's span inside it in bold (which span depends on the pages read)
    answer = "Yes, with your manager's agreement you can start on any working day except Fridays."
    assert answer in reply.replace("**", "") and lumen.url("en/onboarding.html") in reply, reply
    assert re.search(r"\*\*[^*\n]*(?:working day|Fridays)[^*\n]*\*\*", reply), reply


def test_a_planted_conflict_shows_both_pages(stack, lumen):
    reply = ask(stack, "How many days of paid annual leave do full-time employees get?")
    assert lumen.url("en/leave.html") in reply and lumen.url("en/staff-handbook-2024.html") in reply, reply
    assert "24 days" not in reply  # the superseded section never answers


def test_a_follow_up_is_understood_and_a_new_question_is_not_joined(stack, lumen):
    sender = uuid.uuid4().hex
    assert "210 GBP" in ask(stack, "What is the hotel cap per night in London?", sender)
    assert "160 EUR" in ask(stack, "and in Munich?", sender)
    assert "four months" in ask(stack, "How long is the probation period?", sender)
    french = uuid.uuid4().hex
    assert "12 rue des Entrepôts" in ask(stack, "Quelle est l'adresse du site de Paris ?", french)
    assert "88 avenue de la Gare" in ask(stack, "et à Lille ?", french)


def test_a_restricted_page_reaches_only_its_group(stack, lumen):
    bonus = lumen.url("en/managers-bonus.html")
    question = "What is the target bonus for managers?"
    for outsider in (None, Employee(country="fr", groups=("engineers",))):
        reply = ask(stack, question, employee=outsider)
        assert bonus not in reply and "15%" not in reply, reply
    forged = ask(stack, question, employee=Employee(groups=("managers",)), secret="not kate's secret")
    assert bonus not in forged and "15%" not in forged
    manager = ask(stack, question, employee=Employee(groups=("managers",)))
    assert "15%" in manager and bonus in manager, manager


def test_the_employees_own_page_wins_for_them(stack, lumen):
    french = ask(stack, "How much is the meal allowance per working day?", employee=Employee(country="fr"))
    assert french.index(lumen.url("fr/titres-restaurant.html")) < french.find(lumen.url("en/meals.html")) or (
        lumen.url("en/meals.html") not in french
    ), french
    assert "11 euros" in french
    anyone = ask(stack, "How much is the meal allowance per working day?")
    assert "9 euros" in anyone and anyone.find(lumen.url("en/meals.html")) >= 0, anyone
