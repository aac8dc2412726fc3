"""The sources registry: the intranet URLs HR admins list, kept in Redis.

`knowledge/sources.yml` seeds an empty registry once; from then on Redis is the truth and the YAML is
only an import/export format. A source is one hash per URL plus an ordered set of URLs (by time added),
so the admin console and the CLI list sources in the order they were added.

Credentials for protected intranets never enter Redis, logs or exports: a source names the environment
variable that holds them (`auth: bearer:HR_WIKI_TOKEN`), and the fetcher reads it when it fetches.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import Template

import redis
import yaml

from . import fetch
from .changes import ChangeLog
from .store import DEFAULT_PREFIX, guarded

DEFAULT_SOURCES_FILE = Path(__file__).parent / "sources.yml"  # = core.settings.DEFAULT_SOURCES_FILE
AUTH_KINDS = ("basic", "bearer", "cookie")
MIN_EVERY, MAX_EVERY = 1.0, 30 * 86400.0  # a source's own refresh interval, seconds
MAX_SOURCES = 100_000  # a bound on every listing and import
MAX_TITLE = 300
MAX_TAGS = 50
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SourceError(ValueError):
    """A source cannot be added or changed as asked; the message says why."""


@dataclass
class FetchStatus:
    """What happened the last time a source was fetched."""

    fetched_at: float = 0.0
    http_status: int = 0
    n_bytes: int = 0
    n_passages: int = 0
    error: str = ""
    encoding: str = ""
    seconds: float = 0.0
    not_modified: bool = False

    @property
    def ok(self) -> bool:
        return self.fetched_at > 0 and not self.error


@dataclass
class Source:
    url: str
    title: str = ""
    language: str = ""
    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    added_by: str = ""
    added_at: float = 0.0
    auth: str = ""  # "" or "<basic|bearer|cookie>:<ENV_VAR>"
    every: float = 0.0  # seconds between the refresher's checks of this page; 0: KATE_REFRESH_INTERVAL
    status: FetchStatus = field(default_factory=FetchStatus)

    def to_yaml_dict(self) -> dict:
        d: dict = {"url": self.url}
        for key in ("title", "language", "auth"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        if not self.enabled:
            d["enabled"] = False
        if self.tags:
            d["tags"] = list(self.tags)
        if self.every:
            d["every"] = self.every
        return d


def source_id(url: str) -> str:
    """A short stable id for a source, for web addresses (`/admin/sources/<id>`) where a URL would not fit."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def normalize_url(url: str) -> str:
    """The one spelling of a URL the registry stores (`fetch.normalize_url`). Raises `SourceError`."""
    try:
        return fetch.normalize_url(url)
    except fetch.InvalidURL as exc:
        raise SourceError(str(exc)) from None


def check_auth(auth: str) -> str:
    auth = (auth or "").strip()
    if not auth:
        return ""
    kind, _, env = auth.partition(":")
    if kind not in AUTH_KINDS or not _ENV_NAME.match(env):
        raise SourceError(
            f"auth must be <{'|'.join(AUTH_KINDS)}>:<ENVIRONMENT_VARIABLE>, got {auth!r} "
            "(the secret itself stays in the environment)"
        )
    return auth


def clean_title(title: str | None) -> str:
    return (title or "").strip()[:MAX_TITLE]


def clean_tags(tags: list[str] | None) -> list[str]:
    return [t.strip() for t in (tags or []) if t and t.strip()][:MAX_TAGS]


def check_language(language: str) -> str:
    language = (language or "").strip()
    if language and not _LANG.match(language):
        raise SourceError(f"language must be a code such as en, fr, ja or pt-BR, got {language!r}")
    return language


