"""Fetching pages from a real local HTTP server and turning them into passages."""

import pytest
from servers import FixtureServer, demo_file

from knowledge import FetchError, fetch_page, page_passages, read_local_page
from knowledge.fetch import decode_body, validate_url
from knowledge.passages import html_to_passages, text_to_passages


@pytest.fixture(scope="module")
def server():
    with FixtureServer() as s:
        yield s


def test_demo_page_keeps_sections_lists_and_tables(server):
    page = fetch_page(server.url("/site/en/leave.html"))
    title, passages = page_passages(page)
    assert title.startswith("Leave and public holidays")
    texts = "\n".join(p.text for p in passages)
    assert "Home" not in texts and "Privacy" not in texts and "analytics" not in texts  # nav, footer, script
    annual = next(p for p in passages if p.section.endswith("Annual leave"))
    assert annual.text.startswith("Annual leave\n")
    assert (
        "Up to 5 unused days can be carried over until 31 March of the following year."
        in annual.text.split("\n")
    )
    holidays = next(p for p in passages if "Public holidays" in p.section)
    assert "Date: 6 April · Holiday: Easter Monday" in holidays.text.split("\n")
    assert all(p.url == server.url("/site/en/leave.html") and p.title == title for p in passages)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing", "HTTP 404"),
        ("/500", "HTTP 500"),
        ("/loop", "redirects"),
        ("/pdf", "not a web page"),
        ("/binary-as-html", "binary"),
        ("/huge", "limit"),
    ],
)
def test_bad_pages_give_clear_errors(server, path, message):
    with pytest.raises(FetchError, match=message):
        fetch_page(server.url(path), max_bytes=1_000_000)


def test_slow_page_times_out(server):
    with pytest.raises(FetchError, match="no answer within"):
        fetch_page(server.url("/slow"), read_timeout=0.5)


def test_dead_host_is_reported():
    with pytest.raises(FetchError, match="cannot connect"):
        fetch_page("http://127.0.0.1:9/", connect_timeout=1)


def test_odd_encodings_come_out_right(server):
    _, passages = page_passages(fetch_page(server.url("/sjis")))
    assert "年次有給休暇は20日です。" in passages[0].text
    page = fetch_page(server.url("/gb2312-mislabeled"))
    assert "员工每年享有十五天带薪年假" in page.text
    assert decode_body("Café déjà".encode("cp1252"), None)[0] == "Café déjà"


@pytest.mark.parametrize(
    "url",
    ["ftp://intranet/x", "javascript:alert(1)", "http://", "https://user:pw@intranet/x", "intranet/page"],
)
def test_malformed_urls_are_refused(url):
    with pytest.raises(FetchError):
        validate_url(url)


def test_local_files_and_plain_text(tmp_path):
    page = read_local_page(demo_file("ja/payroll.html"))
    title, passages = page_passages(page)
    assert title.startswith("給与と支払日") and any("毎月25日" in p.text for p in passages)
    passages = text_to_passages("First paragraph.\n\nSecond one\nstill second.", url="file:///x")
    assert [p.text for p in passages] == ["First paragraph.\nSecond one still second."]
    (tmp_path / "bin.html").write_bytes(b"\x00\x01\x02")
    with pytest.raises(FetchError, match="binary"):
        read_local_page(tmp_path / "bin.html")


def test_passages_are_bounded():
    html = "<main>" + "".join(f"<h2>S{i}</h2><p>text {i}</p>" for i in range(5000)) + "</main>"
    _, passages = html_to_passages(html)
    assert len(passages) == 2000


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (
            "<p>Les salariés ont droit à 25 jours de congés payés par an, après la période d'essai.</p>",
            "cp1252",
        ),
        (
            "<p>年次有給休暇は20日です。在宅勤務は週3日まで可能です。給与は毎月25日に支払われます。</p>",
            "shift_jis",
        ),
        (
            "<p>年次有給休暇は20日です。在宅勤務は週3日まで可能です。給与は毎月25日に支払われます。</p>",
            "euc_jp",
        ),
        ("<p>员工每年享有十五天带薪年假。远程办公每周最多三天。工资每月二十五日发放。</p>", "gb2312"),
        ("<p>員工每年享有十五天帶薪年假。遠端辦公每週最多三天。薪資每月二十五日發放。</p>", "big5"),
    ],
)
def test_undeclared_legacy_encodings_are_detected(text, encoding):
    assert decode_body(text.encode(encoding), None)[0] == text


def test_nested_blocks_keep_their_text_once():
    html = (
        "<main><h2>Quotes</h2><blockquote><p>First quoted paragraph.</p><p>Second one.</p></blockquote>"
        "<dl><dt>Term</dt><dd><p>Definition text.</p></dd></dl>"
        "<ul><li>Item with <ul><li>nested item</li></ul></li></ul></main>"
    )
    _, passages = html_to_passages(html)
    lines = [line for p in passages for line in p.text.split("\n")]
    assert lines == [
        "Quotes",
        "First quoted paragraph.",
        "Second one.",
        "Term",  # a <dt>/<dd> pair is its own section (a FAQ pair: the term, then its definition)
        "Definition text.",
        "Quotes",
        "Item with nested item",
    ]
    assert [p.layout for p in passages] == ["h p p", "q p", "h u1"]
