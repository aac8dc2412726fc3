"""The console's analytics: how often Kate answered, how the answers were rated, when it handed over.

Three logs are put together over the last `days` days, each read with a bound: the question log
(knowledge/activity.py: one entry per question, how it was answered), the feedback log (every vote) and
the escalation log (offers to reach HR and requests). Per day, per language and per page: answer rate,
"not sure" rate, 👍 rate, escalations; and the pages whose answers are voted down most.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from knowledge.activity import ANSWERED, ActivityLog
from knowledge.escalation import Escalations
from knowledge.feedback import FeedbackLog

MAX_READ = 200_000  # entries read from each log at most
MAX_DAYS = 90


@dataclass
class Tally:
    """Counts of one day, language or page."""

    key: str
    asked: int = 0
    answered: int = 0
    unsure: int = 0
    failed: int = 0  # sources, reader or time failed
    up: int = 0
    down: int = 0
    escalations: int = 0  # requests to reach HR
    by_outcome: dict[str, int] = field(default_factory=dict)

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.asked if self.asked else None

    @property
    def unsure_rate(self) -> float | None:
        return self.unsure / self.asked if self.asked else None

    @property
    def up_rate(self) -> float | None:
        return self.up / (self.up + self.down) if self.up + self.down else None


@dataclass
class Analytics:
    days: int
    total: Tally
    per_day: list[Tally]  # every day of the period, oldest first (empty days included: gaps show)
    per_language: list[Tally]
    per_page: list[Tally]  # pages that gave answers or got votes, most questions first
    worst_pages: list[Tally]  # most 👎 first (only pages with at least one)
    truncated: bool = False


def _day(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


def analytics(
    activity: ActivityLog, feedback: FeedbackLog, escalations: Escalations, days: int = 30
) -> Analytics:
    days = max(1, min(days, MAX_DAYS))
    now = time.time()
    since = now - days * 86400
    day_keys = [_day(since + 86400 * (i + 1)) for i in range(days)]
    per_day = {d: Tally(d) for d in day_keys}
    per_language: dict[str, Tally] = {}
    per_page: dict[str, Tally] = {}
    total = Tally("all")

    def tallies(moment: float, language: str, url: str = "") -> list[Tally]:
        """The counts one log entry adds to: the total, its day, its language, its page (if any)."""
        day, language = _day(moment), language or "?"
        found = [
            total,
            per_day.setdefault(day, Tally(day)),
            per_language.setdefault(language, Tally(language)),
        ]
        return [*found, per_page.setdefault(url, Tally(url))] if url else found

    asked = 0
    for a in activity.since(since, MAX_READ):
        asked += 1
        if a.time < since:  # its own time, not the stream's: an imported entry keeps its day
            continue
        for t in tallies(a.time, a.language, a.source_url):
            t.asked += 1
            t.answered += a.outcome in ANSWERED
            t.unsure += a.outcome == "unsure"
            t.failed += a.outcome == "down"
            t.by_outcome[a.outcome] = t.by_outcome.get(a.outcome, 0) + 1
    votes = 0
    for e in itertools.islice(feedback.entries(since=since), MAX_READ):
        votes += 1
        for t in tallies(e.time, e.language, e.source_url):
            t.up += e.vote == "up"
            t.down += e.vote == "down"
    for x in escalations.latest(MAX_READ):
        if x.time < since:
            break
        if x.event == "requested":
            for t in tallies(x.time, x.language):
                t.escalations += 1
    pages = sorted(per_page.values(), key=lambda t: (-t.asked, -(t.up + t.down), t.key))
    return Analytics(
        days=days,
        total=total,
        per_day=[per_day[d] for d in sorted(per_day)][-days:],
        per_language=sorted(per_language.values(), key=lambda t: -t.asked),
        per_page=pages[:50],
        worst_pages=sorted((t for t in pages if t.down), key=lambda t: (-t.down, t.key))[:10],
        truncated=asked >= MAX_READ or votes >= MAX_READ,
    )


def bars_svg(days: list[Tally], height: int = 120) -> str:
    """Questions per day, stacked: answered, not sure, failed. Numbers and dates only (no page text),
    so the markup cannot carry anything an employee wrote."""
    width = max(24 * len(days), 240)
    top = max((d.asked for d in days), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="Questions per day: answered, not sure, failed" '
        f'viewBox="0 0 {width} {height + 20}" width="100%" height="{height + 30}">'
    ]
    for i, d in enumerate(days):
        x, y = i * 24 + 4, height
        for count, colour, name in ((d.answered, "#2f9e44", "answered"), (d.unsure, "#f08c00", "not sure"),
                                    (d.failed, "#868e96", "failed")):  # fmt: skip
            h = round(height * count / top, 1)
            if h:
                y -= h
                parts.append(
                    f'<rect x="{x}" y="{y:.1f}" width="16" height="{h}" fill="{colour}">'
                    f"<title>{d.key}: {count} {name} of {d.asked}</title></rect>"
                )
        parts.append(_day_label(i, len(days), x, x + 16, height, d.key[5:]))
    parts.append("</svg>")
    return "".join(parts)


def _day_label(i: int, n: int, left: float, right: float, height: int, day: str) -> str:
    """The first and last day under a chart (MM-DD, digits only), the last one anchored at its right."""
    if i == 0:
        return f'<text x="{left}" y="{height + 14}" font-size="9" fill="#555">{day}</text>'
    if i == n - 1:
        return f'<text x="{right}" y="{height + 14}" font-size="9" fill="#555" text-anchor="end">{day}</text>'
    return ""


def rate_svg(days: list[Tally], height: int = 100) -> str:
    """👍 rate per day (a line, days with votes only) and escalations per day (small bars)."""
    width = max(24 * len(days), 240)
    top = max((d.escalations for d in days), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="Share of 👍 votes and escalations per day" '
        f'viewBox="0 0 {width} {height + 20}" width="100%" height="{height + 30}">'
    ]
    points = []
    for i, d in enumerate(days):
        x = i * 24 + 12
        if d.escalations:
            h = round(0.4 * height * d.escalations / top, 1)
            parts.append(
                f'<rect x="{x - 5}" y="{height - h}" width="10" height="{h}" fill="#7048e8" opacity="0.6">'
                f"<title>{d.key}: {d.escalations} escalations</title></rect>"
            )
        if d.up_rate is not None:
            y = round(height * (1 - d.up_rate), 1)
            points.append(f"{x},{y}")
            parts.append(
                f'<circle cx="{x}" cy="{y}" r="3" fill="#1971c2"><title>{d.key}: '
                f"{100 * d.up_rate:.0f}% 👍 ({d.up} up, {d.down} down)</title></circle>"
            )
        parts.append(_day_label(i, len(days), x - 8, x + 8, height, d.key[5:]))
    if len(points) > 1:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="#1971c2" stroke-width="1.5"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
