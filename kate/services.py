"""Kate's processes: start each one, wait until it answers its health URL, remember it, stop it.

`kate up` runs the demo intranet, the action server and the Rasa server as child processes, each in
its own process group (so stopping one stops what it spawned) with its output in a log file under
`$KATE_HOME/run/`. Their pids and URLs are kept in `run/state.json`, which is how `kate status` and
`kate down` find them from another shell. A process that dies while starting is reported with the end
of its log, not as a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A process could not be started or did not become healthy (the message quotes its log)."""


@dataclass
class Service:
    name: str
    argv: list[str]
    health_url: str
    url: str  # what `kate up` prints for people
    log: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    ready_timeout_s: float = 120.0
    pid: int = 0


def log_tail(path: str | Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of this process still "exists": reap it if it is ours
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def start(service: Service, base_env: Mapping[str, str]) -> subprocess.Popen:
    Path(service.log).parent.mkdir(parents=True, exist_ok=True)
    with open(service.log, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {service.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            service.argv,
            cwd=service.cwd,
            env={**base_env, **service.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `stop` reaches its children too
        )
    service.pid = proc.pid
    return proc


def wait_healthy(service: Service, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + service.ready_timeout_s
    while not healthy(service.health_url):
        if proc.poll() is not None:
            raise ServiceError(
                f"{service.name} exited with code {proc.returncode} while starting; "
                f"the end of {service.log}:\n{log_tail(service.log)}"
            )
        if time.monotonic() > deadline:
            stop(proc.pid)
            raise ServiceError(
                f"{service.name} did not answer {service.health_url} within {service.ready_timeout_s:.0f} s; "
                f"the end of {service.log}:\n{log_tail(service.log)}"
            )
        time.sleep(0.5)


def stop(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `grace_s`."""
    stop_all([pid], grace_s)


def stop_all(pids: list[int], grace_s: float = 10.0) -> None:
    """`stop` for several process groups at once: all are asked together, so stopping Kate's four
    services takes the slowest one's time (at most `grace_s` + 5 s), not the sum of theirs."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        deadline = time.monotonic() + wait_s
        while any(alive(pid) for pid in left) and time.monotonic() < deadline:
            time.sleep(0.1)


@dataclass
class RunState:
    """What `kate up` started, for `kate status` and `kate down` in another shell."""

    services: list[Service] = field(default_factory=list)
    redis_url: str = ""
    redis_started: bool = False  # Kate started this Redis itself: `kate down` stops it too
    rasa_token: str = ""
    started_at: float = 0.0

    @staticmethod
    def path(run_dir: Path) -> Path:
        return run_dir / "state.json"

    def save(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        target = self.path(run_dir)
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the Rasa API token
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f, indent=2)
        tmp.replace(target)

    @classmethod
    def load(cls, run_dir: Path) -> RunState | None:
        try:
            data = json.loads(cls.path(run_dir).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        data["services"] = [Service(**s) for s in data.get("services", [])]
        return cls(**data)

    @classmethod
    def clear(cls, run_dir: Path) -> None:
        cls.path(run_dir).unlink(missing_ok=True)
