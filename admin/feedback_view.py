"""The feedback log as HR reviews it: filtered, newest first, paginated, and summed up per day.

The same `FeedbackQuery` drives the console table, its CSV export and the JSON API, so the export is
exactly the filtered view. Reading is bounded (the newest `MAX_SCAN` entries) so a years-long log
cannot stall the console; the page says when the bound was reached.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

from knowledge.feedback import VOTES, FeedbackEntry, FeedbackError, FeedbackLog
from knowledge.question_vectors import QuestionVectors, question_key
from knowledge.unanswered import UnansweredLog

MAX_SCAN = 200_000
PER_PAGE = 25
MAX_PER_PAGE = 200
MAX_DAYS = 366  # the chart's width at most
GAPS = 15


@dataclass
class FeedbackQuery:
    vote: str = ""  # "", "up", "down"
    since: str = ""  # YYYY-MM-DD (UTC), inclusive
    until: str = ""  # YYYY-MM-DD (UTC), inclusive
    source: str = ""  # substring of the source URL or title
    language: str = ""
    q: str = ""  # text search in question and answer
    page: int = 1
    per_page: int = PER_PAGE

    def checked(self) -> FeedbackQuery:
        if self.vote and self.vote not in VOTES:
            raise FeedbackError(f"vote must be up or down, got {self.vote!r}")
        self.since_epoch()
        self.until_epoch()
        self.page = max(1, int(self.page))
        self.per_page = min(MAX_PER_PAGE, max(1, int(self.per_page)))
        for name in ("source", "language", "q"):
            setattr(self, name, getattr(self, name).strip()[:200])
        return self

    def since_epoch(self) -> float | None:
        return _day(self.since, "since")

    def until_epoch(self) -> float | None:
        start = _day(self.until, "until")
        return None if start is None else start + 86400 - 0.001

    @cached_property
    def _bounds(self) -> tuple[float | None, float | None]:
        """The date filters as epoch times, parsed once per query (not once per entry)."""
        return self.since_epoch(), self.until_epoch()

    def in_range(self, moment: float) -> bool:
        since, until = self._bounds
        return (since is None or moment >= since) and (until is None or moment <= until)

    def matches(self, e: FeedbackEntry) -> bool:
        if not self.in_range(e.time):
            return False
        if self.vote and e.vote != self.vote:
            return False
        if self.language and e.language != self.language:
            return False
        if self.source and self.source.casefold() not in f"{e.source_url} {e.source_title}".casefold():
            return False
        return not self.q or self.q.casefold() in f"{e.question}\n{e.answer}".casefold()

    def filters(self) -> dict[str, str]:
        """The filters as query parameters (for links to other pages of the same view, and the CSV)."""
        keys = ("vote", "since", "until", "source", "language", "q")
        return {k: getattr(self, k) for k in keys if getattr(self, k)}


def _day(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC).timestamp()
    except ValueError:
        raise FeedbackError(f"{name} must be a date as YYYY-MM-DD, got {text!r}") from None


@dataclass
class DayStat:
    day: str
    up: int
    down: int

    @property
    def rate(self) -> float:
        return self.up / (self.up + self.down) if self.up + self.down else 0.0


@dataclass
class Gap:
    question: str
    downvotes: int = 0
    unanswered: int = 0
    languages: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # the same question in other words or languages

    @property
    def total(self) -> int:
        return self.downvotes + self.unanswered


@dataclass
class FeedbackPage:
    entries: list[FeedbackEntry]  # this page, newest first
    total: int  # entries matching the filters
    page: int
    pages: int
    truncated: bool  # the log holds more than MAX_SCAN entries; the oldest were not read
    days: list[DayStat]
    gaps: list[Gap]

    @property
    def up_rate(self) -> float | None:
        up = sum(d.up for d in self.days)
        votes = up + sum(d.down for d in self.days)
        return up / votes if votes else None


def matching(log: FeedbackLog, query: FeedbackQuery) -> tuple[list[FeedbackEntry], bool]:
    """Every entry that passes the filters, newest first, and whether the scan bound cut the log.
    Dates filter on the entries' own times (the stream ids are when they were stored)."""
    recent = list(log.latest(MAX_SCAN + 1))
    return [e for e in recent[:MAX_SCAN] if query.matches(e)], len(recent) > MAX_SCAN


