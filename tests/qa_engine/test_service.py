"""The reader service: `kate qa serve` as a real process on 127.0.0.1, called over HTTP by RemoteReader.

A small random BERT saved to a folder serves as the model: its answers are arbitrary but deterministic,
so the service's answers can be compared exactly with the same reader run in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
from redis_process import free_port
from servers import FixtureServer
from tiny_models import random_model, small_vocab_tokenizer

from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.batching import BatchingReader
from qa_engine.client import ReaderUnavailable, RemoteReader

WORDS = [f"w{i}" for i in range(60)] + ["leave", "days", "paid", "annual", "office", "lyon", "paris"]
CORPUS = " ".join(WORDS) + " what how many where is the ? ."


def passages_for(seed: int) -> list[Passage]:
    """A few passages of different lengths (different chunk counts), distinct per question."""
    out = []
    for p in range(3 + seed % 3):
        n = 20 + 37 * ((seed + p) % 5)
        text = " ".join(WORDS[(seed * 7 + p * 3 + i) % len(WORDS)] for i in range(n)) + " ."
        out.append(Passage(text, url=f"http://intranet/{seed}/{p}", title=f"page {p}", id=f"{seed}-{p}"))
    return out


QUESTIONS = [(f"how many leave days w{i} ?", passages_for(i)) for i in range(12)]


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-qa")
    tokenizer = small_vocab_tokenizer(CORPUS)
    random_model(len(tokenizer), layers=2, seed=3).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def local_reader(model_folder):
    return Reader(ReaderConfig(model=str(model_folder), device="cpu", max_length=96, stride=32))


@pytest.fixture(scope="module")
def service(model_folder, tmp_path_factory):
    """`kate qa serve` on a free port, gathering requests for 40 ms so the test's burst is batched."""
    port = free_port()
    env = {
        **os.environ,
        "KATE_HOME": str(tmp_path_factory.mktemp("home")),
        "KATE_QA_PORT": str(port),
        "KATE_QA_BATCH_WAIT_MS": "40",
        "KATE_DEVICE": "cpu",
        "KATE_MAX_LENGTH": "96",
        "KATE_STRIDE": "32",
    }
    log = tmp_path_factory.mktemp("log") / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kate.cli", "qa", "serve", "--model", str(model_folder)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"kate qa serve did not start:\n{log.read_text()}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def same(a, b) -> bool:
    """Two answer lists agree: same spans from the same passages, same scores (float tolerance)."""
    return len(a) == len(b) and all(
        (x.text, x.start, x.end, x.sentence, x.passage) == (y.text, y.start, y.end, y.sentence, y.passage)
        and abs(x.score - y.score) < 1e-3
        for x, y in zip(a, b, strict=True)
    )


def metric(url: str, name: str) -> float:
    for line in requests.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_health_names_the_model_and_device(service, model_folder):
    body = requests.get(service + "/health", timeout=5).json()
    assert body["status"] == "ok" and body["model"] == str(model_folder) and body["device"] == "cpu"


def test_concurrent_questions_share_forward_passes_and_get_their_own_answers(service, local_reader):
    client = RemoteReader(service)
    calls_before = metric(service, "kate_reader_forward_calls_total")
    requests_before = metric(service, "kate_reader_requests_total")
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        remote = list(pool.map(lambda qp: client.answer(qp[0], qp[1], top_k=4), QUESTIONS))
    for (question, passages), answers in zip(QUESTIONS, remote, strict=True):
        assert answers, question
        assert same(answers, local_reader.answer(question, passages, top_k=4))
        assert all(a.passage in passages for a in answers)  # the caller's own objects come back
    assert metric(service, "kate_reader_requests_total") - requests_before == len(QUESTIONS)
    calls = metric(service, "kate_reader_forward_calls_total") - calls_before
    assert 1 <= calls < len(QUESTIONS) / 2, f"{calls} reader calls for {len(QUESTIONS)} concurrent questions"


def test_a_question_asked_again_of_the_service_is_answered_without_reading(service, local_reader):
    """KATE_READ_CACHE in `kate qa serve`: the same answers, mapped to the second request's passages."""
    client = RemoteReader(service)
    question, passages = QUESTIONS[1]
    first = client.answer(question, passages, top_k=3)
    calls = metric(service, "kate_reader_forward_calls_total")
    remembered = metric(service, "kate_reader_remembered_total")
    again = client.answer(question, passages, top_k=3)
    assert same(again, first) and same(again, local_reader.answer(question, passages, top_k=3))
    assert metric(service, "kate_reader_forward_calls_total") == calls
    assert metric(service, "kate_reader_remembered_total") == remembered + 1


