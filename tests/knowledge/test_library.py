"""Sources -> fetch -> passages -> cache, against real Redis and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest
from servers import FixtureHandler, FixtureServer

from knowledge.cache import PageCache
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry

LIMITS = FetchLimits(timeout=1.0, total_timeout=2.0, max_bytes=5_000_000, workers=8)


@pytest.fixture(scope="module")
def server():
    with FixtureServer() as s:
        yield s


def make_knowledge(client, ttl: float = 3600.0, limits: FetchLimits = LIMITS) -> Knowledge:
    return Knowledge(SourceRegistry(client), PageCache(client, ttl=ttl), limits)


# path, expected error fragment ("" = fetched fine), expected HTTP status, a text that must be in the passages
CASES = [
    ("/site/en/leave.html", "", 200, "25 days of paid annual leave"),
    ("/site/fr/teletravail.html", "", 200, "trois jours par semaine"),
    ("/site/ja/payroll.html", "", 200, "給与は毎月25日"),
    ("/missing", "HTTP 404", 404, None),
    ("/500", "HTTP 500", 500, None),
    ("/slow", "no answer within", 0, None),
    ("/loop", "redirects", 0, None),
    ("/huge50", "bytes limit", 200, None),
    ("/pdf", "not a web page", 200, None),
    ("/binary-as-html", "binary", 200, None),
    ("/gb2312-mislabeled", "", 200, "员工每年享有十五天带薪年假"),
    ("/sjis", "", 200, "年次有給休暇は20日です"),
    ("/eucjp", "", 200, "住宅手当は月額二万円です"),
    ("/big5", "", 200, "員工每年享有十五天特休假"),
    ("/cp1252", "", 200, "Les congés d'été sont posés avant le 15 avril"),
    ("/malformed", "", 200, "A lost badge costs 15 euros to replace."),
    ("/injection", "", 200, "Leave is 25 days."),
    ("/empty", "no text found", 200, None),
]


def test_every_kind_of_page_gets_its_status_and_none_breaks_the_refresh(redis_client, server):
    kn = make_knowledge(redis_client)
    for path, *_ in CASES:
        kn.registry.add(server.url(path))
    t0 = time.perf_counter()
    results = kn.refresh()
    elapsed = time.perf_counter() - t0
    assert elapsed < 6, f"parallel refresh took {elapsed:.1f} s"  # the slow page costs its timeout once
    for path, error, http_status, text in CASES:
        url = server.url(path)
        status = results[url]
        stored = kn.registry.get(url).status
        assert stored == status and status.fetched_at > 0
        assert status.http_status == http_status, path
        if error:
            assert error in status.error, (path, status.error)
        else:
            assert status.ok and status.n_passages > 0, (path, status.error)
            page = kn.cache.get(url)
            assert text in "\n".join(p.text for p in page.passages), path
    assert kn.cache.get(server.url("/500")) is None


def test_injected_markup_never_reaches_the_passages(redis_client, server):
    kn = make_knowledge(redis_client)
    kn.registry.add(server.url("/injection"))
    kn.refresh()
    text = "\n".join(p.text for p in kn.cache.get(server.url("/injection")).passages)
    assert "alert(" not in text.replace("<script>alert(3)</script>", "")  # only the escaped one, as text
    assert "<script>alert(3)</script> is shown as text." in text
    for leaked in ("secret 99 days", "color:red", "iframe text", "enable js", "onerror"):
        assert leaked not in text


def test_passages_keep_section_paths_and_languages(redis_client, server):
    kn = make_knowledge(redis_client)
    for page in ("en/leave.html", "fr/teletravail.html", "ja/payroll.html"):
        kn.registry.add(server.url(f"/site/{page}"))
    reading = kn.passages_for_answering(budget_s=5)
    assert reading.missing == [] and reading.stale == [] and len(reading.fetched) == 3
    by_text = {p.text.split("\n")[0]: p for p in reading.passages}
    holidays = by_text["Public holidays 2026"]
    assert holidays.section == "Leave and public holidays > Public holidays 2026"
    assert "Date: 1 May · Holiday: Labour Day" in holidays.text.split("\n")  # a table row stays whole
    assert {p.language for p in reading.passages} == {"en", "fr", "ja"}
    assert all(p.url.startswith(server.base) and p.title for p in reading.passages)
    again = kn.passages_for_answering(budget_s=5)  # warm: straight from the cache, nothing fetched
    assert again.fetched == [] and [p.text for p in again.passages] == [p.text for p in reading.passages]


def test_unchanged_pages_cost_a_304_and_changed_ones_are_replaced(redis_client, server):
    kn = make_knowledge(redis_client)
    url = server.url("/changing")
    kn.registry.add(url)
    FixtureHandler.changing_version = 1
    first = kn.refresh()[url]
    assert first.http_status == 200 and not first.not_modified
    second = kn.refresh()[url]
    assert second.http_status == 304 and second.not_modified and second.n_passages == 1
    assert "Version 1" in kn.cache.get(url).passages[0].text
    FixtureHandler.changing_version = 2
    third = kn.refresh()[url]
    assert third.http_status == 200 and "Version 2" in kn.cache.get(url).passages[0].text
    forced = kn.refresh(force=True)[url]  # no conditional headers: a full download
    assert forced.http_status == 200


def test_a_failed_refresh_keeps_the_cached_text(redis_client, server):
    kn = make_knowledge(redis_client, ttl=0.01)
    url = server.url("/changing")
    kn.registry.add(url)
    FixtureHandler.changing_version = 7
    kn.refresh()
    FixtureHandler.changing_version = 0  # the next fetches fail
    status = kn.refresh(force=True)[url]
    assert status.http_status == 503 and "Version 7" in kn.cache.get(url).passages[0].text
    reading = kn.passages_for_answering(budget_s=2)
    assert reading.stale == [url] and "Version 7" in reading.passages[0].text


def test_the_time_budget_serves_stale_copies_and_the_slow_fetch_lands_later(redis_client, server):
    kn = make_knowledge(redis_client, ttl=0.5, limits=FetchLimits(timeout=5.0, total_timeout=6.0))
    slow, fast = server.url("/slow"), server.url("/site/en/leave.html")
    kn.registry.add(fast)
    kn.registry.add(slow)
    # a cached copy of the slow page from earlier
    from knowledge.cache import CachedPage
    from qa_engine.types import Passage

    old = Passage("Old slow page text.", url=slow, title="Slow", id=f"{slow}#0")
    kn.cache.put(CachedPage(slow, slow, "Slow", "en", [old], fetched_at=time.time() - 60))
    t0 = time.perf_counter()
    reading = kn.passages_for_answering(budget_s=0.8)
    assert time.perf_counter() - t0 < 1.5  # the budget, not the 3 s page
    assert reading.stale == [slow] and fast in reading.fetched
    assert any(p.text == "Old slow page text." for p in reading.passages)
    assert any("25 days" in p.text for p in reading.passages)
    deadline = time.monotonic() + 8
    while "too late" not in "".join(p.text for p in kn.cache.get(slow).passages):
        assert time.monotonic() < deadline, "the background fetch never landed in the cache"
        time.sleep(0.1)
    kn.close()


def test_one_fetch_per_url_however_many_questions_at_once(redis_client, server):
    kn = make_knowledge(redis_client)
    url = server.url("/site/ja/payroll.html")
    kn.registry.add(url)
    before = FixtureHandler.hits["/site/ja/payroll.html"]
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(kn.passages_for_answering(budget_s=5)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert FixtureHandler.hits["/site/ja/payroll.html"] - before == 1
    assert all(r.passages and r.missing == [] for r in results)


def test_disabled_sources_are_not_read(redis_client, server):
    kn = make_knowledge(redis_client)
    a, b = server.url("/site/en/leave.html"), server.url("/site/fr/teletravail.html")
    kn.registry.add(a)
    kn.registry.add(b, enabled=False)
    reading = kn.passages_for_answering(budget_s=5)
    assert reading.sources == 1 and {p.url for p in reading.passages} == {a}


def test_credentials_come_from_the_environment_and_are_never_recorded(redis_client, server, monkeypatch):
    kn = make_knowledge(redis_client)
    url = server.url("/auth")
    kn.registry.add(url, auth="bearer:KATE_TEST_TOKEN")
    monkeypatch.delenv("KATE_TEST_TOKEN", raising=False)
    status = kn.refresh()[url]
    assert "KATE_TEST_TOKEN is not set" in status.error
    monkeypatch.setenv("KATE_TEST_TOKEN", "wrong")
    assert kn.refresh()[url].http_status == 401
    monkeypatch.setenv("KATE_TEST_TOKEN", FixtureHandler.token)
    status = kn.refresh()[url]
    assert status.ok and "42 parking spaces" in kn.cache.get(url).passages[0].text
    everything = str({k: redis_client.dump(k) for k in redis_client.keys("*")})
    assert FixtureHandler.token not in everything
