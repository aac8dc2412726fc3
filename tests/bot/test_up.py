"""`kate up` in the foreground: it prints the URLs once everything answers, and Ctrl-C stops it all."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from conftest import KATE
from redis_process import free_port

from kate.services import alive


def test_ctrl_c_stops_everything(stack, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for shared in ("models", "bot-models", "rasa-cache"):  # the stack's builds: no second training
        if (stack.home / shared).exists():
            (home / shared).symlink_to(stack.home / shared)
    env = {
        **stack.env,
        "KATE_HOME": str(home),
        "REDIS_URL": stack.redis_url.rsplit("/", 1)[0] + "/8",
        "KATE_RASA_PORT": str(free_port()),
        "KATE_ACTIONS_PORT": str(free_port()),
        "KATE_DEMO_PORT": str(free_port()),
        "KATE_WEB_PORT": str(free_port()),
    }
    try:
        # Ctrl-C in a terminal: SIGINT as the default. A suite started in the background by a script
        # (`cmd &` in a non-interactive shell) inherits SIGINT ignored, and `kate up` would never see it.
        up = subprocess.Popen(
            [KATE, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        lines = []
        deadline = time.monotonic() + 600
        while not any(line.startswith("Ctrl-C stops everything") for line in lines):
            line = up.stdout.readline()
            assert line or up.poll() is None, up.stderr.read()
            lines.append(line)
            assert time.monotonic() < deadline, lines
        assert any(f":{env['KATE_RASA_PORT']}/webhooks/rest/webhook" in line for line in lines), lines
        assert any(f"Chat in a browser at http://127.0.0.1:{env['KATE_WEB_PORT']}/" in line for line in lines)
        password = (home / "admin-password").read_text().strip()
        assert any(line.startswith("Admin console:") and password in line for line in lines), lines
        pids = [s["pid"] for s in json.loads((home / "run" / "state.json").read_text())["services"]]
        assert len(pids) == 4 and all(alive(p) for p in pids)
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        assert not any(alive(p) for p in pids)
        assert not (home / "run" / "state.json").exists()
    finally:  # whatever failed above, leave no process behind
        subprocess.run([KATE, "down"], env=env, capture_output=True, timeout=120)
