"""bot/tracker_store.py in Rasa's own environment, against the tests' real Redis: a conversation's record
holds its latest session only (what Rasa's own store hands back, without the history it rewrites on every
message), a session that never ends is bounded with its slots kept, and the record expires."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

from conftest import KATE

from core.rasa import BOT_DIR, rasa_venv
from core.settings import Settings
from knowledge.store import connect

# Runs in .venv-rasa; prints one JSON line. argv: bot folder, Redis port, Redis db.
SCRIPT = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from tracker_store import MAX_EVENTS, KateTrackerStore

domain = Domain.load(sys.argv[1] + "/domain.yml")
port, db = sys.argv[2], sys.argv[3]
clock = [1_000_000.0]

def tick(gap=5.0):
    clock[0] += gap
    return clock[0]

def session(language):
    return [ActionExecuted("action_session_start", timestamp=tick(4000)),
            SessionStarted(timestamp=tick()), SlotSet("language", language, timestamp=tick()),
            ActionExecuted("action_listen", timestamp=tick())]

def turn(i):
    return [UserUttered(f"question {i}", {"name": "nlu_fallback", "confidence": 0.9}, timestamp=tick()),
            ActionExecuted("action_answer_from_knowledge", timestamp=tick(0.1)),
            BotUttered(f"answer {i}", {"buttons": []}, timestamp=tick(0.1)),
            SlotSet("last_answer_id", f"a{i}", timestamp=tick(0.1)),
            ActionExecuted("action_listen", timestamp=tick(0.1))]

def dicts(events):
    return [e.as_dict() for e in events]

async def main():
    kate = KateTrackerStore(domain, host="127.0.0.1", port=port, db=db, password="")
    rasa = RedisTrackerStore(domain, host="127.0.0.1", port=int(port), db=int(db))
    out = {}

    # three sessions of history, then a new message in the latest one, through each store
    history = session("fr") + turn(0) + turn(1) + session("en") + turn(2) + session("ja") + turn(3)
    new = turn(4)
    for name, store in (("rasa", rasa), ("kate", kate)):
        store.red.set(store.key_prefix + name, json.dumps({"events": dicts(history), "name": name}))
        tracker = await store.retrieve(name)
        for event in new:
            tracker.update(event)
        await store.save(tracker)
    latest_rasa = await rasa.retrieve("rasa")
    latest_kate = await kate.retrieve("kate")
    out["same_latest_session"] = dicts(latest_rasa.events) == dicts(latest_kate.events)
    out["latest_events"] = len(latest_kate.events)
    out["stored_kate"] = len(json.loads(kate.red.get(kate.key_prefix + "kate"))["events"])
    out["stored_rasa"] = len(json.loads(rasa.red.get(rasa.key_prefix + "rasa"))["events"])
    out["slots"] = [latest_kate.get_slot("language"), latest_kate.get_slot("last_answer_id")]
    out["ttl"] = kate.red.ttl(kate.key_prefix + "kate")
    out["ttl_rasa"] = rasa.red.ttl(rasa.key_prefix + "rasa")

    # one session that never ends: the oldest turns go, the slots they set stay
    endless = session("fr") + [e for i in range(200) for e in turn(i)]
    endless.append(SlotSet("language", "de", timestamp=tick()))  # set once, long before the end
    endless += [e for i in range(200, 300) for e in turn(i) if not isinstance(e, SlotSet)]
    full = DialogueStateTracker.from_events("endless", endless, domain.slots)
    await kate.save(full)
    kept = await kate.retrieve("endless")
    out["endless_events"] = [len(full.events), len(kept.events), MAX_EVENTS]
    out["endless_slots"] = [kept.get_slot("language"), kept.get_slot("last_answer_id"),
                            full.get_slot("language"), full.get_slot("last_answer_id")]
    out["endless_opening"] = [e.get("event") for e in dicts(kept.events)[:2]]
    users = [e for e in kept.events if isinstance(e, UserUttered)]
    out["endless_latest"] = [users[-1].text, kept.latest_message.text]
    out["endless_after_opening"] = [e.get("event") for e in dicts(kept.events)[4:8]]

    # a last turn longer than the bound on its own: kept whole, with its message
    long = session("en") + turn(0) + [UserUttered("a long one", timestamp=tick())]
    long += [BotUttered(f"part {i}", timestamp=tick(0.01)) for i in range(2 * MAX_EVENTS)]
    await kate.save(DialogueStateTracker.from_events("long", long, domain.slots))
    kept = await kate.retrieve("long")
    out["long_turn"] = [kept.latest_message.text, len(kept.events), len(long),
                        [e.get("event") for e in dicts(kept.events)[:2]]]
    print(json.dumps(out))

asyncio.run(main())
"""


