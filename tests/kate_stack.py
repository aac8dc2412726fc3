"""The whole of Kate started as a user starts it (`kate up --detach`), once per test run (a pytest
plugin of tests/conftest.py, so the bot tests and the browser tests share one start and one training).

Everything is real: the session's Redis (database 7, so other tests' flushes do not touch it), the demo
intranet, `rasa train`, the action server with the shipped reader and ranker, the Rasa server and the
web app. Bot tests talk to it through the REST channel, as `kate chat` does; browser tests through the
web app's widget (socket.io) and admin console.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis_process import free_port

KATE = str(Path(sys.executable).parent / "kate")


@dataclass
class Stack:
    env: dict
    home: Path
    rest_url: str
    parse_url: str
    redis_url: str
    web_url: str

    @property
    def admin_password(self) -> str:
        return (self.home / "admin-password").read_text().strip()

    def kate(self, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        return subprocess.run([KATE, *args], capture_output=True, text=True, env=self.env, timeout=timeout)

    def say(self, message: str, sender: str | None = None, timeout: float = 120) -> list[dict]:
        body = json.dumps({"sender": sender or uuid.uuid4().hex, "message": message}).encode()
        request = urllib.request.Request(
            self.rest_url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def parse(self, text: str) -> dict:
        request = urllib.request.Request(self.parse_url, data=json.dumps({"text": text}).encode())
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


@pytest.fixture(scope="session")
def stack(tmp_path_factory, redis_server):
    home = tmp_path_factory.mktemp("kate-home")
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/7"
    env = {
        **os.environ,
        "KATE_HOME": str(home),
        "REDIS_URL": redis_url,
        "KATE_RASA_PORT": str(free_port()),
        "KATE_ACTIONS_PORT": str(free_port()),
        "KATE_DEMO_PORT": str(free_port()),
        "KATE_WEB_PORT": str(free_port()),
        "HF_HUB_OFFLINE": "1",
        "KATE_AUDIENCE_SECRET": "kate-tests-audience-secret",  # tests/lumen.py signs employee tokens with it
    }
    up = subprocess.run([KATE, "up", "--detach"], capture_output=True, text=True, env=env, timeout=1500)
    assert up.returncode == 0, up.stdout + up.stderr
    state = json.loads((home / "run" / "state.json").read_text())
    rasa = f"http://127.0.0.1:{env['KATE_RASA_PORT']}"
    yield Stack(
        env=env,
        home=home,
        rest_url=f"{rasa}/webhooks/rest/webhook",
        parse_url=f"{rasa}/model/parse?token={state['rasa_token']}",
        redis_url=redis_url,
        web_url=f"http://127.0.0.1:{env['KATE_WEB_PORT']}",
    )
    down = subprocess.run([KATE, "down"], capture_output=True, text=True, env=env, timeout=120)
    assert down.returncode == 0, down.stderr
