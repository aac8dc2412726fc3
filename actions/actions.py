"""Kate's custom actions: scripted answers with vote buttons, intranet answers, and votes.

- `action_scripted_answer`: the domain's `utter_<intent>` response (HR writes those), with 👍/👎.
- `action_answer_from_knowledge`: when NLU is unsure (`nlu_fallback`), the best answer span across
  every intranet page, its sentence and its source linked, with 👍/👎.
- `action_log_feedback`: stores the vote in the feedback log, and only then thanks the employee; a 👎
  on a scripted answer asks the intranet the same question, a 👎 on an intranet answer offers the next
  best answer from another page, or says there is none and links the most relevant pages.

Every answer is kept as an `AnswerRecord` (records.py) whose id the buttons carry, so a vote always
rates the answer it was shown under, even after later questions in the same conversation.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from knowledge.feedback import FeedbackEntry
from knowledge.store import StoreUnavailable
from knowledge.unanswered import Unanswered

from . import runtime
from .answering import Outcome
from .messages import inert, language_of, link_list, markdown_link, say
from .records import AnswerRecord, Candidate

logger = logging.getLogger(__name__)

SCRIPTED_MODEL = "rasa-nlu"


def vote_buttons(answer_id: str) -> list[dict[str, str]]:
    def payload(vote: str) -> str:
        return "/feedback" + json.dumps({"vote": vote, "answer_id": answer_id}, separators=(",", ":"))

    return [{"title": "👍", "payload": payload("up")}, {"title": "👎", "payload": payload("down")}]


def message_language(tracker: Tracker) -> str:
    """The language of the latest message (set by the LanguageDetector NLU component)."""
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "language":
            return language_of(entity.get("value"))
    return language_of(tracker.get_slot("language"))


def entity(tracker: Tracker, name: str) -> str | None:
    value = next(tracker.get_latest_entity_values(name), None)
    return None if value is None else str(value)


def refusal(text: str, language: str, limit: int) -> str | None:
    """The reply to a message Kate will not read as a question, or None when it is fine."""
    if not text.strip():
        return say("empty", language)
    if len(text) > limit:
        return say("too_long", language, length=f"{len(text):,}", limit=f"{limit:,}")
    return None


def readable_question(
    dispatcher: CollectingDispatcher, tracker: Tracker, limit: int
) -> tuple[str, str] | None:
    """The latest message and its language, or None after telling the employee why it cannot be read."""
    text = tracker.latest_message.get("text") or ""
    language = message_language(tracker)
    refused = refusal(text, language, limit)
    if refused:
        dispatcher.utter_message(text=refused)
        return None
    return text, language


def format_candidate(candidate: Candidate, language: str, *, another: bool = False) -> str:
    """The answer, its sentence quoted (unless it is the answer itself), and the source linked."""
    parts = [say("another", language)] if another else []
    parts.append(inert(candidate.answer))
    sentence = " ".join(candidate.sentence.split())
    if sentence and sentence != candidate.answer.strip():
        parts.append("> " + inert(sentence))
    parts.append(say("source", language, link=markdown_link(candidate.title, candidate.url)))
    return "\n\n".join(parts)


def no_answer_text(key: str, language: str, pages: list[tuple[str, str]]) -> str:
    text = say(key, language)
    return f"{text} {say('pages_help', language)}\n{link_list(pages)}" if pages else text


def note_unanswered(conversation_id: str, question: str, language: str, reason: str) -> None:
    """Keep a question the intranet could not answer for the admin console's knowledge gaps; an
    unreachable Redis must not cost the employee their reply."""
    try:
        runtime.current().unanswered.add(Unanswered(question, reason, language, conversation_id))
    except StoreUnavailable as exc:
        logger.error("unanswered question not kept: %s", exc)


def offer(dispatcher: CollectingDispatcher, record: AnswerRecord, **message: str) -> list[EventType]:
    """Keep the answer record and show the answer (`text=` or `response=`) with its vote buttons; when
    Redis cannot keep it, the answer still goes out, without buttons."""
    try:
        runtime.current().answers.put(record)
    except StoreUnavailable as exc:
        logger.error("answer not kept for voting: %s", exc)
        dispatcher.utter_message(**message)
        return []
    dispatcher.utter_message(**message, buttons=vote_buttons(record.id))
    return [SlotSet("last_answer_id", record.id)]


def show_candidate(
    dispatcher: CollectingDispatcher, record: AnswerRecord, candidate: Candidate, *, another: bool = False
) -> list[EventType]:
    """Show an intranet answer, its record filled from the candidate."""
    record.answer, record.source_url, record.source_title = candidate.answer, candidate.url, candidate.title
    # The feedback log keeps the calibrated confidence (like Rasa's intent confidence for scripted
    # answers, a probability): raw reader scores change scale with every retraining.
    record.score = candidate.confidence if candidate.confidence is not None else candidate.score
    record.shown_urls = [*record.shown_urls, candidate.url]
    return offer(dispatcher, record, text=format_candidate(candidate, record.language, another=another))


def show_outcome(
    dispatcher: CollectingDispatcher, tracker: Tracker, question: str, language: str, outcome: Outcome
) -> list[EventType]:
    if outcome.status in ("sources_down", "too_slow", "reader_down"):
        dispatcher.utter_message(text=say(outcome.status, language))
        return []
    if outcome.best is None:
        note_unanswered(tracker.sender_id, question, language, "unsure")
        dispatcher.utter_message(text=no_answer_text("unsure", language, outcome.best_pages))
        return []
    record = AnswerRecord(
        conversation_id=tracker.sender_id,
        kind="qa",
        question=question,
        language=language,
        model=runtime.current().answerer.model_name,
        alternatives=outcome.candidates[1:],
        best_pages=outcome.best_pages,
    )
    return show_candidate(dispatcher, record, outcome.best)


def scripted_response(intent: str, tracker: Tracker, domain: dict[str, Any]) -> str:
    """`utter_<intent>`, or its variant for the entity the message names when the domain has one
    (`utter_offices_lyon` for "where is the Lyon office?")."""
    response = f"utter_{intent}"
    responses = domain.get("responses") or {}
    for entity_name in ("city",):
        value = entity(tracker, entity_name)
        specific = f"{response}_{value.lower()}" if value else ""
        if specific in responses:
            return specific
    return response


class KateAction:
    """A mixin for actions that always reply: whatever goes wrong inside `act` (a reader exception, a
    parser error, a bug), the employee is told so in their language, and the traceback goes to the log.
    Not an `Action` itself: rasa_sdk registers every subclass of `Action`, and this one has no name."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        try:
            return await self.act(dispatcher, tracker, domain)
        except Exception:
            try:
                text, language = str(tracker.latest_message.get("text") or ""), message_language(tracker)
            except Exception:  # the tracker itself is what is broken
                text, language = "", "en"
            logger.exception("%s failed on %r", self.name(), text[:80])
            dispatcher.utter_message(text=say("internal_error", language))
            return []

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        raise NotImplementedError


