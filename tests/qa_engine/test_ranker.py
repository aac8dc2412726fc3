"""The passage ranker: which passages get read, how answers are re-scored, and the vector cache."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_models import random_model, small_vocab_tokenizer

from knowledge.cache import VectorCache
from knowledge.store import connect
from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.ranker import Ranker, RankerConfig, rank_and_read

WORDS = "leave days salary paid month office address badge holiday remote week laptop"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-encoder")
    tok = small_vocab_tokenizer(WORDS + " query passage")
    random_model(len(tok), layers=1, seed=3).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def index_loaded(answerer, poll_s: float) -> None:
    """Start the action server's index in the background and wait for its first load."""
    import time

    answerer.index_in_background(poll_s=poll_s)
    deadline = time.monotonic() + 30
    while answerer.live.snapshot is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answerer.live.snapshot is not None


def passages() -> list[Passage]:
    texts = ["leave days holiday", "salary paid month", "office address badge", "remote week laptop"]
    return [Passage(t, url=f"http://hr.example/{i}", title=f"p{i}", id=f"p{i}") for i, t in enumerate(texts)]


def test_similarities_are_cosines_in_passage_order(model_dir):
    ranker = Ranker(RankerConfig(model=str(model_dir)))
    ps = passages()
    sims = ranker.similarities("salary month", ps)
    assert sims.shape == (4,) and np.all(np.abs(sims) <= 1.0 + 1e-5)
    alone = [ranker.similarities("salary month", [p])[0] for p in ps]  # batching and order change nothing
    np.testing.assert_allclose(sims, alone, atol=1e-5)
    vectors = ranker.passage_vectors(ps)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_only_the_best_passages_are_read_and_scores_carry_their_relevance(model_dir):
    ranker = Ranker(RankerConfig(model=str(model_dir)))
    reader = Reader(ReaderConfig(model=str(model_dir)))
    ps = passages()
    sims = ranker.similarities("leave holiday", ps)
    best_two = {ps[i].id for i in np.argsort(-sims)[:2]}
    answers = rank_and_read(reader, ranker, "leave holiday", ps, top_k=10, read_top=2, weight=10.0)
    spans = [a for a in answers if a.passage is not None]
    assert spans and {a.passage.id for a in spans} <= best_two
    plain = {(a.passage.id, a.start, a.end): a.score for a in reader.answer("leave holiday", ps, top_k=50)}
    for a in spans:
        rel = sims[[p.id for p in ps].index(a.passage.id)]
        assert a.relevance == pytest.approx(rel, abs=1e-5)
        assert a.score == pytest.approx(plain[(a.passage.id, a.start, a.end)] - 10.0 * (1 - rel), abs=1e-3)
    assert [a.score for a in answers] == sorted((a.score for a in answers), reverse=True)
    assert rank_and_read(reader, None, "leave holiday", ps, top_k=3) == reader.answer(
        "leave holiday", ps, top_k=3
    )


def test_passage_vectors_are_shared_through_redis(model_dir, redis_client, monkeypatch):
    store = VectorCache(redis_client)
    first = Ranker(RankerConfig(model=str(model_dir)), store)
    ps = passages()
    expected = first.passage_vectors(ps)
    assert len(redis_client.keys("kate:vec:*")) == 4
    second = Ranker(RankerConfig(model=str(model_dir)), store)
    encoded: list[int] = []
    real_encode = second._encode
    monkeypatch.setattr(second, "_encode", lambda texts: encoded.append(len(texts)) or real_encode(texts))
    np.testing.assert_allclose(second.passage_vectors(ps), expected, atol=2e-3)  # float16 in Redis
    assert encoded == []  # nothing re-encoded
    changed = [*ps[:3], Passage("remote week", url="http://hr.example/3", title="p3", id="p3")]
    second.passage_vectors(changed)
    assert encoded == [1]  # only the edited passage


def test_a_dead_vector_store_only_costs_time(model_dir):
    from redis_process import free_port

    dead = VectorCache(connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5))
    ranker = Ranker(RankerConfig(model=str(model_dir)), dead)
    assert ranker.similarities("leave", passages()).shape == (4,)


