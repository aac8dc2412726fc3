"""Kate's custom actions: scripted answers with vote buttons, intranet answers, and votes.

- `action_scripted_answer`: the company's answer for the intent (knowledge/scripted.py: HR writes and
  edits it in the admin console), with 👍/👎; an intent the company wrote no answer for is read from
  the intranet, as an off-script question is.
- `action_answer_from_knowledge`: when NLU is unsure (`nlu_fallback`), the best answer span across
  every intranet page, its sentence and its source linked, with 👍/👎; for a message NLU took as off
  topic (`out_of_scope`) too, and when the intranet has no answer, Kate says what it is for.
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

from knowledge.activity import Asked
from knowledge.audience import Employee
from knowledge.conflicts import Conflict
from knowledge.escalation import Contact, Offer
from knowledge.feedback import FeedbackEntry
from knowledge.scripted import ScriptedAnswer
from knowledge.store import StoreUnavailable
from knowledge.unanswered import Unanswered

from . import runtime
from .answering import Outcome
from .context import employee_of, in_context
from .messages import bold, inert, language_name, language_of, link_list, markdown_link, say
from .records import AnswerRecord, Candidate
from .verified_match import Match

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


def candidate_body(candidate: Candidate, language: str) -> list[str]:
    """The answer as its page shapes it: a whole list (numbered steps), a table cell with its row and
    column, a FAQ answer whole with the span in bold, or the span with its sentence quoted."""
    if candidate.kind in ("list", "steps") and candidate.items:
        lines = [f"**{inert(candidate.heading)}**"] if candidate.heading else []
        for i, item in enumerate(candidate.items, 1):
            lines.append(f"{i}. {inert(item)}" if candidate.kind == "steps" else f"- {inert(item)}")
        if candidate.more:
            lines.append(say("more_items", language, count=candidate.more))
        return ["\n".join(lines)]
    parts = [inert(candidate.answer)]
    sentence = candidate.sentence.strip()
    if candidate.kind == "faq" and sentence:
        quoted = bold(inert(sentence), inert(candidate.answer.strip()))
        lines = [f"**{inert(candidate.heading)}**"] if candidate.heading else []
        parts.append("\n".join(lines + ["> " + line for line in quoted.split("\n") if line.strip()]))
    else:
        sentence = " ".join(sentence.split())
        if sentence and sentence != candidate.answer.strip():
            parts.append("> " + inert(sentence))
    if candidate.outdated:
        parts.append(say("outdated", language))
    return parts


def format_candidate(
    candidate: Candidate, language: str, *, another: bool = False, conflict: Candidate | None = None
) -> str:
    """The answer (shaped), the source linked; and, when another page disagrees, that page's answer and
    link too, for the employee to check."""
    parts = [say("another", language)] if another else []
    parts.extend(candidate_body(candidate, language))
    parts.append(say("source", language, link=markdown_link(candidate.title, candidate.url)))
    if conflict is not None:
        parts.append("⚠ " + say("conflict", language))
        parts.extend(candidate_body(conflict, language))
        parts.append(say("source", language, link=markdown_link(conflict.title, conflict.url)))
    return "\n\n".join(parts)


def no_answer_text(key: str, language: str, pages: list[tuple[str, str]]) -> str:
    text = say(key, language)
    return f"{text} {say('pages_help', language)}\n{link_list(pages)}" if pages else text


def note_unanswered(conversation_id: str, question: str, language: str, reason: str) -> None:
    """Keep a question the intranet could not answer for the admin console's knowledge gaps; an
    unreachable Redis must not cost the employee their reply."""
    rt = runtime.current()
    try:
        rt.unanswered.add(Unanswered(question, reason, language, conversation_id))
    except StoreUnavailable as exc:
        logger.error("unanswered question not kept: %s", exc)
    rt.answerer.remember_question(question)


def note_asked(outcome: str, language: str, topic: str = "", url: str = "") -> None:
    """One entry of the analytics' question log; an unreachable Redis must not cost the reply."""
    log = runtime.current().activity
    if log is None:
        return
    try:
        log.add(Asked(outcome, language, topic, url))
    except StoreUnavailable as exc:
        logger.error("question not counted: %s", exc)


def note_outcome(outcome: Outcome, language: str, topic: str) -> None:
    if outcome.best is not None:
        note_asked("qa", language, topic, outcome.best.url)
    else:
        note_asked("unsure" if outcome.status == "unsure" else "down", language, topic)


