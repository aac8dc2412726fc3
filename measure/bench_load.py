"""`kate bench load`: simulated employees chatting with a running Kate through Rasa's REST channel.

Each employee is a thread with its own conversation: it asks a question (half intranet questions from
the demo intranet's question list, half scripted HR questions from the bot's training examples, in
English, French and Japanese), waits for the reply, votes 👍 or 👎 on it when the reply offers the
buttons (as the widget does, by sending the button's payload), and thinks a few seconds before the next
message. At the end, every vote Kate acknowledged is looked for in the feedback log: a vote that was
acknowledged but is not there is *lost*, and must be 0.

It measures the whole product path (Rasa NLU and policy, the action server, fetch cache, ranker and
reader, Redis), on whatever Kate is running (`kate up`), with every request bounded by a timeout.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from core.settings import Settings
from knowledge import demo_questions
from knowledge.feedback import FeedbackLog

from .bench import write_section

SECTION = "load"
BOT_NLU = Path(__file__).resolve().parents[1] / "bot" / "data" / "nlu"  # <language>/<concern>.yml
SCRIPTED_INTENTS = {"leave_policy", "payroll_date", "remote_work", "offices", "working_hours", "benefits"}
# the start of the action server's thanks for a vote, in each language (actions/messages.py thanks_up/down)
THANKS = ("Thanks for", "Merci", "ありがとう", "Danke für", "Gracias por")


def scripted_questions() -> list[str]:
    """Training examples of scripted HR intents, in every language of the bot."""
    out = []
    for path in sorted(BOT_NLU.glob("*/hr.yml")):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
            if item.get("intent") in SCRIPTED_INTENTS:
                lines = [x.strip()[2:] for x in str(item.get("examples", "")).splitlines()]
                out += [x for x in lines if x][:3]
    return out


@dataclass
class Sample:
    kind: str  # "intranet" | "scripted" | "vote 👍" | "vote 👎"
    seconds: float
    ok: bool
    text: str = ""  # what was sent (the slowest messages are printed at the end)


@dataclass
class LoadResult:
    users: int
    duration_s: float
    samples: list[Sample] = field(default_factory=list)
    votes_acknowledged: int = 0
    votes_recorded: int = 0
    errors: Counter = field(default_factory=Counter)
    reading: str = ""  # what the action server's reader did during the run (its /metrics), when it says

    @property
    def lost(self) -> int:
        return max(0, self.votes_acknowledged - self.votes_recorded)


class Employee(threading.Thread):
    def __init__(self, n: int, url: str, deadline: float, think_s: tuple[float, float], result: LoadResult,
                 lock: threading.Lock, questions: dict[str, list[str]], seed: int) -> None:  # fmt: skip
        super().__init__(name=f"employee-{n}", daemon=True)
        self.sender = f"bench-load-{uuid.uuid4().hex[:8]}-{n}"
        self.url, self.deadline, self.think_s = url, deadline, think_s
        self.result, self.lock, self.questions = result, lock, questions
        self.rng = random.Random(seed)

    def send(self, kind: str, text: str) -> list[dict] | None:
        body = json.dumps({"sender": self.sender, "message": text}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                replies = json.loads(response.read())
            ok = bool(replies)
            error = None if ok else "empty reply"
        except (urllib.error.URLError, TimeoutError, ValueError, OSError) as exc:
            replies, ok, error = None, False, type(exc).__name__
        with self.lock:
            self.result.samples.append(Sample(kind, time.perf_counter() - t0, ok, text))
            if error:
                self.result.errors[f"{kind}: {error}"] += 1
        return replies if ok else None

    def run(self) -> None:
        time.sleep(self.rng.uniform(0, self.think_s[1]))  # employees do not all start at once
        while time.monotonic() < self.deadline:
            kind = self.rng.choice(("intranet", "scripted"))
            replies = self.send(kind, self.rng.choice(self.questions[kind]))
            buttons = [b for r in replies or [] for b in r.get("buttons", []) if "/feedback" in b["payload"]]
            if buttons and time.monotonic() < self.deadline:
                time.sleep(self.rng.uniform(0.5, 2.0))
                vote = buttons[0] if self.rng.random() < 0.7 else buttons[-1]  # 👍 70%, 👎 30%
                # a 👎 on a scripted answer has the intranet read: only a 👍 is pure bookkeeping
                kind = "vote 👍" if '"vote":"up"' in vote["payload"].replace(" ", "") else "vote 👎"
                answer = self.send(kind, vote["payload"])
                if answer and any(t in r.get("text", "") for r in answer for t in THANKS):
                    with self.lock:
                        self.result.votes_acknowledged += 1
            time.sleep(self.rng.uniform(*self.think_s))


def run_load(
    settings: Settings,
    client: object,
    rest_url: str,
    users: int,
    duration_s: float,
    think_s: tuple[float, float],
) -> LoadResult:
    questions = {"intranet": [i["question"] for i in demo_questions()], "scripted": scripted_questions()}
    result, lock = LoadResult(users, duration_s), threading.Lock()
    started = time.time()
    deadline = time.monotonic() + duration_s
    employees = [
        Employee(n, rest_url, deadline, think_s, result, lock, questions, seed=n) for n in range(users)
    ]
    for e in employees:
        e.start()
    while any(e.is_alive() for e in employees):
        time.sleep(5)
        done = len(result.samples)
        print(f"bench load: {done} messages, {sum(not s.ok for s in result.samples)} errors", file=sys.stderr)
        if time.monotonic() > deadline + 120:  # every request has its own 60 s timeout: this is a bound
            break
    result.duration_s = time.time() - started
    senders = {e.sender for e in employees}
    log = FeedbackLog(client, settings.redis_prefix)  # type: ignore[arg-type]
    result.votes_recorded = sum(1 for f in log.entries(since=started - 1) if f.conversation_id in senders)
    return result


READER_COUNTERS = {
    "kate_reader_forward_calls_total": "reader calls",
    "kate_reader_passages_total": "passages read",
    "kate_reader_remembered_total": "questions answered from a remembered reading",
    "kate_reader_busy_bound_total": "questions read with the busy bound (the reader behind)",
}


def reader_counters(url: str) -> dict[str, float] | None:
    """The action server's reader counters (its `/metrics`), or None when it has none to give (a reader
    service reads, or an older server): what the server did, not what this process assumes it did."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read(1_000_000).decode("utf-8", "replace")
    except (urllib.error.URLError, TimeoutError, OSError):
        return None
    found = {}
    for line in text.splitlines()[:1000]:
        name, _, value = line.partition(" ")
        if name in READER_COUNTERS:
            try:
                found[name] = float(value)
            except ValueError:
                continue
    return found or None


