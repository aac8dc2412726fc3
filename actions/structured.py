"""Answers found by the page's structure rather than by the reader's span alone.

The reader (qa_engine) finds the best span across every page; this module turns spans into what the
employee is shown (`candidate_of`: the whole list, the table row, the FAQ answer around the span) and
finds three things the reader misses on its own, each with the multilingual encoder of the ranker and a
floor measured on the tune half of the Lumen questions (docs/qa-results.md):

- a FAQ pair whose question is a paraphrase of the employee's (`KATE_FAQ_MIN_SIMILARITY`, 0.94);
- for a list question, the list section nearest to it, by the ranker's relevance of the whole section plus
  the similarity of its heading ("Setting up your laptop" for "what are the steps to set up my laptop?"),
  both with the encoder's language bias taken out: `LIST_MIN_SCORE`; and below that floor, the best list
  of the page the reader answered from when it is nearly the best anywhere (`StructureMatcher.page_list`);
- the table cell of a row the question names by its label, in the column whose header is closest to the
  question (knowledge/tables.py): `TABLE_MIN_SIMILARITY`.
The encoder alone cannot tell a paraphrase from a question on the same topic below ~0.93 (docs/
verified-answers.md), so these floors are strict; below them the reader's answer stands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from knowledge.shapes import MAX_FAQ_CHARS, Shape, asks_for_several, lines_of, shape
from knowledge.tables import Cell, named_cell
from qa_engine import Answer, Passage
from qa_engine.calibration import Calibration
from qa_engine.ranker import Ranker, language_offsets

from .records import Candidate

# On the tune half of the Lumen questions: the right cells scored 0.912 and up; cells of rows named by
# questions about something else (a canteen in Munich, the HR contact in London) 0.891 and below.
TABLE_MIN_SIMILARITY = 0.9
# A list section's score is its relevance plus its heading's similarity (two cosines, language bias out).
# Tune half of the Lumen questions (batches 1 and 2): the right lists 1.67-1.91, 13 of 17 at 1.79 or more;
# list questions that no page answers (bank account, mortgage, moving house, a parking space...) reached
# 1.777 at most, and wrong lists for answerable questions 1.763.
LIST_MIN_SCORE = 1.78
# A list question's best list on the page the reader answered from, within this of the best list anywhere
# (tune: the right lists 0.039 and 0.005 under the best), replaces a FAQ answer of that page,
# unless the FAQ's question is this near the employee's (tune: 0.933 for the right FAQ, 0.879 and 0.827 for
# FAQs that were not the answer).
LIST_PAGE_MARGIN = 0.05
LIST_OVER_FAQ = 0.9
LIST_CONFIDENCE_SHARE = 0.5  # of the answer threshold, for a list question's span in a list
MAX_HEADINGS = 20_000  # headings compared per question (and their vectors kept)


def candidate_of(a: Answer, confidence: float, question: str, passages: Sequence[Passage]) -> Candidate:
    """A confident span as the employee will see it: shaped by where it sits on its page."""
    assert a.passage is not None
    look = shape(question, a, passages)
    sentence = look.text if look.kind in ("row", "faq") else a.sentence
    return Candidate(
        a.text,
        sentence,
        a.passage.url,
        a.passage.title or a.passage.url,
        round(float(a.score), 4),
        round(confidence, 4),
        kind=look.kind,
        heading=look.heading,
        items=look.items,
        more=look.more,
        outdated=a.passage.outdated,
    )


def reader_scores(inside: Answer | None, calibration: Calibration, floor: float) -> tuple[float, float]:
    """(score, confidence) of an answer the page structure found: the reader's own when it read a span
    there, else no score and just confident enough to be given (a cosine is not a probability of being
    right)."""
    if inside is None:
        return 0.0, round(floor, 4)
    return round(float(inside.score), 4), round(max(floor, calibration.confidence(inside.score)), 4)


def section_candidate(
    pair: Passage, found: Sequence[Answer], calibration: Calibration, floor: float
) -> Candidate:
    """A FAQ pair whose question matches the employee's: its answer whole, with the reader's best span
    inside it (when the reader found one there) to highlight; as confident as the reader was of that span,
    else just confident enough to be given (a cosine is not a probability of being right)."""
    lines = pair.text.split("\n")
    body = "\n".join(lines[1:])[:MAX_FAQ_CHARS]
    inside = next(
        (a for a in found if a.passage is not None and a.passage.id == pair.id and a.start > len(lines[0])),
        None,
    )
    span = inside.text if inside is not None else lines[1] if len(lines) > 1 else body
    return Candidate(
        span,
        body,
        pair.url,
        pair.title or pair.url,
        *reader_scores(inside, calibration, floor),
        kind="faq",
        heading=lines[0],
        outdated=pair.outdated,
    )


def in_cell(a: Answer, cell: Cell) -> bool:
    """Whether the reader's span is (inside) that cell of that row."""
    same = a.passage is not None and a.passage.id == cell.passage.id
    return same and a.text.strip() in cell.value and f"{cell.header}: {cell.value}" in a.sentence


