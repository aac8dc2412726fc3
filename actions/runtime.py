"""The action server's shared state: loaded once, used by every action call.

rasa-sdk instantiates each Action class itself and calls `run` with only the tracker, so the models,
Redis stores and settings reach the actions through this module. `kate actions` (actions/server.py)
fills it before the server accepts a request; tests fill it with their own Redis and demo site.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings
from knowledge.feedback import FeedbackLog
from knowledge.unanswered import UnansweredLog

from .answering import KnowledgeAnswerer
from .records import AnswerBook


@dataclass
class Runtime:
    answerer: KnowledgeAnswerer
    answers: AnswerBook
    feedback: FeedbackLog
    unanswered: UnansweredLog
    max_question_chars: int = 1000


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the action server's runtime is not loaded (start it with `kate actions`)")
    return _current


def load(settings: Settings) -> Runtime:
    """Everything from Kate's settings (models warmed up), installed as the current runtime."""
    answerer = KnowledgeAnswerer.load(settings)
    client = answerer.knowledge.cache.r
    runtime = Runtime(
        answerer=answerer,
        answers=AnswerBook(client, settings.redis_prefix, settings.answer_ttl),
        feedback=FeedbackLog(client, settings.redis_prefix),
        unanswered=UnansweredLog(client, settings.redis_prefix),
        max_question_chars=settings.max_question_chars,
    )
    install(runtime)
    return runtime
