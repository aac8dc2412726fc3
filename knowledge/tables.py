"""Table cells named by a question: "hotel cap in Munich" is the cell of the row labelled Munich in the
column whose header is closest to the question.

A span reader sees a table as rows of "header: value" lines (knowledge/passages.py) and easily picks the
right column in the wrong row: every row looks alike to it. A question that names a row, though, names it
with the row's own label ("Munich", "Lille", "自転車"), so rows are found by their label, literally
(case and accents aside); the column is then the header most similar to the question, which the caller
measures with the multilingual encoder, so "plafond d'hôtel" finds "Hotel cap per night". A label the
question writes in another script ("大阪" for "Osaka") is not found: the reader's answer stands.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa_engine.types import Passage

from .shapes import heading_of, lines_of

MAX_TABLE_PASSAGES = 2000  # table passages looked through per question
MIN_LABEL_CHARS = 2


@dataclass
class Cell:
    passage: Passage
    label: str  # the row's first cell
    header: str  # the column's header
    value: str
    heading: str  # the table's section heading


def fold(text: str) -> str:
    """Lower case without accents: "Hôtel" and "hotel" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _names(label: str, question: str) -> bool:
    label = fold(label).strip()
    if len(label) < MIN_LABEL_CHARS:
        return False
    if any("\u3040" <= ch <= "\u9fff" for ch in label):  # no spaces between Japanese words
        return label in question
    return re.search(rf"(?<!\w){re.escape(label)}(?!\w)", question) is not None


def named_rows(question: str, passages: Sequence[Passage]) -> list[list[Cell]]:
    """The table rows whose label the question names, each as its cells (label column left out)."""
    asked = fold(question)
    rows: list[list[Cell]] = []
    tables = [p for p in passages if " t" in f" {p.layout}"][:MAX_TABLE_PASSAGES]
    for passage in tables:
        lines = lines_of(passage)
        heading = heading_of(lines, passage)
        for line in lines:
            if not line.kind.startswith("t"):
                continue
            pairs = [cell.split(": ", 1) for cell in line.text.split(" · ")]
            if len(pairs) < 2 or any(len(p) != 2 for p in pairs):
                continue  # a table without a header row: no column to name
            label = pairs[0][1]
            if _names(label, asked):
                rows.append([Cell(passage, label, h, v, heading) for h, v in pairs[1:]])
    return rows


def named_cell(
    question: str, passages: Sequence[Passage], similarity: Callable[[list[str]], list[float]]
) -> tuple[Cell, float] | None:
    """The cell of a row the question names, in the column whose header `similarity` (question against
    each header) rates highest; with its similarity. None when no row is named."""
    rows = named_rows(question, passages)
    cells = [c for row in rows for c in row]
    if not cells:
        return None
    scores = similarity([f"{c.header} {c.label}" for c in cells])
    best = max(range(len(cells)), key=lambda i: scores[i])
    return cells[best], float(scores[best])
