"""The sources registry on a real Redis: validation, CRUD, YAML seed/import/export, Redis going down."""

from __future__ import annotations

import pytest
from redis_process import RedisProcess

from knowledge.sources import FetchStatus, SourceError, SourceRegistry, normalize_url
from knowledge.store import StoreUnavailable, connect


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Intranet.Example.COM", "http://intranet.example.com/"),
        ("https://hr.example:443/leave#top", "https://hr.example/leave"),
        ("http://hr.example:8080/a?b=1", "http://hr.example:8080/a?b=1"),
        ("  http://127.0.0.1:8765/en/leave.html  ", "http://127.0.0.1:8765/en/leave.html"),
        ("http://[::1]:8000/x", "http://[::1]:8000/x"),
    ],
)
def test_urls_are_normalised(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("ftp://files.example/a", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http://user:pw@hr.example/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://hr.example/a b", "spaces"),
        ("http://hr.example:99999/", "malformed"),
        ("hr.example/leave", "only http and https"),
        ("http://hr.example/" + "a" * 3000, "2,048"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(raw, why):
    with pytest.raises(SourceError, match=why):
        normalize_url(raw)


def test_add_list_show_enable_remove(redis_client):
    reg = SourceRegistry(redis_client)
    a = reg.add("http://hr.example/leave", title="Leave", language="en", tags=["hr", " "], added_by="ana")
    reg.add("http://hr.example/paie", language="fr")
    assert [s.url for s in reg.list()] == ["http://hr.example/leave", "http://hr.example/paie"]  # order added
    got = reg.get("HTTP://HR.EXAMPLE/leave#x")
    assert got == a and got.tags == ["hr"] and got.added_by == "ana" and got.enabled
    assert reg.set_enabled(a.url, False).enabled is False
    assert [s.url for s in reg.list(enabled_only=True)] == ["http://hr.example/paie"]
    reg.remove("http://hr.example/leave")
    assert reg.get(a.url) is None and len(reg.list()) == 1
    with pytest.raises(SourceError, match="not a source"):
        reg.remove("http://hr.example/leave")


def test_duplicates_are_refused_whatever_the_spelling(redis_client):
    reg = SourceRegistry(redis_client)
    reg.add("http://hr.example/leave")
    with pytest.raises(SourceError, match="already a source"):
        reg.add("HTTP://hr.EXAMPLE:80/leave#section-2")
    assert len(reg.list()) == 1


def test_language_and_auth_are_checked_and_secrets_never_stored(redis_client, monkeypatch):
    reg = SourceRegistry(redis_client)
    with pytest.raises(SourceError, match="language"):
        reg.add("http://hr.example/a", language="english!")
    with pytest.raises(SourceError, match="auth"):
        reg.add("http://hr.example/a", auth="bearer:abc def")
    with pytest.raises(SourceError, match="auth"):
        reg.add("http://hr.example/a", auth="password:X")
    monkeypatch.setenv("WIKI_TOKEN", "tok-123-very-secret")
    reg.add("http://hr.example/a", auth="bearer:WIKI_TOKEN")
    dump = str(redis_client.hgetall("kate:source:http://hr.example/a")) + reg.export_yaml()
    assert "WIKI_TOKEN" in dump and "tok-123-very-secret" not in dump


def test_fetch_status_is_recorded(redis_client):
    reg = SourceRegistry(redis_client)
    reg.add("http://hr.example/a")
    reg.record_fetch("http://hr.example/a", FetchStatus(fetched_at=5.0, http_status=404, error="HTTP 404"))
    assert reg.get("http://hr.example/a").status.error == "HTTP 404"
    reg.record_fetch("http://gone.example/", FetchStatus(fetched_at=5.0))  # removed meanwhile: no ghost
    assert reg.get("http://gone.example/") is None


def test_yaml_seed_once_import_and_export_round_trip(redis_client, tmp_path):
    seed = tmp_path / "sources.yml"
    seed.write_text(
        "sources:\n"
        "  - url: ${BASE}/en/leave.html\n    title: Leave\n    language: en\n    tags: [demo]\n"
        "  - url: ${BASE}/fr/paie.html\n    enabled: false\n"
        "  - url: ftp://bad.example/\n"
        "  - title: no url\n",
        encoding="utf-8",
    )
    reg = SourceRegistry(redis_client)
    assert reg.seed_once(seed, {"BASE": "http://127.0.0.1:9999"}) == 2
    assert reg.seed_once(seed, {"BASE": "http://127.0.0.1:9999"}) == 0  # Redis is the truth afterwards
    reg.remove("http://127.0.0.1:9999/en/leave.html")
    assert reg.seed_once(seed, {"BASE": "http://127.0.0.1:9999"}) == 0  # a removal is respected
    exported = reg.export_yaml()
    assert "enabled: false" in exported and "127.0.0.1:9999/fr/paie.html" in exported
    redis_client.flushdb()
    added, problems = reg.import_yaml(exported)
    assert added == 1 and problems == [] and reg.list()[0].enabled is False
    added, problems = reg.import_yaml(seed.read_text(), {"BASE": "http://127.0.0.1:9999"})
    assert added == 1  # leave.html; paie.html is already there
    assert any("already a source" in p for p in problems) and any("only http" in p for p in problems)
    assert any("needs a url" in p for p in problems)
    with pytest.raises(SourceError, match="YAML"):
        reg.import_yaml("sources: [unclosed")


def test_redis_down_gives_a_clear_error_and_loses_nothing(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    try:
        reg = SourceRegistry(connect(server.url, timeout=1.0))
        reg.add("http://hr.example/leave", title="Leave")
        server.stop()
        with pytest.raises(StoreUnavailable, match=r"unreachable.*nothing was changed"):
            reg.add("http://hr.example/other")
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{server.port}"):
            reg.list()
        server.start()  # same port, same data folder (append-only file)
        reg = SourceRegistry(connect(server.url))
        assert [(s.url, s.title) for s in reg.list()] == [("http://hr.example/leave", "Leave")]
    finally:
        server.stop()


def test_seed_variables_come_from_an_allowlist_only():
    from knowledge.sources import url_variables

    env = {
        "KATE_URL_WIKI": "http://wiki",
        "REDIS_URL": "redis://:pw@r",
        "KATE_ADMIN_PASSWORD_HASH": "scrypt$x",
    }
    assert url_variables(env, "http://demo") == {
        "KATE_URL_WIKI": "http://wiki",
        "KATE_DEMO_URL": "http://demo",
    }
