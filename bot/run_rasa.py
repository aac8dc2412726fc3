"""Start `rasa` with its API token from the environment, not the command line.

`rasa run --auth-token TOKEN` would show the token to every user of the machine in `ps`; `kate up` passes
it as KATE_RASA_TOKEN instead, and this launcher (run by the Rasa environment's Python) hands it to Rasa's
own argument parser inside the process, where `ps` does not see it.

It also compiles the schema Rasa checks every action server reply against once, at start-up: Rasa 3.6
calls `jsonschema.validate`, which checks the schema itself against its meta-schema before each reply,
and under load that was a third of the time Rasa's event loop spent (py-spy on `kate bench load`), time
every message, a 👍 included, waited for. Replies are validated exactly as before.

And it remembers which class each event type name is: Rasa 3.6 looks it up by walking every subclass of
`Event` (recursively, with `inspect.isabstract` on each) for every event of a conversation it reads back
from the tracker store, on every message: 7% of Rasa's time under the same load, growing with the
conversation.
Usage: python run_rasa.py run --model ... (any `rasa` arguments).
"""

import os
import sys


def rasa_argv(args: list[str], token: str) -> list[str]:
    """Rasa's command line with the token joined to its option: a token may begin with "-" (a URL-safe
    random token does, one time in 64), and `--auth-token -abc` reads as a missing value."""
    return ["rasa", *args, *([f"--auth-token={token}"] if token else [])]


def validate_replies_with_a_compiled_schema() -> None:
    """Replace Rasa's per-reply `jsonschema.validate(reply, schema)` with one validator built once: the
    same schema, the same errors (and Rasa's own hint added to them), without re-checking the schema."""
    from jsonschema import ValidationError, validators
    from rasa.core.actions.action import RemoteAction

    original = RemoteAction._validate_action_result
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)  # once: a schema Rasa ships broken fails here, loudly
    validator = validator_class(schema)

    def validate(self: RemoteAction, result: dict) -> bool:
        try:
            validator.validate(result)
        except ValidationError:
            return original(self, result)  # Rasa's own message for a reply that is wrong
        return True

    RemoteAction._validate_action_result = validate


def remember_event_types() -> None:
    """`Event.resolve_by_type(name)` through a dictionary filled by Rasa's own lookup: the event classes
    are all defined once Rasa is imported, so a name found once is the same class every time. Names not
    found (an unknown event, Rasa's old "topic") still go through Rasa's lookup and its errors."""
    from rasa.shared.core.events import Event

    lookup = Event.resolve_by_type
    known: dict[str, type] = {}

    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        found = known.get(type_name)
        if found is None:
            found = lookup(type_name, default)
            if found is not None and found is not default:
                known[type_name] = found
        return found

    Event.resolve_by_type = staticmethod(resolve_by_type)


if __name__ == "__main__":
    validate_replies_with_a_compiled_schema()
    remember_event_types()
    sys.argv = rasa_argv(sys.argv[1:], os.environ.pop("KATE_RASA_TOKEN", ""))
    from rasa.__main__ import main

    main()
