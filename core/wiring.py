"""The production wiring of the knowledge layer: Redis (started when absent), the sources registry seeded
once, the page cache and the fetching limits and policy, all from Settings. The action server, the web
app and the CLI build their `Knowledge` here, so each gets the same one."""

from __future__ import annotations

import sys

from knowledge.cache import PageCache
from knowledge.fetch_policy import FetchPolicy
from knowledge.library import FetchLimits, Knowledge
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
