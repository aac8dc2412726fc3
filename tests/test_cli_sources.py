"""`kate sources ...` as an admin runs it: real Redis, real HTTP pages, subprocesses."""

from __future__ import annotations

import json

from redis_process import free_port
from servers import FixtureServer
from test_cli import kate


def test_sources_lifecycle(tmp_path, redis_client):
    env = {"KATE_SOURCES_FILE": str(tmp_path / "none.yml")}  # start empty: no seeded demo sources

    def run(*args: str):
        return kate("sources", *args, home=tmp_path, extra_env=env)

    with FixtureServer() as server:
        good, bad = server.url("/site/en/leave.html"), server.url("/500")
        assert run("list").stdout.startswith("no sources")
        refused = run("add", "ftp://files.example/x")
        assert refused.returncode == 2 and "only http and https" in refused.stderr
        assert run("add", "http://user:pw@hr.example/").returncode == 2
        added = run("add", good, "--title", "Leave", "--lang", "en", "--tag", "hr", "--by", "ana", "--fetch")
        assert added.returncode == 0 and "5 passages" in added.stdout, added.stderr
        dup = run("add", good.upper().replace("/SITE/EN/LEAVE.HTML", "/site/en/leave.html") + "#x")
        assert dup.returncode == 2 and "already a source" in dup.stderr
        assert run("add", bad).returncode == 0
        refresh = run("refresh")
        assert "FAIL" in refresh.stdout and "HTTP 500" in refresh.stdout and "1 failed" in refresh.stdout
        assert f"ok   {good}: 5 passages" in refresh.stdout  # fetched again (no ETag), still 5 passages
        listed = json.loads(run("list", "--json").stdout)
        assert [s["url"] for s in listed] == [good, bad]
        assert listed[0]["added_by"] == "ana" and listed[0]["tags"] == ["hr"]
        assert listed[1]["status"]["error"].endswith("HTTP 500")
        shown = run("show", good)
        assert "Leave and public holidays > Annual leave" in shown.stdout and "25 days" in shown.stdout
        assert run("disable", bad).returncode == 0
        assert run("list").stdout.splitlines()[1].startswith("off")
        exported = run("export", "-o", str(tmp_path / "out.yml"))
        assert exported.returncode == 0 and "enabled: false" in (tmp_path / "out.yml").read_text()
        assert run("remove", good).returncode == 0 and run("remove", good).returncode == 2
        imported = run("import", str(tmp_path / "out.yml"))
        assert "imported 1 sources" in imported.stdout and "already a source" in imported.stderr
        assert run("show", "http://nowhere.example/").returncode == 2


def test_sources_with_redis_down_fail_clearly(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    result = kate("sources", "list", home=tmp_path, extra_env={"REDIS_URL": dead})
    assert result.returncode == 3 and "does not answer" in result.stderr and dead in result.stderr
