"""`kate up`, `kate status`, `kate down`: the whole of Kate on one machine.

Order matters and each step waits for the previous one to be healthy: Redis (the configured one, else
a local server Kate starts), the demo intranet (only when the sources point at it), the models (built
once from registry packages), the bot model (`rasa train` only when bot/ changed since the last
training), the action server (models loaded before it answers /health), then the Rasa server. Rasa
runs from `.venv-rasa` (Python 3.10); everything else from Kate's own environment.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.rasa import BOT_DIR, nlu_encoder, rasa_env, rasa_venv
from core.settings import Settings, mask_url
from knowledge.store import describe

from .services import RunState, Service, ServiceError, alive, healthy, log_tail, start, stop_all, wait_healthy

BOT_INPUTS = ("config.yml", "domain.yml", "data", "components")


def run_dir(settings: Settings) -> Path:
    return settings.home / "run"


def say(text: str) -> None:
    print(f"kate up: {text}", file=sys.stderr, flush=True)


# -- the bot model ------------------------------------------------------------------------------------------
def bot_fingerprint(bot_dir: Path = BOT_DIR, encoder: Path | None = None) -> str:
    """A hash of everything `rasa train` reads (config, domain, data, custom components, and the NLU
    encoder's build manifest, which names its weights' sha256)."""
    digest = hashlib.sha256()
    if encoder is not None:
        digest.update((encoder / "kate-build.json").read_bytes())
    for name in BOT_INPUTS:
        path = bot_dir / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.suffix in (".yml", ".yaml", ".py") and "__pycache__" not in f.parts:
                digest.update(str(f.relative_to(bot_dir)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_bot_model(settings: Settings, encoder: Path) -> Path:
    """The trained bot for the current bot/ files: reused when it exists, else trained (about a minute).
    `encoder`: the NLU's sentence encoder folder (`core.rasa.nlu_encoder`)."""
    models = settings.home / "bot-models"
    target = models / f"kate-{bot_fingerprint(encoder=encoder)}.tar.gz"
    if target.is_file():
        return target
    rasa = rasa_venv(settings) / "bin" / "rasa"
    if not rasa.is_file():
        raise ServiceError(f"Rasa is not installed at {rasa} (`./kate.sh setup` creates .venv-rasa)")
    models.mkdir(parents=True, exist_ok=True)
    log = run_dir(settings) / "rasa-train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"training the bot (bot/ changed since the last training; about a minute; log: {log})")
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        result = subprocess.run(
            [str(rasa), "train", "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
             "--out", str(models), "--fixed-model-name", target.name.removesuffix(".tar.gz")],
            cwd=BOT_DIR, env=rasa_env(home=settings.home, encoder=encoder), stdout=out,
            stderr=subprocess.STDOUT, timeout=1800,
        )  # fmt: skip
    if result.returncode != 0 or not target.is_file():
        raise ServiceError(
            f"rasa train failed (exit {result.returncode}); the end of {log}:\n{log_tail(log)}"
        )
    say(f"bot trained in {time.perf_counter() - t0:.0f} s: {target}")
    return target


# -- the services -------------------------------------------------------------------------------------------
def plan(
    settings: Settings, redis_url: str, model: Path, token: str, demo: bool, encoder: Path | None = None
) -> list[Service]:
    """`encoder`: the NLU's sentence encoder folder, handed to Rasa as KATE_NLU_ENCODER (`up` exports it
    once and passes the same folder to the bot's training)."""
    logs = run_dir(settings)
    env = {"REDIS_URL": redis_url, "KATE_HOME": str(settings.home)}

    def kate(name: str, args: list[str], port: int, health: str, url: str, log: str, ready_s: int) -> Service:
        """A `kate <args>` process of this stack: same interpreter, Redis and home, its own log."""
        return Service(
            name=name,
            argv=[sys.executable, "-m", "kate.cli", *args],
            health_url=f"http://127.0.0.1:{port}{health}",
            url=f"http://127.0.0.1:{port}{url}",
            log=str(logs / log),
            env=env,
            ready_timeout_s=ready_s,
        )

    services = []
    if demo:
        port = settings.demo_port
        services.append(
            kate("demo intranet", ["demo-site", "--port", str(port)], port, "/", "/", "demo-site.log", 30)
        )
    services.append(
        kate("action server", ["actions"], settings.actions_port, "/health", "/webhook", "actions.log", 300)
    )
    services.append(kate("web app", ["web"], settings.web_port, "/health", "/", "web.log", 60))
    host, port, db, password = redis_parts(redis_url)
    rasa_args = [
        "run", "--model", str(model), "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
        "--interface", "127.0.0.1", "--port", str(settings.rasa_port), "--enable-api", "--cors", "*",
    ]  # fmt: skip
    rasa_vars = {
        "KATE_RASA_TOKEN": token,  # not `--auth-token`: a command line is visible to every user in `ps`
        "KATE_REDIS_HOST": host,
        "KATE_REDIS_PORT": port,
        "KATE_REDIS_DB": db,
        "KATE_REDIS_PASSWORD": password,
        "KATE_ACTIONS_URL": f"http://127.0.0.1:{settings.actions_port}/webhook",
        # the NLU's message guard (bot/components/guard.py) runs in Rasa's process and reads it there
        "KATE_MAX_QUESTION_CHARS": str(settings.max_question_chars),
        # and its tracker store (bot/tracker_store.py) this one
        "KATE_CONVERSATION_DAYS": str(settings.conversation_days),
    }
    services.append(
        Service(
            name="rasa",
            argv=[str(rasa_venv(settings) / "bin" / "python"), str(BOT_DIR / "run_rasa.py"), *rasa_args],
            health_url=f"http://127.0.0.1:{settings.rasa_port}/",
            url=f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook",
            log=str(logs / "rasa.log"),
            env={**rasa_env({}, encoder=encoder), **rasa_vars},
            cwd=str(BOT_DIR),
            ready_timeout_s=300,
        )
    )
    return services


