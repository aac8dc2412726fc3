"""Start `rasa` with its API token from the environment, not the command line.

`rasa run --auth-token TOKEN` would show the token to every user of the machine in `ps`; `kate up` passes
it as KATE_RASA_TOKEN instead, and this launcher (run by the Rasa environment's Python) hands it to Rasa's
own argument parser inside the process, where `ps` does not see it.

It also compiles the schema Rasa checks every action server reply against once, at start-up: Rasa 3.6
calls `jsonschema.validate`, which checks the schema itself against its meta-schema before each reply,
and under load that was a third of the time Rasa's event loop spent (py-spy on `kate bench load`), time
every message, a 👍 included, waited for. Replies are validated exactly as before.
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


if __name__ == "__main__":
    validate_replies_with_a_compiled_schema()
    sys.argv = rasa_argv(sys.argv[1:], os.environ.pop("KATE_RASA_TOKEN", ""))
    from rasa.__main__ import main

    main()
