"""What the admin console can do, shared by its HTML pages and its JSON API (one behaviour, two views).

Every change goes straight to Redis, which the action server reads for every question: a source added,
edited or disabled here is what the bot uses for the next question, with no restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.settings import Settings
from knowledge.feedback import FeedbackLog
from knowledge.library import Knowledge
from knowledge.sources import FetchStatus, Source, SourceError, source_id
from knowledge.unanswered import UnansweredLog
from qa_engine.types import Passage

from .security import Sessions, admin_password_hash, parse_trusted_proxies

MAX_IMPORT_CHARS = 1_000_000
_URL_LINE = re.compile(r"^\S+://\S+$")


@dataclass
class SourceView:
    """A source as the console lists it."""

    id: str
    source: Source
    page_title: str = ""  # the page's own title, from the cache (shown when the admin gave none)

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


class Console:
    """The admin console's state: the knowledge layer, the logs, the sessions and the admin account."""

    def __init__(self, settings: Settings, knowledge: Knowledge) -> None:
        self.settings = settings
        self.knowledge = knowledge
        client = knowledge.cache.r
        self.feedback = FeedbackLog(client, settings.redis_prefix)
        self.unanswered = UnansweredLog(client, settings.redis_prefix)
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
    def sources(self) -> list[SourceView]:
        sources = self.registry.list()
        pages = self.knowledge.cache.get_many([s.url for s in sources])
        return [
            SourceView(source_id(s.url), s, pages[s.url].title if s.url in pages else "") for s in sources
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
        return SourceView(sid, found, page.title if page else ""), page.passages if page else []

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
    ) -> SourceView:
        before = self._find(sid)
        if isinstance(tags, str):
            tags = split_tags(tags)
        after = self.registry.update(before.url, title=title, language=language, tags=tags, enabled=enabled)
        if (after.title, after.language) != (before.title, before.language):
            self.knowledge.cache.invalidate(after.url)  # passages carry title and language: read again
        return SourceView(sid, after)

    def remove(self, sid: str) -> Source:
        source = self._find(sid)
        self.registry.remove(source.url)
        self.knowledge.cache.invalidate(source.url)
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


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