class ActionScriptedAnswer(KateAction, Action):
    def name(self) -> str:
        return "action_scripted_answer"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rt = runtime.current()
        asked = readable_question(dispatcher, tracker, rt.max_question_chars)
        if asked is None:
            return []
        text, language = asked
        intent = tracker.latest_message.get("intent") or {}
        response = scripted_response(intent.get("name") or "", tracker, domain)
        record = AnswerRecord(
            conversation_id=tracker.sender_id,
            kind="scripted",
            question=text,
            language=language,
            answer=response,
            score=intent.get("confidence"),
            model=SCRIPTED_MODEL,
        )
        return offer(dispatcher, record, response=response)


class ActionAnswerFromKnowledge(KateAction, Action):
    def name(self) -> str:
        return "action_answer_from_knowledge"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rt = runtime.current()
        asked = readable_question(dispatcher, tracker, rt.max_question_chars)
        if asked is None:
            return []
        question, language = asked
        outcome = await rt.answerer.answer(question)
        return show_outcome(dispatcher, tracker, question, language, outcome)


class ActionLogFeedback(KateAction, Action):
    def name(self) -> str:
        return "action_log_feedback"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rt = runtime.current()
        vote = entity(tracker, "vote")
        answer_id = entity(tracker, "answer_id") or tracker.get_slot("last_answer_id") or ""
        language = message_language(tracker)
        try:
            record = rt.answers.get(answer_id)
        except StoreUnavailable as exc:
            logger.error("vote not recorded: %s", exc)
            dispatcher.utter_message(text=say("vote_lost", language))
            return []
        if record is None or vote not in ("up", "down"):
            dispatcher.utter_message(text=say("nothing_to_rate", language))
            return []
        language = record.language
        try:
            if rt.answers.new_vote(record.id, vote):
                rt.feedback.add(
                    FeedbackEntry(
                        conversation_id=tracker.sender_id,
                        vote=vote,
                        kind=record.kind,
                        question=record.question,
                        answer=record.answer,
                        source_url=record.source_url,
                        source_title=record.source_title,
                        score=record.score,
                        language=record.language,
                        model=record.model,
                    )
                )
        except StoreUnavailable as exc:
            logger.error("vote not recorded: %s", exc)
            dispatcher.utter_message(text=say("vote_lost", language))
            return []
        if vote == "up":
            dispatcher.utter_message(text=say("thanks_up", language))
            return []
        dispatcher.utter_message(text=say("thanks_down", language))
        if record.kind == "scripted":
            outcome = await rt.answerer.answer(record.question)
            return show_outcome(dispatcher, tracker, record.question, language, outcome)
        return self.next_best(dispatcher, record)

    @staticmethod
    def next_best(dispatcher: CollectingDispatcher, rated: AnswerRecord) -> list[EventType]:
        """The best remaining candidate from a page not offered yet, or the pages to read."""
        remaining = [c for c in rated.alternatives if c.url not in rated.shown_urls]
        if not remaining:
            note_unanswered(rated.conversation_id, rated.question, rated.language, "no_other")
            dispatcher.utter_message(text=no_answer_text("no_other", rated.language, rated.best_pages))
            return []
        record = AnswerRecord(
            conversation_id=rated.conversation_id,
            kind="qa",
            question=rated.question,
            language=rated.language,
            model=rated.model,
            alternatives=remaining[1:],
            best_pages=rated.best_pages,
            shown_urls=rated.shown_urls,
        )
        return show_candidate(dispatcher, record, remaining[0], another=True)