def redis_parts(url: str) -> tuple[str, str, str, str]:
    """host, port, db and password of a redis:// URL, as strings for Rasa's endpoints.yml."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    return parts.hostname or "127.0.0.1", str(parts.port or 6379), db, parts.password or ""


def up(settings: Settings, detach: bool) -> int:
    from core.local_redis import redis_is_ours
    from core.models import ensure_model
    from core.wiring import sync_demo_answers, uses_demo_intranet

    from .knowledge_cli import open_knowledge

    existing = RunState.load(run_dir(settings))
    if existing and any(alive(s.pid) for s in existing.services):
        say("Kate is already running (`kate status`; `kate down` stops it)")
        return 1
    knowledge = open_knowledge(settings)
    client = knowledge.cache.r
    redis_url = settings.redis_url or describe(client)
    demo = uses_demo_intranet(settings, knowledge)
    changed = sync_demo_answers(settings, knowledge)
    knowledge.close()
    if changed:
        say(changed)
    state = RunState(redis_url=redis_url, redis_started=redis_is_ours(client, settings),
                     rasa_token=secrets.token_urlsafe(24), started_at=time.time())  # fmt: skip
    try:
        ensure_model(settings, settings.qa_model)
        if settings.ranker:
            ensure_model(settings, settings.ranker)
        encoder = nlu_encoder(settings)  # verified once (it hashes ~1 GB): training and serving share it
        model = ensure_bot_model(settings, encoder)
    except ServiceError as exc:
        say(str(exc))
        return 1
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` of `kate up` stops everything, as Ctrl-C does
    procs: list[tuple[Service, subprocess.Popen]] = []
    code, running = 1, False
    try:
        for service in plan(settings, redis_url, model, state.rasa_token, demo, encoder):
            say(f"starting {service.name} (log: {service.log})")
            proc = start(service, os.environ)
            procs.append((service, proc))
            state.services.append(service)
            state.save(run_dir(settings))
            wait_healthy(service, proc)
        running = True
        print("Kate is up:")
        for service in state.services:
            print(f"  {service.name:<15} {service.url}")
        print(f"  {'redis':<15} {mask_url(redis_url)}")
        print(
            f"Chat in a browser at http://127.0.0.1:{settings.web_port}/ (or in this terminal: `kate chat`)."
        )
        print(admin_hint(settings))
        if detach:
            print("Stop it with `kate down`.", flush=True)
            return 0
        print("Ctrl-C stops everything.", flush=True)
        code = wait_for_exit(procs)
    except ServiceError as exc:
        say(str(exc))
    except KeyboardInterrupt:
        say("stopping" if running else "interrupted while starting; stopping")
        code = 0 if running else 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
    down(settings, quiet=True)
    return code


def admin_hint(settings: Settings) -> str:
    from admin.security import generated_password_file

    where = f"http://127.0.0.1:{settings.web_port}/admin"
    password_file = generated_password_file(settings.home)
    if not settings.admin_password_hash and password_file.is_file():
        password = password_file.read_text().strip()
        user = settings.admin_user
        return f"Admin console: {where} (user {user}, password {password}, kept in {password_file})"
    return f"Admin console: {where} (user {settings.admin_user})"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def wait_for_exit(procs: list[tuple[Service, subprocess.Popen]]) -> int:
    """Block until one service dies (returns 1, after printing the end of its log); Ctrl-C raises."""
    while True:
        for service, proc in procs:
            if proc.poll() is not None:
                say(f"{service.name} stopped (exit {proc.returncode}); the end of {service.log}:")
                print(log_tail(service.log), file=sys.stderr)
                return 1
        time.sleep(1.0)


def status(settings: Settings) -> int:
    state = RunState.load(run_dir(settings))
    if state is None:
        print("Kate is not running (start it with `kate up`)")
        return 1
    ok = True
    for s in state.services:
        running = alive(s.pid)
        good = running and healthy(s.health_url)
        ok &= good
        word = "healthy" if good else ("not answering" if running else "stopped")
        print(f"{s.name:<15} {word:<14} pid {s.pid:<8} {s.url}")
    print(f"{'redis':<15} {'':<14} {'':<12} {mask_url(state.redis_url)}")
    return 0 if ok else 1


def down(settings: Settings, quiet: bool = False) -> int:
    from core.local_redis import stop_local_redis

    state = RunState.load(run_dir(settings))
    if state is None:
        if not quiet:
            print("Kate is not running")
        return 0
    stop_all([service.pid for service in reversed(state.services)])
    if not quiet:
        for service in reversed(state.services):
            print(f"stopped {service.name}")
    if state.redis_started:
        stop_local_redis(state.redis_url)
        if not quiet:
            where = settings.home / "redis"
            print(f"stopped the local Redis ({mask_url(state.redis_url)}); its data stays in {where}")
    RunState.clear(run_dir(settings))
    return 0