class SourceRegistry:
    """CRUD on the sources in Redis. Every method raises `StoreUnavailable` when Redis is down."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.prefix = prefix
        self.changes = ChangeLog(client, prefix)  # every change is noted for the action servers' index

    # keys
    @property
    def _order(self) -> str:
        return f"{self.prefix}sources"

    def _key(self, url: str) -> str:
        return f"{self.prefix}source:{url}"

    # reading
    def get(self, url: str) -> Source | None:
        url = normalize_url(url)
        with guarded(self.r):
            raw = self.r.hgetall(self._key(url))
        return _from_hash(raw) if raw else None

    def list(self, enabled_only: bool = False) -> list[Source]:
        sources = self.page(0, MAX_SOURCES)
        return [s for s in sources if s.enabled] if enabled_only else sources

    def count(self) -> int:
        with guarded(self.r):
            return int(self.r.zcard(self._order))

    def page(self, offset: int, limit: int) -> list[Source]:
        """Sources `offset` to `offset + limit - 1` in the order they were added: a console page reads
        its 50 records, not the 50,000 of a large intranet."""
        if limit <= 0:
            return []
        with guarded(self.r):
            urls = self.r.zrange(self._order, max(0, offset), max(0, offset) + limit - 1)
            pipe = self.r.pipeline(transaction=False)
            for url in urls:
                pipe.hgetall(self._key(url))
            rows = pipe.execute()
        return [_from_hash(raw) for raw in rows if raw]

    # writing
    def add(
        self,
        url: str,
        *,
        title: str = "",
        language: str = "",
        tags: list[str] | None = None,
        added_by: str = "",
        enabled: bool = True,
        auth: str = "",
        every: float = 0.0,
    ) -> Source:
        source = Source(
            url=normalize_url(url),
            title=clean_title(title),
            language=check_language(language),
            enabled=enabled,
            tags=clean_tags(tags),
            added_by=(added_by or "").strip()[:200],
            added_at=time.time(),
            auth=check_auth(auth),
            every=check_every(every),
        )
        with guarded(self.r):
            if self.r.zscore(self._order, source.url) is not None:
                raise SourceError(f"{source.url} is already a source (`kate sources show {source.url}`)")
            if self.r.zcard(self._order) >= MAX_SOURCES:
                raise SourceError(f"the registry already holds {MAX_SOURCES:,} sources")
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(self._key(source.url), mapping=_to_hash(source))
            pipe.zadd(self._order, {source.url: source.added_at})
            pipe.execute()
        self.changes.note(source.url)
        return source

    def remove(self, url: str) -> None:
        url = self._existing(url)
        with guarded(self.r):
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(self._key(url))
            pipe.zrem(self._order, url)
            pipe.execute()
        self.changes.note(url)

    def find(self, sid: str) -> Source | None:
        """The source whose `source_id` is `sid` (admin console addresses), or None."""
        return next((s for s in self.list() if source_id(s.url) == sid), None)

    def update(
        self,
        url: str,
        *,
        title: str | None = None,
        language: str | None = None,
        tags: list[str] | None = None,
        auth: str | None = None,
        enabled: bool | None = None,
        every: float | None = None,
    ) -> Source:
        """Change what admins may change of a source (not its URL: that is a new source). Values are
        checked as `add` checks them; None leaves a field as it is."""
        url = self._existing(url)
        changes: dict[str, str] = {}
        if title is not None:
            changes["title"] = clean_title(title)
        if language is not None:
            changes["language"] = check_language(language)
        if tags is not None:
            changes["tags"] = json.dumps(clean_tags(tags), ensure_ascii=False)
        if auth is not None:
            changes["auth"] = check_auth(auth)
        if enabled is not None:
            changes["enabled"] = "1" if enabled else "0"
        if every is not None:
            changes["every"] = repr(check_every(every))
        if changes:
            with guarded(self.r):
                self.r.hset(self._key(url), mapping=changes)
            self.changes.note(url)
        return self.get(url)  # type: ignore[return-value]

    def set_enabled(self, url: str, enabled: bool) -> Source:
        return self.update(url, enabled=enabled)

    def record_fetch(self, url: str, status: FetchStatus) -> None:
        """Store the last fetch's outcome (only for a source that still exists)."""
        url = normalize_url(url)
        with guarded(self.r):
            if self.r.exists(self._key(url)):
                self.r.hset(self._key(url), "status", json.dumps(asdict(status)))

    def _existing(self, url: str) -> str:
        url = normalize_url(url)
        with guarded(self.r):
            if self.r.zscore(self._order, url) is None:
                raise SourceError(f"{url} is not a source (`kate sources list` shows them)")
        return url

    # YAML
    def seed_once(self, path: Path, variables: Mapping[str, str] | None = None) -> int:
        """Import `path` the first time Kate starts on this Redis; later starts leave the registry alone
        (admins may have removed seeded sources on purpose)."""
        with guarded(self.r):
            first = self.r.set(f"{self.prefix}sources:seeded", str(time.time()), nx=True)
        if not first or not path.is_file():
            return 0
        added, _ = self.import_yaml(path.read_text(encoding="utf-8"), variables, added_by="sources.yml")
        return added

    def import_yaml(
        self, text: str, variables: Mapping[str, str] | None = None, added_by: str = "import"
    ) -> tuple[int, list[str]]:
        """Add every source of a YAML document; already present URLs are skipped. (added, problems).
        `${NAME}` in a URL is replaced from `variables` only, never from the whole environment: the
        console's import passes none (an admin must not be able to send `${REDIS_URL}` or the admin
        hash to a host of their choosing, nor store it in an export); the seed file and the CLI pass
        `url_variables(os.environ, ...)`. A variable left unfilled is a problem, not a source."""
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise SourceError(f"not valid YAML: {exc}") from exc
        entries = doc.get("sources", []) if isinstance(doc, dict) else doc
        if not isinstance(entries, list):
            raise SourceError("expected a list of sources (or a mapping with a `sources:` list)")
        added, problems = 0, []
        for entry in entries[:MAX_SOURCES]:
            if isinstance(entry, str):
                entry = {"url": entry}
            if not isinstance(entry, dict) or "url" not in entry:
                problems.append(f"skipped {entry!r}: each source needs a url")
                continue
            tags = entry.get("tags") or []
            url = Template(str(entry["url"])).safe_substitute(variables or {})
            if "${" in url:
                problems.append(
                    f"skipped {entry['url']!r}: ${{NAME}} variables are only filled in the seed file and "
                    f"`kate sources import`, from KATE_DEMO_URL and {URL_VARIABLE_PREFIX}* variables"
                )
                continue
            try:
                self.add(
                    url,
                    title=str(entry.get("title") or ""),
                    language=str(entry.get("language") or ""),
                    tags=[str(t) for t in tags] if isinstance(tags, list) else [str(tags)],
                    enabled=bool(entry.get("enabled", True)),
                    auth=str(entry.get("auth") or ""),
                    every=_seconds(str(entry.get("every") or 0)),
                    added_by=added_by,
                )
                added += 1
            except SourceError as exc:
                problems.append(str(exc))
        return added, problems

    def export_yaml(self) -> str:
        doc = {"sources": [s.to_yaml_dict() for s in self.list()]}
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


