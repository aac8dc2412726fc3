"""Dynamic batching: questions that arrive together share one reader call.

Each employee question is a small job (a question and the ten or so passages the ranker chose), and on
a GPU a forward pass over 20 chunks costs about what one over 200 does. So the reader service does not
read each request on its own thread: requests queue here, one worker takes the first, waits up to
`max_wait_ms` for others (or until `max_requests` have come), and reads all their chunks in one
`Reader.answer_many` call, whose batches are sorted by length across questions. While that call runs,
the next requests queue up and form the next batch, so under load batches grow by themselves and at low
load a question waits at most a few milliseconds.

Results are exactly those of reading each question alone: the call asks for the largest `top_k` and no
`min_score`, and each request's own limits are applied to its own list afterwards.

It also remembers its last readings (`cached` of them): a question asked again over the same passages
(the same text, page and id each) gets the same spans without a forward pass. Reading is deterministic,
so nothing changes but the time; an edited page changes its passages' text, and with it the key. Many
employees ask the same few questions (the week leave opens, the day payslips come), and on a small CPU
reading is what the crowd queues for.

The action server uses the same front for its in-process reader, with the worker thread's CPU priority
lowered (`nice`): on a small machine reading is most of the CPU work, and a 👍, a scripted answer or Rasa's
own parsing of the next message must not wait for a forward pass to finish its time slice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from .metrics import ReaderMetrics
from .types import Answer, Passage

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    question: str
    passages: Sequence[Passage]
    top_k: int
    min_score: float | None
    no_answer: bool
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


def trim(answers: list[Answer], top_k: int, min_score: float | None, no_answer: bool) -> list[Answer]:
    """One request's answers from a shared call's list (best first): its own top_k, threshold and
    no-answer wish, as `Reader.answer` would have applied them."""
    spans = [a for a in answers if not a.is_no_answer][:top_k]
    if min_score is not None:
        spans = [a for a in spans if a.score >= min_score]
    if no_answer:
        spans += [a for a in answers if a.is_no_answer]
        spans.sort(key=lambda a: a.score, reverse=True)
    return spans


def reading_key(
    question: str, passages: Sequence[Passage], top_k: int, min_score: float | None, no_answer: bool
) -> bytes:
    """What makes a reading: the question as written, each passage's id, page and text, in order, and
    what is asked of the spans."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{top_k}\0{min_score}\0{no_answer}\0{question}\0".encode())
    for p in passages:
        digest.update(f"{p.id}\0{p.url}\0{len(p.text)}\0{p.text}\0".encode())
    return digest.digest()