def test_each_request_keeps_its_own_limits_inside_a_shared_call(local_reader):
    """top_k, min_score and the no-answer verdict are per request even when requests share a call."""
    batcher = BatchingReader(local_reader, max_wait_ms=200)
    asks = [
        (QUESTIONS[0], {"top_k": 1}),
        (QUESTIONS[1], {"top_k": 5, "no_answer": True}),
        (QUESTIONS[2], {"top_k": 3, "min_score": 0.0}),
        (QUESTIONS[3], {"top_k": 2, "no_answer": True, "min_score": -1.0}),
    ]
    with ThreadPoolExecutor(len(asks)) as pool:
        results = list(pool.map(lambda a: batcher.answer(a[0][0], a[0][1], **a[1]), asks))
    for ((question, passages), kw), got in zip(asks, results, strict=True):
        assert same(got, local_reader.answer(question, passages, **kw)), kw
    assert batcher.metrics.batch_requests.count < len(asks)
    batcher.close()


def test_one_failing_question_does_not_fail_the_others(local_reader):
    class Fragile:
        config = local_reader.config

        def answer_many(self, requests, **kw):
            if any("boom" in q for q, _ in requests):
                raise RuntimeError("boom")
            return local_reader.answer_many(requests, **kw)

    batcher = BatchingReader(Fragile(), max_wait_ms=200)
    with ThreadPoolExecutor(3) as pool:
        good = [pool.submit(batcher.answer, q, p, top_k=2) for q, p in QUESTIONS[:2]]
        bad = pool.submit(batcher.answer, "boom?", QUESTIONS[2][1])
        for (q, p), f in zip(QUESTIONS[:2], good, strict=True):
            assert same(f.result(timeout=30), local_reader.answer(q, p, top_k=2))
        with pytest.raises(RuntimeError, match="boom"):
            bad.result(timeout=30)
    batcher.close()


def test_a_question_asked_again_over_the_same_passages_is_not_read_again(local_reader):
    """KATE_READ_CACHE: the same spans, no reader call; another question, an edited passage, another
    top_k, or a reading pushed out of the cache are read."""
    calls = []

    class Counted:
        config = local_reader.config

        def answer_many(self, requests, **kw):
            calls.append(len(requests))
            return local_reader.answer_many(requests, **kw)

    batcher = BatchingReader(Counted(), max_wait_ms=0, cached=2)
    question, passages = QUESTIONS[0]
    first = batcher.answer(question, passages, top_k=2)
    again = batcher.answer(question, passages, top_k=2)
    assert same(again, first) and same(again, local_reader.answer(question, passages, top_k=2))
    hits = batcher.metrics.counters  # kate_reader_remembered_total: answered from a remembered reading
    assert (len(calls), hits["kate_reader_remembered_total"]) == (1, 1)
    copies = [Passage(p.text, url=p.url, id=p.id, title="renamed") for p in passages]
    remembered = batcher.answer(question, copies, top_k=2)  # the caller's own passages in the answers
    assert [(a.text, a.start, a.score, a.passage.url) for a in remembered] == [
        (a.text, a.start, a.score, a.passage.url) for a in first
    ]
    assert all(any(a.passage is c for c in copies) for a in remembered)
    assert len(calls) == 1
    edited = [Passage(passages[0].text + " Updated.", url=passages[0].url, id=passages[0].id), *passages[1:]]
    batcher.answer(question, edited, top_k=2)
    batcher.answer(question, passages, top_k=3)
    assert len(calls) == 3  # the edited page and the other top_k were read
    batcher.answer(QUESTIONS[1][0], QUESTIONS[1][1], top_k=2)  # a third reading: the oldest goes
    batcher.answer(question, passages, top_k=2)
    assert (len(calls), hits["kate_reader_remembered_total"]) == (5, 2)
    batcher.close()


def test_a_batcher_is_busy_while_a_question_is_read_or_waits(local_reader):
    """What the action server asks before reading the best passages first (actions/answering.py)."""
    started, release = threading.Event(), threading.Event()

    class Held:
        config = local_reader.config

        def answer_many(self, requests, **kw):
            started.set()
            release.wait(30)
            return local_reader.answer_many(requests, **kw)

    batcher = BatchingReader(Held(), max_wait_ms=0)
    assert not batcher.busy
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(batcher.answer, *QUESTIONS[0], top_k=2)
        assert started.wait(30) and batcher.busy
        release.set()
        assert same(asked.result(timeout=30), local_reader.answer(*QUESTIONS[0], top_k=2))
    assert not batcher.busy
    batcher.close()


