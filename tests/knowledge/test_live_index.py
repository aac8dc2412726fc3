"""The action server's in-process index: loaded once from Redis, caught up on exactly what changed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from tiny_models import tiny_model_folder

from knowledge.cache import CachedPage, PageCache, VectorCache
from knowledge.changes import ChangeLog
from knowledge.library import Knowledge
from knowledge.live_index import LiveIndex
from knowledge.sources import SourceRegistry
from qa_engine.ranker import Ranker, RankerConfig
from qa_engine.types import Passage

WORDS = (
    "leave days salary paid month office address badge holiday remote week laptop form hr 204 query passage"
)


@pytest.fixture(scope="module")
def ranker(tmp_path_factory):
    folder = tiny_model_folder(tmp_path_factory.mktemp("tiny-encoder"), WORDS, seed=3)
    return Ranker(RankerConfig(model=str(folder)))


class Site:
    """Sources and cached pages written straight into Redis, as fetches and the console write them."""

    def __init__(self, client, ranker) -> None:
        client.flushdb()
        self.registry = SourceRegistry(client)
        self.cache = PageCache(client, ttl=3600)
        self.knowledge = Knowledge(self.registry, self.cache)
        self.encoded: list[str] = []
        ranker.store = VectorCache(client)
        ranker.forget()

        def encode(passages: list[Passage]) -> np.ndarray:
            self.encoded.extend(p.text for p in passages)
            return ranker.passage_vectors(passages)

        self.live = LiveIndex(self.knowledge, encode, ranker.model.config.hidden_size)

    def page(
        self, name: str, *texts: str, tags: list[str] | None = None, fetched_at: float | None = None
    ) -> str:
        url = f"http://hr.example/{name}"
        if self.registry.get(url) is None:
            self.registry.add(url, tags=tags)
        passages = [Passage(t, url=url, title=name, id=f"{name}{i}") for i, t in enumerate(texts)]
        self.cache.put(CachedPage(url, url, name, "en", passages, fetched_at or time.time()))
        return url

    def texts(self) -> list[str]:
        snapshot = self.live.catch_up()
        assert snapshot is not None
        return [p.text for p in snapshot.index.passages]


@pytest.fixture
def site(redis_client, ranker):
    s = Site(redis_client, ranker)
    yield s
    s.knowledge.close()


def test_the_load_indexes_every_enabled_page_with_its_vectors(site, ranker):
    site.page("leave", "leave days holiday", "paid leave month")
    site.page("office", "office address badge")
    off = site.page("remote", "remote week laptop")
    site.registry.set_enabled(off, False)
    snapshot = site.live.load()
    assert [p.text for p in snapshot.index.passages] == [
        "leave days holiday",
        "paid leave month",
        "office address badge",
    ]
    np.testing.assert_allclose(
        snapshot.index.vectors, ranker.passage_vectors(snapshot.index.passages), atol=1e-3
    )
    assert site.live.catch_up() is snapshot  # nothing changed: the same snapshot, one GET


def test_an_edited_page_is_re_read_and_only_its_passages_encoded(site):
    leave = site.page("leave", "leave days holiday")
    site.page("office", "office address badge")
    site.live.load()
    site.encoded.clear()
    site.page("leave", "leave days holiday", "paid leave month")  # the page gained a paragraph
    assert site.texts() == ["leave days holiday", "paid leave month", "office address badge"]
    assert site.encoded == ["leave days holiday", "paid leave month"]  # one page, not the office's
    site.encoded.clear()
    before = site.live.snapshot
    page = site.cache.get(leave)
    site.cache.touch(page, time.time() + 10)  # a 304: same text, fresh again
    assert site.live.catch_up() is before and site.encoded == []
    assert before.entries[leave].page.fetched_at == pytest.approx(page.fetched_at)


def test_sources_turned_off_removed_and_added_leave_and_join_the_index(site):
    leave = site.page("leave", "leave days holiday")
    office = site.page("office", "office address badge")
    site.live.load()
    site.registry.set_enabled(office, False)
    assert site.texts() == ["leave days holiday"]
    site.registry.set_enabled(office, True)
    assert site.texts() == ["leave days holiday", "office address badge"]
    site.registry.remove(leave)
    site.page("remote", "remote week laptop")
    assert site.texts() == ["office address badge", "remote week laptop"]


def test_hidden_passages_and_demoted_pages_follow_the_console(site):
    leave = site.page("leave", "leave days holiday", "old leave form hr 204")
    site.live.load()
    old = site.cache.get(leave).passages[1]
    hidden = site.knowledge.curation.hide(old, by="hr")
    assert site.texts() == ["leave days holiday"]
    site.knowledge.curation.demote(leave, by="hr")
    assert leave in site.live.catch_up().demoted
    site.knowledge.curation.show(hidden.key)
    site.knowledge.curation.promote(leave)
    snapshot = site.live.catch_up()
    assert [p.text for p in snapshot.index.passages] == ["leave days holiday", "old leave form hr 204"]
    assert not snapshot.demoted


def test_restricted_pages_are_masked_for_outsiders_and_preferred_for_their_audience(site):
    from knowledge.audience import Employee

    site.page("leave", "leave days holiday")
    managers = site.page("bonus", "salary paid month", tags=["group:managers", "restricted"])
    france = site.page("tickets", "office address badge", tags=["country:fr"])
    snapshot = site.live.load()
    outsider = snapshot.readable(Employee(country="de"))
    assert outsider.allowed.tolist() == [True, False, True] and outsider.withheld == 1
    assert outsider.elsewhere == {france} and not outsider.preferred
    manager = snapshot.readable(Employee(country="fr", groups=("managers",)))
    assert manager.allowed.all() and manager.preferred == {managers, france}
    assert snapshot.rows_of({france}).tolist() == [False, False, True]
    assert [p.text for p in snapshot.page_passages([france, managers])] == [
        "office address badge",
        "salary paid month",
    ]


def test_a_mass_change_is_applied_a_batch_at_a_time(site):
    site.live.load()
    for i in range(5):
        site.page(f"p{i}", f"leave days {i}")
    sizes = [len(site.live.catch_up(limit=2).index) for _ in range(6)]
    assert sizes[-1] == 5 and sizes == sorted(sizes)  # every page comes, in order of change
    assert all(
        b - a <= 2 for a, b in zip([0, *sizes], sizes, strict=False)
    )  # at most `limit` pages per catch-up
    log = ChangeLog(site.cache.r)
    assert log.since(-1, log.version(), 100)[-1][0].endswith("/p4")


def test_due_sources_are_the_never_fetched_then_the_stalest(site):
    site.page("fresh", "leave days holiday")
    old = site.page("old", "office address badge", fetched_at=time.time() - 7200)
    older = site.page("older", "remote week laptop", fetched_at=time.time() - 9000)
    site.registry.add("http://hr.example/new")
    snapshot = site.live.load()
    due = [s.url for s in snapshot.due(ttl=3600, now=time.time())]
    assert due == ["http://hr.example/new", older, old]
    assert len(snapshot.due(ttl=3600, now=time.time(), limit=2)) == 2
