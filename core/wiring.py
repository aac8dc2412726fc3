"""The production wiring of the knowledge layer: Redis (started when absent), the sources registry seeded
once, the page cache and the fetching limits and policy, all from Settings. The action server, the web
app and the CLI build their `Knowledge` here, so each gets the same one."""

from __future__ import annotations

import sys

import yaml

from knowledge.cache import PageCache
from knowledge.escalation import Escalations
from knowledge.fetch_policy import FetchPolicy
from knowledge.library import FetchLimits, Knowledge
from knowledge.scripted import DEMO_CONTENT, ScriptedAnswers
from knowledge.sources import SourceRegistry, url_variables

from .local_redis import open_redis
from .settings import Settings


def demo_base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.demo_port}"


def open_knowledge(settings: Settings, seed: bool = True) -> Knowledge:
    """Kate's knowledge layer on its Redis (started if needed), seeded from sources.yml the first time."""
    client = open_redis(settings)
    registry = SourceRegistry(client, settings.redis_prefix)
    if seed:
        added = registry.seed_once(
            settings.sources_file, url_variables(settings.url_variables, demo_base_url(settings))
        )
        if added:
            print(f"kate: {added} sources added from {settings.sources_file}", file=sys.stderr)
    cache = PageCache(client, settings.redis_prefix, ttl=settings.cache_ttl)
    limits = FetchLimits(
        timeout=settings.fetch_timeout,
        total_timeout=2 * settings.fetch_timeout,
        max_bytes=settings.max_page_bytes,
        workers=settings.fetch_workers,
        policy=FetchPolicy.from_settings(settings.fetch_allow, settings.fetch_deny),
    )
    return Knowledge(registry, cache, limits)


def uses_demo_intranet(settings: Settings, knowledge: Knowledge) -> bool:
    """Whether any enabled source is a page of the demo intranet."""
    base = demo_base_url(settings) + "/"
    return any(s.url.startswith(base) for s in knowledge.registry.list(enabled_only=True))


def sync_demo_answers(settings: Settings, knowledge: Knowledge) -> str:
    """The demo company's HR content (scripted answers and contacts) while Kate reads the demo intranet,
    and none of it (except what an admin edited) once it does not: a company's own Kate never answers
    with the demo's text nor hands over to the demo's HR. Returns what changed, in words, or ""."""
    answers = ScriptedAnswers(knowledge.cache.r, settings.redis_prefix)
    contacts = Escalations(knowledge.cache.r, settings.redis_prefix)
    if uses_demo_intranet(settings, knowledge):
        added = answers.seed_demo() + contacts.seed_demo(demo_contacts())
        return (
            f"{added} demo scripted answers and contacts loaded (the sources are the demo intranet)"
            if added
            else ""
        )
    dropped = answers.drop_demo() + contacts.drop_demo()
    return (
        f"{dropped} demo scripted answers and contacts removed (the sources are not the demo intranet)"
        if dropped
        else ""
    )


def demo_contacts() -> list[dict]:
    data = yaml.safe_load(DEMO_CONTENT.read_text(encoding="utf-8")) or {}
    return list(data.get("contacts") or [])
