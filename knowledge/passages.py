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
FAQ_LEVEL = 7  # a FAQ question heads its own section, nested below the page's real headings
FAQ_END = "kate-faq-end"  # marker element put after each <details> and <dl>: their answer ends there

Block = tuple[int, str, str]  # (heading level or 0, text, kind: "h" "q" "p" "u3" "o3" "t2" "end")

# "Q: ...", "Question : ...", "Q：", "質問：" open a FAQ pair; "A:", "R :", "Réponse :", "回答：" its answer.
QUESTION_PREFIX = re.compile(r"^(?:Q|Question|Frage|質問|問)\s*[:：.]\s*", re.I)
ANSWER_PREFIX = re.compile(r"^(?:A|R|Answer|Réponse|Antwort|回答|答)\s*[:：]\s*", re.I)
# A section whose headings (or first line) say it no longer applies, in en/fr/ja/de: current text wins.
OUTDATED = re.compile(
    r"supersed|outdated|out of date|obsolete|archived|\barchives?\s*(?:\d{4}|:|>|$)|deprecated"
    r"|no longer (?:valid|appl|in )"
    r"|\b(?:previous|former|old) (?:policy|version|rules?|scheme)|replaced by"
    r"|obsolète|archivée?s?|ancienne? (?:politique|version|règles?|barème|régime)"
    r"|remplacée?s? par|n'est plus (?:en vigueur|applicable|valable)|plus en vigueur|caduque?"
    r"|廃止|旧制度|旧規程|旧規定|旧ルール|（旧）|\(旧\)|改定前|アーカイブ|適用終了|過去の規程"
    r"|veraltet|archiviert|nicht mehr gültig|ersetzt durch|außer kraft|frühere (?:regelung|richtlinie)",
    re.I,
)


def _is_question(text: str) -> bool:
    return text.rstrip().endswith(("?", "？"))


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _row_text(row: Tag, header: list[str]) -> str:
    cells = [_clean(c.get_text()) for c in row.find_all(["td", "th"], recursive=False)]
    if header and len(header) == len(cells) and row.find("td") is not None:
        return " · ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=True) if c)
    return " · ".join(c for c in cells if c)


def _numbered(counter: dict[int, int], node: Tag) -> int:
    """A page-wide number for a list or table element, in document order."""
    return counter.setdefault(id(node), len(counter) + 1)


def _list_kind(item: Tag, lists: dict[int, int]) -> str:
    parent = item.find_parent(["ol", "ul"])
    if parent is None:
        return "p"
    return ("o" if parent.name == "ol" else "u") + str(_numbered(lists, parent))


def _blocks(root: Tag) -> Iterator[Block]:
    """(heading level or 0, text, kind) for every heading and text block, in document order. A
    <summary> or <dt> is a FAQ question (a level-7 heading, below every real one) and its answer ends
    with its <details> or <dl> (an "end" block)."""
    lists: dict[int, int] = {}
    tables: dict[int, int] = {}
    for node in root.descendants:
        if not isinstance(node, Tag):
            continue
        if node.name in HEADINGS:
            text = _clean(node.get_text())
            yield int(node.name[1]), text, "q" if _is_question(text) else "h"
        elif node.name == FAQ_END:
            yield FAQ_LEVEL, "", "end"
        elif node.name in ("summary", "dt") and node.find_parent(ATOMIC) is None:
            yield FAQ_LEVEL, _clean(node.get_text())[:MAX_BLOCK_CHARS], "q"
        elif node.name == "tr":
            table = node.find_parent("table")
            first = table.find("tr") if table else None
            header = []
            if first is not None and first is not node and first.find("td") is None:
                header = [_clean(c.get_text()) for c in first.find_all("th")]
            if first is node and node.find("td") is None:
                continue  # header row: folded into the data rows
            yield 0, _row_text(node, header), "t" + str(_numbered(tables, table)) if table else "p"
        elif node.name in BLOCKS and node.find_parent(ATOMIC) is None:
            # A block holding other blocks (a <blockquote> or <dd> of paragraphs) lets them speak instead.
            if node.name == "li" or not node.find(["li", "tr", "p"]):
                # A list item keeps its nested lists' text inline: it stays one line.
                kind = _list_kind(node, lists) if node.name == "li" else "p"
                yield 0, _clean(node.get_text())[:MAX_BLOCK_CHARS], kind
        elif node.name in ("div", "section", "article", "main", "body", "details"):
            # Loose text directly inside a container (no <p>): keep it as a block too.
            loose = _clean(" ".join(c for c in node.children if isinstance(c, NavigableString)))
            if loose:
                yield 0, loose[:MAX_BLOCK_CHARS], "p"


def _main_content_blocks(html: str) -> list[Block]:
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


