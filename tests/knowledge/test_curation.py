"""Hidden passages and demoted pages, on a real Redis and a real page server: what the reader gets."""

from __future__ import annotations

from dataclasses import replace

import pytest
from servers import FixtureServer

from knowledge.cache import PageCache
from knowledge.curation import Curation, passage_key, visible
from knowledge.library import FetchLimits, Knowledge
from knowledge.sources import SourceRegistry
from knowledge.store import connect


@pytest.fixture
def knowledge(redis_client):
    kn = Knowledge(
        SourceRegistry(redis_client), PageCache(redis_client), FetchLimits(timeout=2, total_timeout=4)
    )
    yield kn
    kn.close()


def test_a_hidden_passage_is_not_read_until_shown_again_or_changed(knowledge, redis_server):
    with FixtureServer() as server:
        url = server.url("/site/en/leave.html")
        knowledge.registry.add(url)
        before = knowledge.passages_for_answering(5).passages
        assert len(before) >= 2
        stale = before[0]
        hidden = knowledge.curation.hide(stale, by="hr")
        assert (hidden.url, hidden.by) == (url, "hr") and hidden.excerpt in " ".join(stale.text.split())
        after = knowledge.passages_for_answering(5).passages
        assert [p.text for p in after] == [p.text for p in before[1:]]
        # the page's fixed text is another passage: read again
        edited = replace(stale, text=stale.text + " (updated for 2027)")
        assert visible([stale, edited], knowledge.curation.hidden_keys()) == [edited]
        # kept across a Redis crash, like every admin change
        redis_server.crash()
        redis_server.start()
        again = Curation(connect(redis_server.url))
        assert [h.key for h in again.hidden(url)] == [passage_key(url, stale.text)]
        assert again.show(hidden.key)
        assert len(knowledge.passages_for_answering(5).passages) == len(before)


def test_demoted_pages_travel_with_the_passages_and_go_with_their_source(knowledge):
    url = "http://127.0.0.1:9/archive.html"
    knowledge.registry.add(url)
    knowledge.curation.demote(url, by="hr")
    assert knowledge.passages_for_answering(0.1).demoted == {url}
    from qa_engine.types import Passage

    knowledge.curation.hide(Passage("Old text.", url=url), by="hr")
    knowledge.curation.forget_page(url)
    assert knowledge.curation.demoted_urls() == set() and knowledge.curation.hidden() == []
