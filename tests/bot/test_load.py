"""`kate bench load` on the running Kate (the `stack` fixture): a short crowd of employees, every vote
the bot acknowledged found in the feedback log, the report section written."""

from __future__ import annotations

import subprocess

from conftest import KATE

from core.settings import Settings
from knowledge.store import connect
from measure.bench_load import run_load, scripted_questions


def test_scripted_questions_cover_every_language():
    questions = scripted_questions()
    assert len(questions) >= 30
    assert any("congé" in q.lower() or "salaire" in q.lower() for q in questions)  # French
    assert any(any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in q) for q in questions)


def test_a_short_crowd_loses_no_feedback(stack):
    settings = Settings.from_env(stack.env)
    client = connect(stack.redis_url)
    result = run_load(settings, client, stack.rest_url, users=6, duration_s=20, think_s=(0.2, 1.0))
    kinds = {s.kind for s in result.samples}
    assert {"intranet", "scripted", "vote 👍"} <= kinds, kinds  # 👎 is 30% of votes: maybe none
    assert not result.errors, result.errors
    assert result.votes_acknowledged >= 3
    assert result.votes_recorded == result.votes_acknowledged and result.lost == 0


def test_bench_load_command_writes_its_section(stack, tmp_path):
    output = tmp_path / "benchmarks.md"
    args = [KATE, "bench", "load", "--users", "2", "--duration", "6", "--think", "0.2,0.5"]
    args += ["--output", str(output)]
    run = subprocess.run(args, capture_output=True, text=True, env=stack.env, timeout=300)
    assert run.returncode == 0, run.stderr
    text = output.read_text()
    assert "## Load: 2 simulated employees" in text and "**0 lost**" in text
    # what the action server's reader did, from its own /metrics, not assumed by the benchmark
    assert "The action server's reader during the run: " in text and "passages read" in text
