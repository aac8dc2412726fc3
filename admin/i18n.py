"""The admin console in English, French and Japanese (HR teams work in their language).

Templates write their English text inside `_()`: `{{ _("Sources") }}`, or with values,
`{{ _("{n} answers imported.", n=count) }}`. The English text is the key; `console_strings.py` holds its
French and Japanese, and a test checks that every `_()` string of every template has both, so a new
string cannot ship untranslated. What employees or pages wrote (questions, answers, titles) is shown as
it is, never translated.

The language: `?lang=` on any console page (kept in a cookie), else the `KATE_CONSOLE_LANGUAGE` setting,
else the browser's Accept-Language, else English.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from .console_strings import STRINGS

LANGUAGES = ("en", "fr", "ja")
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "ja": "日本語"}
COOKIE = "kate_console_lang"


def from_accept_language(header: str) -> str | None:
    """The first of Kate's console languages in an Accept-Language header, by the header's weights."""
    ranked = []
    for i, part in enumerate(header.split(",")[:20]):
        code, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        ranked.append((-weight, i, code.strip().lower().split("-")[0]))
    return next((code for _, _, code in sorted(ranked) if code in LANGUAGES), None)


def console_language(request: Request, setting: str = "") -> str:
    asked = request.query_params.get("lang", "")
    if asked in LANGUAGES:
        return asked
    kept = request.cookies.get(COOKIE, "")
    if kept in LANGUAGES:
        return kept
    if setting in LANGUAGES:
        return setting
    return from_accept_language(request.headers.get("accept-language", "")) or "en"


def translator(language: str) -> Callable[..., str]:
    """`_` for templates: the text in `language` (English when there is no translation), with values."""
    table = STRINGS.get(language, {})

    def translate(text: str, **values: object) -> str:
        chosen = table.get(text, text) if language != "en" else text
        return chosen.format(**values) if values else chosen

    return translate