def test_one_tokenizer_serves_reader_and_ranker_only_when_identical(model_dir, tmp_path):
    from qa_engine.ranker import same_tokenizer

    other = tmp_path / "other"
    small_vocab_tokenizer("completely different words").save_pretrained(other)
    assert same_tokenizer(str(model_dir), str(model_dir))
    assert not same_tokenizer(str(model_dir), str(other))
    assert not same_tokenizer(str(tmp_path), str(tmp_path))  # no tokenizer at all


def test_the_action_server_precomputes_passage_vectors_in_pieces(model_dir, redis_client):
    """After a start, the vectors of every cached passage are encoded in the background, in pieces
    (so questions interleave) and into Redis (so other action servers and restarts reuse them)."""
    import threading
    import time

    from servers import FixtureServer

    from actions.answering import KnowledgeAnswerer
    from knowledge.cache import PageCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry

    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html", "benefits.html", "expenses.html"):
            registry.add(site.url(f"/site/en/{page}"))
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))
        passages = knowledge.passages_for_answering(5).passages
        assert len(passages) > 6
        ranker = Ranker(RankerConfig(model=str(model_dir)), VectorCache(redis_client))
        pieces: list[int] = []
        real = ranker.passage_vectors
        ranker.passage_vectors = lambda ps, **kw: pieces.append(len(ps)) or real(ps, **kw)
        answerer = KnowledgeAnswerer(knowledge, None, ranker, model_name="m")
        answerer.index_in_background(piece=3)
        deadline = time.monotonic() + 30
        while sum(pieces) < len(passages) and time.monotonic() < deadline:
            time.sleep(0.05)
        answerer.close()
    assert sum(pieces) == len(passages) and max(pieces) == 3
    assert len(redis_client.keys("kate:vec:*")) == len({(p.title, p.text) for p in passages})

    # Closing while indexing starts (a restart during a slow first read of the sources) stops it
    # quietly: no thread dies with an error, nothing is encoded after the close.
    failures: list[object] = []
    previous_hook = threading.excepthook
    threading.excepthook = failures.append
    try:
        encoded: list[int] = []
        ranker.passage_vectors = lambda ps, **kw: encoded.append(len(ps)) or real(ps, **kw)
        list_sources = registry.list
        registry.list = lambda *args, **kw: time.sleep(0.3) or list_sources(*args, **kw)
        answerer = KnowledgeAnswerer(knowledge, None, ranker, model_name="m")
        answerer.index_in_background(piece=1)
        answerer.close()
        for thread in threading.enumerate():
            if thread.name == "kate-index":
                thread.join(5)
    finally:
        threading.excepthook = previous_hook
    assert not failures and not encoded


def test_relevance_follows_passage_copies_and_every_reader_has_one_interface():
    """A reader that answers with equal copies of the passages it read still gets their relevance
    (matched by id, page and text, not by Python object identity)."""
    from dataclasses import replace

    from qa_engine import Answer, Reader
    from qa_engine.batching import BatchingReader
    from qa_engine.client import RemoteReader
    from qa_engine.ranker import Ranking, passage_key, rescore
    from qa_engine.types import AnswersQuestions

    near, far = Passage("close text", url="http://i/a", id="1"), Passage("far text", url="http://i/b", id="1")
    ranking = Ranking([near, far], {passage_key(near): 0.9, passage_key(far): 0.2})
    copy = replace(near)  # equal, not identical
    assert copy is not near
    found = [Answer(text="far", score=5.0, passage=far), Answer(text="close", score=4.0, passage=copy)]
    best = rescore(found, ranking, top_k=2, weight=10)
    assert [a.text for a in best] == ["close", "far"] and best[0].relevance == 0.9
    for cls in (Reader, BatchingReader, RemoteReader):
        assert issubclass(cls, AnswersQuestions), cls


def test_a_question_is_encoded_once_however_many_steps_ask_for_its_vector(model_dir, monkeypatch):
    ranker = Ranker(RankerConfig(model=str(model_dir)))
    ps = passages()
    ranker.passage_vectors(ps)
    encoded: list[list[str]] = []
    real_encode = ranker._encode
    monkeypatch.setattr(ranker, "_encode", lambda texts: encoded.append(list(texts)) or real_encode(texts))
    first = ranker.similarities("leave days", ps)
    again = ranker.similarities("leave days", ps[:2])
    both = ranker.query_vectors(["salary paid", "leave days"])
    assert encoded == [["query: leave days"], ["query: salary paid"]]
    np.testing.assert_allclose(again, first[:2])
    np.testing.assert_allclose(both[1], ranker.query_vectors(["leave days"])[0])


