"""HTML (or plain text) -> passages the reader can answer from, keeping the page's structure.

The Kate paper's open problem is answers spread over bulleted lists and subtitles, so a passage here is
a section: its heading, then its paragraphs, list items and table rows, one per line. A list item or a
table row is never split, and the reader's `sentence` for an answer in a list is that item.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import py3langid
import trafilatura
from bs4 import BeautifulSoup, NavigableString, Tag
from lxml import etree

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
SPACED = (
    "br",
    "p",
    "div",
    "li",
    "dt",
    "dd",
    "td",
    "th",
    "tr",
    "table",
    "ul",
    "ol",
    "section",
    "article",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "figcaption",
    "caption",
    "details",
    "summary",
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
    cells = [_clean(c.get_text()) for c in row.find_all(["td", "th"], recursive=False)]
    if header and len(header) == len(cells) and row.find("td") is not None:
        return " · ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=True) if c)
    return " · ".join(c for c in cells if c)


def _blocks(root: Tag) -> Iterator[tuple[int, str]]:
    """(heading level or 0, text) for every heading and text block, in document order."""
    for node in root.descendants:
        if not isinstance(node, Tag):
            continue
        if node.name in HEADINGS:
            yield int(node.name[1]), _clean(node.get_text())
        elif node.name == "tr":
            table = node.find_parent("table")
            first = table.find("tr") if table else None
            header = []
            if first is not None and first is not node and first.find("td") is None:
                header = [_clean(c.get_text()) for c in first.find_all("th")]
            if first is node and node.find("td") is None:
                continue  # header row: folded into the data rows
            yield 0, _row_text(node, header)
        elif node.name in BLOCKS and node.find_parent(ATOMIC) is None:
            # A block holding other blocks (a <blockquote> or <dd> of paragraphs) lets them speak instead.
            if node.name == "li" or not node.find(["li", "tr", "p"]):
                # A list item keeps its nested lists' text inline: it stays one line.
                yield 0, _clean(node.get_text())[:MAX_BLOCK_CHARS]
        elif node.name in ("div", "section", "article", "main", "body"):
            # Loose text directly inside a container (no <p>): keep it as a block too.
            loose = _clean(" ".join(c for c in node.children if isinstance(c, NavigableString)))
            if loose:
                yield 0, loose[:MAX_BLOCK_CHARS]


def _main_content_blocks(html: str) -> list[tuple[int, str]]:
    """Blocks of the page's main content as trafilatura sees it (boilerplate, menus, footers, cookie
    banners and comments removed), read from its structured XML so headings, list items and table rows
    survive. Empty when trafilatura finds nothing (tiny or odd pages): the caller falls back."""
    try:
        xml = trafilatura.extract(
            html,
            output_format="xml",
            include_tables=True,
            include_formatting=False,
            include_comments=False,
            include_links=False,
            include_images=False,
            favor_recall=True,
            deduplicate=False,
        )
    except Exception:  # any failure inside the extractor means: use the fallback
        return []
    if not xml:
        return []
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser=etree.XMLParser(recover=True, huge_tree=False))
    except etree.XMLSyntaxError:
        return []
    main = root.find("main")
    return list(_xml_blocks(main if main is not None else root))


def _xml_text(node: etree._Element) -> str:
    for br in node.iter("lb"):  # a line break inside a block separates words
        br.text = " "
    return _clean("".join(node.itertext()))[:MAX_BLOCK_CHARS]


def _xml_blocks(node: etree._Element) -> Iterator[tuple[int, str]]:
    for child in node:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "head":
            rend = child.get("rend", "h2")
            level = int(rend[1]) if len(rend) == 2 and rend[0] == "h" and rend[1].isdigit() else 2
            yield level, _xml_text(child)
        elif tag == "item":
            yield 0, _xml_text(child)  # nested lists stay inline: an item is one line
        elif tag == "table":
            rows = child.findall(".//row")
            header: list[str] = []
            if rows and all(c.get("role") == "head" for c in rows[0].findall("cell")):
                header = [_xml_text(c) for c in rows[0].findall("cell")]
                rows = rows[1:]
            for row in rows:
                cells = [_xml_text(c) for c in row.findall("cell")]
                if header and len(header) == len(cells):
                    yield 0, " · ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=True) if c)
                else:
                    yield 0, " · ".join(c for c in cells if c)
        elif tag in ("p", "quote", "code") and child.find(".//item") is None and child.find("p") is None:
            yield 0, _xml_text(child)
        elif tag:
            yield from _xml_blocks(child)


def detect_language(text: str, declared: str = "") -> str:
    """The page's language: its `<html lang>` when it has one, else a guess from its text."""
    declared = (declared or "").strip().lower().replace("_", "-")
    if re.match(r"^[a-z]{2,3}(-|$)", declared):
        return declared.split("-")[0]
    sample = text[:5000].strip()
    if len(sample) < 20:
        return ""
    language, _ = py3langid.classify(sample)
    return language


def html_to_passages(html: str, url: str = "", fallback_title: str = "") -> tuple[str, list[Passage]]:
    """(page title, passages). Main content by trafilatura; when it finds none, BeautifulSoup with
    navigation, headers, footers, scripts and forms dropped. Every passage carries the page language."""
    title, passages = _page_passages(html, url, fallback_title)
    text = "\n".join(p.text for p in passages)
    lang_attr = re.search(r"<html[^>]*\slang\s*=\s*[\"']?([A-Za-z_-]+)", html[:5000], re.I)
    language = detect_language(text, lang_attr.group(1) if lang_attr else "")
    return title, [replace(p, language=language) for p in passages]


def _page_passages(html: str, url: str, fallback_title: str) -> tuple[str, list[Passage]]:
    """Scripts, styles, frames and page chrome go first (so nothing of them can leak into the text), then
    trafilatura picks the main content of what is left; BeautifulSoup's walk is the fallback."""
    soup = BeautifulSoup(html, "lxml")  # HTML5-like recovery from broken markup
    title = _clean(soup.title.get_text()) if soup.title else ""
    for tag in soup.find_all(DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(
        SPACED
    ):  # words either side of a block or <br> stay apart; <b>25</b>. stays "25."
        tag.insert_before(" ")
        tag.insert_after(" ")
    root = soup.find("main") or soup.find("article") or soup.body or soup
    if not title:
        h1 = root.find("h1")
        title = _clean(h1.get_text()) if h1 else fallback_title
    walked = list(_blocks(root))
    extracted = _main_content_blocks(str(soup))
    # trafilatura's last-resort extractor (small pages) merges headings into one paragraph: when it
    # finds fewer headings than the page's own main element holds, the walk keeps the structure.
    headings = sum(1 for level, _ in walked if level)
    if not extracted or sum(1 for level, _ in extracted if level) < headings:
        extracted = walked
    return title, _group(iter(extracted), url, title)


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
