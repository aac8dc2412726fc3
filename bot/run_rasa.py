"""Start `rasa` with its API token from the environment, not the command line.

`rasa run --auth-token TOKEN` would show the token to every user of the machine in `ps`; `kate up` passes
it as KATE_RASA_TOKEN instead, and this launcher (run by the Rasa environment's Python) hands it to Rasa's
own argument parser inside the process, where `ps` does not see it.
Usage: python run_rasa.py run --model ... (any `rasa` arguments).
"""

import os
import sys


def rasa_argv(args: list[str], token: str) -> list[str]:
    """Rasa's command line with the token joined to its option: a token may begin with "-" (a URL-safe
    random token does, one time in 64), and `--auth-token -abc` reads as a missing value."""
    return ["rasa", *args, *([f"--auth-token={token}"] if token else [])]


if __name__ == "__main__":
    sys.argv = rasa_argv(sys.argv[1:], os.environ.pop("KATE_RASA_TOKEN", ""))
    from rasa.__main__ import main

    main()
