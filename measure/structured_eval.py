"""`kate qa structured`: answers an employee can act on, measured through the running bot.

A company Kate was not built on (Lumen Logistics, `measure/data/lumen-intranet`, 14 pages in en/fr/ja) and
93 questions about it (`measure/data/lumen-questions.json`): lists of documents, numbered procedures, table
cells, FAQ answers, a planted conflict (27 days on one page, 25 on a forgotten handbook), follow-ups, a
page meant for French employees and one restricted to managers. This starts a whole Kate of its own
(`kate up --detach`: real Rasa, real action server, the pages served over HTTP, its own Redis prefix and
a fresh audience secret), asks every question through the REST channel as an employee would (with a
signed token where the item names an employee), scores the replies and stops it.

Scores: a list or steps question is right when the reply holds every item and links the page; a table,
FAQ, fact, follow-up or audience question when it holds an accepted answer and links the page; a conflict
when both pages are linked; a restricted item when the restricted page is never linked for an outsider.
Items are split `tune` / `report`: settings were chosen on the first only.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.settings import Settings
from knowledge.audience import Employee, sign
from knowledge.demo_server import serve_demo_site

DATA = Path(__file__).parent / "data"
SITE = DATA / "lumen-intranet"
QUESTIONS = DATA / "lumen-questions.json"
PREFIX = "kate-structured:"
# who each page is for (knowledge/audience.py); every other page is for everyone
TAGS = {
    "fr/titres-restaurant.html": ["country:fr"],
    "fr/teletravail.html": ["country:fr"],
    "en/managers-bonus.html": ["group:managers", "restricted"],
}
KINDS = ("list", "steps", "table", "faq", "fact", "conflict", "followup", "audience", "restricted")


@dataclass
class Result:
    item: dict
    reply: str
    ok: bool
    why: str = ""


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def score(
        self, kind: str | None = None, split: str | None = None, batch: int | None = None
    ) -> tuple[int, int]:
        rows = [
            r
            for r in self.results
            if (kind is None or r.item["kind"] == kind)
            and (split is None or r.item["split"] == split)
            and (batch is None or r.item.get("batch", 1) == batch)
        ]
        return sum(r.ok for r in rows), len(rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sources_file(base: str, folder: Path) -> Path:
    entries = []
    for page in sorted(SITE.glob("*/*.html")):
        name = page.relative_to(SITE).as_posix()
        entry = {"url": f"{base}/{name}", "language": name.split("/")[0]}
        if name in TAGS:
            entry["tags"] = TAGS[name]
        entries.append(entry)
    path = folder / "lumen-sources.yml"
    path.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True), encoding="utf-8")
    return path


def reply_text(messages: list[dict]) -> str:
    return "\n\n".join(str(m.get("text") or "") for m in messages)


def judge(item: dict, reply: str, base: str) -> tuple[bool, str]:
    """Whether a reply is right for an item, and what was missing when it is not."""
    reply = reply.replace("**", "")  # the widget's bold marks are not part of the answer
    low = reply.lower()

    def linked(page: str) -> bool:
        return f"{base}/{page}" in reply

    if item.get("never") and linked(item["never"]):
        return False, "the restricted page was linked"
    if item["kind"] == "conflict":
        missing = [p for p in item["pages"] if not linked(p)]
        return not missing, f"not linked: {missing}" if missing else ""
    if "items" in item:
        missing = [i for i in item["items"] if i.lower() not in low]
        if missing:
            return False, f"{len(missing)} of {len(item['items'])} items missing"
    elif "answers" in item and not any(a.lower() in low for a in item["answers"]):
        return False, "no accepted answer"
    if item.get("page") and not linked(item["page"]):
        return False, "the page is not linked"
    return True, ""


class Bot:
    def __init__(self, rest_url: str, secret: str) -> None:
        self.rest_url = rest_url
        self.secret = secret

    def say(self, sender: str, message: str, employee: dict | None) -> list[dict]:
        body: dict = {"sender": sender, "message": message}
        if employee is not None:
            body["metadata"] = {"employee_token": sign(Employee.from_claims(employee), self.secret)}
        request = urllib.request.Request(
            self.rest_url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())


def ask_all(bot: Bot, items: list[dict], base: str, progress: bool = True) -> Run:
    run = Run()
    t0 = time.perf_counter()
    for n, item in enumerate(items, 1):
        sender = uuid.uuid4().hex
        employee = item.get("employee")
        if item.get("before"):
            bot.say(sender, item["before"], employee)
        reply = reply_text(bot.say(sender, item["question"], employee))
        ok, why = judge(item, reply, base)
        run.results.append(Result(item, reply, ok, why))
        if progress:
            print(f"  [{n}/{len(items)}] {'ok ' if ok else 'NO '} {item['kind']:<10} {item['question'][:60]}",
                  file=sys.stderr, flush=True)  # fmt: skip
    run.seconds = time.perf_counter() - t0
    return run


def clear_prefix(redis_url: str) -> None:
    from knowledge.store import connect

    client = connect(redis_url)
    keys = list(client.scan_iter(match=PREFIX + "*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def run_structured(settings: Settings, *, checkout: Path | None = None, progress: bool = True) -> Run:
    """Start a Kate on the Lumen intranet, ask every question through its REST channel, stop it.
    `checkout`: another copy of Kate's code to measure (e.g. the commit before a change)."""
    from core.local_redis import open_redis

    client = open_redis(settings)
    kwargs = client.connection_pool.connection_kwargs
    redis_url = f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    clear_prefix(redis_url)
    home = settings.home / "structured-eval"
    home.mkdir(parents=True, exist_ok=True)
    server, _ = serve_demo_site(port=_free_port(), root=SITE)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    secret = secrets.token_hex(16)
    env = {
        **os.environ,
        "KATE_HOME": str(home),
        "REDIS_URL": redis_url,
        "KATE_REDIS_PREFIX": PREFIX,
        "KATE_SOURCES_FILE": str(sources_file(base, home)),
        "KATE_AUDIENCE_SECRET": secret,
        "KATE_RASA_PORT": str(_free_port()),
        "KATE_ACTIONS_PORT": str(_free_port()),
        "KATE_DEMO_PORT": str(_free_port()),
        "KATE_WEB_PORT": str(_free_port()),
        "HF_HUB_OFFLINE": "1",
    }
    if checkout is not None:  # its own code, this checkout's Rasa environment
        env["PYTHONPATH"] = str(checkout)
        env.setdefault("KATE_RASA_VENV", str(settings.rasa_venv))
    kate = [sys.executable, "-m", "kate.cli"]
    cwd = str(checkout) if checkout is not None else None  # `python -m` looks in the working folder first
    items = json.loads(QUESTIONS.read_text(encoding="utf-8"))["items"]
    try:
        if progress:
            print(
                "structured: starting Kate on the Lumen intranet (kate up) ...", file=sys.stderr, flush=True
            )
        up = subprocess.run(
            [*kate, "up", "--detach"], env=env, cwd=cwd, capture_output=True, text=True, timeout=1800
        )
        if up.returncode != 0:
            raise RuntimeError(f"kate up failed:\n{up.stdout}\n{up.stderr}")
        subprocess.run(
            [*kate, "sources", "refresh"], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
        )
        bot = Bot(f"http://127.0.0.1:{env['KATE_RASA_PORT']}/webhooks/rest/webhook", secret)
        run = ask_all(bot, items, base, progress)
    finally:
        subprocess.run([*kate, "down"], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
        server.shutdown()
    for r in run.results:  # the replies name this run's port: keep them readable
        r.reply = r.reply.replace(base, "")
    return run


def render(run: Run, before: Run | None = None) -> str:
    def cell(r: Run | None, kind: str | None, split: str | None = None, batch: int | None = None) -> str:
        if r is None:
            return "-"
        ok, n = r.score(kind, split, batch)
        return f"{ok}/{n} ({100 * ok / max(n, 1):.0f}%)" if n else "-"

    pages = len(list(SITE.glob("*/*.html")))
    lines = [
        "<!-- bench:structured -->",
        "## Answers an employee can act on: a test intranet of another company",
        "",
        "Generated by `kate qa structured`: a whole Kate (real Rasa, action server, pages over HTTP) on the "
        f"Lumen Logistics test intranet (`measure/data/lumen-intranet`, {pages} pages en/fr/ja), "
        f"{len(run.results)} questions asked through the REST channel (`measure/data/lumen-questions.json`). "
        "A list or steps answer counts only with every item and the page linked; a conflict when both pages "
        "are linked; a restricted item when the managers' page is never linked for an outsider. `tune` items "
        "chose the settings; `report` items were only measured; batch 2 (four more pages, 34 questions) was "
        f"written before the changes it measures. {run.seconds:.0f} s for all questions.",
        "",
        "| kind | before: tune | before: report | now: tune | now: report | now: report, batch 2 "
        "| now: all |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in (*KINDS, None):
        name = kind or "**all**"
        lines.append(
            f"| {name} | {cell(before, kind, 'tune')} | {cell(before, kind, 'report')} "
            f"| {cell(run, kind, 'tune')} | {cell(run, kind, 'report')} | {cell(run, kind, 'report', 2)} "
            f"| {cell(run, kind)} |"
        )
    lines += ["", "| kind | lang | question | ok | why not |", "|---|---|---|:-:|---|"]
    for r in run.results:
        q = r.item["question"].replace("|", "/")
        if r.item.get("before"):
            q = f"{r.item['before']} → {q}"
        who = f" (as {r.item['employee']})" if r.item.get("employee") else ""
        ok = "yes" if r.ok else "no"
        lines.append(f"| {r.item['kind']} | {r.item['lang']} | {q}{who} | {ok} | {r.why} |")
    lines.append("<!-- /bench:structured -->")
    return "\n".join(lines)
