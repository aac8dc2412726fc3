"""Answer spans that stop on whole words, numbers and units, with balanced brackets.

The reader scores token spans, and XLM-R's sentencepiece tokens do not follow words: "6月と12月" may be
tokenised "6月", "と", "12", "月", and a model that puts its end logit on "12" answers "6月と12". A person
never wants half a word, a number without its counter ("20" of "20日"), a price without its currency
("125" of "£125") or an open bracket. `whole_span` widens (or, for brackets that cannot be closed, trims)
a character span so that none of that happens. It never crosses a line break: passage lines are headings,
list items and table rows.
"""

from __future__ import annotations

import unicodedata

# Counters and units written right after a number in Japanese and Chinese ("12月", "25日", "5万円",
# "3か月", "2回", "3ヶ月"); the longest are tried first.
_CJK_COUNTERS = (
    "か月",
    "ヶ月",
    "ケ月",
    "カ月",
    "个月",
    "個月",
    "週間",
    "時間",
    "分間",
    "年間",
    "日間",
    "营业日",
    "営業日",
    "万円",
    "億円",
    "千円",
    "万元",
    "亿元",
    "万人",
    "月",
    "日",
    "年",
    "円",
    "元",
    "時",
    "分",
    "秒",
    "週",
    "回",
    "人",
    "名",
    "件",
    "個",
    "个",
    "歳",
    "岁",
    "号",
    "階",
    "楼",
    "本",
    "枚",
    "台",
    "倍",
    "割",
    "点",
    "度",
    "号",
    "万",
    "億",
    "亿",
    "千",
    "百",
    "％",
)
_PERCENT_AND_UNITS = "%‰％°℃"
_OPEN_CLOSE = {
    "(": ")",
    "[": "]",
    "{": "}",
    "（": "）",
    "「": "」",
    "『": "』",
    "【": "】",
    "«": "»",
    "《": "》",
}
_JOINERS = ".,:/@-'’_"  # inside one token when letters or digits stand on both sides
_TRAILING = ",;:、，；：。"
# Japanese case particles: sentencepiece often glues one to the word before it ("日に", "Workdayで"); an
# answer never ends on one that follows a kanji, katakana, digit or Latin letter ("25日に" -> "25日").
_JA_PARTICLES = "にはがをでへともの"
_MAX_WIDEN = 40  # characters a span may grow on each side: a widening never turns into a paragraph


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF  # kana
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF  # ideographs
        or 0xF900 <= cp <= 0xFAFF
        or 0xAC00 <= cp <= 0xD7AF  # hangul
        or 0xFF66 <= cp <= 0xFF9F  # half-width katakana
        or 0x20000 <= cp <= 0x2FA1F
    )


def _is_hiragana(ch: str) -> bool:
    return 0x3040 <= ord(ch) <= 0x309F


def _is_katakana(ch: str) -> bool:
    return 0x30A0 <= ord(ch) <= 0x30FF or 0xFF66 <= ord(ch) <= 0xFF9F


def _wordish(ch: str) -> bool:
    """A letter, digit or combining mark of a script that separates words with spaces (Latin, Cyrillic,
    Greek, Arabic, Devanagari, Thai-less): extending over these completes the word."""
    if _is_cjk(ch):
        return False
    cat = unicodedata.category(ch)
    return cat[0] in ("L", "N", "M") and not _is_thai(ch)


def _is_thai(ch: str) -> bool:
    return 0x0E00 <= ord(ch) <= 0x0E7F  # Thai has no spaces either: never widen inside it


def _same_word(text: str, i: int, j: int) -> bool:
    """Are text[i] and text[j] (neighbours, i < j) parts of one word, number or katakana run?"""
    a, b = text[i], text[j]
    if _wordish(a) and _wordish(b):
        return True
    return _is_katakana(a) and _is_katakana(b) and a != "・" and b != "・"


def _joined(text: str, i: int) -> bool:
    """Is text[i] a joiner inside one token: "1,500", "0.30", "people@northwind.example", "e-mail",
    "aujourd'hui", "2025-2026", "8:30"? Letters or digits on both sides; a comma or colon only between
    digits (a colon between words is a list or a label with its space missing: "roches:ignees")."""
    if i <= 0 or i + 1 >= len(text) or text[i] not in _JOINERS:
        return False
    before, after = text[i - 1], text[i + 1]
    if not (_wordish(before) and _wordish(after)):
        return False
    if text[i] in ",:":
        return before.isdigit() and after.isdigit()
    return True


