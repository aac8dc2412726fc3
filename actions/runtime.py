"""The action server's shared state: loaded once, used by every action call.

rasa-sdk instantiates each Action class itself and calls `run` with only the tracker, so the models,
Redis stores and settings reach the actions through this module. `kate actions` (actions/server.py)
fills it before the server accepts a request; tests fill it with their own Redis and demo site.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.settings import Settings
from knowledge.activity import ActivityLog
from knowledge.conflicts import ConflictLog
from knowledge.escalation import Contact, Escalations, contact_from_setting
from knowledge.feedback import FeedbackLog
from knowledge.scripted import ScriptedAnswers
from knowledge.unanswered import UnansweredLog

from .answering import KnowledgeAnswerer
from .records import AnswerBook

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    answerer: KnowledgeAnswerer
    answers: AnswerBook
    feedback: FeedbackLog
    unanswered: UnansweredLog
    scripted: ScriptedAnswers
    escalations: Escalations
    max_question_chars: int = 1000
    default_contact: Contact | None = None  # KATE_HR_CONTACT, when the console lists none
    activity: ActivityLog | None = None  # one entry per question, for the console's analytics
    conflicts: ConflictLog | None = None  # answers from two pages that disagreed, for the console
    audience_secret: str = ""  # KATE_AUDIENCE_SECRET: checks the employee tokens (knowledge/audience.py)
    followup_window: float = 300.0  # KATE_FOLLOWUP_WINDOW


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
    from core.wiring import sync_demo_answers

    answerer = KnowledgeAnswerer.load(settings)
    changed = sync_demo_answers(settings, answerer.knowledge)
    if changed:
        logger.warning("%s", changed)
    client = answerer.knowledge.cache.r
    runtime = Runtime(
        answerer=answerer,
        answers=AnswerBook(client, settings.redis_prefix, settings.answer_ttl),
        feedback=FeedbackLog(client, settings.redis_prefix),
        unanswered=UnansweredLog(client, settings.redis_prefix),
        scripted=ScriptedAnswers(client, settings.redis_prefix),
        escalations=Escalations(client, settings.redis_prefix, settings.answer_ttl),
        default_contact=contact_from_setting(settings.hr_contact),
        activity=ActivityLog(client, settings.redis_prefix),
        conflicts=ConflictLog(client, settings.redis_prefix),
        audience_secret=settings.audience_secret,
        followup_window=settings.followup_window,
        max_question_chars=settings.max_question_chars,
    )
    install(runtime)
    return runtime
