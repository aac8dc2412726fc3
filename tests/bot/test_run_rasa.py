"""bot/run_rasa.py in Rasa's own environment: action server replies are validated against a schema compiled
once, and still validated: a good reply passes, a wrong one fails with Rasa's own explanation."""

from __future__ import annotations

import json
import subprocess

from core.rasa import BOT_DIR, rasa_venv

SCRIPT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("run_rasa", sys.argv[1])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
from jsonschema import ValidationError, validators
from rasa.core.actions.action import RemoteAction

schema_checks = []
cls = validators.validator_for(RemoteAction.action_response_format_spec())
check_schema = cls.check_schema
cls.check_schema = classmethod(lambda c, s, **kw: schema_checks.append(1) or check_schema(s, **kw))

action = RemoteAction("action_answer_from_knowledge", None)
good = {
    "events": [{"event": "slot", "timestamp": None, "name": "last_answer_id", "value": "a1"}],
    "responses": [{"text": "25 days", "buttons": [{"title": "👍", "payload": "/feedback"}]}],
}
bad = {"events": [{"event": "no_such_event"}], "responses": []}

def checks_for(replies):
    schema_checks.clear()
    for _ in range(replies):
        assert action._validate_action_result(good)
    return len(schema_checks)

before = checks_for(5)
launcher.validate_replies_with_a_compiled_schema()
after = checks_for(5)
try:
    action._validate_action_result(bad)
    error = None
except ValidationError as exc:
    error = exc.message
print(json.dumps({"good": action._validate_action_result(good), "error": error,
                  "before": before, "after": after}))
"""


def in_rasa(script: str) -> dict:
    """`script` run by Rasa's Python with the launcher's path as its argument; its last line, as JSON."""
    result = subprocess.run(
        [str(rasa_venv() / "bin" / "python"), "-c", script, str(BOT_DIR / "run_rasa.py")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_replies_are_validated_once_compiled_and_still_rejected_when_wrong():
    out = in_rasa(SCRIPT)
    assert out["good"] is True
    assert out["error"] and "no_such_event" in out["error"] and "Action server response" in out["error"]
    # Rasa checked the schema against its meta-schema for each reply (tens of milliseconds); now never
    assert (out["before"], out["after"]) == (5, 0), out


EVENTS = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("run_rasa", sys.argv[1])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
import rasa.shared.utils.common as common
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered

walks = []
walk = common.all_subclasses
common.all_subclasses = lambda cls: walks.append(1) or walk(cls)

def lookups():
    walks.clear()
    for _ in range(5):
        assert Event.resolve_by_type("user") is UserUttered and Event.resolve_by_type("slot") is SlotSet
        assert Event.resolve_by_type("action") is ActionExecuted
    return len(walks)

before = lookups()
launcher.remember_event_types()
after = lookups()
try:
    Event.resolve_by_type("no_such_event")
    unknown = None
except ValueError as exc:
    unknown = str(exc)
events = [{"event": "action", "name": "action_listen"}, {"event": "slot", "name": "s", "value": 1}]
parsed = [type(e).__name__ for e in (Event.from_parameters(p) for p in events)]
topic = Event.resolve_by_type("topic")
print(json.dumps({"before": before, "after": after, "unknown": unknown, "topic": topic, "parsed": parsed}))
"""


def test_event_classes_are_found_once_by_name_and_unknown_names_still_fail():
    out = in_rasa(EVENTS)
    # Rasa walked the Event subclasses (recursively) for each of 5 rounds of 3 lookups; now for the first
    # round only
    assert out["after"] > 0 and out["before"] == 5 * out["after"], out
    assert out["unknown"] and "no_such_event" in out["unknown"] and out["topic"] is None
    assert out["parsed"] == ["ActionExecuted", "SlotSet"]