class BatchingReader:
    """A `Reader` front that many threads may call at once; their questions share reader calls."""

    def __init__(
        self,
        reader: object,
        *,
        max_wait_ms: float = 5.0,
        max_requests: int = 16,
        metrics: ReaderMetrics | None = None,
        nice: int = 0,
        cached: int = 0,
    ) -> None:
        """`nice`: added to the worker thread's niceness before its first forward pass, so torch's own
        worker threads, which it starts then, inherit it (Linux; elsewhere it is ignored). `cached`: how
        many recent readings are remembered (0: none)."""
        if max_wait_ms < 0 or max_requests < 1 or cached < 0:
            raise ValueError("max_wait_ms and cached must be >= 0, max_requests >= 1")
        self.reader = reader
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_requests = max_requests
        self.metrics = metrics or ReaderMetrics()
        self.nice = nice
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0  # jobs asked for and not answered yet (queued or being read)
        self._last_wait = 0.0  # the longest wait of the questions in the latest reader call
        self._pending_lock = threading.Lock()
        self.cached = cached
        # key -> each answer with its passage's position in the call (least recently used first)
        self._recent: OrderedDict[bytes, list[tuple[Answer, int | None]]] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="kate-batcher", daemon=True)
        self._worker.start()

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        top_k: int = 3,
        min_score: float | None = None,
        no_answer: bool = False,
        timeout: float | None = None,
    ) -> list[Answer]:
        """`Reader.answer`, read together with whatever other questions are waiting."""
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        if not question or not question.strip():
            raise ValueError("the question is empty")
        if not self._worker.is_alive():
            raise RuntimeError("the batching reader is closed")
        key = reading_key(question, passages, top_k, min_score, no_answer) if self.cached else b""
        if key:
            with self._recent_lock:
                found = self._recent.get(key)
                if found is not None:
                    self._recent.move_to_end(key)
                    self.metrics.remembered()
                    # this call's own passage objects (equal id, page and text; title and flags as now)
                    return [a if i is None else replace(a, passage=passages[i]) for a, i in found]
        job = _Job(question, passages, top_k, min_score, no_answer)
        with self._pending_lock:
            self._pending += 1
        try:
            self._queue.put(job)
            answers = job.future.result(timeout=timeout)
        finally:
            with self._pending_lock:
                self._pending -= 1
        if key:
            position = {id(p): i for i, p in enumerate(passages)}
            kept = [(a, None if a.passage is None else position.get(id(a.passage))) for a in answers]
            with self._recent_lock:
                self._recent[key] = kept
                while len(self._recent) > self.cached:
                    self._recent.popitem(last=False)
        return answers

    @property
    def busy(self) -> bool:
        """Whether other questions are being read or wait for it: a question asked now waits for them."""
        return self._pending > 0

    @property
    def behind_s(self) -> float:
        """How far behind reading is: the longest a question of the latest reader call waited for it,
        while questions are waiting or being read (0 when none is)."""
        return self._last_wait if self._pending > 0 else 0.0

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)

    # -- the worker ------------------------------------------------------------------------------------
    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, deadline = [first], time.perf_counter() + self.max_wait_s
        while len(jobs) < self.max_requests:
            left = deadline - time.perf_counter()
            try:
                job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _lower_priority(self) -> None:
        """This thread's niceness, and that of the threads the reader's engine started on its own
        (ONNX Runtime's pool, started when the model loaded, elsewhere), goes up by `nice`."""
        if self.nice <= 0 or not sys.platform.startswith("linux"):
            return  # elsewhere a thread id is no process id: never renice the wrong one
        me = threading.get_native_id()
        try:  # on Linux a thread is a task: PRIO_PROCESS with its native id renices this thread alone
            target = os.getpriority(os.PRIO_PROCESS, me) + self.nice
            for tid in (me, *getattr(self.reader, "worker_threads", [])):
                if os.getpriority(os.PRIO_PROCESS, tid) < target:  # a pool started here has it already
                    os.setpriority(os.PRIO_PROCESS, tid, target)
        except OSError as exc:  # not permitted, or not Linux: reading then competes on equal terms
            logger.warning("reader priority not lowered: %s", exc)

    def _run(self) -> None:
        self._lower_priority()
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._gather(first)
            self._read(jobs)
            if stop:
                return

    def _read(self, jobs: list[_Job]) -> None:
        started = time.perf_counter()
        waits = [started - j.queued_at for j in jobs]
        self._last_wait = max(waits)
        try:
            results = self.reader.answer_many(  # type: ignore[attr-defined]
                [(j.question, j.passages) for j in jobs],
                top_k=max(j.top_k for j in jobs),
                min_score=None,
                no_answer=any(j.no_answer for j in jobs),
            )
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            # One bad request must not fail the others: read them one by one to find it.
            logger.warning("a shared reader call failed (%s); reading its %d questions alone", exc, len(jobs))
            for job in jobs:
                self._read([job])
            return
        self.metrics.batch(len(jobs), sum(len(j.passages) for j in jobs), waits)
        for job, answers in zip(jobs, results, strict=True):
            job.future.set_result(trim(answers, job.top_k, job.min_score, job.no_answer))
