"""`kate bench tracker`: what Rasa's record of a conversation costs each message, against its history.

An employee keeps one conversation id for as long as they use the widget, so their conversation grows a
session at a time (a session ends after an hour without a message). For each history (past sessions of
some questions each), this stores it in Redis as Rasa's Redis tracker store would have, then times what
Rasa does with the record on every message: read it back (`retrieve`), add the message's events, write
it (`save`). Rasa's own store (`RedisTrackerStore`) and Kate's (bot/tracker_store.py) are timed side by
side in one process of Rasa's environment, on the same Redis, median of the repeats.

Keys are written under a prefix of their own and deleted at the end.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from core.rasa import BOT_DIR, rasa_env
from core.settings import Settings

from .bench import cpu_model, write_section

SECTION = "tracker"
TIMEOUT_S = 1800

# Runs in .venv-rasa. argv[1]: a JSON job; prints one JSON line a measurement.
SCRIPT = r"""
import asyncio, json, statistics, sys, time
job = json.loads(sys.argv[1])
sys.path.insert(0, job["bot"])
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from tracker_store import KateTrackerStore

domain = Domain.load(job["bot"] + "/domain.yml")
clock = [1_700_000_000.0]

def tick(gap=5.0):
    clock[0] += gap
    return clock[0]

def session():
    return [ActionExecuted("action_session_start", timestamp=tick(7200)), SessionStarted(timestamp=tick()),
            SlotSet("language", "en", timestamp=tick()), ActionExecuted("action_listen", timestamp=tick())]

def turn(i):
    # what one question leaves in the record: the message with its NLU result, the answer with its
    # buttons and source, the rated answer's id
    parse = {"text": f"question {i}", "intent": {"name": "nlu_fallback", "confidence": 0.2},
             "intent_ranking": [{"name": f"intent_{k}", "confidence": 0.05} for k in range(10)],
             "entities": [{"entity": "language", "value": "en", "extractor": "LanguageDetector"}]}
    answer = {"buttons": [{"title": t, "payload": '/feedback{"vote":"up","answer_id":"%d"}' % i}
                          for t in ("👍", "👎")],
              "custom": {"source": "https://intranet.example/hr/leave", "answer_id": str(i)}}
    return [UserUttered(parse["text"], parse["intent"], parse["entities"], parse, timestamp=tick()),
            ActionExecuted("action_answer_from_knowledge", timestamp=tick(0.2)),
            BotUttered("Full-time employees get 25 days of paid leave a year. " * 2, answer,
                       timestamp=tick(0.1)),
            SlotSet("last_answer_id", str(i), timestamp=tick(0.1)),
            ActionExecuted("action_listen", timestamp=tick(0.1))]

async def message(store, sender, i):
    tracker = await store.retrieve(sender)
    for event in turn(i):
        tracker.update(event)
    await store.save(tracker)

async def main():
    redis = dict(host=job["host"], port=int(job["port"]), db=int(job["db"]), password=job["password"] or None,
                 key_prefix=job["prefix"])
    stores = {"rasa": RedisTrackerStore(domain, **redis), "kate": KateTrackerStore(domain, **redis)}
    for sessions, turns in job["sizes"]:
        history = [e for _ in range(sessions) for e in session() + [x for i in range(turns) for x in turn(i)]]
        for name, store in stores.items():
            sender = f"{name}-{sessions}-{turns}"
            key = store.key_prefix + sender
            store.red.set(key, json.dumps({"events": [e.as_dict() for e in history], "name": sender}))
            await message(store, sender, 0)  # the first message: Kate's store writes its latest session
            times = []
            for i in range(job["repeats"]):
                start = time.perf_counter()
                await message(store, sender, i + 1)
                times.append(time.perf_counter() - start)
            stored = store.red.get(key)
            print(json.dumps({"store": name, "sessions": sessions, "turns": turns,
                              "ms": 1000 * statistics.median(times),
                              "events": len(json.loads(stored)["events"]), "kb": len(stored) / 1000}),
                  flush=True)
            store.red.delete(key)

