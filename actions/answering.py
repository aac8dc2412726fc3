"""Answer one employee question from the intranet, inside the action server, within a time budget.

The action server is an asyncio (Sanic) process: a forward pass of the reader takes a few hundred
milliseconds of CPU, and fetching a stale page can take seconds, so neither may run on the event loop.
Fetching runs in the default thread pool. The ranker's short passes (the question's vector, the index
search, the page-structure matches, answer selection) run in one dedicated model thread, so they never
run two at once on the same cores. Reading is the long pass: questions asked together share it. In
process, a `BatchingReader` gathers the questions waiting and reads them in one call on its own thread,
at a lower CPU priority, so a 👍 or a scripted answer (Rasa's work, the event loop's) never waits for a
reading's time slice; with `KATE_QA_URL` set, the reader is a separate service (qa_engine/service.py) that
batches the same way. Either way the reading call is made from a pool of I/O threads, which only wait.
Each question has a deadline (`KATE_ANSWER_BUDGET`, well under Rasa's 60 s lock
lifetime): past it the employee is told the intranet is slow instead of waiting.

The models and the knowledge layer are loaded once, when the action server starts (`load`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from core.settings import Settings
from knowledge.audience import Employee
from knowledge.cache import VectorCache
from knowledge.library import Knowledge, ReadingSet
from knowledge.live_index import LiveIndex, Snapshot
from knowledge.question_vectors import QuestionVectors, question_key
from knowledge.refresher import Refresher, RefreshSettings
from knowledge.shapes import asks_for_several
from knowledge.store import StoreUnavailable
from knowledge.verified import VerifiedAnswers
from qa_engine import Answer, Passage
from qa_engine.batching import BatchingReader
from qa_engine.budget import TokenCounter, token_cut
from qa_engine.calibration import Calibration, for_model
from qa_engine.client import ReaderUnavailable, RemoteReader
from qa_engine.index import SHORTLIST, top_rows
from qa_engine.ranker import (
    FirstReading,
    Ranker,
    Ranking,
    Reading,
    passage_key,
    rank_by,
    read_first,
    read_ranked,
    select,
    sure_cut,
)
from qa_engine.types import AnswersQuestions

from .records import Candidate
from .structured import (
    LIST_CONFIDENCE_SHARE,
    Matches,
    StructureMatcher,
    candidate_of,
    list_candidate,
    section_candidate,
    table_candidate,
)
from .verified_match import Near, VerifiedMatcher

logger = logging.getLogger(__name__)

CANDIDATES = 10  # answer spans asked of the reader per question (alternatives for a 👎)
BEST_PAGES = 3  # pages linked when no answer is confident
MODEL_THREAD = "kate-reader"
READ_NICE = 10  # the in-process reading thread's niceness: CPU goes to requests first, reading takes the rest
AUDIENCE_READ = 2  # passages of the employee's own audience's pages read beside the best-ranked ones
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def top_ranked(a: Answer, ranking: Ranking | None) -> bool:
    """Whether the span's passage is the one the ranker found most relevant to the question."""
    return (
        ranking is not None
        and bool(ranking.passages)
        and passage_key(ranking.passages[0]) == (passage_key(a.passage) if a.passage is not None else None)
    )


def prefer_audience(candidates: list[Candidate], preferred: AbstractSet[str], margin: float) -> None:
    """The best answer from a page meant for the employee's audience goes first when its confidence is
    within `margin` of the best answer's (a country's own leave page over the group-wide one)."""
    if not candidates or not preferred or candidates[0].url in preferred:
        return
    best = candidates[0].confidence or 0.0
    own = next((c for c in candidates if c.url in preferred and not c.outdated), None)
    if own is not None and (own.confidence or 0.0) >= best - margin:
        candidates.remove(own)
        candidates.insert(0, own)