def table_candidate(cell: Cell, found: Sequence[Answer], calibration: Calibration, floor: float) -> Candidate:
    """The cell of the row the question names, with its row label and column header; as confident as the
    reader was of that very cell when it read it, else just confident enough to be given."""
    inside = next((a for a in found if in_cell(a, cell)), None)
    return Candidate(
        cell.value,
        f"{cell.label} · {cell.header}: {cell.value}",
        cell.passage.url,
        cell.passage.title or cell.passage.url,
        *reader_scores(inside, calibration, floor),
        kind="row",
        heading=cell.heading,
        outdated=cell.passage.outdated,
    )


def list_candidate(
    section: Passage, question: str, found: Sequence[Answer], calibration: Calibration, floor: float
) -> Candidate | None:
    """The list of a section whose heading names what a list question asks for."""
    item = next((line for line in lines_of(section) if line.kind[0] in "uo"), None)
    if item is None:
        return None
    anchor = Answer(item.text, 0.0, section, item.start, item.start + len(item.text))
    look: Shape = shape(question, anchor, [section])
    inside = next((a for a in found if a.passage is not None and a.passage.id == section.id), None)
    return Candidate(
        inside.text if inside is not None else item.text,
        item.text,
        section.url,
        section.title or section.url,
        *reader_scores(inside, calibration, floor),
        kind=look.kind if look.kind in ("list", "steps") else "list",
        heading=look.heading,
        items=look.items,
        more=look.more,
        outdated=section.outdated,
    )


def has_list(p: Passage) -> bool:
    """A section under a heading that holds a list."""
    return p.layout[:1] in ("h", "q") and (" u" in p.layout or " o" in p.layout)


@dataclass
class Matches:
    """What the page structure says about one question (any of them may be missing)."""

    faq: tuple[Passage, float] | None = None
    section: Passage | None = None  # a list section for a list question
    lists: list[tuple[Passage, float]] = field(default_factory=list)  # every list section, best first
    cell: Cell | None = None


