"""Answers shaped by their page: page layout per line, lists, steps, table rows, FAQ pairs, outdated
sections (knowledge/passages.py, knowledge/shapes.py), on real HTML through the real parsers."""

from __future__ import annotations

import pytest

from knowledge.passages import html_to_passages, is_outdated
from knowledge.shapes import asks_for_several, shape
from qa_engine.types import Answer, Passage

PAGE = """<html lang="en"><body><main><h1>Onboarding</h1>
<p>Your first week is organised by your manager and the People team.</p>
<h2>Documents to bring</h2><p>Please bring the following documents on your first morning:</p>
<ul><li>a valid passport</li><li>your signed contract</li><li>a bank statement showing your IBAN</li>
<li>Give 30 days' notice to your landlord if you move</li></ul>
<h2>Laptop setup</h2><ol><li>Sign in with the temporary password.</li><li>Choose a new password.</li>
<li>Install the VPN.</li></ol>
<h2>Hotel caps</h2><table><tr><th>City</th><th>Hotel cap</th><th>Opening hours</th></tr>
<tr><td>London</td><td>210 GBP</td><td>8:00-18:00</td></tr>
<tr><td>Munich</td><td>160 EUR</td><td>7:30-17:30</td></tr>
</table>
<h2>FAQ</h2><details><summary>Can I start on a Wednesday?</summary><p>Yes, on any working day except
Fridays, with your manager's agreement.</p></details>
<dl><dt>Who is my buddy?</dt><dd>A colleague from another team.</dd></dl>
<p>Q: Is there a gym?</p><p>A: Yes, on the third floor.</p>
<h2>Previous policy (superseded)</h2><p>Newcomers got 20 days.</p>
</main></body></html>"""


@pytest.fixture(scope="module")
def passages() -> list[Passage]:
    return html_to_passages(PAGE, url="http://intranet/onboarding")[1]


def section(passages: list[Passage], name: str) -> Passage:
    return next(p for p in passages if p.section.endswith(name))


def span(passage: Passage, text: str) -> Answer:
    start = passage.text.index(text)
    return Answer(text, 5.0, passage, start, start + len(text))


def test_every_line_of_a_passage_says_what_it_was_on_the_page(passages):
    assert section(passages, "Documents to bring").layout == "h p u1 u1 u1 u1"
    assert section(passages, "Laptop setup").layout == "h o2 o2 o2"
    assert section(passages, "Hotel caps").layout == "h t1 t1"
    for name, answer in [
        (
            "Can I start on a Wednesday?",
            "Yes, on any working day except Fridays, with your manager's agreement.",
        ),
        ("Who is my buddy?", "A colleague from another team."),
        ("Is there a gym?", "Yes, on the third floor."),  # "Q:" and "A:" are gone from the text
    ]:
        pair = section(passages, name)
        assert pair.layout.split()[0] == "q" and pair.text.split("\n") == [name, answer]
    assert [p.outdated for p in passages].count(True) == 1
    assert section(passages, "(superseded)").outdated


@pytest.mark.parametrize(
    "heading",
    ["Old policy (superseded)", "Archive 2023", "Archives:", "Archive > Leave 2023", "Ancienne politique",
     "Règles obsolètes", "旧制度（廃止）", "Veraltete Regelung", "This policy no longer applies"],
)  # fmt: skip
def test_outdated_sections_are_recognised_in_four_languages(heading):
    assert is_outdated(heading)


@pytest.mark.parametrize(
    "heading", ["Annual leave", "Congés payés", "年次有給休暇", "Jahresurlaub", "Archery club"]
)
def test_current_sections_are_not_outdated(heading):
    assert not is_outdated(heading)


def test_a_list_question_gets_the_whole_list_with_its_heading(passages):
    docs = section(passages, "Documents to bring")
    found = shape("Which documents do I need to bring?", span(docs, "your signed contract"), passages)
    assert found.kind == "list" and found.heading == "Documents to bring"
    assert found.items == [
        "a valid passport", "your signed contract", "a bank statement showing your IBAN",
        "Give 30 days' notice to your landlord if you move",
    ]  # fmt: skip
    # the sentence that introduces the list answers a list question with the list too
    intro = shape("Quels documents dois-je apporter ?", span(docs, "the following documents"), passages)
    assert intro.kind == "list" and len(intro.items) == 4


def test_a_single_fact_inside_a_list_stays_a_short_answer(passages):
    docs = section(passages, "Documents to bring")
    assert shape("How much notice must I give my landlord?", span(docs, "30 days"), passages).kind == "span"
    # but a span that is the whole item stands for the list
    assert shape("What should I have?", span(docs, "a valid passport"), passages).kind == "list"


def test_a_numbered_procedure_is_steps_in_order(passages):
    steps = shape(
        "How do I set up my laptop? What are the steps?",
        span(section(passages, "Laptop setup"), "VPN"),
        passages,
    )
    assert (
        steps.kind == "steps"
        and steps.items[0].startswith("Sign in")
        and steps.items[-1] == "Install the VPN."
    )


def test_a_table_cell_comes_with_its_row_and_column(passages):
    table = section(passages, "Hotel caps")
    found = shape("What is the hotel cap in Munich?", span(table, "160 EUR"), passages)
    assert found.kind == "row" and found.text == "Munich · Hotel cap: 160 EUR"
    assert shape("Opening hours in London?", span(table, "8:00-18:00"), passages).text == (
        "London · Opening hours: 8:00-18:00"
    )


def test_a_span_in_a_faq_answer_gets_the_answer_whole(passages):
    pair = section(passages, "Can I start on a Wednesday?")
    found = shape("Can I start midweek?", span(pair, "any working day except Fridays"), passages)
    assert found.kind == "faq" and found.heading == "Can I start on a Wednesday?"
    assert found.text.startswith("Yes, on any working day") and found.text.endswith("agreement.")


def test_a_list_longer_than_ten_items_is_cut_and_counted():
    items = "".join(f"<li>document number {i}</li>" for i in range(1, 15))
    page = f"<main><h2>Papers</h2><ul>{items}</ul></main>"
    passages = html_to_passages(page, url="http://i/p")[1]
    found = shape("Which documents?", span(passages[0], "document number 3"), passages)
    assert len(found.items) == 10 and found.more == 4 and found.items[0] == "document number 1"


def test_a_page_cached_without_layout_keeps_plain_spans():
    old = Passage("Bring a passport.\nBring a contract.", url="http://i/old")
    assert shape("Which documents?", span(old, "a passport"), [old]).kind == "span"


@pytest.mark.parametrize(
    ("question", "several"),
    [
        ("Which documents do I need?", True), ("What are the steps to request leave?", True),
        ("Quels justificatifs faut-il fournir ?", True), ("必要な書類は？", True),
        ("休暇申請の手順は？", True),
        ("Welche Unterlagen brauche ich?", True), ("How many days of leave do I get?", False),
        ("Quand suis-je payé ?", False), ("給与は何日に支払われますか？", False),
        ("What are the conditions to work from home?", True), ("Quels cas sont couverts ?", True),
        ("当日の持ち物は？", True), ("What is the address of the Lyon site?", False),
    ],
)  # fmt: skip
def test_list_questions_are_told_from_single_fact_questions(question, several):
    assert asks_for_several(question) is several
