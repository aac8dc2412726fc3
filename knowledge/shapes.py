"""An answer span, given the shape of the page around it: a whole list, a numbered procedure, a table
cell with its row and column, or a FAQ answer whole.

The Kate paper's open problem: a span reader "is only able to return a partial answer when the
information is dispersed in several parts of the source (subtitles, bulleted lists)". The reader still
picks the best span across every page (its scores are comparable across pages); this module only looks
at where that span sits, through the `layout` the page parser recorded for every line of a passage
(knowledge/passages.py), and widens what is shown:

- a list question ("which documents...", "quels justificatifs...", "必要な書類は") whose span sits in a
  list item, or in the sentence that introduces a list, gets every item of that list, in the page's order
  (numbered when the page numbers them), under its heading; a span that is most of its item gets the list
  too. A short fact inside an item ("30 days" in "Give 30 days' notice") stays a short answer;
- a span in a table row gets the row's label and the column's header ("Munich · Opening hours: 8-18");
- a span in a FAQ answer gets the answer whole, with the span to highlight.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from qa_engine.types import Answer, Passage

MAX_ITEMS = 10  # items shown for one list; the rest is counted ("and 4 more on the page")
MAX_ITEM_CHARS = 300
MAX_FAQ_CHARS = 900
WHOLE_ITEM = 0.6  # a span this share of its list item long stands for the item: the list is the answer

# Questions that ask for several things, in the languages Kate speaks (and German, which it reads).
SEVERAL = re.compile(
    r"\b(?:which|what)\s+(?:\w+\s+){0,2}(?:documents|papers|paperwork|steps|items|things|benefits|options|types"
    r"|kinds|conditions|requirements|criteria|ways|tools|forms|certificates|allowances|cases|reasons|rules"
    r"|equipment|stages|phases|tasks|proofs?)\b"
    r"|\bwhat (?:do|should|must) (?:i|we|you) (?:need|bring|provide|submit|prepare|do)\b"
    r"|\b(?:steps?|procedure|process|checklist|list)\b|\bhow (?:do|can|should) (?:i|we|you) (?:apply|request"
    r"|submit|register|enrol|enroll|claim|declare|report|book|set up)\b"
    r"|\bquel(?:le)?s\s+(?:sont\s+les\s+)?(?:\w+\s+)?(?:documents|pièces|justificatifs|étapes|démarches"
    r"|conditions|avantages|papiers|éléments|critères|types|formalités|cas|outils|règles)\b"
    r"|\b(?:justificatifs|étapes|démarches?|procédure|formalités|liste)\b"
    r"|\bcomment (?:faire|demander|déclarer|poser|obtenir|s'inscrire|procéder)\b"
    r"|\bque (?:dois-je|faut-il) (?:fournir|apporter|préparer|faire)\b"
    r"|書類|手順|必要なもの|必要な物|一覧|ステップ|流れ|何が必要|持参|持ち物|提出物|手続き|リスト|条件|要件"
    r"|\bwelche\s+(?:\w+\s+)?(?:unterlagen|dokumente|schritte|nachweise|voraussetzungen)\b"
    r"|\b(?:unterlagen|schritte|ablauf|verfahren|liste)\b",
    re.I,
)


def asks_for_several(question: str) -> bool:
    """Whether the question asks for a list of things or a procedure rather than one fact."""
    return bool(SEVERAL.search(question))


@dataclass
class Shape:
    """How to show one answer span."""

    kind: str = "span"  # "span" | "list" | "steps" (a numbered list) | "row" | "faq"
    heading: str = ""  # the list's section heading, the table's, or the FAQ question
    items: list[str] = field(default_factory=list)  # list / steps: the items, in the page's order
    more: int = 0  # items of the list beyond MAX_ITEMS
    text: str = ""  # row: "Munich · Opening hours: 8-18"; faq: the whole answer


@dataclass
class Line:
    text: str
    kind: str  # a layout token: "h" "q" "p" "u3" "o3" "t2" (knowledge/passages.py)
    start: int  # offset of the line in the passage text


def lines_of(passage: Passage) -> list[Line]:
    """The passage's lines with their layout tokens; every line is "p" when the layout is missing or does
    not match (a page cached by an older Kate, or plain text)."""
    texts = passage.text.split("\n")
    kinds = passage.layout.split()
    if len(kinds) != len(texts):
        kinds = ["p"] * len(texts)
    out, offset = [], 0
    for text, kind in zip(texts, kinds, strict=True):
        out.append(Line(text, kind, offset))
        offset += len(text) + 1
    return out


def _line_at(lines: list[Line], offset: int) -> int:
    for i, line in enumerate(lines):
        if line.start <= offset <= line.start + len(line.text):
            return i
    return len(lines) - 1


def _list_items(kind: str, passage: Passage, page: Sequence[Passage]) -> list[str]:
    """Every item of list `kind` on the page, in order: a long list may span several passages."""
    items: list[str] = []
    holders = [p for p in page if p.url == passage.url] or [passage]
    for p in holders:
        items.extend(line.text for line in lines_of(p) if line.kind == kind and line.text not in items)
    return items


def heading_of(lines: list[Line], passage: Passage) -> str:
    """The passage's own heading line, or the last heading of its section path."""
    return lines[0].text if lines and lines[0].kind in ("h", "q") else passage.section.split(" > ")[-1]