def _units(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", NUMBER.sub(" ", text.lower())))


def disagree(a: str, b: str) -> bool:
    """Two answers state different figures of the same unit ("25 days" and "27 days"). Only figures:
    two phrasings of one fact, or two facts of two kinds ("9 euros", "38 EUR a day in Munich" on a page
    about another thing), are not worth a warning."""
    x, y = set(NUMBER.findall(a)), set(NUMBER.findall(b))
    return bool(x) and bool(y) and not (x & y) and bool(_units(a) & _units(b))


def find_conflict(candidates: list[Candidate], reading: ReadingSet, margin: float) -> Candidate | None:
    """Another page's answer that disagrees with the best one and is nearly as confident: both pages
    are current (not superseded, not demoted) and meant for the same audience."""
    if len(candidates) < 2 or margin <= 0:
        return None
    best = candidates[0]

    def audience(url: str) -> tuple[bool, bool]:
        return url in reading.preferred, url in reading.elsewhere

    if best.outdated or best.url in reading.demoted:
        return None
    for other in candidates[1:]:
        if (
            not other.outdated
            and other.url not in reading.demoted
            and audience(other.url) == audience(best.url)
            and (other.confidence or 0.0) >= (best.confidence or 0.0) - margin
            and disagree(best.answer, other.answer)
        ):
            return other
    return None


@dataclass
class Outcome:
    """What the reader made of one question."""

    status: str  # "answered" | "unsure" | "sources_down" | "too_slow" | "reader_down"
    candidates: list[Candidate] = field(default_factory=list)  # confident ones, best first, one per page
    best_pages: list[tuple[str, str]] = field(default_factory=list)  # (title, url), most relevant first
    seconds: float = 0.0
    top: Answer | None = None  # the pipeline's best span, confident or not (verified answers check it)
    conflict: Candidate | None = None  # a close answer from another page that disagrees with the best
    # False: the best-ranked passages gave a sure answer and the rest were not read (a 👎 reads them)
    read_all: bool = True

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def first_reading(settings: Settings, calibration: Calibration) -> FirstReading | None:
    """The first reading the settings ask for (`KATE_READ_FIRST`, `KATE_READ_SURE`), its sure score from
    the reader's calibration; None when `KATE_READ_SURE` is 0."""
    if settings.read_sure <= 0:
        return None
    return FirstReading(settings.read_first, calibration.score_at(settings.read_sure))


def _token_counter(ranker: Ranker | None, read_tokens: int) -> TokenCounter | None:
    """What counts the ranked passages' tokens for `KATE_READ_TOKENS` (the ranker's tokenizer, which is
    the reader's when both come from one base), or None: no bound, or no fast tokenizer to count with."""
    if ranker is None or read_tokens <= 0:
        return None
    try:
        return TokenCounter(ranker.tokenizer)
    except ValueError as exc:
        logger.warning("KATE_READ_TOKENS not applied: %s", exc)
        return None


class KnowledgeAnswerer:
    """The reader, the ranker and the knowledge layer of one action server."""

    def __init__(
        self,
        knowledge: Knowledge,
        reader: AnswersQuestions,
        ranker: Ranker | None,
        *,
        model_name: str,
        fetch_budget_s: float = 3.0,
        answer_budget_s: float = 20.0,
        calibration: Calibration | None = None,
        min_confidence: float | None = None,
        rank_top: int = 10,
        rank_weight: float = 10.0,
        rank_margin: float = 0.0,
        first_reading: FirstReading | None = None,
        conflict_margin: float = 0.0,
        audience_margin: float = 0.5,
        faq_min_similarity: float = 2.0,
        batch_wait_ms: float = 5.0,
        read_cache: int = 0,
        read_tokens: int = 0,
        read_tokens_busy: int = 0,
        read_behind_s: float = 0.25,
    ) -> None:
        self.knowledge = knowledge
        self.remote = isinstance(reader, RemoteReader)
        # Questions asked together share forward passes: a remote service batches them itself, and a
        # reader in this process gets the same front (readers without `answer_many`: tests' stand-ins).
        self.reader: AnswersQuestions = (
            BatchingReader(reader, max_wait_ms=batch_wait_ms, nice=READ_NICE, cached=read_cache)
            if not self.remote and hasattr(reader, "answer_many")
            else reader
        )
        self.ranker = ranker
        self.model_name = model_name
        self.fetch_budget_s = fetch_budget_s
        self.answer_budget_s = answer_budget_s
        # No calibration (tests, tools): every span that beats "no answer" is given, as before.
        self.calibration = calibration or Calibration(slope=1.0, intercept=0.0, model="margin > 0")
        self.min_confidence = self.calibration.threshold if min_confidence is None else min_confidence
        self.rank_top = rank_top
        self.rank_weight = rank_weight
        self.rank_margin = rank_margin  # read only the passages this close to the best one (0: rank_top)
        self.first_reading = first_reading  # None: every ranked passage in one reading
        self.read_tokens = read_tokens  # at most this many passage tokens read per question (0: no bound)
        # ...and while the reader is behind by `read_behind_s` or more (0: as always): see `_bound`
        self.read_tokens_busy = read_tokens_busy
        self.read_behind_s = read_behind_s
        self._count_tokens = _token_counter(ranker, max(read_tokens, read_tokens_busy))
        self.conflict_margin = conflict_margin  # 0 (tests, tools): no conflicts flagged
        self.audience_margin = audience_margin
        self.structure = StructureMatcher(ranker, faq_min_similarity)  # FAQ pairs, list headings, tables
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=MODEL_THREAD)
        self.live: LiveIndex | None = None  # the passage index (set by `index_in_background`)
        self._closing = threading.Event()
        self.refresher: Refresher | None = None  # one works per deployment (knowledge/refresher.py)
        self.verified: VerifiedMatcher | None = None  # answers HR verified (set by `load`, or by tests)
        self.question_vectors: QuestionVectors | None = None  # for the console's gaps grouped by meaning
        # the threads that wait on reading calls (each only waits: the reading is done elsewhere)
        self._read_calls = ThreadPoolExecutor(max_workers=32, thread_name_prefix="kate-read-call")
        # the threads that check for changes and apply them (`_catch_up`): their own, so that a check is
        # never queued behind threads waiting on a page fetch; one applies, the others return at once
        self._index_calls = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kate-index-call")

    @classmethod
    def load(cls, settings: Settings) -> KnowledgeAnswerer:
        """Everything from Kate's settings: Redis, the sources, the reader and the ranker, warmed up."""
        from core.models import make_ranker, make_reader, quiet_libraries
        from core.wiring import open_knowledge

        quiet_libraries()
        knowledge = open_knowledge(settings)
        store = VectorCache(knowledge.cache.r, settings.redis_prefix)
        if settings.qa_url:
            reader: AnswersQuestions = RemoteReader(settings.qa_url, timeout=settings.answer_budget)
            ranker = make_ranker(settings, store, None)
            model = settings.qa_url
        else:
            reader = make_reader(settings, None)
            ranker = make_ranker(settings, store, reader)
            model = settings.qa_model
        model += f" + {settings.ranker}" if ranker else ""
        calibration = for_model(settings.qa_model)
        answerer = cls(
            knowledge,
            reader,
            ranker,
            model_name=model,
            fetch_budget_s=settings.fetch_budget,
            answer_budget_s=settings.answer_budget,
            calibration=calibration,
            min_confidence=settings.answer_min_confidence,
            rank_top=settings.rank_top,
            rank_weight=settings.rank_weight,
            rank_margin=settings.rank_margin,
            first_reading=first_reading(settings, calibration),
            conflict_margin=settings.conflict_margin,
            audience_margin=settings.audience_margin,
            faq_min_similarity=settings.faq_min_similarity,
            batch_wait_ms=settings.qa_batch_wait_ms,
            read_cache=settings.read_cache,
            read_tokens=settings.read_tokens,
            read_tokens_busy=settings.read_tokens_busy,
            read_behind_s=settings.read_behind,
        )
        answerer.verified = VerifiedMatcher(
            VerifiedAnswers(knowledge.cache.r, settings.redis_prefix),
            ranker,
            floor=settings.verified_min_similarity,
            strict=settings.verified_strict_similarity,
        )
        answerer.question_vectors = QuestionVectors(knowledge.cache.r, settings.redis_prefix)
        answerer.index_in_background(poll_s=settings.index_poll)
        if settings.refresh_interval > 0:
            answerer.refresher = Refresher(knowledge, RefreshSettings(every_s=settings.refresh_interval))
            answerer.refresher.start()
        return answerer

    def _encode(self, passages: list[Passage], piece: int) -> np.ndarray:
        """The ranker's vectors of `passages`: directly on the model thread, else `piece` passages per
        model-thread job, so questions asked meanwhile wait for one piece at most."""
        assert self.ranker is not None
        vectors = functools.partial(self.ranker.passage_vectors, remember=False)  # the index keeps them
        if threading.current_thread().name.startswith(MODEL_THREAD):
            return vectors(passages)
        parts = [
            self._model_thread.submit(vectors, passages[i : i + piece]).result()
            for i in range(0, len(passages), piece)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.live_dim()), dtype=np.float32)

    def live_dim(self) -> int:
        assert self.ranker is not None
        return int(self.ranker.model.config.hidden_size)

    def index_in_background(self, piece: int = 64, poll_s: float = 2.0) -> None:
        """Load the passage index (knowledge/live_index.py) in a background thread, encoding the passages
        whose vectors are not in Redis yet `piece` at a time on the model thread; then, every `poll_s`,
        catch up on what changed, so the replica stays fresh without questions (the index is rebuilt on
        this thread; new passages are encoded on the model thread, a piece at a time).
        Until the first load is done, questions take the per-question path."""
        if self.ranker is None:
            return
        self.live = LiveIndex(self.knowledge, lambda ps: self._encode(ps, piece), self.live_dim())
        live = self.live

        def run() -> None:
            wait_s = poll_s
            while live.snapshot is None:  # until loaded: a replica is not ready without its index
                try:
                    live.load()
                except StoreUnavailable as exc:  # Redis down at the start: try again, less and less often
                    logger.warning("passage index not loaded (again in %.0f s): %s", wait_s, exc)
                except RuntimeError as exc:  # the server is closing (StoreUnavailable is one too)
                    logger.warning("passage index not loaded: %s", exc)
                    return
                except Exception as exc:  # questions take the per-question path meanwhile
                    logger.exception("passage index not loaded (again in %.0f s): %s", wait_s, exc)
                if live.snapshot is None and self._closing.wait(wait_s):
                    return
                wait_s = min(wait_s * 2, 60.0)
            while not self._closing.wait(poll_s):
                try:
                    live.catch_up()  # here: only encoding new passages takes turns on the model thread
                except RuntimeError:
                    return  # closing
                except Exception as exc:  # Redis away for a moment: try again at the next poll
                    logger.warning("passage index not refreshed: %s", exc)

        threading.Thread(target=run, name="kate-index", daemon=True).start()

    def index_state(self) -> dict:
        """For a readiness probe: whether this replica answers from its passage index. Before the index is
        loaded (about 10 s at 50,000 pages), questions take the per-question path, which reads every page
        from Redis; so a new replica should get no traffic yet. Without a ranker there is no index to
        wait for."""
        if self.ranker is None:
            return {"ready": True, "index": "none"}
        snapshot = None if self.live is None else self.live.snapshot
        if snapshot is None:
            return {"ready": False, "index": "loading"}
        return {"ready": True, "index": "loaded", "passages": len(snapshot), "loaded_s": self.live.loaded_s}

    def remember_question(self, question: str) -> None:
        """Keep the vector of a question Kate could not answer well (a knowledge gap), so the console can
        group gaps by meaning across languages. In the background, on the model thread; never fails."""
        store, ranker = self.question_vectors, self.ranker
        if store is None or ranker is None:
            return
        key = question_key(question)

        def encode() -> None:
            try:
                if key and store.missing([key]):
                    store.put({key: ranker.query_vectors([question])[0]})
            except Exception as exc:  # grouping is a convenience: a failure costs only the grouping
                logger.warning("question vector not kept: %s", exc)

        with contextlib.suppress(RuntimeError):  # the action server is closing
            self._model_thread.submit(encode)

    async def near_verified(self, question: str) -> list[Near]:
        """Verified questions close to this one (actions/verified_match.py); none when they cannot be
        looked up in time (the employee then gets the usual answer)."""
        if self.verified is None:
            return []
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._model_thread, self.verified.near, question),
                timeout=self.answer_budget_s / 2,
            )
        except (TimeoutError, StoreUnavailable) as exc:
            logger.error("verified answers not consulted: %s", exc or "too slow")
            return []

    async def answer(
        self, question: str, employee: Employee | None = None, *, rest_only: bool = False
    ) -> Outcome:
        """The candidates for `question`, or why there are none, within the answer budget; only from the
        pages `employee` may read (knowledge/audience.py), theirs first. `rest_only`: only the ranked
        passages a first reading leaves unread (after a 👎 on the sure answer the first ones gave)."""
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            outcome = await asyncio.wait_for(
                self._answer(loop, question, employee, rest_only), timeout=self.answer_budget_s
            )
        except TimeoutError:
            logger.warning("no answer within %.1f s for %r", self.answer_budget_s, question[:80])
            outcome = Outcome("too_slow")
        except StoreUnavailable as exc:
            logger.error("cannot read the sources: %s", exc)
            outcome = Outcome("sources_down")
        except ReaderUnavailable as exc:
            logger.error("%s", exc)
            outcome = Outcome("reader_down")
        outcome.seconds = time.perf_counter() - t0
        return outcome

    async def _answer(
        self, loop: asyncio.AbstractEventLoop, question: str, employee: Employee | None, rest_only: bool
    ) -> Outcome:
        snapshot = None
        if self.live is not None:
            snapshot = await loop.run_in_executor(self._index_calls, self._catch_up)
        if snapshot is not None:
            return await self._answer_indexed(loop, question, employee, snapshot, rest_only)
        reading = await loop.run_in_executor(
            None, self.knowledge.passages_for_answering, self.fetch_budget_s, employee
        )
        if not reading.passages:
            return Outcome("sources_down")
        ranking, matches = await loop.run_in_executor(
            self._model_thread, self._rank_and_match, question, reading.passages, reading.preferred
        )
        return await self._read_and_select(loop, question, ranking, reading, matches, rest_only)

    async def _read_and_select(
        self,
        loop: asyncio.AbstractEventLoop,
        question: str,
        ranking: Ranking | None,
        reading: ReadingSet,
        matches: Matches,
        rest_only: bool = False,
    ) -> Outcome:
        """Read what the ranking chose, together with the other questions waiting (a reading call from
        the I/O pool), then choose the candidates on the model thread (selection may encode a heading)."""
        done = await loop.run_in_executor(
            self._read_calls, self._read, question, ranking, reading, matches, rest_only
        )
        outcome = await loop.run_in_executor(
            self._model_thread, self._select, done.found, ranking, reading, question, matches
        )
        outcome.read_all = done.complete
        return outcome

    def _catch_up(self) -> Snapshot | None:
        """The index with the changes noted before this question (None while the first load runs: the
        per-question path). When another thread is applying them, the question waits for it, up to the
        fetch budget, then takes the index as it is: a page added a moment ago is read, and a mass
        import does not hold questions. Not on the model thread: rebuilding the index takes about half a
        second at 50,000 passages, and other questions' ranking must not queue behind it; only the
        changed pages' new passages are encoded there, a piece at a time."""
        assert self.live is not None
        return self.live.catch_up(wait_s=self.fetch_budget_s)

    async def _answer_indexed(
        self,
        loop: asyncio.AbstractEventLoop,
        question: str,
        employee: Employee | None,
        snapshot: Snapshot,
        rest_only: bool,
    ) -> Outcome:
        """The question path over the in-process index: fetch only the employee's sources that are due
        (never fetched, or stale: a few at most), within the fetch budget, then search the index."""
        due = snapshot.due(self.knowledge.cache.ttl, time.time(), employee)
        if due:
            fetches = self.knowledge.fetch_in_background(due)
            await loop.run_in_executor(None, lambda: wait(fetches, timeout=self.fetch_budget_s))
            if any(f.done() for f in fetches):
                snapshot = await loop.run_in_executor(self._index_calls, self._catch_up) or snapshot
        reading, ranking, matches = await loop.run_in_executor(
            self._model_thread, self._search, question, snapshot, employee
        )
        if not reading.passages:
            return Outcome("sources_down")
        return await self._read_and_select(loop, question, ranking, reading, matches, rest_only)

    def _search(
        self, question: str, snapshot: Snapshot, employee: Employee | None
    ) -> tuple[ReadingSet, Ranking | None, Matches]:
        """The index's shortlist for this employee (the best `SHORTLIST` passages they may read, plus the
        best of their own audience's pages), ranked, and what the page structure says about it."""
        assert self.ranker is not None
        readable = snapshot.readable(employee)
        index = snapshot.index
        _, scores = index.score_all(self.ranker.query_vectors([question])[0], question)
        rows = top_rows(scores, SHORTLIST, readable.allowed)
        if readable.preferred:
            own = readable.allowed & snapshot.rows_of(readable.preferred)
            rows = np.union1d(rows, top_rows(scores, AUDIENCE_READ, own))
        # page order, as the per-question path gives them (lists, tables, FAQ pairs rely on it)
        rows = np.sort(rows)
        passages = [index.passages[r] for r in rows]
        vectors = index.vectors[rows]
        order = scores[rows]
        reading = ReadingSet(
            passages=snapshot.page_passages([p.url for p in passages]),
            sources=readable.sources,
            demoted=set(snapshot.demoted),
            preferred=readable.preferred,
            elsewhere=readable.elsewhere,
            withheld=readable.withheld,
        )
        if not passages:
            return reading, None, Matches()
        ranking = self._rank(question, passages, vectors, readable.preferred, order)
        return reading, ranking, self.structure.match(question, passages, vectors)

    def read(self, question: str, reading: ReadingSet) -> Outcome:
        """Rank and read (blocking): confident candidates, one per page, and the most relevant pages."""
        ranking, matches = self._rank_and_match(question, reading.passages, reading.preferred)
        done = self._read(question, ranking, reading, matches)
        outcome = self._select(done.found, ranking, reading, question, matches)
        outcome.read_all = done.complete
        return outcome

    def _rank_and_match(
        self, question: str, passages: Sequence[Passage], preferred: AbstractSet[str]
    ) -> tuple[Ranking | None, Matches]:
        """The ranking and what the page structure says, from one lookup of the passages' vectors."""
        if self.ranker is None:
            return None, Matches()
        vectors = self.ranker.passage_vectors(passages)
        return self._rank(question, passages, vectors, preferred), self.structure.match(
            question, passages, vectors
        )

    def _bound(self) -> int:
        """The most passage tokens this question's reading may have (0: no bound): `read_tokens`, or the
        tighter `read_tokens_busy` while the questions of the latest reader call waited `read_behind_s`
        or more for it.

        Why: on a small CPU, a crowd asking different things fills the reading queue, and a full queue
        grows until the answer budget runs out. Reading fewer passages while it is full empties it: 50
        employees on AVX2 code paths went from p95 4.8-5.1 s to 2.7-2.8 s (docs/benchmarks.md),
        at the cost of a few answers (of the demo intranet's 51 questions read at 320 tokens, 42 right
        against 44; of the Lumen test intranet's 49, 22 both ways), paid only while the reader is behind.
        A reader service (`KATE_QA_URL`) scales out instead: its readings are never shortened."""
        waited = getattr(self.reader, "behind_s", 0.0)
        if self.read_tokens_busy > 0 and waited > 0 and waited >= self.read_behind_s:
            metrics = getattr(self.reader, "metrics", None)
            if metrics is not None:
                metrics.busy_bound()
            return min(self.read_tokens or self.read_tokens_busy, self.read_tokens_busy)
        return self.read_tokens

    def _rank(
        self,
        question: str,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        preferred: AbstractSet[str],
        order: np.ndarray | None = None,
    ) -> Ranking:
        """The passages to read; the best ones of pages meant for the employee's audience are read too,
        even when pages for everyone rank above them (their answer can then win: `prefer_audience`).
        `order`: what chooses them (the index's fused scores), when not the cosine alone."""
        assert self.ranker is not None
        sims = vectors @ self.ranker.query_vectors([question])[0]
        ranking = sure_cut(rank_by(sims, passages, self.rank_top, order), self.rank_margin)
        bound = self._bound()
        if self._count_tokens is not None and bound > 0:
            ranking = token_cut(ranking, bound, self._count_tokens(ranking.passages))
        own = [i for i, p in enumerate(passages) if p.url in preferred]
        if own:
            extra = rank_by(
                sims[own], [passages[i] for i in own], AUDIENCE_READ, None if order is None else order[own]
            )
            for passage in extra.passages:
                key = passage_key(passage)
                if key not in ranking.relevance:
                    ranking.passages.append(passage)
                    ranking.relevance[key] = extra.relevance[key]
        return ranking

    def _structured(self, found: list[Answer], question: str, matches: Matches) -> list[Candidate]:
        """The answers the page structure gives, most specific first: a FAQ pair, a list, a table cell."""
        out = []
        if matches.faq is not None:
            out.append(section_candidate(matches.faq[0], found, self.calibration, self.min_confidence))
        if matches.section is not None:
            listed = list_candidate(matches.section, question, found, self.calibration, self.min_confidence)
            out.extend([listed] if listed is not None else [])
        if matches.cell is not None:
            out.append(table_candidate(matches.cell, found, self.calibration, self.min_confidence))
        return out

    def _read(
        self,
        question: str,
        ranking: Ranking | None,
        reading: ReadingSet,
        matches: Matches,
        rest_only: bool = False,
    ) -> Reading:
        """The ranked passages read, the best-ranked first when a first reading is set (with the
        passages whose answers must compete with theirs: the employee's own pages, the structure's);
        `rest_only`: the passages that first reading leaves (every one when none is set).

        While other questions are being read, every ranked passage is read at once: a first reading
        would then wait its turn twice when it is not sure (measured with `kate bench load`: reading
        first under a full queue raised the crowd's p95), and the readings that share a pass already
        keep the reader busy."""
        busy = getattr(self.reader, "busy", False) and not rest_only
        if ranking is None or self.first_reading is None or busy:
            found = read_ranked(
                self.reader, question, reading.passages, ranking, top_k=CANDIDATES, read_top=self.rank_top
            )
            return Reading(found, read=len(reading.passages if ranking is None else ranking.passages))
        also = [p for p in ranking.passages if p.url in reading.preferred]
        also += [p for p in (matches.faq[0] if matches.faq else None, matches.section) if p is not None]
        also += [matches.cell.passage] if matches.cell is not None else []
        return read_first(
            self.reader,
            question,
            ranking,
            self.first_reading,
            top_k=max(CANDIDATES, self.rank_top),
            weight=self.rank_weight,
            also=also,
            rest_only=rest_only,
        )

    def _select(
        self,
        found: list[Answer],
        ranking: Ranking | None,
        reading: ReadingSet | None = None,
        question: str = "",
        matches: Matches | None = None,
    ) -> Outcome:
        """Confident candidates, one per page, best first, each shaped for display (a whole list, a table
        row, a FAQ answer); a page's current section beats its superseded one, demoted and outdated answers
        come last, an answer from a page meant for this employee's audience comes first when it is close
        to the best, and two close answers from two pages that disagree are both kept (a conflict)."""
        reading = reading or ReadingSet(passages=[], sources=0)
        found = select(found, ranking, top_k=CANDIDATES, weight=self.rank_weight)
        several = asks_for_several(question)
        per_page: dict[str, Candidate] = {}
        pages: list[tuple[str, str]] = []
        for a in found:
            if a.passage is None or not a.text.strip():
                continue
            url = a.passage.url
            if all(url != p[1] for p in pages):
                pages.append((a.passage.title or url, url))
            confidence = self.calibration.confidence(a.score)
            held = per_page.get(url)
            replaces = held is None or (held.outdated and not a.passage.outdated)
            if not replaces:
                continue
            if confidence >= self.min_confidence:
                per_page[url] = candidate_of(a, confidence, question, reading.passages)
            elif (
                several
                and confidence >= self.min_confidence * LIST_CONFIDENCE_SHARE
                and top_ranked(a, ranking)
            ):
                # The reader's confidence is that of one span; in a list, any item is a right span and
                # they share it. A list question's span in a list is given from a lower confidence, when
                # the ranker, the other judge, also puts that section first.
                listed = candidate_of(a, confidence, question, reading.passages)
                if listed.kind in ("list", "steps"):
                    per_page[url] = listed
        matches = matches or Matches()
        if several and matches.section is None and per_page:
            best = next(iter(per_page.values()))
            section = self.structure.page_list(question, best, matches)
            listed = (
                None
                if section is None
                else list_candidate(section, question, found, self.calibration, self.min_confidence)
            )
            if listed is not None:
                per_page[best.url] = listed
        for first in reversed(self._structured(found, question, matches)):
            per_page.pop(first.url, None)  # the structure's answer replaces its page's span, and goes first
            per_page = {first.url: first, **per_page}
            if all(first.url != p[1] for p in pages):
                pages.insert(0, (first.title, first.url))
        candidates = sorted(
            per_page.values(),
            key=lambda c: (c.url in reading.demoted, c.outdated, c.url in reading.elsewhere),
        )
        pages.sort(key=lambda p: (p[1] in reading.demoted, p[1] in reading.elsewhere))
        prefer_audience(candidates, reading.preferred, self.audience_margin)
        conflict = find_conflict(candidates, reading, self.conflict_margin)
        if conflict is not None:  # shown beside the best, so it is not offered again after a 👎
            candidates.remove(conflict)
            candidates.insert(1, conflict)
        top = next((a for a in found if a.passage is not None and a.text.strip()), None)
        status = "answered" if candidates else "unsure"
        return Outcome(status, candidates, pages[:BEST_PAGES], top=top, conflict=conflict)

    def close(self) -> None:
        self._closing.set()
        if self.refresher is not None:
            self.refresher.stop()
        self._model_thread.shutdown(wait=False, cancel_futures=True)
        self._read_calls.shutdown(wait=False, cancel_futures=True)
        self._index_calls.shutdown(wait=False, cancel_futures=True)
        if isinstance(self.reader, BatchingReader):
            self.reader.close()
        self.knowledge.close()
