"""HTML (or plain text) -> passages the reader can answer from, keeping the page's structure.

The Kate paper's open problem is answers spread over bulleted lists and subtitles, so a passage here is
a section: its heading, then its paragraphs, list items and table rows, one per line. A list item or a
table row is never split, and the reader's `sentence` for an answer in a list is that item.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bs4 import BeautifulSoup, NavigableString, Tag

from qa_engine.types import Passage

DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "canvas",
    "button",
    "select",
    "object",
    "embed",
)
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
BLOCKS = ("p", "li", "tr", "dt", "dd", "pre", "blockquote", "figcaption", "caption")
ATOMIC = ("li", "tr", "p", "pre")  # blocks whose whole text is one line: nothing inside them is emitted again
MAX_PASSAGE_CHARS = 1200  # a section longer than this is cut between blocks (the reader chunks further)
MAX_PASSAGES = 2000  # bound per page
MAX_BLOCK_CHARS = 20_000


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _row_text(row: Tag, header: list[str]) -> str:
    cells = [_clean(c.get_text(" ")) for c in row.find_all(["td", "th"], recursive=False)]
    if header and len(header) == len(cells) and row.find("td") is not None:
        return " · ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=True) if c)
    return " · ".join(c for c in cells if c)


def _blocks(root: Tag) -> Iterator[tuple[int, str]]:
    """(heading level or 0, text) for every heading and text block, in document order."""
    for node in root.descendants:
        if not isinstance(node, Tag):
            continue
        if node.name in HEADINGS:
            yield int(node.name[1]), _clean(node.get_text(" "))
        elif node.name == "tr":
            table = node.find_parent("table")
            first = table.find("tr") if table else None
            header = []
            if first is not None and first is not node and first.find("td") is None:
                header = [_clean(c.get_text(" ")) for c in first.find_all("th")]
            if first is node and node.find("td") is None:
                continue  # header row: folded into the data rows
            yield 0, _row_text(node, header)
        elif node.name in BLOCKS and node.find_parent(ATOMIC) is None:
            # A block holding other blocks (a <blockquote> or <dd> of paragraphs) lets them speak instead.
            if node.name == "li" or not node.find(["li", "tr", "p"]):
                # A list item keeps its nested lists' text inline: it stays one line.
                yield 0, _clean(node.get_text(" "))[:MAX_BLOCK_CHARS]
        elif node.name in ("div", "section", "article", "main", "body"):
            # Loose text directly inside a container (no <p>): keep it as a block too.
            loose = _clean(" ".join(c for c in node.children if isinstance(c, NavigableString)))
            if loose:
                yield 0, loose[:MAX_BLOCK_CHARS]


def html_to_passages(html: str, url: str = "", fallback_title: str = "") -> tuple[str, list[Passage]]:
    """(page title, passages). Navigation, headers, footers, scripts and forms are dropped."""
    soup = BeautifulSoup(html, "html.parser")
    title = _clean(soup.title.get_text()) if soup.title else ""
    for tag in soup.find_all(DROP_TAGS):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    if not title:
        h1 = root.find("h1")
        title = _clean(h1.get_text(" ")) if h1 else fallback_title
    return title, _group(_blocks(root), url, title)


def text_to_passages(text: str, url: str = "", title: str = "") -> list[Passage]:
    """Plain text: paragraphs are separated by blank lines."""
    paragraphs = (_clean(p) for p in re.split(r"\n\s*\n", text))
    return _group(((0, p[:MAX_BLOCK_CHARS]) for p in paragraphs if p), url, title)


def _group(blocks: Iterator[tuple[int, str]], url: str, title: str) -> list[Passage]:
    passages: list[Passage] = []
    path: list[tuple[int, str]] = []  # the open headings, outermost first
    lines: list[str] = []

    def flush() -> None:
        if lines and len(passages) < MAX_PASSAGES:
            section = " > ".join(h for _, h in path)
            heading = path[-1][1] if path else ""
            body = "\n".join(lines)
            text = f"{heading}\n{body}" if heading and heading != body else body
            passages.append(
                Passage(text=text, url=url, title=title, id=f"{url}#{len(passages)}", section=section)
            )
        lines.clear()

    for level, text in blocks:
        if not text:
            continue
        if level:
            flush()
            path = [(lv, h) for lv, h in path if lv < level] + [(level, text)]
        else:
            if lines and sum(len(x) + 1 for x in lines) + len(text) > MAX_PASSAGE_CHARS:
                flush()
            if not lines or lines[-1] != text:
                lines.append(text)
        if len(passages) >= MAX_PASSAGES:
            break
    flush()
    return passages
