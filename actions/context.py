"""What the conversation tells about a question: who asks (a verified token) and what it follows.

- The employee: the widget sends the token its intranet page signed (`metadata.employee_token`) with every
  message; only a token that passes `knowledge.audience.verify` counts, anything else is anonymous.
- Follow-ups: "and for part-time staff?", "et à Lyon ?", "大阪は？" make sense only with the question
  before. A short message that reads like one, within `KATE_FOLLOWUP_WINDOW` seconds of the employee's
  previous question in the same conversation, is read as that question with the follow-up after it (the
  reader and the ranker then see both the topic and the new detail). A new, complete question is read
  alone, and so is anything after the window.
"""

from __future__ import annotations

import logging
import re
import time

from rasa_sdk import Tracker

from knowledge.audience import Employee, TokenRejected, verify

logger = logging.getLogger(__name__)

MAX_EVENTS = 200  # events looked back through for the previous question
FOLLOW_UP_WORDS = 7  # a follow-up is short: at most this many words (or 14 characters without spaces)
OPENERS = re.compile(
    r"^(?:and|also|what about|how about|same for|and what about|what if|for|in|at"
    r"|et|et pour|et en|et à|et au|et aux|et les|et si|pareil pour|même chose pour|pour|à|au|en"
    r"|und|und für|und in|was ist mit|wie ist es mit|für)\b",
    re.I,
)
JA_ENDINGS = ("は？", "は?", "は", "の場合は？", "の場合は?", "の場合", "では？", "では?", "なら？", "なら?")
QUESTION_WORDS = re.compile(
    r"\b(?:what|which|who|whom|when|where|why|how|can|do|does|is|are|should|must|may"
    r"|quel|quelle|quels|quelles|qui|quand|où|pourquoi|comment|combien|est-ce|puis-je|dois-je|peut-on"
    r"|was|welche|wer|wann|wo|warum|wie)\b",
    re.I,
)


def employee_of(tracker: Tracker, secret: str) -> Employee | None:
    """The employee the latest message's signed token names, or None (anonymous)."""
    metadata = tracker.latest_message.get("metadata") or {}
    token = metadata.get("employee_token") if isinstance(metadata, dict) else None
    if not token:
        return None
    try:
        return verify(str(token), secret)
    except TokenRejected as exc:
        logger.warning("employee token ignored: %s", exc)
        return None


def is_follow_up(text: str) -> bool:
    """A short message that only makes sense after another question."""
    text = " ".join(text.split())
    words = text.split()
    if not words or len(words) > FOLLOW_UP_WORDS or (len(words) == 1 and len(text) > 14):
        return False
    if OPENERS.match(text) and not QUESTION_WORDS.search(text.split(" ", 1)[-1] if len(words) > 1 else ""):
        return True
    return text.endswith(JA_ENDINGS) and len(text) <= 14


def previous_question(tracker: Tracker, window_s: float, now: float | None = None) -> str | None:
    """The employee's last complete question before the latest message, if it was asked within
    `window_s` seconds; button payloads (votes, "/contact_hr") and earlier follow-ups are skipped."""
    events = tracker.events[-MAX_EVENTS:]
    now = now or time.time()
    users = [e for e in events if e.get("event") == "user"]
    for event in reversed(users[:-1]):  # the latest is the message being answered
        text = str(event.get("text") or "")
        if not text or text.startswith("/"):
            continue
        if now - float(event.get("timestamp") or 0) > window_s:
            return None
        if not is_follow_up(text):
            return text
    return None


def detail_of(follow_up: str) -> str:
    """What a follow-up adds: "and for part-time staff?" -> "part-time staff", "大阪は？" -> "大阪"."""
    text = " ".join(follow_up.split()).rstrip("?？!！.。 ")
    for _ in range(4):  # "and for", "et à", "what about": a few opener words at most
        m = OPENERS.match(text)
        if not m or not m.group(0):
            break
        text = text[m.end() :].lstrip(" ,")
    for ending in ("の場合は", "の場合", "では", "なら", "は"):
        if text.endswith(ending) and len(text) > len(ending):
            return text[: -len(ending)]
    return text


def _cjk(text: str) -> bool:
    return any("\u3040" <= ch <= "\u9fff" for ch in text)


def join(before: str, follow_up: str) -> str:
    """One question from a complete one and its follow-up. When the follow-up swaps one detail of the
    question (another city, "part-time" for "full-time", another subject before Japanese の), the swap
    is made, so the reader is not pulled back to the old detail; otherwise both are read together."""
    detail = detail_of(follow_up)
    if detail:
        words = before.split()
        for i, word in enumerate(words):  # full-time -> part-time
            for new in detail.split():
                if "-" in word and "-" in new and word.split("-")[-1].lower() == new.split("-")[-1].lower():
                    return " ".join([*words[:i], word.replace(word.strip("?,.!;:"), new), *words[i + 1 :]])
        if detail[:1].isupper() and not _cjk(detail):  # a proper noun: the last one of the question
            for i in range(len(words) - 1, 0, -1):
                core = words[i].strip("?,.!;:'\"")
                if core[:1].isupper():
                    return " ".join([*words[:i], words[i].replace(core, detail), *words[i + 1 :]])
        subject = re.match(r"^([^\s、。のはでにを]{1,12})(?:の|は|で)", before)
        if subject and _cjk(detail) and len(detail) <= 12:
            return detail + before[len(subject.group(1)) :]
    return f"{before} {follow_up}"


def in_context(tracker: Tracker, text: str, window_s: float) -> str:
    """The question to read: a follow-up joined to the question it follows, anything else as it is."""
    if window_s <= 0 or not is_follow_up(text):
        return text
    before = previous_question(tracker, window_s)
    return join(before, text) if before else text
