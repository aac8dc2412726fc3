"""The feedback log: a Redis stream that keeps every vote, survives a Redis restart, and exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from redis_process import RedisProcess
from test_cli import kate

from knowledge.feedback import FeedbackEntry, FeedbackError, FeedbackLog, export
from knowledge.store import connect


def vote(i: int, **kw: object) -> FeedbackEntry:
    base = dict(conversation_id=f"c{i}", vote="up", kind="qa", question=f"question {i}", answer="25 days",
                source_url="http://hr.example/leave", source_title="Leave", score=7.5, language="en",
                model="offline:kate-reader-e5-small")  # fmt: skip
    return FeedbackEntry(**{**base, **kw})


def test_votes_are_stored_in_order_with_every_field(redis_client):
    log = FeedbackLog(redis_client)
    first = log.add(vote(1))
    second = log.add(vote(2, vote="down", kind="scripted", answer="utter_leave_policy", score=None))
    assert first.id and second.id and first.time > 0 and log.count() == 2
    got = list(log.entries())
    assert got == [first, second]
    assert got[1].score is None and got[1].answer == "utter_leave_policy"


def test_bad_votes_are_refused_and_huge_messages_cut(redis_client):
    log = FeedbackLog(redis_client)
    with pytest.raises(FeedbackError, match="vote"):
        log.add(vote(1, vote="meh"))
    with pytest.raises(FeedbackError, match="kind"):
        log.add(vote(1, kind="other"))
    with pytest.raises(FeedbackError, match="conversation_id"):
        log.add(vote(1, conversation_id=""))
    stored = log.add(vote(1, question="x" * 10_000))
    assert len(next(log.entries()).question) == 4000 and stored.id
    assert log.count() == 1


def test_time_window_and_paging(redis_client):
    log = FeedbackLog(redis_client)
    for i in range(1203):  # more than two pages of 500
        log.add(vote(i, time=1_000_000.0 + i))
    assert [e.conversation_id for e in log.entries()][-1] == "c1202"
    assert sum(1 for _ in log.entries()) == 1203
    newest = [e.conversation_id for e in log.latest(1001)]  # newest first, across pages, exactly as many
    assert newest == [f"c{i}" for i in range(1202, 201, -1)]
    assert sum(1 for _ in log.latest(5000)) == 1203
    now = datetime.now(UTC).timestamp()
    assert sum(1 for _ in log.entries(since=now - 3600)) == 1203  # stream ids are the time they were stored
    assert sum(1 for _ in log.entries(until=now - 3600)) == 0


def test_acknowledged_votes_survive_a_redis_restart(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    try:
        log = FeedbackLog(connect(server.url))
        stored = log.add(vote(1))
        server.stop()
        server.start()
        assert list(FeedbackLog(connect(server.url)).entries()) == [stored]
    finally:
        server.stop()


def test_csv_and_jsonl_exports_are_safe_to_open(redis_client):
    log = FeedbackLog(redis_client)
    log.add(vote(1, question='=HYPERLINK("http://evil.example","click")', answer="réponse, avec « virgule »"))
    rows = list(csv.DictReader(io.StringIO("".join(export(log.entries(), "csv")))))
    assert rows[0]["question"].startswith("'=HYPERLINK") and rows[0]["answer"] == "réponse, avec « virgule »"
    lines = "".join(export(log.entries(), "jsonl")).splitlines()
    assert json.loads(lines[0])["question"].startswith("=HYPERLINK")  # JSON is data, not a spreadsheet
    assert "".join(export(iter([]), "csv")).startswith("conversation_id,vote,kind")
    with pytest.raises(FeedbackError):
        list(export(iter([]), "xml"))


def test_kate_feedback_export_command(tmp_path, redis_client):
    FeedbackLog(redis_client).add(vote(1))
    out = tmp_path / "feedback.csv"
    result = kate("feedback", "export", "--format", "csv", "-o", str(out), home=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 1 and rows[0]["source_title"] == "Leave"
    jsonl = kate("feedback", "export", "--format", "jsonl", "--since", "2000-01-01", home=tmp_path)
    assert json.loads(jsonl.stdout.splitlines()[0])["vote"] == "up"
    assert (
        kate("feedback", "export", "--until", "2000-01-01", home=tmp_path).stdout.count("\n") == 1
    )  # header
    bad = kate("feedback", "export", "--since", "last tuesday", home=tmp_path)
    assert bad.returncode == 2 and "not a date" in bad.stderr