def test_a_batcher_is_behind_by_the_wait_of_its_latest_call_while_questions_wait(local_reader):
    """What makes the action server read less under load (`KATE_READ_BEHIND`): the longest a question
    of the latest reader call waited for it, while questions are waiting or being read; 0 when idle."""
    calls, release = [threading.Event(), threading.Event()], [threading.Event(), threading.Event()]

    class Held:
        config = local_reader.config

        def answer_many(self, requests, **kw):
            n = sum(c.is_set() for c in calls)
            calls[n].set()
            release[n].wait(30)
            return local_reader.answer_many(requests, **kw)

    batcher = BatchingReader(Held(), max_wait_ms=0)
    assert batcher.behind_s == 0.0
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(batcher.answer, *QUESTIONS[0], top_k=2)
        assert calls[0].wait(30)
        assert batcher.behind_s < 0.2  # the first question did not wait
        second = pool.submit(batcher.answer, *QUESTIONS[1], top_k=2)
        time.sleep(0.4)  # it waits for the first call
        release[0].set()
        assert calls[1].wait(30) and batcher.behind_s >= 0.4
        release[1].set()
        first.result(timeout=30), second.result(timeout=30)
    assert batcher.behind_s == 0.0  # nothing waits: not behind, whatever the last call waited
    batcher.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_a_niced_batcher_reads_at_a_lower_priority_and_its_torch_threads_too(local_reader):
    """The action server's reader thread runs at a lower CPU priority (so a 👍 or Rasa's parsing is not
    kept waiting by a reading), and so do the threads torch starts for it: the caller's do not change."""
    import glob

    def nice_of(task: str) -> int:
        stat = Path(task, "stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[16])

    before = {Path(t).name for t in glob.glob("/proc/self/task/*")}
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    batcher = BatchingReader(local_reader, max_wait_ms=0, nice=7)
    question, passages = QUESTIONS[0]
    assert same(batcher.answer(question, passages, top_k=2), local_reader.answer(question, passages, top_k=2))
    worker = batcher._worker.native_id
    assert os.getpriority(os.PRIO_PROCESS, worker) == min(19, own + 7)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
    started = [t for t in glob.glob("/proc/self/task/*") if Path(t).name not in before]
    assert started and all(nice_of(t) == min(19, own + 7) for t in started), "torch's threads kept 0"
    batcher.close()


def test_questions_asked_together_in_the_action_server_share_one_reading(local_reader, redis_client):
    """Without a reader service, concurrent questions still share forward passes: the action server
    reads them in one call, with the outcomes each question gets alone."""
    import asyncio

    from actions.answering import KnowledgeAnswerer
    from knowledge.cache import PageCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry

    class Counting:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def answer(self, question, passages, **kw):
            return self.answer_many([(question, passages)], **kw)[0]

        def answer_many(self, requests, **kw):
            self.calls.append(len(requests))
            return local_reader.answer_many(requests, **kw)

    asked = ["how many leave days w3 ?", "where are the offices ?", "what benefits ?"]
    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html", "benefits.html"):
            registry.add(site.url(f"/site/en/{page}"))
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))
        reader = Counting()
        answerer = KnowledgeAnswerer(
            knowledge, reader, None, model_name="m", min_confidence=0.0, batch_wait_ms=300
        )

        async def together() -> list:
            await answerer.answer(asked[0])  # the pages are fetched once, before the burst
            reader.calls.clear()
            return await asyncio.gather(*(answerer.answer(q) for q in asked))

        try:
            outcomes = asyncio.run(together())
            shared = list(reader.calls)
            alone = [asyncio.run(answerer.answer(q)) for q in asked]
        finally:
            answerer._model_thread.shutdown()
            answerer.reader.close()
    assert shared == [len(asked)], f"reading calls for {len(asked)} questions asked together: {shared}"
    assert [o.candidates for o in outcomes] == [o.candidates for o in alone]
    assert all(o.status == "answered" for o in outcomes)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"question": "  ", "passages": []}, "question"),
        ({"question": "x" * 2001, "passages": []}, "question"),
        ({"question": "q?", "passages": [{"text": "a"}] * 1001}, "passages"),
        ({"question": "q?", "passages": [{"text": "a" * 100_001}]}, "text"),
        ({"question": "q?", "passages": [], "top_k": 0}, "top_k"),
        ({"passages": []}, "question"),
    ],
)
def test_bad_requests_get_a_422_naming_the_field(service, body, why):
    resp = requests.post(service + "/v1/answer", json=body, timeout=10)
    assert resp.status_code == 422
    assert why in resp.text


def test_errors_are_counted_and_the_service_keeps_serving(service, local_reader):
    before = metric(service, "kate_reader_requests_total")
    requests.post(service + "/v1/answer", data=b"\xff not json", timeout=5)
    question, passages = QUESTIONS[5]
    assert same(RemoteReader(service).answer(question, passages), local_reader.answer(question, passages))
    assert metric(service, "kate_reader_requests_total") == before + 1  # the bad body never reached it
    text = requests.get(service + "/metrics", timeout=5).text
    assert "# TYPE kate_reader_request_seconds histogram" in text
    assert 'kate_reader_batch_requests_bucket{le="+Inf"}' in text


