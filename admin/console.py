"""What the admin console can do, shared by its HTML pages and its JSON API (one behaviour, two views).

Every change goes straight to Redis, which the action server reads for every question: a source added,
edited or disabled here is what the bot uses for the next question, with no restart.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

from core.settings import Settings
from knowledge.activity import ActivityLog
from knowledge.conflicts import ConflictLog
from knowledge.curation import Curation, Hidden, passage_key
from knowledge.escalation import Contact, Escalation, Escalations
from knowledge.feedback import FeedbackLog
from knowledge.library import Knowledge
from knowledge.question_vectors import QuestionVectors
from knowledge.refresher import next_checks
from knowledge.scripted import HR_INTENTS, ScriptedAnswer, ScriptedAnswers, ScriptedError, normal_variant
from knowledge.sources import FetchStatus, Source, SourceError, source_id
from knowledge.unanswered import UnansweredLog
from knowledge.verified import VerifiedAnswer, VerifiedAnswers, find_context
from qa_engine.types import Passage

from .analytics import Analytics, analytics
from .feedback_view import page_window, question_key
from .security import Sessions, admin_password_hash, parse_trusted_proxies

MAX_IMPORT_CHARS = 1_000_000
SOURCES_PER_PAGE = 50  # rows of the Sources page: a company's 50,000 pages are searched and paged
MAX_QUERY_CHARS = 200
_URL_LINE = re.compile(r"^\S+://\S+$")


CONSOLE_LANGUAGES = (
    "en",
    "fr",
    "ja",
    "de",
    "es",
)  # the answer columns shown even when empty: the bot's languages


@dataclass
class ScriptedRow:
    """One intent (or one of its variants) with its answer in each language, as the console lists it."""

    intent: str
    variant: str
    answers: dict[str, ScriptedAnswer]

    @property
    def key(self) -> str:
        return f"{self.intent}/{self.variant}" if self.variant else self.intent


@dataclass
class SourceView:
    """A source as the console lists it."""

    id: str
    source: Source
    page_title: str = ""  # the page's own title, from the cache (shown when the admin gave none)
    demoted: bool = False  # its answers come after every other page's
    hidden: int = 0  # passages HR hid
    next_check: float = 0.0  # when the refresher checks it next (0: not scheduled)

    @property
    def title(self) -> str:
        return self.source.title or self.page_title or self.source.url

    @property
    def status_word(self) -> str:
        st = self.source.status
        if not st.fetched_at:
            return "not fetched yet"
        if st.error:
            return "error"
        return "unchanged" if st.not_modified else f"ok ({st.http_status})"


@dataclass
class SourceList:
    """One page of the Sources page: the sources matching `query` (every source when empty)."""

    views: list[SourceView]
    matching: int  # sources that match the query
    total: int  # sources in all
    page: int
    pages: int
    query: str = ""


def matches(source: Source, words: list[str]) -> bool:
    """Whether every word is in the source's URL, title, language or tags (case folded)."""
    text = " ".join([source.url, source.title, source.language, *source.tags]).casefold()
    return all(word in text for word in words)