class StructureMatcher:
    """The ranker's encoder applied to FAQ questions, list headings and table headers; heading vectors
    are kept in this process (they change only when pages do)."""

    def __init__(self, ranker: Ranker | None, faq_min_similarity: float = 2.0) -> None:
        self.ranker = ranker
        self.faq_min_similarity = faq_min_similarity  # above 1 (tests, tools): FAQ questions not matched
        self._vectors: dict[str, np.ndarray] = {}

    def _vectors_of(self, texts: list[str]) -> np.ndarray:
        assert self.ranker is not None
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            if len(self._vectors) + len(missing) > MAX_HEADINGS:
                self._vectors.clear()
            self._vectors.update(zip(missing, self.ranker.query_vectors(missing), strict=True))
        return np.stack([self._vectors[t] for t in texts])

    def _best(
        self, asked: np.ndarray, passages: Sequence[Passage], keep: Callable[[Passage], bool]
    ) -> tuple[Passage, float] | None:
        chosen = [p for p in passages if keep(p)][:MAX_HEADINGS]
        if not chosen:
            return None
        sims = self._vectors_of([p.text.split("\n", 1)[0] for p in chosen]) @ asked
        best = int(np.argmax(sims))
        return chosen[best], float(sims[best])

    def lists(
        self, asked: np.ndarray, passages: Sequence[Passage], vectors: np.ndarray
    ) -> list[tuple[Passage, float]]:
        """The list sections for a list question, best first, with their scores: how near the question is
        to the whole section (its cosine; `vectors`: every passage's) plus how near it is to the section's
        heading, both with the encoder's language bias taken out (qa_engine.ranker.language_offsets), so a
        Japanese question finds an English page's list as readily as a Japanese page's."""
        chosen = [i for i, p in enumerate(passages) if has_list(p)][:MAX_HEADINGS]
        if not chosen:
            return []
        languages = [p.language or "" for p in passages]
        relevance = (vectors @ asked + language_offsets(asked, vectors, languages))[chosen]
        sections = [passages[i] for i in chosen]
        vectors = self._vectors_of([p.text.split("\n", 1)[0] for p in sections])
        heading = vectors @ asked + language_offsets(asked, vectors, [p.language or "" for p in sections])
        scores = relevance + heading
        return sorted(zip(sections, (float(x) for x in scores), strict=True), key=lambda x: -x[1])

    def similarity(self, question: str, text: str) -> float:
        """Cosine between a question and a short text (a heading, a FAQ question)."""
        if self.ranker is None:
            return 0.0
        return float(self._vectors_of([text])[0] @ self.ranker.query_vectors([question])[0])

    def page_list(self, question: str, best: Candidate, matches: Matches) -> Passage | None:
        """For a list question whose best answer is a FAQ answer: the list of that same page when the
        page's best list scores within `LIST_PAGE_MARGIN` of the best list anywhere. The reader found the
        page and the lists' scores found the section: two judges agreeing, where neither alone is sure
        enough ("what are the conditions to work from home?" read in the page's FAQ). A FAQ pair whose
        question is a near paraphrase of the employee's (`LIST_OVER_FAQ`) is the answer: it stays. A plain
        sentence stays too: "which benefits do interns get?" is answered by the leave page's sentence on
        interns, not by its list of steps to request leave."""
        if best.kind != "faq" or not matches.lists:
            return None
        top = matches.lists[0][1]
        own = next(((p, score) for p, score in matches.lists if p.url == best.url), None)
        if own is None or own[1] < top - LIST_PAGE_MARGIN:
            return None
        if self.similarity(question, best.heading) >= LIST_OVER_FAQ:
            return None
        return own[0]

    def match(self, question: str, passages: Sequence[Passage], vectors: np.ndarray) -> Matches:
        """`vectors`: the ranker's vectors of `passages`, in order (the caller ranked with them)."""
        if self.ranker is None:
            return Matches()
        asked = self.ranker.query_vectors([question])[0]
        found = Matches()
        if self.faq_min_similarity <= 1.0:
            faq = self._best(asked, passages, lambda p: p.layout.startswith("q "))
            found.faq = faq if faq is not None and faq[1] >= self.faq_min_similarity else None
        if asks_for_several(question):
            found.lists = self.lists(asked, passages, vectors)
            best = found.lists[0] if found.lists else None
            found.section = best[0] if best is not None and best[1] >= LIST_MIN_SCORE else None

        def similarity(texts: list[str]) -> list[float]:
            return [float(x) for x in self._vectors_of(texts) @ asked]

        cell = named_cell(question, passages, similarity)
        found.cell = cell[0] if cell is not None and cell[1] >= TABLE_MIN_SIMILARITY else None
        return found
