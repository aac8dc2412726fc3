"""The company's scripted HR answers: one text per intent (and entity variant) and language, in Redis.

Rasa recognises the intent ("how many days of leave do I get?" is `leave_policy`); what Kate then says
is HR content, not bot configuration, so it lives here rather than in bot/domain.yml: HR edits it in
the admin console and the next employee gets the new text, with no retraining. An intent the company
has written no answer for goes to the intranet reader instead (actions/actions.py), so a fresh install
answers from the company's own pages, never from another company's text.

The demo company's answers (`demo_site/hr-content.yml`, with its contacts) are demo data: `kate up` loads them
while the sources point at the demo intranet (`seed_demo`), and removes the ones HR never edited when
they no longer do (`drop_demo`).

One Redis hash holds every answer (field `intent|variant|language`, value JSON): a few hundred entries
at most, read whole by the console and one field at a time by the action server.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis
import yaml

from .store import DEFAULT_PREFIX, guarded, json_record

DEMO_CONTENT = Path(__file__).parent / "demo_site" / "hr-content.yml"  # also holds the demo's contacts
DEMO_AUTHOR = "demo"  # `by` of an answer or contact loaded from the demo file and never edited since
ANSWER_FIELDS = ("intent", "language", "text", "variant", "by", "updated_at")

# The intents whose rule runs action_scripted_answer (bot/data/rules.yml; a test keeps the two equal).
HR_INTENTS = (
    "leave_policy", "leave_balance", "public_holidays", "payroll_date", "remote_work", "expenses",
    "offices", "working_hours", "benefits", "contact_hr", "onboarding", "sick_leave", "training",
    "parental_leave",
)  # fmt: skip
# The order in which another language's answer stands in for a missing one.
FALLBACK_LANGUAGES = ("en", "fr", "ja", "de", "es")
MAX_TEXT = 4000
MAX_ANSWERS = 2000  # the whole hash: intents x variants x languages, far above any real company's
_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$")


class ScriptedError(ValueError):
    """An answer that cannot be stored as given (the message says which field)."""


@dataclass
class ScriptedAnswer:
    intent: str
    language: str
    text: str
    variant: str = ""  # an entity value the message names (a city): this answer beats the intent's own
    by: str = ""  # who wrote it last: an admin's user name, or "demo"
    updated_at: float = 0.0

    @property
    def field(self) -> str:
        return f"{self.intent}|{self.variant}|{self.language}"

    @property
    def key(self) -> str:
        """`intent` or `intent/variant`, as the demo file and the export name it."""
        return f"{self.intent}/{self.variant}" if self.variant else self.intent

    def validated(self) -> ScriptedAnswer:
        self.intent = self.intent.strip().lower()
        self.variant = normal_variant(self.variant)
        self.language = self.language.strip().lower()
        self.text = self.text.strip()
        if not _NAME.match(self.intent):
            raise ScriptedError(f"intent must be a Rasa intent name (a-z, 0-9, _), got {self.intent[:80]!r}")
        if self.variant and not _NAME.match(self.variant):
            raise ScriptedError(f"variant must be a word (a-z, 0-9, _), got {self.variant[:80]!r}")
        if not _LANGUAGE.match(self.language):
            raise ScriptedError(
                f"language must be a language code such as en, fr or ja, got {self.language[:20]!r}"
            )
        if not self.text:
            raise ScriptedError("the answer is empty (remove it instead, and Kate reads the intranet)")
        if len(self.text) > MAX_TEXT:
            raise ScriptedError(
                f"the answer is too long ({len(self.text):,} characters, at most {MAX_TEXT:,})"
            )
        return self


def valid_intent(name: str) -> bool:
    return bool(_NAME.match(name))


def normal_variant(value: str | None) -> str:
    """An entity value as a variant name: "Lyon" and " lyon " are the same office."""
    return re.sub(r"[\s-]+", "_", (value or "").strip().lower())


def split_key(key: str) -> tuple[str, str]:
    intent, _, variant = key.partition("/")
    return intent, variant


class ScriptedAnswers:
    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = client
        self.key = f"{prefix}scripted"

    # -- reading --------------------------------------------------------------------------------------------
    def get(self, intent: str, language: str, variant: str = "") -> ScriptedAnswer | None:
        field = ScriptedAnswer(intent, language, "", normal_variant(variant)).field
        with guarded(self.r):
            raw = self.r.hget(self.key, field)
        return _answer(raw)

    def find(self, intent: str, language: str, variant: str = "") -> ScriptedAnswer | None:
        """The answer for an employee: the variant's in their language, the intent's in their language,
        then either in another language (HR's own words beat a guess from the pages). None: the company
        has no answer for this intent, and the intranet reader takes the question."""
        variant = normal_variant(variant)
        languages = [language, *(x for x in FALLBACK_LANGUAGES if x != language)]
        fields = [
            ScriptedAnswer(intent, lang, "", v).field
            for lang_group in ([language], languages[1:])
            for v in ([variant] if variant else []) + [""]
            for lang in lang_group
        ]
        with guarded(self.r):
            found = self.r.hmget(self.key, fields)
        for raw in found:
            answer = _answer(raw)
            if answer is not None:
                return answer
        # a language outside the fallback list (HR wrote only in German, say)
        return next((a for a in self.all() if a.intent == intent and a.variant in ("", variant)), None)

    def all(self) -> list[ScriptedAnswer]:
        """Every answer, sorted by intent, variant and language."""
        with guarded(self.r):
            raw = self.r.hgetall(self.key)
        answers = [a for a in map(_answer, raw.values()) if a is not None]
        return sorted(answers, key=lambda a: (a.intent, a.variant, a.language))

    def count(self) -> int:
        with guarded(self.r):
            return int(self.r.hlen(self.key))

    # -- writing --------------------------------------------------------------------------------------------
    def put(self, answer: ScriptedAnswer) -> ScriptedAnswer:
        answer = answer.validated()
        answer.updated_at = answer.updated_at or time.time()
        with guarded(self.r):
            if not self.r.hexists(self.key, answer.field) and self.r.hlen(self.key) >= MAX_ANSWERS:
                raise ScriptedError(f"Kate keeps at most {MAX_ANSWERS:,} scripted answers")
            self.r.hset(self.key, answer.field, json.dumps(asdict(answer), ensure_ascii=False))
        return answer

    def remove(self, intent: str, language: str, variant: str = "") -> bool:
        field = ScriptedAnswer(intent, language, "", normal_variant(variant)).field
        with guarded(self.r):
            return bool(self.r.hdel(self.key, field))

    # -- the demo company's answers, export and import ------------------------------------------------------
    def seed_demo(self, path: Path = DEMO_CONTENT) -> int:
        """Load the demo company's answers that are not there yet (an admin's edits are kept)."""
        added = 0
        for answer in read_answers(path.read_text(encoding="utf-8"), by=DEMO_AUTHOR):
            with guarded(self.r):
                added += int(
                    self.r.hsetnx(self.key, answer.field, json.dumps(asdict(answer), ensure_ascii=False))
                )
        return added

    def drop_demo(self) -> int:
        """Remove the demo answers no admin has edited: the sources no longer point at the demo intranet."""
        stale = [a.field for a in self.all() if a.by == DEMO_AUTHOR]
        if not stale:
            return 0
        with guarded(self.r):
            return int(self.r.hdel(self.key, *stale))

    def export_yaml(self) -> str:
        """Every answer in the demo file's format, which `import_yaml` reads back."""
        grouped: dict[str, dict[str, str]] = {}
        for a in self.all():
            grouped.setdefault(a.key, {})[a.language] = a.text
        return yaml.safe_dump({"answers": grouped}, allow_unicode=True, sort_keys=False, width=110)

    def import_yaml(self, text: str, by: str) -> int:
        """Add or replace the answers of an exported file; nothing is written if any entry is refused."""
        answers = read_answers(text, by=by)
        stamp = time.time()
        with guarded(self.r):
            pipe = self.r.pipeline(transaction=True)
            for a in answers:
                a.updated_at = stamp
                pipe.hset(self.key, a.field, json.dumps(asdict(a), ensure_ascii=False))
            pipe.execute()
        return len(answers)


def read_answers(text: str, by: str) -> list[ScriptedAnswer]:
    """Answers from the `answers: {intent[/variant]: {language: text}}` format, every one validated."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ScriptedError(f"not a readable YAML file: {exc}") from None
    table = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ScriptedError("the file has no `answers:` mapping of intent to {language: text}")
    answers: list[ScriptedAnswer] = []
    for key, texts in list(table.items())[:MAX_ANSWERS]:
        if not isinstance(texts, dict):
            raise ScriptedError(f"{key}: expected a mapping of language to text")
        intent, variant = split_key(str(key))
        for language, answer_text in texts.items():
            try:
                answers.append(
                    ScriptedAnswer(intent, str(language), str(answer_text), variant, by).validated()
                )
            except ScriptedError as exc:
                raise ScriptedError(f"{key} ({language}): {exc}") from None
    return answers


def _answer(raw: str | None) -> ScriptedAnswer | None:
    return json_record(raw, lambda **data: ScriptedAnswer(**{k: data[k] for k in ANSWER_FIELDS}))
