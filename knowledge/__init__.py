"""Kate's knowledge layer: the pages HR lists, fetched safely and turned into passages for the reader.

This first version reads pages on demand (`kate ask --url/--file`); the sources registry, the Redis
cache and the demo intranet server build on these functions.
"""

import json
from pathlib import Path

from qa_engine.types import Passage

from .fetch import FetchedPage, FetchError, fetch_page, read_local_page
from .passages import html_to_passages, text_to_passages

DEMO_SITE = Path(__file__).parent / "demo_site"


def page_passages(page: FetchedPage) -> tuple[str, list[Passage]]:
    """(title, passages) of a fetched page, linked to the URL the page was finally served from."""
    if page.kind == "html":
        return html_to_passages(page.text, url=page.final_url)
    title = Path(page.url).name
    return title, text_to_passages(page.text, url=page.final_url, title=title)


def demo_passages() -> list[Passage]:
    """Every passage of the demo intranet, read from the package's files (no server needed)."""
    passages: list[Passage] = []
    for path in sorted(DEMO_SITE.glob("*/*.html")):
        passages.extend(page_passages(read_local_page(path))[1])
    return passages


def demo_questions() -> list[dict]:
    """The demo intranet's HR questions: `questions.json` items (lang, page, question, answers)."""
    return json.loads((DEMO_SITE / "questions.json").read_text(encoding="utf-8"))["items"]


__all__ = [
    "DEMO_SITE",
    "FetchError",
    "FetchedPage",
    "demo_passages",
    "demo_questions",
    "fetch_page",
    "page_passages",
    "read_local_page",
]