class Console:
    """The admin console's state: the knowledge layer, the logs, the sessions and the admin account."""

    def __init__(self, settings: Settings, knowledge: Knowledge) -> None:
        self.settings = settings
        self.knowledge = knowledge
        client = knowledge.cache.r
        self.feedback = FeedbackLog(client, settings.redis_prefix)
        self.unanswered = UnansweredLog(client, settings.redis_prefix)
        self.scripted = ScriptedAnswers(client, settings.redis_prefix)
        self.escalations = Escalations(client, settings.redis_prefix, settings.answer_ttl)
        self.verified = VerifiedAnswers(client, settings.redis_prefix)
        self.activity = ActivityLog(client, settings.redis_prefix)
        self.conflicts = ConflictLog(client, settings.redis_prefix)
        self.question_vectors = QuestionVectors(client, settings.redis_prefix)
        self.sessions = Sessions(
            client, settings.redis_prefix, ttl_s=int(settings.admin_session_hours * 3600)
        )
        self.admin_user = settings.admin_user
        self.trusted_proxies = parse_trusted_proxies(settings.trusted_proxies)
        self.password_hash, _ = admin_password_hash(
            settings.admin_password_hash, settings.production, settings.home
        )

    @property
    def registry(self):  # noqa: ANN201 - SourceRegistry
        return self.knowledge.registry

    # -- sources -------------------------------------------------------------------------------------------
    @property
    def curation(self) -> Curation:
        return self.knowledge.curation

    def sources(self) -> list[SourceView]:
        """Every source (the API's list, the verify page's choices)."""
        return self._views(self.registry.list())

    def source_list(self, query: str = "", page: int = 1, per_page: int = SOURCES_PER_PAGE) -> SourceList:
        """One page of sources, in the order they were added, matching `query` (words that must all be
        in the URL, title, language or tags). Without a query only the page's records are read: the
        page's cost does not grow with the intranet (a search reads every record once)."""
        words = query[:MAX_QUERY_CHARS].casefold().split()
        total = self.registry.count()
        found = [s for s in self.registry.list() if matches(s, words)] if words else None
        matching = total if found is None else len(found)
        page, pages, start = page_window(matching, page, per_page)
        shown = self.registry.page(start, per_page) if found is None else found[start : start + per_page]
        return SourceList(self._views(shown), matching, total, page, pages, query[:MAX_QUERY_CHARS])

    def _views(self, sources: list[Source]) -> list[SourceView]:
        pages = self.knowledge.cache.get_many([s.url for s in sources])
        demoted = self.curation.demoted_urls()
        hidden = Counter(h.url for h in self.curation.hidden())
        checks = next_checks(self.knowledge.cache.r, self.settings.redis_prefix, [s.url for s in sources])
        return [
            SourceView(
                source_id(s.url),
                s,
                pages[s.url].title if s.url in pages else "",
                s.url in demoted,
                hidden[s.url],
                checks.get(s.url, 0.0),
            )
            for s in sources
        ]

    def _find(self, sid: str) -> Source:
        found = self.registry.find(sid)
        if found is None:
            raise LookupError(f"no source with id {sid!r}")
        return found

    def source_page(self, sid: str) -> tuple[SourceView, list[Passage]]:
        """A source and its cached passages, from one registry lookup and one cache read."""
        found = self._find(sid)
        page = self.knowledge.cache.get(found.url)
        hidden = len(self.curation.hidden(found.url))
        demoted = found.url in self.curation.demoted_urls()
        check = next_checks(self.knowledge.cache.r, self.settings.redis_prefix, [found.url]).get(
            found.url, 0.0
        )
        view = SourceView(sid, found, page.title if page else "", demoted, hidden, check)
        return view, page.passages if page else []

    def hide_passage(self, sid: str, key: str, by: str) -> Hidden:
        """Stop reading one passage of a source (found by `passage_key` among its cached passages)."""
        passages = self.passages(sid)
        passage = next((p for p in passages if passage_key(p.url, p.text) == key), None)
        if passage is None:
            raise LookupError("no such passage on this page (it may have changed since: reload the page)")
        return self.curation.hide(passage, by)

    def set_demoted(self, sid: str, demoted: bool, by: str) -> None:
        url = self._find(sid).url
        if demoted:
            self.curation.demote(url, by)
        else:
            self.curation.promote(url)

    def source(self, sid: str) -> SourceView:
        return self.source_page(sid)[0]

    def passages(self, sid: str) -> list[Passage]:
        return self.source_page(sid)[1]

    def add(self, url: str, title: str = "", language: str = "", tags: str = "", by: str = "") -> SourceView:
        source = self.registry.add(
            url, title=title, language=language, tags=split_tags(tags), added_by=by or self.admin_user
        )
        return SourceView(source_id(source.url), source)

    def update(
        self,
        sid: str,
        *,
        title: str | None = None,
        language: str | None = None,
        tags: str | list[str] | None = None,
        enabled: bool | None = None,
        every: float | None = None,
    ) -> SourceView:
        before = self._find(sid)
        if isinstance(tags, str):
            tags = split_tags(tags)
        after = self.registry.update(
            before.url, title=title, language=language, tags=tags, enabled=enabled, every=every
        )
        if (after.title, after.language) != (before.title, before.language):
            self.knowledge.cache.invalidate(after.url)  # passages carry title and language: read again
        return SourceView(sid, after)

    def remove(self, sid: str) -> Source:
        source = self._find(sid)
        self.registry.remove(source.url)
        self.knowledge.cache.invalidate(source.url)
        self.curation.forget_page(source.url)
        return source

    def refresh(self, sid: str) -> FetchStatus:
        """Fetch the page now (its timeouts bound this call), even if disabled: admins check a page
        before they enable it."""
        return self.knowledge.fetch_source(self._find(sid), force=True)

    def import_list(self, text: str, by: str = "") -> tuple[int, list[str]]:
        """Add the sources of a pasted list: one URL per line, or the sources.yml format."""
        if len(text) > MAX_IMPORT_CHARS:
            raise SourceError(
                f"the list is too long ({len(text):,} characters, at most {MAX_IMPORT_CHARS:,})"
            )
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if lines and all(_URL_LINE.match(line) for line in lines):
            text = "\n".join(f"- {_yaml_quote(line)}" for line in lines)
        return self.registry.import_yaml(text, added_by=by or self.admin_user)

    # -- scripted answers ----------------------------------------------------------------------------------
    def scripted_rows(self, intent: str | None = None) -> tuple[list[ScriptedRow], list[str]]:
        """Every HR intent (with or without answers) and every variant that has one, and the language
        columns to show; or only `intent`'s rows."""
        rows: dict[tuple[str, str], ScriptedRow] = {}
        for name in HR_INTENTS if intent is None else (intent,):
            rows[(name, "")] = ScriptedRow(name, "", {})
        languages = list(CONSOLE_LANGUAGES)
        for a in self.scripted.all():
            if intent is not None and a.intent != intent:
                continue
            rows.setdefault((a.intent, a.variant), ScriptedRow(a.intent, a.variant, {})).answers[
                a.language
            ] = a
            if a.language not in languages:
                languages.append(a.language)
        return sorted(rows.values(), key=lambda r: (r.intent, r.variant)), languages

    def save_scripted(self, intent: str, variant: str, texts: dict[str, str], by: str) -> tuple[int, int]:
        """Set one intent's (or variant's) answers: a text per language, an empty one removes that
        language's answer (Kate then reads the intranet for it). Every text is checked before anything
        is written. Returns (saved, removed)."""
        variant = normal_variant(variant)
        keep = [
            ScriptedAnswer(intent, language, text, variant, by).validated()
            for language, text in texts.items()
            if text.strip()
        ]
        drop = [language for language, text in texts.items() if not text.strip()]
        if not keep and not drop:
            raise ScriptedError("nothing to save")
        saved = 0
        for answer in keep:
            current = self.scripted.get(answer.intent, answer.language, answer.variant)
            if current is None or current.text != answer.text:  # an unchanged text keeps its author
                self.scripted.put(answer)
                saved += 1
        removed = sum(self.scripted.remove(intent, language, variant) for language in drop)
        return saved, removed

    def analytics(self, days: int = 30) -> Analytics:
        return analytics(self.activity, self.feedback, self.escalations, days)

    # -- verified answers --------------------------------------------------------------------------------
    def candidates_for(self, question: str, scan: int = 20_000) -> tuple[list[CandidateView], str]:
        """The answers Kate gave to this question (any spelling of it) in the recent feedback log, with
        their votes, best rated first; and the language it was asked in."""
        found, languages = self.candidates_by_question([question], scan)
        key = question_key(question)
        return found.get(key, [])[:20], languages.get(key, "")

    def candidates_by_question(
        self, questions: list[str], scan: int = 20_000
    ) -> tuple[dict[str, list[CandidateView]], dict[str, str]]:
        """For each question (by `question_key`), the answers Kate gave to it in the newest `scan` votes,
        best rated first, and the language it was asked in: one pass over the log for many questions."""
        keys = {question_key(q) for q in questions}
        found: dict[str, dict[tuple[str, str], CandidateView]] = {k: {} for k in keys}
        languages: dict[str, str] = {}
        for e in self.feedback.latest(scan):
            key = question_key(e.question)
            if key not in found or not e.answer:
                continue
            languages.setdefault(key, e.language)
            view = found[key].setdefault(
                (e.answer, e.source_url), CandidateView(e.answer, e.source_url, e.source_title, e.kind)
            )
            view.up += e.vote == "up"
            view.down += e.vote == "down"
        ranked = {k: sorted(v.values(), key=lambda c: (c.down - c.up, c.answer)) for k, v in found.items()}
        return ranked, languages

    def suggestions(self, gaps: list) -> dict[str, CandidateView]:
        """For each knowledge gap (grouped by meaning), Kate's best-rated answer to any of its phrasings
        that was not voted down more than up: what HR can verify in one click."""
        phrasings = {g.question: [g.question, *g.others] for g in gaps}
        found, _ = self.candidates_by_question([q for qs in phrasings.values() for q in qs])
        out = {}
        for question, qs in phrasings.items():
            offered = [c for q in qs for c in found.get(question_key(q), []) if c.up >= c.down]
            if offered:
                out[question] = max(offered, key=lambda c: (c.up - c.down, c.up))
        return out

    def verify(self, question: str, answer: str, source_url: str, language: str, by: str) -> VerifiedAnswer:
        """Keep the right answer to `question`, with the passage it is in when the source is a page Kate
        reads (so it can be checked by the reader and exported as training data)."""
        context, title = "", ""
        source = self.registry.get(source_url) if source_url else None
        if source is not None:
            page = self.knowledge.cache.get(source.url)
            context, title = find_context(answer.strip(), page.passages if page else [])
            title = source.title or title or (page.title if page else "")
        existing = self.verified_for(question)  # verifying a question again edits its answer
        return self.verified.put(
            VerifiedAnswer(question, answer, language, source_url, title, context, by=by,
                           id=existing.id if existing else "")
        )  # fmt: skip

    def verified_for(self, question: str) -> VerifiedAnswer | None:
        """The verified answer already kept for this question (any spelling of it), if any."""
        key = question_key(question)
        return next((v for v in self.verified.all() if question_key(v.question) == key), None)

    # -- contacts and escalations ------------------------------------------------------------------------
    def save_contact(self, contact: Contact, by: str) -> Contact:
        contact.by = by
        return self.escalations.put_contact(contact)

    def escalation_summary(self, days: int = 30, limit: int = 10_000) -> EscalationSummary:
        since = time.time() - days * 86400
        recent = [e for e in self.escalations.latest(limit) if e.time >= since]
        return EscalationSummary(
            days=days,
            offered=sum(e.event == "offered" for e in recent),
            requested=sum(e.event == "requested" for e in recent),
            latest_requests=[e for e in recent if e.event == "requested"][:20],
        )


@dataclass
class CandidateView:
    """An answer Kate gave to a question, as the verify page offers it."""

    answer: str
    source_url: str
    source_title: str
    kind: str
    up: int = 0
    down: int = 0


@dataclass
class EscalationSummary:
    """How often Kate handed over to a person lately."""

    days: int
    offered: int
    requested: int
    latest_requests: list[Escalation]


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
