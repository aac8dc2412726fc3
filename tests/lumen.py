"""The Lumen Logistics test intranet (measure/data/lumen-intranet) served over HTTP and made the running
Kate's only sources for a while: the demo's sources disabled and its scripted answers set aside, as for
a company that wrote none yet, then everything put back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from redis_process import free_port

from knowledge.demo_server import serve_demo_site
from knowledge.sources import SourceRegistry
from knowledge.store import connect
from measure.structured_eval import SITE, TAGS

SECRET = "kate-tests-audience-secret"  # tests/kate_stack.py gives the stack this KATE_AUDIENCE_SECRET


@dataclass
class Lumen:
    base: str

    def url(self, page: str) -> str:
        return f"{self.base}/{page}"


@contextlib.contextmanager
def lumen_intranet(stack) -> Iterator[Lumen]:
    client = connect(stack.redis_url)
    registry = SourceRegistry(client)
    server, _ = serve_demo_site(port=free_port(), root=SITE)
    lumen = Lumen(f"http://127.0.0.1:{server.server_address[1]}")
    demo = [s.url for s in registry.list(enabled_only=True)]
    scripted, aside = "kate:scripted", "kate:scripted:aside"
    had_scripted = bool(client.exists(scripted))
    try:
        for url in demo:
            registry.set_enabled(url, False)
        if had_scripted:
            client.rename(scripted, aside)
        for page in sorted(SITE.glob("*/*.html")):
            name = page.relative_to(SITE).as_posix()
            registry.add(lumen.url(name), language=name.split("/")[0], tags=TAGS.get(name, []))
        refreshed = stack.kate("sources", "refresh", timeout=300)
        assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
        yield lumen
    finally:
        for page in sorted(SITE.glob("*/*.html")):
            registry.remove(lumen.url(page.relative_to(SITE).as_posix()))
        for url in demo:
            registry.set_enabled(url, True)
        if had_scripted:
            client.rename(aside, scripted)
        server.shutdown()