def test_language_offsets_let_a_page_in_another_language_compete_and_lower_no_one():
    """Two languages, each with its own direction shared by all its passages: the question (in language
    A) is nearer every A passage than the one B passage that answers it, until the language's mean is
    taken out; the question's own language keeps its cosines and no passage loses relevance."""
    from qa_engine.ranker import language_offsets

    rng = np.random.default_rng(0)
    lang_a, lang_b, topic = np.eye(64)[0], np.eye(64)[1], np.eye(64)[2]

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    a_pages = [unit(lang_a + 0.3 * rng.normal(size=64) / 8) for _ in range(10)]
    b_pages = [unit(lang_b + 0.6 * topic + 0.3 * rng.normal(size=64) / 8)] + [
        unit(lang_b + 0.3 * rng.normal(size=64) / 8) for _ in range(9)
    ]
    vectors = np.stack(a_pages + b_pages)
    question = unit(lang_a + 0.5 * topic)
    languages = ["a"] * 10 + ["b"] * 10
    raw = vectors @ question
    assert int(np.argmax(raw)) < 10  # plain cosines: some passage in the question's language wins
    offsets = language_offsets(question, vectors, languages)
    assert int(np.argmax(raw + offsets)) == 10  # the answering page in the other language
    np.testing.assert_allclose(offsets[:10], 0.0, atol=1e-6)
    assert np.all(offsets >= 0)
    np.testing.assert_array_equal(language_offsets(question, vectors, ["a"] * 20), np.zeros(20))
    np.testing.assert_array_equal(language_offsets(question, vectors, [""] * 20), np.zeros(20))


def test_a_replica_is_ready_once_its_index_is_loaded_even_when_redis_was_down_at_its_start(
    model_dir, redis_client
):
    """index_state (the action server's /ready) says loading until the index is loaded, then how many
    passages it holds; a Redis that fails at the start is tried again, without a question asking."""
    import time

    from servers import FixtureServer

    from actions.answering import KnowledgeAnswerer
    from knowledge.cache import PageCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry
    from knowledge.store import StoreUnavailable

    redis_client.flushdb()
    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html"):
            registry.add(site.url(f"/site/en/{page}"))
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))
        knowledge.refresh()
        ranker = Ranker(RankerConfig(model=str(model_dir)), VectorCache(redis_client))
        list_sources, calls = registry.list, []

        def down_at_first(*args, **kwargs):
            calls.append(time.monotonic())
            if len(calls) == 1:
                raise StoreUnavailable("Redis is restarting")
            return list_sources(*args, **kwargs)

        registry.list = down_at_first
        answerer = KnowledgeAnswerer(knowledge, None, ranker, model_name="m")
        try:
            assert answerer.index_state() == {"ready": False, "index": "loading"}
            answerer.index_in_background(poll_s=0.2)
            deadline = time.monotonic() + 30
            while not answerer.index_state()["ready"] and time.monotonic() < deadline:
                time.sleep(0.05)
            state = answerer.index_state()
            assert state["ready"] and state["index"] == "loaded" and state["passages"] > 3, state
            assert len(calls) >= 2  # tried again after the failure
        finally:
            answerer.close()
    assert KnowledgeAnswerer(knowledge, None, None, model_name="m").index_state()["ready"]  # no ranker


