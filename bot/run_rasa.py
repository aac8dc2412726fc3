"""Start `rasa` with its API token from the environment, not the command line.

`rasa run --auth-token TOKEN` would show the token to every user of the machine in `ps`; `kate up` passes
it as KATE_RASA_TOKEN instead, and this launcher (run by the Rasa environment's Python) hands it to Rasa's
own argument parser inside the process, where `ps` does not see it.
Usage: python run_rasa.py run --model ... (any `rasa` arguments).
"""

import os
import sys

if __name__ == "__main__":
    token = os.environ.pop("KATE_RASA_TOKEN", "")
    sys.argv = ["rasa", *sys.argv[1:], *(["--auth-token", token] if token else [])]
    from rasa.__main__ import main

    main()