def test_a_dead_service_is_reported_quickly():
    client = RemoteReader(f"http://127.0.0.1:{free_port()}", timeout=2, connect_timeout=1)
    t0 = time.monotonic()
    with pytest.raises(ReaderUnavailable, match="ConnectionError"):
        client.answer("q?", [Passage("text")])
    assert time.monotonic() - t0 < 5


class StubReaderService(BaseHTTPRequestHandler):
    """A broken reader service: hangs (`delay`) or sends `body` for every POST."""

    delay = 0.0
    body = b"{}"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def test_a_hanging_service_times_out():
    class Hanging(StubReaderService):
        delay = 3.0

    with FixtureServer(Hanging) as server:
        client = RemoteReader(server.base, timeout=1, connect_timeout=1)
        t0 = time.monotonic()
        with pytest.raises(ReaderUnavailable, match="Timeout"):
            client.answer("q?", [Passage("text")])
        assert time.monotonic() - t0 < 2.5


def test_a_malformed_reply_is_an_unavailable_reader_not_a_crash():
    class Garbage(StubReaderService):
        body = b'{"answers": [{"passage": 7}]}'

    with FixtureServer(Garbage) as server, pytest.raises(ReaderUnavailable, match="malformed"):
        RemoteReader(server.base).answer("q?", [Passage("text")])


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="http"):
        RemoteReader("redis://127.0.0.1:6379")


def test_the_action_server_reads_through_the_service_with_the_same_outcome(
    service, local_reader, redis_client
):
    """KnowledgeAnswerer with KATE_QA_URL's RemoteReader: same candidates as reading in-process, and a
    dead service is a clear "reader_down" (said in the employee's language), not a hang or a crash."""
    import asyncio

    from actions.answering import KnowledgeAnswerer
    from actions.messages import say
    from knowledge.cache import PageCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry

    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html", "benefits.html"):
            registry.add(site.url(f"/site/en/{page}"))
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))

        def outcome(reader) -> object:
            answerer = KnowledgeAnswerer(knowledge, reader, None, model_name="m", min_confidence=0.0)
            try:
                return asyncio.run(answerer.answer("how many leave days w3 ?"))
            finally:
                answerer._model_thread.shutdown()

        remote, local = outcome(RemoteReader(service)), outcome(local_reader)
        assert remote.status == local.status == "answered"
        assert remote.candidates == local.candidates and remote.best_pages == local.best_pages
        dead = outcome(RemoteReader(f"http://127.0.0.1:{free_port()}", timeout=2, connect_timeout=1))
        assert dead.status == "reader_down" and dead.seconds < 5
    assert "RH" in say("reader_down", "fr") and "人事" in say("reader_down", "ja")


def test_the_production_path_remote_reader_and_local_ranker_matches_reading_in_process(
    service, local_reader, model_folder, redis_client
):
    """The deployment's path (docker/compose.yml): the action server ranks locally and reads through the
    reader service. The candidates, their pages and their scores, relevance included, are those of the
    in-process path."""
    import asyncio

    from actions.answering import KnowledgeAnswerer
    from knowledge.cache import PageCache
    from knowledge.library import FetchLimits, Knowledge
    from knowledge.sources import SourceRegistry
    from qa_engine.ranker import Ranker, RankerConfig

    ranker = Ranker(RankerConfig(model=str(model_folder), device="cpu"))  # any encoder ranks
    with FixtureServer() as site:
        registry = SourceRegistry(redis_client)
        for page in ("leave.html", "offices.html", "benefits.html", "expenses.html"):
            registry.add(site.url(f"/site/en/{page}"))
        knowledge = Knowledge(registry, PageCache(redis_client), FetchLimits(timeout=2, total_timeout=5))

        def outcome(reader) -> object:
            answerer = KnowledgeAnswerer(
                knowledge, reader, ranker, model_name="m", min_confidence=0.0, rank_top=4
            )
            try:
                return asyncio.run(answerer.answer("how many days of annual leave ?"))
            finally:
                answerer._model_thread.shutdown()

        remote, local = outcome(RemoteReader(service)), outcome(local_reader)
    assert remote.status == local.status == "answered"
    assert [(c.answer, c.url) for c in remote.candidates] == [(c.answer, c.url) for c in local.candidates]
    assert [c.score for c in remote.candidates] == pytest.approx(
        [c.score for c in local.candidates], abs=1e-3
    )
    assert remote.best_pages == local.best_pages