def test_the_action_server_answers_from_its_index_and_keeps_it_fresh_without_questions(
    model_dir, redis_client
):
    """The question path over the in-process index: a source added after the load is fetched by the
    question that needs it and read at once; a page another process re-caches reaches the index within
    the poll interval, no question asked; a restricted page is never read for an outsider."""
    import asyncio
    import time

    from servers import FixtureServer

    from actions.answering import KnowledgeAnswerer
    from knowledge.audience import Employee
    from knowledge.cache import CachedPage, PageCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry

    redis_client.flushdb()
    read: list[list[Passage]] = []
    reader = Reader(ReaderConfig(model=str(model_dir)))
    real_answer_many = reader.answer_many  # the action server reads through it (questions share calls)
    reader.answer_many = lambda asks, **kw: (
        read.extend(list(ps) for _, ps in asks) or real_answer_many(asks, **kw)
    )
    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html"):
            registry.add(site.url(f"/site/en/{page}"))
        bonus = site.url("/site/en/benefits.html")
        registry.add(bonus, tags=["group:managers", "restricted"])
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))
        knowledge.refresh()
        ranker = Ranker(RankerConfig(model=str(model_dir)), VectorCache(redis_client))
        answerer = KnowledgeAnswerer(
            knowledge, reader, ranker, model_name="m", rank_top=500, fetch_budget_s=5
        )
        try:
            index_loaded(answerer, poll_s=0.2)
            assert len(answerer.live.snapshot) > 0 and not ranker._memory  # one copy: the index's

            outcome = asyncio.run(answerer.answer("leave days", Employee(country="fr")))
            assert outcome.status in ("answered", "unsure")
            urls = {p.url for p in read[-1]}
            assert bonus not in urls and site.url("/site/en/leave.html") in urls

            expenses = site.url("/site/en/expenses.html")
            registry.add(expenses)  # never fetched: the question fetches it and reads it
            asyncio.run(answerer.answer("leave days", Employee(country="fr")))
            assert expenses in {p.url for p in read[-1]}

            cache = knowledge.cache
            page = cache.get(expenses)
            edited = [
                Passage("Expense claims now go to form HR-204.", url=expenses, title="Expenses", id="x")
            ]
            cache.put(CachedPage(expenses, expenses, "Expenses", "en", edited, time.time()))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                texts = [p.text for p in answerer.live.snapshot.index.passages]
                if edited[0].text in texts:
                    break
                time.sleep(0.05)
            assert edited[0].text in texts and not any(p.text in texts for p in page.passages)
        finally:
            answerer.close()


def test_a_question_waits_for_a_change_being_applied_up_to_the_fetch_budget(
    model_dir, redis_client, monkeypatch
):
    """A page edited just before a question is read by it, even while another thread is applying the
    edit (the question waits for it); but a question waits no longer than the fetch budget for a long
    catch-up (a mass import), and then reads the index as it was. Rebuilding is made slow here."""
    import asyncio
    import threading
    import time

    from servers import FixtureServer

    from actions.answering import KnowledgeAnswerer
    from knowledge import live_index
    from knowledge.cache import CachedPage, PageCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry

    redis_client.flushdb()
    read: list[set[str]] = []
    reader = Reader(ReaderConfig(model=str(model_dir)))
    real_answer_many = reader.answer_many
    reader.answer_many = lambda asks, **kw: (
        read.extend({p.text for p in ps} for _, ps in asks) or real_answer_many(asks, **kw)
    )
    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html", "expenses.html"):
            registry.add(site.url(f"/site/en/{page}"))
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))
        knowledge.refresh()
        ranker = Ranker(RankerConfig(model=str(model_dir)), VectorCache(redis_client))
        expenses = site.url("/site/en/expenses.html")

        def edit(text: str) -> None:
            page = [Passage(text, url=expenses, title="Expenses", id="x")]
            knowledge.cache.put(CachedPage(expenses, expenses, "Expenses", "en", page, time.time()))

        rebuilding = threading.Event()

        def slow(seconds: float) -> type:
            class SlowSnapshot(live_index.Snapshot):
                def __init__(self, *args, **kwargs):
                    rebuilding.set()
                    time.sleep(seconds)
                    super().__init__(*args, **kwargs)

            return SlowSnapshot

        # the poller applies an edit (1 s); a question asked meanwhile waits for it and reads the edit
        answerer = KnowledgeAnswerer(
            knowledge, reader, ranker, model_name="m", rank_top=500, fetch_budget_s=5
        )
        try:
            index_loaded(answerer, poll_s=0.1)
            monkeypatch.setattr(live_index, "Snapshot", slow(1.0))
            edit("Expense claims go to form HR-204.")
            assert rebuilding.wait(10)
            asyncio.run(answerer.answer("expense form"))
            assert "Expense claims go to form HR-204." in read[-1]
        finally:
            answerer.close()
            monkeypatch.undo()

        # a catch-up longer than the fetch budget: a question waits the budget, then reads the index as it was
        answerer = KnowledgeAnswerer(
            knowledge, reader, ranker, model_name="m", rank_top=500, fetch_budget_s=0.3
        )
        try:
            index_loaded(answerer, poll_s=600)  # no poll: the first question applies the edit
            monkeypatch.setattr(live_index, "Snapshot", slow(3.0))
            rebuilding.clear()
            edit("Expense claims go to form HR-305.")
            first = threading.Thread(target=lambda: asyncio.run(answerer.answer("expense form")))
            first.start()
            assert rebuilding.wait(10)
            t0 = time.monotonic()
            asyncio.run(answerer.answer("salary paid month"))
            took = time.monotonic() - t0
            first.join(30)
            assert took < 1.5, took  # not the 3 s of the rebuild
            assert "Expense claims go to form HR-305." not in read[-2]  # the index as it was
            texts = [p.text for p in answerer.live.snapshot.index.passages]
            assert "Expense claims go to form HR-305." in texts  # the first question's catch-up applied it
        finally:
            answerer.close()