asyncio.run(main())
"""


@dataclass
class TrackerRow:
    store: str  # "rasa" | "kate"
    sessions: int
    turns: int
    ms: float  # median time of one message's read + write of the record
    events: int  # events stored after the messages
    kb: float  # size of the stored record


def measure(
    settings: Settings, client: redis.Redis, sizes: Sequence[tuple[int, int]], repeats: int
) -> list[TrackerRow]:
    """`client`: Kate's Redis (its host, port, database and password are handed to Rasa's stores)."""
    where = client.connection_pool.connection_kwargs
    job = {
        "bot": str(BOT_DIR),
        "host": where.get("host") or "127.0.0.1",
        "port": where.get("port") or 6379,
        "db": where.get("db") or 0,
        "password": where.get("password") or "",
        "prefix": "katebench" + uuid.uuid4().hex[:8],  # Rasa takes letters and digits only
        "sizes": [list(s) for s in sizes],
        "repeats": max(1, repeats),
    }
    python = settings.rasa_venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", SCRIPT, json.dumps(job)],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=rasa_env(),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the tracker benchmark failed in Rasa's environment: {done.stderr[-1500:]}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [TrackerRow(**row) for row in rows]


def render(rows: Sequence[TrackerRow], repeats: int, command: str) -> str:
    by = {(r.store, r.sessions, r.turns): r for r in rows}
    sizes = sorted({(r.sessions, r.turns) for r in rows})
    lines = [
        f"<!-- bench:{SECTION} -->",
        "## Rasa's record of a conversation: the cost of each message against the employee's history",
        "",
        f"Command: `{command}`  ",
        f"Rasa 3.6 in its own environment, Kate's Redis, one process, on this machine ({cpu_model()}). "
        "A history of past sessions (each: the session start, then questions with their NLU result, the "
        "answer with its buttons and source, the rated answer's id) is stored as Rasa's Redis store would "
        "have kept it; then each message reads the record back, adds its events and writes it (median "
        f"of {repeats} messages). *Rasa*: Rasa's `RedisTrackerStore`; *Kate*: `bot/tracker_store.py` "
        "(the latest session only, bounded, with an expiry).",
        "",
        "| history | Rasa: events stored | Rasa: ms a message | Kate: events stored | Kate: ms a message "
        "| **Rasa / Kate** |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for sessions, turns in sizes:
        rasa, kate = by.get(("rasa", sessions, turns)), by.get(("kate", sessions, turns))
        if rasa is None or kate is None:
            continue
        lines.append(
            f"| {sessions} session{'s' * (sessions != 1)} of {turns} questions | {rasa.events:,} "
            f"({rasa.kb:,.0f} kB) | {rasa.ms:.1f} | {kate.events:,} ({kate.kb:,.0f} kB) | {kate.ms:.1f} "
            f"| **{rasa.ms / max(kate.ms, 1e-6):.1f}x** |"
        )
    lines += [
        "",
        "Rasa runs every message of every employee on one event loop, so this time is added to everyone's "
        "wait, a 👍 included. Rasa's store grows with the history: it reads the whole record back, merges "
        "it with the current session (comparing each new event with every stored one once the history "
        "has more than one session) and writes it all again. Kate's writes the latest session, which is "
        "all Rasa ever reads back.",
        "",
        f"<!-- /bench:{SECTION} -->",
    ]
    return "\n".join(lines)


def bench_tracker(
    settings: Settings,
    client: redis.Redis,
    *,
    output: Path,
    sizes: Sequence[tuple[int, int]],
    repeats: int,
    command: str,
) -> list[TrackerRow]:
    rows = measure(settings, client, sizes, repeats)
    write_section(output, render(rows, repeats, command), SECTION)
    for r in rows:
        print(f"bench tracker: {r.store} {r.sessions}x{r.turns}: {r.ms:.1f} ms, {r.events} events stored")
    return rows