def run_in_rasa(redis_url: str, days: str) -> dict:
    settings = Settings.from_env({})
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    result = subprocess.run(
        [str(rasa_venv(settings) / "bin" / "python"), "-c", SCRIPT, str(BOT_DIR), port, "3"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KATE_CONVERSATION_DAYS": days},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_conversation_keeps_its_latest_session_bounded_and_expires(redis_server):
    out = run_in_rasa(redis_server.url, "2")

    # Rasa reads back the same latest session through either store...
    assert out["same_latest_session"] and out["latest_events"] == 4 + 2 * 5
    assert out["slots"] == ["ja", "a4"]
    # ...but Rasa's keeps (and rewrites on every message) the whole history, Kate's the latest session
    assert out["stored_rasa"] == 4 * 3 + 5 * 5 and out["stored_kate"] == out["latest_events"]
    # forgotten KATE_CONVERSATION_DAYS after the last message; Rasa's own store never forgets
    assert 2 * 86_400 - 60 < out["ttl"] <= 2 * 86_400 and out["ttl_rasa"] == -1

    total, kept, most = out["endless_events"]
    assert total > most and kept <= most  # bounded...
    assert out["endless_slots"] == ["de", "a199", "de", "a199"]  # ...with the slots the dropped turns set
    assert out["endless_opening"] == ["action", "session_started"]  # still one session
    # the session's opening, the two slots restored, then whole turns, each from the employee's message
    assert out["endless_after_opening"] == ["slot", "slot", "user", "action"]
    assert out["endless_latest"] == ["question 299", "question 299"]
    text, kept, total, opening = out["long_turn"]
    assert text == "a long one" and opening == ["action", "session_started"]
    assert kept == total - 5 + 1  # the first turn dropped, the slot it set restored


def test_zero_days_keeps_a_conversation(redis_server):
    assert run_in_rasa(redis_server.url, "0")["ttl"] == -1


def test_the_running_bot_keeps_its_conversations_this_way(stack):
    sender = uuid.uuid4().hex
    for question in ("When is payday?", "Combien de jours de congés payés par an ?"):
        assert stack.say(question, sender)
    client = connect(stack.redis_url)
    (key,) = [k for k in client.scan_iter(match=f"*{sender}")]
    stored = json.loads(client.get(key))
    assert [e["event"] for e in stored["events"]][:2] == ["action", "session_started"]
    assert sum(e["event"] == "user" for e in stored["events"]) == 2
    assert 29 * 86_400 < client.ttl(key) <= 30 * 86_400  # `kate up` hands Rasa the default, 30 days


def test_bench_tracker_times_both_stores_side_by_side(redis_server, tmp_path):
    output = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [KATE, "bench", "tracker", "--sessions", "1,4", "--turns", "3", "--repeats", "1",
         "--output", str(output)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in output.read_text().splitlines() if line.startswith("| ") and "session" in line]
    assert [r.split("|")[1].strip() for r in rows] == [
        "1 session of 3 questions",
        "4 sessions of 3 questions",
    ]
    cells = [[c.strip() for c in r.split("|")[2:-1]] for r in rows]
    rasa_events = [int(c[0].split()[0].replace(",", "")) for c in cells]
    kate_events = [int(c[2].split()[0].replace(",", "")) for c in cells]
    assert rasa_events[1] > rasa_events[0] and kate_events[1] == kate_events[0]  # Kate's: the latest only
    assert all(float(c[1]) > 0 and float(c[3]) > 0 and c[4].endswith("x**") for c in cells)
    assert not list(connect(redis_server.url).scan_iter(match="katebench*"))  # its keys are gone