def _xml_blocks(node: etree._Element, counter: dict[str, int] | None = None) -> Iterator[Block]:
    counter = {} if counter is None else counter
    for child in node:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag == "head":
            rend = child.get("rend", "h2")
            level = int(rend[1]) if len(rend) == 2 and rend[0] == "h" and rend[1].isdigit() else 2
            text = _xml_text(child)
            yield level, text, "q" if _is_question(text) else "h"
        elif tag == "list":
            counter["n"] = number = counter.get("n", 0) + 1
            kind = ("o" if child.get("rend") == "ol" else "u") + str(number)
            for item in child.findall("item"):
                yield 0, _xml_text(item), kind  # nested lists stay inline: an item is one line
        elif tag == "item":
            yield 0, _xml_text(child), "p"
        elif tag == "table":
            counter["n"] = number = counter.get("n", 0) + 1
            rows = child.findall(".//row")
            header: list[str] = []
            if rows and all(c.get("role") == "head" for c in rows[0].findall("cell")):
                header = [_xml_text(c) for c in rows[0].findall("cell")]
                rows = rows[1:]
            for row in rows:
                cells = [_xml_text(c) for c in row.findall("cell")]
                if header and len(header) == len(cells):
                    text = " · ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=True) if c)
                else:
                    text = " · ".join(c for c in cells if c)
                yield 0, text, f"t{number}"
        elif tag in ("p", "quote", "code") and child.find(".//item") is None and child.find("p") is None:
            yield 0, _xml_text(child), "p"
        elif tag:
            yield from _xml_blocks(child, counter)


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
    faq = soup.find_all(["details", "dl"])
    for tag in faq:  # the walk closes each FAQ answer there
        tag.insert_after(soup.new_tag(FAQ_END))
    if not title:
        h1 = root.find("h1")
        title = _clean(h1.get_text()) if h1 else fallback_title
    walked = list(_blocks(root))
    extracted = [] if faq else _main_content_blocks(str(soup))
    # trafilatura's last-resort extractor (small pages) merges headings into one paragraph: when it
    # finds fewer headings than the page's own main element holds, the walk keeps the structure. It
    # also flattens <details> and <dl>, so a page with FAQ blocks is walked (its chrome is gone already).
    headings = sum(1 for level, _, _ in walked if level)
    if not extracted or sum(1 for level, _, _ in extracted if level) < headings:
        extracted = walked
    return title, _group(iter(extracted), url, title)


def text_to_passages(text: str, url: str = "", title: str = "") -> list[Passage]:
    """Plain text: paragraphs are separated by blank lines."""
    paragraphs = (_clean(p) for p in re.split(r"\n\s*\n", text))
    return _group(((0, p[:MAX_BLOCK_CHARS], "p") for p in paragraphs if p), url, title)


def _faq_lines(blocks: Iterator[Block]) -> Iterator[Block]:
    """ "Q: ..." paragraphs become FAQ questions and "A: ..." loses its prefix (the answer is the text)."""
    for level, text, kind in blocks:
        if kind == "p" and QUESTION_PREFIX.match(text) and _is_question(text):
            yield FAQ_LEVEL, QUESTION_PREFIX.sub("", text, count=1), "q"
        elif kind == "p" and ANSWER_PREFIX.match(text):
            yield level, ANSWER_PREFIX.sub("", text, count=1), kind
        else:
            yield level, text, kind


def is_outdated(section: str, first_line: str = "") -> bool:
    """Whether a section's headings (or its first line) mark it superseded, archived or no longer valid."""
    return bool(OUTDATED.search(section) or OUTDATED.search(first_line[:200]))


def _group(blocks: Iterator[Block], url: str, title: str) -> list[Passage]:
    passages: list[Passage] = []
    path: list[tuple[int, str, str]] = []  # the open headings (level, text, kind), outermost first
    lines: list[tuple[str, str]] = []  # (text, kind)

    def flush() -> None:
        if lines and len(passages) < MAX_PASSAGES:
            section = " > ".join(h for _, h, _ in path)
            body = [text for text, _ in lines]
            kinds = [kind for _, kind in lines]
            if path and path[-1][1] != "\n".join(body):
                body, kinds = [path[-1][1], *body], [path[-1][2], *kinds]
            passages.append(
                Passage(
                    text="\n".join(body),
                    url=url,
                    title=title,
                    id=f"{url}#{len(passages)}",
                    section=section,
                    layout=" ".join(kinds),
                    outdated=is_outdated(section, lines[0][0]),
                )
            )
        lines.clear()

    for level, text, kind in _faq_lines(blocks):
        if kind == "end":
            flush()
            path = [h for h in path if h[0] < FAQ_LEVEL]
            continue
        if not text:
            continue
        if level:
            flush()
            path = [h for h in path if h[0] < level] + [(level, text, kind)]
        else:
            if lines and sum(len(x) + 1 for x, _ in lines) + len(text) > MAX_PASSAGE_CHARS:
                flush()
            if not lines or lines[-1][0] != text:
                lines.append((text, kind))
        if len(passages) >= MAX_PASSAGES:
            break
    flush()
    return passages