def offer(
    dispatcher: CollectingDispatcher,
    record: AnswerRecord,
    extra: list[dict[str, str]] | None = None,
    **message: str,
) -> list[EventType]:
    """Keep the answer record and show the answer (`text=`) with its vote buttons (and `extra` ones);
    when Redis cannot keep it, the answer still goes out, without vote buttons."""
    try:
        runtime.current().answers.put(record)
    except StoreUnavailable as exc:
        logger.error("answer not kept for voting: %s", exc)
        dispatcher.utter_message(**message, buttons=extra or [])
        return []
    dispatcher.utter_message(**message, buttons=vote_buttons(record.id) + (extra or []))
    return [SlotSet("last_answer_id", record.id)]


def hr_button(
    conversation_id: str, question: str, language: str, topic: str, reason: str
) -> list[dict[str, str]]:
    """The "Contact HR" button for a question Kate could not settle (the offer is kept and logged);
    none when Redis cannot keep it: the employee still gets the rest of the reply."""
    try:
        kept = runtime.current().escalations.offer(Offer(question, language, topic, reason, conversation_id))
    except StoreUnavailable as exc:
        logger.error("escalation offer not kept: %s", exc)
        return []
    payload = "/contact_hr" + json.dumps({"offer_id": kept.id}, separators=(",", ":"))
    return [{"title": say("contact_button", language), "payload": payload}]


def no_answer_reply(
    dispatcher: CollectingDispatcher, key: str, record_like: AnswerRecord, pages: list[tuple[str, str]]
) -> None:
    """Kate has no (other) answer: say so, link the most relevant pages, and offer to reach HR."""
    language = record_like.language
    note_unanswered(record_like.conversation_id, record_like.question, language, key)
    text = f"{no_answer_text(key, language, pages)}\n\n{say('offer_hr', language)}"
    button = hr_button(record_like.conversation_id, record_like.question, language, record_like.topic, key)
    dispatcher.utter_message(text=text, buttons=button)


def show_candidate(
    dispatcher: CollectingDispatcher,
    record: AnswerRecord,
    candidate: Candidate,
    *,
    another: bool = False,
    extra: list[dict[str, str]] | None = None,
    conflict: Candidate | None = None,
) -> list[EventType]:
    """Show an intranet answer (and the one that disagrees with it), its record filled from the candidate."""
    record.answer, record.source_url, record.source_title = candidate.answer, candidate.url, candidate.title
    # The feedback log keeps the calibrated confidence (like Rasa's intent confidence for scripted
    # answers, a probability): raw reader scores change scale with every retraining.
    record.score = candidate.confidence if candidate.confidence is not None else candidate.score
    record.shown_urls = [*record.shown_urls, candidate.url] + ([conflict.url] if conflict else [])
    text = format_candidate(candidate, record.language, another=another, conflict=conflict)
    return offer(dispatcher, record, extra, text=text)


def show_outcome(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    question: str,
    language: str,
    outcome: Outcome,
    *,
    topic: str = "",
    downvotes: int = 0,
) -> list[EventType]:
    record = AnswerRecord(
        conversation_id=tracker.sender_id,
        kind="qa",
        question=question,
        language=language,
        model=runtime.current().answerer.model_name,
        alternatives=outcome.candidates[1:],
        best_pages=outcome.best_pages,
        topic=topic,
        downvotes=downvotes,
        read_all=outcome.read_all,
    )
    if outcome.status in ("sources_down", "too_slow", "reader_down"):
        dispatcher.utter_message(text=say(outcome.status, language))
        return []
    if outcome.best is None:
        no_answer_reply(dispatcher, "unsure", record, outcome.best_pages)
        return []
    if outcome.conflict is not None:
        note_conflict(question, language, outcome.best, outcome.conflict)
    return show_candidate(dispatcher, record, outcome.best, conflict=outcome.conflict)


def note_conflict(question: str, language: str, best: Candidate, other: Candidate) -> None:
    """Log two pages that disagreed, for the console; an unreachable Redis must not cost the reply."""
    log = runtime.current().conflicts
    if log is None:
        return
    try:
        log.add(Conflict(question, language, best.url, best.answer, other.url, other.answer))
    except StoreUnavailable as exc:
        logger.error("conflict not logged: %s", exc)