def test_a_sure_ranking_reads_fewer_passages():
    from qa_engine.ranker import Ranking, passage_key, sure_cut

    ps = passages()
    ranking = Ranking(ps, {passage_key(p): c for p, c in zip(ps, (0.90, 0.88, 0.80, 0.70), strict=True)})
    assert [p.id for p in sure_cut(ranking, 0.05).passages] == ["p0", "p1"]
    assert [p.id for p in sure_cut(ranking, 0.15).passages] == ["p0", "p1", "p2"]
    assert [p.id for p in sure_cut(ranking, 0.01, least=1).passages] == ["p0"]
    assert sure_cut(ranking, 0.0) is ranking  # no margin: the best rank_top, as before
    assert sure_cut(ranking, 0.05).of(ps[1]) == pytest.approx(0.88)


def test_the_onnx_engine_gives_the_torch_vectors_and_is_exported_once(model_dir):
    """KATE_RANKER_ENGINE=onnx (what `auto` picks on a CPU without bf16): the same vectors as torch, from
    a graph exported beside the model folder once."""
    ps = passages()
    torch_ranker = Ranker(RankerConfig(model=str(model_dir), device="cpu", precision="fp32"))
    onnx_ranker = Ranker(RankerConfig(model=str(model_dir), device="cpu", precision="fp32", engine="onnx"))
    assert (torch_ranker.engine, onnx_ranker.engine) == ("torch", "onnx")
    np.testing.assert_allclose(onnx_ranker.passage_vectors(ps), torch_ranker.passage_vectors(ps), atol=1e-5)
    asked = ["leave days", "office badge week"]
    np.testing.assert_allclose(onnx_ranker.query_vectors(asked), torch_ranker.query_vectors(asked), atol=1e-5)
    export = model_dir.with_name(model_dir.name + "-ranker-onnx") / "model.onnx"
    made = export.stat().st_mtime_ns
    auto = Ranker(RankerConfig(model=str(model_dir), device="cpu", precision="fp32", engine="auto"))
    assert auto.engine == "onnx" and export.stat().st_mtime_ns == made  # reused, not exported again
    bf16 = Ranker(RankerConfig(model=str(model_dir), device="cpu", precision="bf16", engine="auto"))
    assert bf16.engine == "torch"  # where torch runs in bf16, torch stays
    with pytest.raises(ValueError, match="engine"):
        Ranker(RankerConfig(model=str(model_dir), device="cpu", engine="tensorrt"))


def test_the_onnx_engine_follows_new_weights(tmp_path):
    """A ranker folder retrained in place gets a new export: never the old weights' vectors."""
    ps = passages()
    folder = tmp_path / "ranker"
    tokenizer = small_vocab_tokenizer(WORDS + " query passage")
    tokenizer.save_pretrained(folder)
    random_model(len(tokenizer), layers=1, seed=1).save_pretrained(folder)
    first = Ranker(RankerConfig(model=str(folder), device="cpu", precision="fp32", engine="onnx"))
    random_model(len(tokenizer), layers=1, seed=2).save_pretrained(folder)
    second = Ranker(RankerConfig(model=str(folder), device="cpu", precision="fp32", engine="onnx"))
    reference = Ranker(RankerConfig(model=str(folder), device="cpu", precision="fp32"))
    assert second.engine == "onnx"
    np.testing.assert_allclose(second.passage_vectors(ps), reference.passage_vectors(ps), atol=1e-5)
    assert not np.allclose(first.passage_vectors(ps), second.passage_vectors(ps), atol=1e-3)
