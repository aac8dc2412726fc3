"""The fetching policy (SSRF): what Kate's servers may fetch, checked on resolved addresses and on every
redirect hop, against real HTTP servers on two loopback addresses."""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import ClassVar
from urllib.parse import quote

import pytest
from servers import FixtureHandler, FixtureServer

from core.settings import Settings
from knowledge import FetchError, fetch_page
from knowledge.cache import PageCache
from knowledge.fetch_policy import DEFAULT_POLICY, FetchPolicy, PolicyRefused
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry


class OtherHostHandler(FixtureHandler):
    hits: ClassVar[Counter] = Counter()  # its own counter: did the second "machine" get a request?


@pytest.fixture(scope="module")
def server():
    with FixtureServer() as s:
        yield s


@pytest.fixture(scope="module")
def other():
    with FixtureServer(OtherHostHandler, host="127.0.0.2") as s:
        yield s


def via(server: FixtureServer, target: str) -> str:
    return server.url("/redirect?to=" + quote(target, safe=""))


@pytest.mark.parametrize(
    "address",
    ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254", "fd00:ec2::254", "100.100.100.200", "0.0.0.0"],
)
def test_metadata_and_link_local_addresses_are_refused_by_default(address):
    with pytest.raises(PolicyRefused, match="link-local, metadata"):
        DEFAULT_POLICY.check_address("x", ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.10", "172.16.5.4", "8.8.8.8"])
def test_intranet_addresses_stay_allowed_by_default(address):
    DEFAULT_POLICY.check_address("intranet", ipaddress.ip_address(address))  # no exception


def test_metadata_host_names_are_refused_without_resolving():
    with pytest.raises(PolicyRefused, match="metadata"):
        DEFAULT_POLICY.check("metadata.google.internal", 80)


def test_allow_and_deny_lists():
    policy = FetchPolicy.from_settings(allow="*.example.com, 10.20.0.0/16", deny="secret.example.com")
    policy.check_address("hr.example.com", ipaddress.ip_address("192.168.1.1"))  # allowed by name
    policy.check_address("wiki", ipaddress.ip_address("10.20.3.4"))  # allowed by network
    with pytest.raises(PolicyRefused, match="not in KATE_FETCH_ALLOW"):
        policy.check_address("wiki", ipaddress.ip_address("10.30.3.4"))
    with pytest.raises(PolicyRefused, match="KATE_FETCH_DENY"):  # deny beats allow
        policy.check_address("secret.example.com", ipaddress.ip_address("10.20.3.4"))
    explicit = FetchPolicy.from_settings(allow="169.254.10.0/24")  # an explicit allow beats the built-in list
    explicit.check_address("odd-intranet", ipaddress.ip_address("169.254.10.7"))
    with pytest.raises(PolicyRefused):
        explicit.check_address("odd-intranet", ipaddress.ip_address("169.254.169.254"))


def test_a_redirect_to_the_metadata_service_is_refused_before_connecting(server):
    with pytest.raises(FetchError, match=r"redirected to http://169\.254\.169\.254/.*link-local"):
        fetch_page(via(server, "http://169.254.169.254/latest/meta-data/iam/"), connect_timeout=5)


def test_every_redirect_hop_is_checked_and_a_denied_host_gets_no_request(server, other):
    OtherHostHandler.hits.clear()
    policy = FetchPolicy.from_settings(deny="127.0.0.2")
    hop2 = via(server, other.url("/site/en/leave.html"))  # 127.0.0.1 -> 127.0.0.1 -> 127.0.0.2
    with pytest.raises(FetchError, match=r"127\.0\.0\.2.*KATE_FETCH_DENY"):
        fetch_page(via(server, hop2), policy=policy)
    assert sum(OtherHostHandler.hits.values()) == 0
    page = fetch_page(via(server, hop2))  # the default policy lets the intranet redirect through
    assert "25 days" in page.text and page.final_url == other.url("/site/en/leave.html")
    assert OtherHostHandler.hits["/site/en/leave.html"] == 1


def test_a_denied_name_is_refused(server):
    port = server.httpd.server_address[1]
    with pytest.raises(FetchError, match="localhost is refused by KATE_FETCH_DENY"):
        fetch_page(
            f"http://localhost:{port}/site/en/leave.html", policy=FetchPolicy.from_settings(deny="localhost")
        )


def test_credentials_stay_with_their_origin(server, other, monkeypatch):
    monkeypatch.setenv("KATE_TEST_TOKEN", FixtureHandler.token)
    same = fetch_page(server.url("/redirect?to=/auth"), auth="bearer:KATE_TEST_TOKEN")
    assert "42 parking spaces" in same.text  # a redirect on the same server keeps the token
    with pytest.raises(FetchError, match="HTTP 401"):  # another host never receives it
        fetch_page(via(server, other.url("/auth")), auth="bearer:KATE_TEST_TOKEN")


def test_the_settings_policy_reaches_the_knowledge_layer(redis_client, server):
    settings = Settings.from_env({"KATE_FETCH_DENY": "127.0.0.0/8"})
    policy = FetchPolicy.from_settings(settings.fetch_allow, settings.fetch_deny)
    kn = Knowledge(
        SourceRegistry(redis_client), PageCache(redis_client), FetchLimits(timeout=1, policy=policy)
    )
    source = kn.registry.add(server.url("/site/en/leave.html"))
    status = kn.fetch_source(source)
    assert "KATE_FETCH_DENY" in status.error and status.n_passages == 0