def format_verified(match: Match, language: str) -> str:
    """The answer HR verified, marked as such, its source linked."""
    v = match.answer
    parts = [inert(v.answer), "✔ " + say("verified", language)]
    if v.source_url:
        parts.append(
            say("source", language, link=markdown_link(v.source_title or v.source_url, v.source_url))
        )
    return "\n\n".join(parts)


async def find_verified(question: str, employee: Employee | None) -> tuple[Match | None, Outcome | None]:
    """The answer HR verified for this question or one close to it, and the pipeline's outcome when it
    had to read to decide (so the caller does not read twice). Never one from a page the employee may not
    read."""
    rt = runtime.current()
    matcher = rt.answerer.verified
    knowledge = rt.answerer.knowledge
    near = await rt.answerer.near_verified(question)
    try:
        near = [n for n in near if knowledge.readable(n.answer.source_url, employee)]
    except StoreUnavailable:  # who may read the page is unknown: no verified answer, the usual one
        near = []
    if matcher is None or not near:
        return None, None
    match = matcher.choose(near, None)
    if match is not None or not matcher.needs_reading(near):
        return match, None
    outcome = await rt.answerer.answer(question, employee)
    return matcher.choose(near, outcome.top), outcome


def show_verified(
    dispatcher: CollectingDispatcher, tracker: Tracker, match: Match, question: str, language: str, topic: str
) -> list[EventType]:
    record = AnswerRecord(
        conversation_id=tracker.sender_id,
        kind="verified",
        question=question,
        language=language,
        answer=match.answer.answer,
        source_url=match.answer.source_url,
        source_title=match.answer.source_title,
        score=round(match.similarity, 4),
        model=f"verified:{match.answer.id}",
        topic=topic,
    )
    return offer(dispatcher, record, text=format_verified(match, language))


def scripted_reply(answer: ScriptedAnswer, language: str) -> str:
    """HR's text, introduced when it is in another language than the employee's."""
    if answer.language == language:
        return answer.text
    intro = say("other_language", language, name=language_name(answer.language, language))
    return f"{intro}\n\n{answer.text}"


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
        found_topic = intent.get("name") or ""
        employee = employee_of(tracker, rt.audience_secret)
        verified, _ = await find_verified(text, employee)
        if verified is not None:  # HR's verified answer to this question beats the intent's
            note_asked("verified", language, found_topic, verified.answer.source_url)
            return show_verified(dispatcher, tracker, verified, text, language, found_topic)
        try:
            found = rt.scripted.find(found_topic, language, entity(tracker, "city") or "")
        except StoreUnavailable as exc:
            logger.error("scripted answers unreadable: %s", exc)
            dispatcher.utter_message(text=say("sources_down", language))
            return []
        if found is None:  # the company wrote nothing for this intent: its intranet may say
            question = in_context(tracker, text, rt.followup_window)
            outcome = await rt.answerer.answer(question, employee)
            note_outcome(outcome, language, found_topic)
            return show_outcome(dispatcher, tracker, question, language, outcome, topic=found_topic)
        note_asked("scripted", language, found_topic)
        record = AnswerRecord(
            conversation_id=tracker.sender_id,
            kind="scripted",
            question=text,
            language=language,
            answer=found.text,
            source_title=found.key,
            score=intent.get("confidence"),
            model=SCRIPTED_MODEL,
            topic=found_topic,
        )
        return offer(dispatcher, record, text=scripted_reply(found, language))