def _grow_end(text: str, end: int, limit: int) -> int:
    while end < limit:
        if _same_word(text, end - 1, end):
            end += 1
        elif end + 1 < limit and _joined(text, end):
            end += 2
        else:
            break
    return end


def _grow_start(text: str, start: int, limit: int) -> int:
    while start > limit:
        if _same_word(text, start - 1, start):
            start -= 1
        elif start - 2 >= limit and _joined(text, start - 1):
            start -= 2
        else:
            break
    return start


def _counter_after(text: str, end: int, limit: int) -> int:
    """Keep a number's unit: "12" -> "12月", "5万" -> "5万円", "60" -> "60 %", "125" -> "125 €"."""
    rest = text[end:limit]
    if not text[end - 1].isdigit() and text[end - 1] not in "万億亿千百":
        return end
    for counter in _CJK_COUNTERS:
        if rest.startswith(counter):
            if counter in "万億亿千百":  # a multiplier: its own unit may follow ("5万円")
                return _counter_after(text, end + len(counter), limit)
            return end + len(counter)
    spaced = rest[1:] if rest[:1] in (" ", "\u00a0", "\u202f") else rest
    if spaced and (spaced[0] in _PERCENT_AND_UNITS or unicodedata.category(spaced[0]) == "Sc"):
        return end + (len(rest) - len(spaced)) + 1
    return end


def _currency_before(text: str, start: int, lower: int) -> int:
    """Keep a price's sign: "125" -> "£125", "45,000" -> "¥45,000", "100" -> "US$100", "€ 30"."""
    if not text[start].isdigit():
        return start
    i = start
    if (
        i - 2 >= lower
        and text[i - 1] in (" ", "\u00a0", "\u202f")
        and unicodedata.category(text[i - 2]) == "Sc"
    ):
        i -= 1
    if i - 1 < lower or unicodedata.category(text[i - 1]) != "Sc":
        return start
    i -= 1
    while i > lower and start - i < 4 and text[i - 1].isalpha() and text[i - 1].isupper():
        i -= 1  # "US$", "R$", "HK$"
    if i > lower and _wordish(text[i - 1]):
        return start  # the sign is glued to a word before it: not this number's
    return i


def _first_unbalanced(span: str, opener: str, closer: str) -> tuple[int | None, int | None]:
    """(index of the first closer without an opener, index of the outermost opener left open)."""
    stack: list[int] = []
    for k, ch in enumerate(span):
        if ch == opener:
            stack.append(k)
        elif ch == closer:
            if not stack:
                return k, None
            stack.pop()
    return None, (stack[0] if stack else None)


def _balance(text: str, start: int, end: int, lower: int, upper: int) -> tuple[int, int]:
    """Close an opened bracket (or open a closed one) when its partner is on the line and near, else cut
    the bracket off."""
    for opener, closer in _OPEN_CLOSE.items():
        for _ in range(4):  # a few brackets of one kind at most
            stray_close, left_open = _first_unbalanced(text[start:end], opener, closer)
            if stray_close is not None:
                j = text.rfind(opener, lower, start)
                start = j if j >= 0 else start + stray_close + 1
            elif left_open is not None:
                j = text.find(closer, end, upper)
                end = j + 1 if j >= 0 else start + left_open
            else:
                break
            while start < end and text[start].isspace():
                start += 1
            while end > start and text[end - 1].isspace():
                end -= 1
    return start, end


def whole_span(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole words, numbers with their units and currency signs, balanced
    brackets, and trimmed of trailing commas; empty (start == end) stays empty. Bounded: it grows by at
    most `_MAX_WIDEN` characters each side and never past a line break."""
    if start >= end:
        return start, end
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    lower, upper = max(line_start, start - _MAX_WIDEN), min(line_end, end + _MAX_WIDEN)
    if "\n" in text[start:end]:
        return start, end
    start = _grow_start(text, start, lower)
    end = _grow_end(text, end, upper)
    end = _counter_after(text, end, upper)
    start = _currency_before(text, start, lower)
    start, end = _balance(text, start, end, lower, upper)
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    if end - start >= 2 and text[end - 1] in _JA_PARTICLES and not _is_hiragana(text[end - 2]):
        end -= 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