def page_window(count: int, page: int, per_page: int) -> tuple[int, int, int]:
    """(page, pages, first row) of `count` rows shown `per_page` at a time: at least one page, and a page
    past either end shows the nearest one."""
    pages = max(1, -(-count // per_page))
    page = min(max(1, page), pages)
    return page, pages, (page - 1) * per_page


def review(
    log: FeedbackLog, unanswered: UnansweredLog, query: FeedbackQuery, vectors: QuestionVectors | None = None
) -> FeedbackPage:
    query = query.checked()
    kept, truncated = matching(log, query)
    page, pages, start = page_window(len(kept), query.page, query.per_page)
    unanswered_kept = [
        u for u in unanswered.latest(MAX_SCAN)
        if query.in_range(u.time) and (not query.language or u.language == query.language)
    ]  # fmt: skip
    return FeedbackPage(
        entries=kept[start : start + query.per_page],
        total=len(kept),
        page=page,
        pages=pages,
        truncated=truncated,
        days=per_day(kept),
        gaps=grouped_gaps(kept, unanswered_kept, vectors) if query.vote != "up" else [],
    )


MAX_GROUPED = 2000  # gap questions considered for grouping (their vectors are read in one call)


def grouped_gaps(
    entries: list[FeedbackEntry], unanswered: list, vectors: QuestionVectors | None, top: int = GAPS
) -> list[Gap]:
    """The knowledge gaps, questions of one meaning grouped when the action server kept their vectors."""
    gaps = knowledge_gaps(entries, unanswered, top=None)[:MAX_GROUPED]
    if vectors is None or not gaps:
        return gaps[:top]
    found = vectors.get([question_key(g.question) for g in gaps])
    return group_by_meaning(gaps, found)[:top]


def per_day(entries: Iterable[FeedbackEntry]) -> list[DayStat]:
    """Votes per UTC day, every day from the first to the last (days without votes included), at most
    the last MAX_DAYS."""
    up: Counter[date] = Counter()
    down: Counter[date] = Counter()
    for e in entries:
        day = datetime.fromtimestamp(e.time, UTC).date()
        (up if e.vote == "up" else down)[day] += 1
    days = sorted(set(up) | set(down))
    if not days:
        return []
    first = max(days[0], days[-1] - timedelta(days=MAX_DAYS - 1))
    out, day = [], first
    while day <= days[-1]:
        out.append(DayStat(day.isoformat(), up[day], down[day]))
        day += timedelta(days=1)
    return out


GROUP_SIMILARITY = (
    0.9  # cosine of two gap questions put in one group (docs/verified-answers.md, encoder alone)
)


def group_by_meaning(
    gaps: list[Gap], vectors: dict[str, object], threshold: float = GROUP_SIMILARITY
) -> list[Gap]:
    """Gaps whose questions mean the same (cosine of their vectors at least `threshold`) merged into the
    most frequent one, counts summed, the others listed; gaps with no vector stay as they are. Greedy and
    in frequency order, so a group is named by its most asked question."""
    groups: list[tuple[Gap, object]] = []
    for g in sorted(gaps, key=lambda g: (-g.total, g.question)):
        v = vectors.get(question_key(g.question))
        home = None
        if v is not None:
            home = next((h for h, hv in groups if hv is not None and float(hv @ v) >= threshold), None)
        if home is None:
            groups.append((Gap(g.question, g.downvotes, g.unanswered, list(g.languages)), v))
            continue
        home.downvotes += g.downvotes
        home.unanswered += g.unanswered
        home.languages = sorted(set(home.languages) | set(g.languages))
        home.others.append(g.question)
    return [g for g, _ in groups]


def knowledge_gaps(
    entries: Iterable[FeedbackEntry], unanswered: Iterable, top: int | None = GAPS
) -> list[Gap]:
    """The questions most often voted 👎 or left without an answer, most frequent first (`top` of them;
    None: all, to be grouped by meaning before the top is taken)."""
    gaps: dict[str, Gap] = {}
    languages: defaultdict[str, set[str]] = defaultdict(set)

    def gap(question: str) -> Gap | None:
        key = question_key(question)
        if not key:
            return None
        return gaps.setdefault(key, Gap(question=" ".join(question.split())[:300]))

    for e in entries:
        if e.vote == "down" and (g := gap(e.question)):
            g.downvotes += 1
            languages[question_key(e.question)].add(e.language)
    for u in unanswered:
        if g := gap(u.question):
            g.unanswered += 1
            languages[question_key(u.question)].add(u.language)
    for key, g in gaps.items():
        g.languages = sorted(x for x in languages[key] if x)
    ranked = sorted(gaps.values(), key=lambda g: (-g.total, -g.downvotes, g.question))
    return ranked if top is None else ranked[:top]
