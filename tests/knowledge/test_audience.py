"""Who a page is for and who asks: signed employee tokens and restricted sources (knowledge/audience.py),
through the real knowledge layer on a real Redis and real HTTP pages."""

from __future__ import annotations

import base64
import json
import time

import pytest
from redis_process import free_port

from knowledge.audience import Audience, Employee, TokenRejected, sign, verify
from knowledge.cache import PageCache
from knowledge.demo_server import serve_demo_site
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry

SECRET = "a-secret-the-intranet-shares-with-kate"
MANAGER = Employee(country="fr", site="lyon", groups=("managers",))


def test_a_signed_token_names_the_employee_and_only_the_right_secret_reads_it():
    token = sign(MANAGER, SECRET)
    assert verify(token, SECRET) == MANAGER
    with pytest.raises(TokenRejected, match="signature"):
        verify(token, "another secret")
    with pytest.raises(TokenRejected, match="expired"):
        verify(sign(MANAGER, SECRET, ttl_s=-1), SECRET)
    with pytest.raises(TokenRejected, match="KATE_AUDIENCE_SECRET"):
        verify(token, "")


def test_a_token_edited_in_the_browser_or_unsigned_is_refused():
    header, payload, signature = sign(Employee(groups=("staff",)), SECRET).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = ["managers"]  # promoted by hand
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRejected, match="signature"):
        verify(f"{header}.{forged}.{signature}", SECRET)
    none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(TokenRejected, match="HS256"):
        verify(f"{none}.{forged}.", SECRET)
    for junk in ["", "x", "a.b", "a.b.c", "é" * 5000]:
        with pytest.raises(TokenRejected):
            verify(junk, SECRET)


def test_no_expiry_means_no_token():
    header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"groups":["managers"]}').rstrip(b"=").decode()
    import hashlib
    import hmac

    mac = hmac.new(SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(TokenRejected, match="exp"):
        verify(f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}", SECRET)


def test_an_audience_is_every_key_and_any_value_of_one_key():
    lyon_managers = Audience.of(["group:managers", "site:lyon", "site:paris", "restricted", "hr"])
    assert lyon_managers.restricted and lyon_managers.targeted
    assert lyon_managers.includes(MANAGER)
    assert not lyon_managers.includes(Employee(site="lyon", groups=("engineers",)))
    assert not lyon_managers.includes(None)
    assert not Audience.of(["restricted"]).readable_by(MANAGER)  # restricted to nobody: a safe mistake
    assert Audience.of(["demo"]).readable_by(None) and not Audience.of(["demo"]).targeted


PAGES = {
    "x/general.html": "<main><p>Employees get a meal allowance of 9 euros per working day.</p></main>",
    "x/france.html": "<main><p>En France, le titre-restaurant vaut 11 euros par jour travaillé.</p></main>",
    "x/bonus.html": "<main><p>Managers receive a target bonus of 15% of their base salary.</p></main>",
}


class Site:
    def __init__(self, root) -> None:
        self.server, _ = serve_demo_site(port=free_port(), root=root)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/x{path}"


@pytest.fixture()
def knowledge(redis_client, tmp_path):
    (tmp_path / "x").mkdir()
    for path, body in PAGES.items():
        (tmp_path / path).write_text(body, encoding="utf-8")
    server = Site(tmp_path)
    try:
        registry = SourceRegistry(redis_client)
        registry.add(server.url("/general.html"))
        registry.add(server.url("/france.html"), tags=["country:fr"])
        registry.add(server.url("/bonus.html"), tags=["group:managers", "restricted"])
        kn = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2.0, total_timeout=4.0))
        kn.refresh()
        yield kn, server
        kn.close()
    finally:
        server.server.shutdown()


def texts(reading) -> str:
    return " ".join(p.text for p in reading.passages)


def test_a_restricted_page_is_never_read_for_someone_outside_its_audience(knowledge):
    kn, server = knowledge
    for outsider in (None, Employee(country="fr", groups=("engineers",))):
        reading = kn.passages_for_answering(5.0, outsider)
        assert "15%" not in texts(reading) and reading.withheld == 1
        assert not kn.readable(server.url("/bonus.html"), outsider)
    inside = kn.passages_for_answering(5.0, MANAGER)
    assert "15%" in texts(inside) and inside.withheld == 0
    assert kn.readable(server.url("/bonus.html"), MANAGER)
    assert "15%" in texts(kn.passages_for_answering(5.0, None, all_pages=True))  # indexing sees it all


def test_pages_for_the_employees_audience_are_preferred_and_others_are_not_hidden(knowledge):
    kn, server = knowledge
    french = kn.passages_for_answering(5.0, Employee(country="fr"))
    assert french.preferred == {server.url("/france.html")} and not french.elsewhere
    anonymous = kn.passages_for_answering(5.0, None)
    assert anonymous.elsewhere == {server.url("/france.html")} and not anonymous.preferred
    assert "11 euros" in texts(anonymous)  # not restricted: readable, only after the general pages


def test_tokens_expire_on_time():
    now = time.time()
    token = sign(MANAGER, SECRET, ttl_s=60, now=now)
    assert verify(token, SECRET, now=now + 59) == MANAGER
    with pytest.raises(TokenRejected):
        verify(token, SECRET, now=now + 61)