def render(r: LoadResult, command: str, setup: str, think_s: tuple[float, float]) -> str:
    def row(kind: str, samples: list[Sample]) -> str:
        times = [s.seconds for s in samples if s.ok]
        pct = (lambda q: f"{np.percentile(times, q):.2f} s") if times else (lambda q: "-")
        errors = sum(not s.ok for s in samples)
        return f"| {kind} | {len(samples)} | {pct(50)} | **{pct(95)}** | {pct(99)} | {errors} |"

    kinds = {k: [s for s in r.samples if s.kind == k] for k in ("intranet", "scripted", "vote 👍", "vote 👎")}
    ok = sum(s.ok for s in r.samples)
    why = ": " + ", ".join(f"{k} x{v}" for k, v in r.errors.items()) if r.errors else ""
    lines = [
        f"<!-- bench:{SECTION} -->",
        f"## Load: {r.users} simulated employees for {r.duration_s / 60:.1f} minutes (REST channel)",
        "",
        f"Command: `{command}` (against Kate started by `kate up`)  ",
        f"Setup: {setup}. Each employee asks, waits for the reply, votes on it when offered (👍 70%), and "
        f"thinks {think_s[0]:g}-{think_s[1]:g} s between messages. Intranet questions: the demo intranet's "
        f"{len(demo_questions())} questions (en/fr/ja); scripted: the bot's training examples of six HR "
        "intents. A 👎 on a scripted answer has Kate read the intranet: it is a question too.",
        "",
        "| message | sent | p50 | p95 | p99 | errors |",
        "|---|---:|---:|---:|---:|---:|",
        *[row(k, v) for k, v in kinds.items()],
        row("**all**", r.samples),
        "",
        f"Throughput: **{ok / r.duration_s:.1f} messages/s** answered ({ok} in {r.duration_s:.0f} s), "
        f"{len(r.samples) - ok} errors{why}.  ",
        f"Feedback: {r.votes_acknowledged} votes acknowledged by the bot, {r.votes_recorded} in the feedback "
        f"log: **{r.lost} lost**.",
        *([f"The action server's reader during the run: {r.reading}."] if r.reading else []),
        "",
        f"<!-- /bench:{SECTION} -->",
    ]
    return "\n".join(lines)


def bench_load(
    settings: Settings,
    client: object,
    *,
    output: Path,
    users: int,
    duration_s: float,
    think_s: tuple[float, float],
    setup: str,
    command: str,
) -> LoadResult:
    rest_url = f"http://127.0.0.1:{settings.rasa_port}/webhooks/rest/webhook"
    metrics_url = f"http://127.0.0.1:{settings.actions_port}/metrics"
    before = reader_counters(metrics_url)
    result = run_load(settings, client, rest_url, users, duration_s, think_s)
    after = reader_counters(metrics_url)
    if before is not None and after is not None:
        result.reading = ", ".join(
            f"{after.get(k, 0) - before.get(k, 0):,.0f} {what}" for k, what in READER_COUNTERS.items()
        )
    write_section(output, render(result, command, setup, think_s), SECTION)
    times = [s.seconds for s in result.samples if s.ok]
    print(
        f"bench load: {len(result.samples)} messages, p95 {np.percentile(times, 95) if times else 0:.2f} s, "
        f"median {statistics.median(times) if times else 0:.2f} s, lost votes {result.lost}",
        file=sys.stderr,
    )
    for sample in sorted(result.samples, key=lambda x: x.seconds, reverse=True)[:8]:
        print(f"  slowest: {sample.seconds:5.2f} s  {sample.kind:9}  {sample.text[:70]}", file=sys.stderr)
    return result