URL_VARIABLE_PREFIX = "KATE_URL_"  # environment variables a seed file may use in its URLs


def url_variables(environ: Mapping[str, str], demo_url: str) -> dict[str, str]:
    """The variables a seed file's URLs may use: `KATE_DEMO_URL` and `KATE_URL_*` (an intranet's base
    address that differs between staging and production), nothing else of the environment."""
    chosen = {k: v for k, v in environ.items() if k.startswith(URL_VARIABLE_PREFIX)}
    return {**chosen, "KATE_DEMO_URL": demo_url}


def _to_hash(source: Source) -> dict[str, str]:
    return {
        "url": source.url,
        "title": source.title,
        "language": source.language,
        "enabled": "1" if source.enabled else "0",
        "tags": json.dumps(source.tags, ensure_ascii=False),
        "added_by": source.added_by,
        "added_at": repr(source.added_at),
        "auth": source.auth,
        "every": repr(source.every),
        "status": json.dumps(asdict(source.status)),
    }


def _seconds(raw: str | None) -> float:
    try:
        return max(0.0, float(raw or 0))
    except ValueError:
        return 0.0


def check_every(every: float) -> float:
    """A refresh interval: 0 (the deployment's default) or between a second and 30 days."""
    if every and not MIN_EVERY <= every <= MAX_EVERY:
        raise SourceError(f"a refresh interval is 0 (the default) or {MIN_EVERY:g} to {MAX_EVERY:g} seconds")
    return float(every)


def _from_hash(raw: dict[str, str]) -> Source:
    try:
        status = FetchStatus(**json.loads(raw.get("status") or "{}"))
    except (TypeError, ValueError):
        status = FetchStatus(error="unreadable status record")
    return Source(
        url=raw["url"],
        title=raw.get("title", ""),
        language=raw.get("language", ""),
        enabled=raw.get("enabled", "1") == "1",
        tags=json.loads(raw.get("tags") or "[]"),
        added_by=raw.get("added_by", ""),
        added_at=float(raw.get("added_at") or 0),
        auth=raw.get("auth", ""),
        every=_seconds(raw.get("every")),
        status=status,
    )