def _as_list(kind: str, passage: Passage, page: Sequence[Passage], lines: list[Line]) -> Shape:
    items = _list_items(kind, passage, page)
    return Shape(
        kind="steps" if kind.startswith("o") else "list",
        heading=heading_of(lines, passage),
        items=[item[:MAX_ITEM_CHARS] for item in items[:MAX_ITEMS]],
        more=max(0, len(items) - MAX_ITEMS),
    )


def _row(line: Line, offset: int) -> str:
    """The row's label (its first cell) and the cell holding `offset` with its column header."""
    cells, position = [], line.start
    for cell in line.text.split(" · "):
        cells.append((position, cell))
        position += len(cell) + len(" · ")
    holder = next((c for s, c in reversed(cells) if s <= offset), cells[0][1])
    label = cells[0][1].split(": ", 1)[-1]
    if holder == cells[0][1] or len(cells) < 2:
        return line.text
    return f"{label} · {holder}"


def shape(question: str, answer: Answer, page: Sequence[Passage] = ()) -> Shape:
    """How to show `answer` (a span the reader found), from the layout of its passage and, for a list
    spanning several passages, the rest of its page (`page`: passages, other pages' are ignored)."""
    passage = answer.passage
    if passage is None or not passage.layout:
        return Shape()
    lines = lines_of(passage)
    i = _line_at(lines, answer.start)
    line = lines[i]
    several = asks_for_several(question)
    if line.kind[0] in "uo":
        whole = len(answer.text) >= WHOLE_ITEM * max(len(line.text), 1)
        if several or whole:
            return _as_list(line.kind, passage, page, lines)
        return Shape()
    if line.kind.startswith("t"):
        return Shape(kind="row", heading=heading_of(lines, passage), text=_row(line, answer.start))
    if lines[0].kind == "q" and i > 0:
        body = lines[1:]
        listed = {b.kind for b in body if b.kind[0] in "uo"}
        if several and len(listed) == 1:
            return _as_list(listed.pop(), passage, page, lines)
        return Shape(kind="faq", heading=lines[0].text, text="\n".join(b.text for b in body)[:MAX_FAQ_CHARS])
    if several:  # the sentence that introduces a list ("Bring the following documents:"), or its heading
        after = [b.kind for b in lines[i + 1 :] if b.kind[0] in "uo"]
        if after:
            return _as_list(after[0], passage, page, lines)
    return Shape()
