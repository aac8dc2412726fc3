"""KATE_READ_TOKENS: a bound in tokens on what one question reads, counted safely from any thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tiny_models import small_vocab_tokenizer, tiny_model_folder

from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.budget import TokenCounter, token_cut
from qa_engine.ranker import Ranker, RankerConfig, Ranking, passage_key

WORDS = "annual leave days are twenty five salary is paid monthly the office is in lyon badge laptop"


def ranked(lengths: list[int]) -> Ranking:
    ps = []
    for i, n in enumerate(lengths):
        ps.append(Passage(" ".join(["leave"] * n), url=f"http://hr.example/{i}", id=f"p{i}"))
    return Ranking(ps, {passage_key(p): 0.9 - 0.01 * i for i, p in enumerate(ps)})


def test_the_best_ranked_passages_are_kept_until_their_tokens_reach_the_bound():
    ranking = ranked([100, 100, 100, 100])
    counts = [100, 100, 100, 100]
    assert [p.id for p in token_cut(ranking, 250, counts).passages] == ["p0", "p1"]
    assert [p.id for p in token_cut(ranking, 300, counts).passages] == ["p0", "p1", "p2"]
    assert token_cut(ranking, 400, counts) is ranking  # everything fits: nothing cut
    assert token_cut(ranking, 0, counts) is ranking  # 0: no bound
    # the best 2 are read whatever their length; after them, reading stops at the first that overflows
    long_first = token_cut(ranked([900, 900, 10]), 100, [900, 900, 10])
    assert [p.id for p in long_first.passages] == ["p0", "p1"]
    assert [p.id for p in token_cut(ranking, 10, counts, least=1).passages] == ["p0"]
    assert token_cut(ranking, 250, counts).of(ranking.passages[1]) == pytest.approx(0.89)


def test_tokens_are_counted_from_many_threads_while_the_model_tokenizer_is_reconfigured():
    """The answerer counts on whichever thread asks, while the ranker's own tokenizer is reconfigured for
    each encoding on the model thread: a shared Rust tokenizer would fail with "Already borrowed"."""
    tokenizer = small_vocab_tokenizer(WORDS)
    count = TokenCounter(tokenizer)
    texts = [Passage("annual leave days are twenty five"), Passage("salary is paid monthly")]
    assert count(texts) == [6, 4]
    errors: list[BaseException] = []

    def counting() -> None:
        try:
            for _ in range(300):
                assert count(texts) == [6, 4]
        except BaseException as exc:  # the test reports whatever a thread hit
            errors.append(exc)

    def reconfiguring() -> None:
        try:
            for i in range(300):
                tokenizer(["annual leave days"] * 4, truncation=True, max_length=2 + i % 5, padding=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=counting) for _ in range(4)] + [threading.Thread(target=reconfiguring)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]


def test_the_action_server_reads_at_most_the_bound(tmp_path, redis_client, monkeypatch):
    """Through the answerer: with a bound, the passages read after the best 2 add up to at most the bound
    in tokens, and fewer passages are read than with none; the answer still comes from a read passage."""
    from servers import FixtureServer

    from actions.answering import KnowledgeAnswerer
    from knowledge.audience import Employee
    from knowledge.cache import PageCache, VectorCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry
    from qa_engine.batching import BatchingReader

    folder = tiny_model_folder(tmp_path / "model", WORDS + " query passage")
    reader = Reader(ReaderConfig(model=str(folder)))
    read: list[list[Passage]] = []
    real = reader.answer_many
    reader.answer_many = lambda asks, **kw: read.extend(list(ps) for _, ps in asks) or real(asks, **kw)
    ranker = Ranker(RankerConfig(model=str(folder)), VectorCache(redis_client))
    count = TokenCounter(ranker.tokenizer)
    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html", "benefits.html", "expenses.html"):
            registry.add(site.url(f"/site/en/{page}"))
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))
        knowledge.refresh()
        passages_read = {}
        for bound in (0, 60):
            answerer = KnowledgeAnswerer(
                knowledge, reader, ranker, model_name="m", rank_top=20, fetch_budget_s=5, read_tokens=bound
            )
            try:
                read.clear()
                outcome = asyncio.run(answerer.answer("annual leave days", Employee()))
            finally:
                answerer.close()
            assert read and outcome.status in ("answered", "unsure")
            passages_read[bound] = [p for ps in read for p in ps]
        assert sum(count(passages_read[60][2:])) <= 60
        assert len(passages_read[60]) < len(passages_read[0])

        # The bound while the reader is behind (KATE_READ_TOKENS_BUSY): none while it keeps up...
        def ask(behind: float) -> tuple[list[Passage], float]:
            answerer = KnowledgeAnswerer(
                knowledge, reader, ranker, model_name="m", rank_top=20, fetch_budget_s=5,
                read_tokens=0, read_tokens_busy=60, read_behind_s=0.25,
            )  # fmt: skip
            try:
                read.clear()
                monkeypatch.setattr(BatchingReader, "behind_s", property(lambda self: behind))
                outcome = asyncio.run(answerer.answer("annual leave days", Employee()))
            finally:
                answerer.close()
            assert outcome.status in ("answered", "unsure")
            return [p for ps in read for p in ps], answerer.reader.metrics.counters[
                "kate_reader_busy_bound_total"
            ]

        assert ask(0.1) == (passages_read[0], 0)
        # ...and the busy bound once questions waited KATE_READ_BEHIND for the reader, counted in /metrics
        shortened, counted = ask(0.3)
        assert (shortened, counted) == (passages_read[60], 1)