def off_topic(tracker: Tracker) -> bool:
    """NLU took the message for one not about work (`out_of_scope`). It still reaches the intranet first:
    a company's pages hold more than HR (the choir's rehearsal room, the summer party), and the NLU only
    learnt what "off topic" looks like from general-knowledge questions."""
    return (tracker.latest_message.get("intent") or {}).get("name") == "out_of_scope"


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
        text, language = asked
        question = in_context(tracker, text, rt.followup_window)
        employee = employee_of(tracker, rt.audience_secret)
        verified, outcome = await find_verified(question, employee)
        if verified is not None:
            note_asked("verified", language, "", verified.answer.source_url)
            return show_verified(dispatcher, tracker, verified, question, language, "")
        outcome = outcome or await rt.answerer.answer(question, employee)
        if off_topic(tracker) and outcome.best is None:
            # not about work, and nothing on the intranet says otherwise: Kate says what it is for
            dispatcher.utter_message(text=say("off_topic", language))
            return []
        note_outcome(outcome, language, "")
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
        rt.answerer.remember_question(record.question)  # a knowledge gap: grouped by meaning in the console
        dispatcher.utter_message(text=say("thanks_down", language))
        if record.kind in ("scripted", "verified"):  # HR's words were wrong here: read the intranet
            outcome = await rt.answerer.answer(record.question, employee_of(tracker, rt.audience_secret))
            return show_outcome(
                dispatcher, tracker, record.question, language, outcome, topic=record.topic, downvotes=1
            )
        if not record.read_all:  # its answer came from the best-ranked passages alone: read the others
            await self.read_the_rest(record, employee_of(tracker, rt.audience_secret))
        return self.next_best(dispatcher, record)

    @staticmethod
    async def read_the_rest(record: AnswerRecord, employee: Employee | None) -> None:
        """The ranked passages the first reading skipped, read for an answer that came from the
        best-ranked ones alone: the employee said it was wrong, so their candidates join the ones the
        first reading found, most confident first. When reading fails or is too slow, the record's own
        candidates are offered."""
        outcome = await runtime.current().answerer.answer(record.question, employee, rest_only=True)
        if outcome.status not in ("answered", "unsure"):
            return
        both = [*record.alternatives, *outcome.candidates]
        record.alternatives = sorted(both, key=lambda c: 1.0 if c.confidence is None else -c.confidence)
        known = {url for _, url in record.best_pages}
        record.best_pages = [*record.best_pages, *(p for p in outcome.best_pages if p[1] not in known)]
        record.read_all = True

    @staticmethod
    def next_best(dispatcher: CollectingDispatcher, rated: AnswerRecord) -> list[EventType]:
        """The best remaining candidate from a page not offered yet, or the pages to read; from the
        second 👎 on one question, with an offer to reach HR beside it."""
        remaining = [c for c in rated.alternatives if c.url not in rated.shown_urls]
        if not remaining:
            no_answer_reply(dispatcher, "no_other", rated, rated.best_pages)
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
            topic=rated.topic,
            downvotes=rated.downvotes + 1,
        )
        extra = None
        if record.downvotes == 2:  # the second 👎 on this question: offer a person, once
            extra = hr_button(
                rated.conversation_id, rated.question, rated.language, rated.topic, "second_down"
            )
        return show_candidate(dispatcher, record, remaining[0], another=True, extra=extra)


def contact_lines(contact: Contact | None, question: str, language: str) -> list[str]:
    if contact is None:
        return [say("no_contact", language)]
    lines = [say("contact_intro", language)]
    if contact.email:
        lines.append(
            "- "
            + say("contact_mail", language, link=markdown_link(contact.email, contact.mail_link(question)))
        )
    if contact.url:
        lines.append(
            "- "
            + say("contact_ticket", language, link=markdown_link(contact.label or contact.url, contact.url))
        )
    if contact.phone:
        lines.append("- " + say("contact_phone", language, phone=inert(contact.phone)))
    return lines


class ActionContactHr(KateAction, Action):
    """An employee asks for a person: from the "Contact HR" button of an offer (which names the question
    they could not get answered) or in their own words ("how do I reach HR?"). Kate gives the contact for
    the question's topic and language, with the company's own `contact_hr` answer when it wrote one, and
    logs the request for the console."""

    def name(self) -> str:
        return "action_contact_hr"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        rt = runtime.current()
        text, language = str(tracker.latest_message.get("text") or ""), message_language(tracker)
        offer_id = entity(tracker, "offer_id") or ""
        offered = None
        try:
            offered = rt.escalations.get_offer(offer_id) if offer_id else None
            request = offered or Offer(
                text[: rt.max_question_chars], language, "contact_hr", "asked", tracker.sender_id
            )
            language = request.language
            rt.escalations.requested(request)
            contact = rt.escalations.contact_for(request.topic, language, rt.default_contact)
            written = rt.scripted.find("contact_hr", language)
        except StoreUnavailable as exc:  # the employee still gets the contact of the settings
            logger.error("escalation not logged: %s", exc)
            contact, written = rt.default_contact, None
        parts = [scripted_reply(written, language)] if written else []
        question = offered.question if offered else ""
        parts.append("\n".join(contact_lines(contact, question, language)))
        dispatcher.utter_message(text="\n\n".join(parts))
        return []
