"""Rasa's Redis tracker store, keeping each conversation to its current session, bounded, for a while.

Why: the widget keeps an employee's conversation id in the browser for as long as they use Kate, so one
conversation holds every session of months of questions. Rasa 3.6's Redis store keeps them all, and on
every message it reads the whole history back, decodes it, merges it with the current session event by
event (comparing each new event with every stored one) and writes it all again: 13 ms a message for one
session of 20 questions, 265 ms after 10 such sessions and 1.5 s after 50, against 5 ms with this store
whatever the history (`kate bench tracker` on 2 AMD EPYC cores, docs/benchmarks.md). That time is spent
on Rasa's one event loop, where every other employee's message, a 👍 included, waits for it.

Rasa itself only ever reads the latest session back (`retrieve`), and Kate keeps what it needs from
past answers in its own keys (answers, votes, the feedback log), so this store writes the latest session
only, without reading anything first: Rasa's lock store already serialises the messages of one
conversation. The cost of a message then depends on the current session, not on the employee's history.

Bounds:
- A session ends after an hour without a message (domain.yml), but a client that never stops could
  grow one without end: past `MAX_EVENTS` events the oldest turns are dropped (down to `KEPT_EVENTS`,
  so this happens once every few dozen messages), and the slots they set are written back first.
- A conversation is forgotten `KATE_CONVERSATION_DAYS` days after its last message (Redis expiry;
  30 when unset, 0 keeps it for ever). `kate up` hands Kate's setting to Rasa's environment.

endpoints.yml names it `tracker_store.KateTrackerStore`; Rasa runs in its own Python, so this module
imports Rasa only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.conversation import Dialogue
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    AllSlotsReset,
    Event,
    Restarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

MAX_EVENTS = 400  # a session longer than this (about 100 questions) loses its oldest turns...
KEPT_EVENTS = 300  # ...down to this many events, so the trimming is rare
DEFAULT_DAYS = 30


def conversation_days() -> int:
    """KATE_CONVERSATION_DAYS (30 when unset or not a number; 0: never forgotten)."""
    try:
        return max(0, int(os.environ.get("KATE_CONVERSATION_DAYS", "") or DEFAULT_DAYS))
    except ValueError:
        return DEFAULT_DAYS


def is_session_start(event: Event) -> bool:
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START_NAME


def latest_session(events: Sequence[Event]) -> list[Event]:
    """The events from the last session start on (all of them when there is none): what Rasa's own
    `retrieve` hands back, found without replaying every session as Rasa's splitting does."""
    for i in range(len(events) - 1, -1, -1):
        if is_session_start(events[i]):
            return list(events[i:])
    return list(events)


def slots_set(events: Sequence[Event]) -> dict[str, Any]:
    """The slot values `events` leave behind (a reset clears those set before it)."""
    values: dict[str, Any] = {}
    for event in events:
        if isinstance(event, SlotSet):
            values[event.key] = event.value
        elif isinstance(event, (AllSlotsReset, Restarted)):
            values.clear()
    return values


def bounded(events: list[Event], most: int = MAX_EVENTS, kept: int = KEPT_EVENTS) -> list[Event]:
    """`events` when there are at most `most`; else the session's opening (session start, the slots
    carried over) and the slots the dropped turns set, then the latest turns, whole (each begins with the
    employee's message), about `kept` events in all (more only when the latest turn alone is longer)."""
    if len(events) <= most:
        return events
    opening = 0
    while opening < len(events) and not isinstance(events[opening], UserUttered):
        opening += 1
    if opening >= len(events):  # no message at all: nothing to keep turns of
        return events[-kept:]
    starts = [i for i in range(opening, len(events)) if isinstance(events[i], UserUttered)]
    # a turn is kept whole or not at all, and the latest one always, however long
    cut = next((i for i in starts if i >= len(events) - kept), starts[-1])
    head = events[:opening]
    restored = [
        SlotSet(name, value, timestamp=events[cut].timestamp)
        for name, value in slots_set(events[opening:cut]).items()
    ]
    return [*head, *restored, *events[cut:]]


class KateTrackerStore(RedisTrackerStore):
    """Rasa's Redis tracker store (same keys, same format, same options) that saves the latest session
    only, bounded, with an expiry (see the module docstring)."""

    def __init__(
        self,
        domain: Domain,
        host: str = "localhost",
        port: int | str = 6379,
        db: int | str = 0,
        password: str | None = None,
        record_exp: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        days = conversation_days()
        seconds = int(float(record_exp)) if record_exp else days * 86_400
        super().__init__(
            domain,
            host=host,
            port=int(port or 6379),
            db=int(db or 0),
            password=password or None,
            record_exp=seconds or None,
            **kwargs,
        )

    async def save(self, tracker: DialogueStateTracker, timeout: float | None = None) -> None:
        """Write the tracker's latest session, bounded, over what was stored (nothing is read first)."""
        await self.stream_events(tracker)
        events = bounded(latest_session(list(tracker.events)))
        expiry = int(timeout or self.record_exp or 0) or None
        self.red.set(
            self.key_prefix + tracker.sender_id,
            json.dumps(Dialogue(tracker.sender_id, events).as_dict()),
            ex=expiry,
        )
