"""The reader as an HTTP service (`kate qa serve`): one model, many action servers.

Why a service: the reader is the only heavy part of Kate. Run in-process, every action server holds its
own copy and reads each question alone; as a service it can sit on a GPU node, be replicated behind a
load balancer, and batch the questions of all action servers together (`batching.BatchingReader`).

API (JSON):
- `POST /v1/answer` `{"question", "passages": [{"text", "url", "title", "id", "language", "section"}],
  "top_k", "min_score", "no_answer"}` -> `{"answers": [...], "model", "seconds"}`. Each answer names its
  passage by index into the request's list (`passage: null` for the no-answer verdict), so clients keep
  their own passage objects and nothing is sent twice.
- `GET /health`: 200 with the model and device once the model is loaded and warmed up.
- `GET /metrics`: Prometheus text (requests, errors, reader calls, questions per call, latencies).

Requests are bounded (question length, passage count and size): a client cannot make the service read
without limit, and an over-long request gets a 422 that says which limit it broke.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from .batching import BatchingReader
from .metrics import ReaderMetrics
from .types import Answer, Passage

MAX_QUESTION_CHARS = 2_000
MAX_PASSAGES = 1_000
MAX_PASSAGE_CHARS = 100_000
MAX_TOP_K = 100


class PassageIn(BaseModel):
    """One passage of a request: `qa_engine.Passage` with size limits."""

    text: str = Field(max_length=MAX_PASSAGE_CHARS)
    url: str = Field("", max_length=4_000)
    title: str = Field("", max_length=2_000)
    id: str = Field("", max_length=500)
    language: str | None = Field(None, max_length=20)
    section: str = Field("", max_length=2_000)


class AnswerRequest(BaseModel):
    """The body of `POST /v1/answer`."""

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=r"\S")
    passages: list[PassageIn] = Field(max_length=MAX_PASSAGES)
    top_k: int = Field(3, ge=1, le=MAX_TOP_K)
    min_score: float | None = None
    no_answer: bool = False


def answer_to_json(answer: Answer, index: dict[int, int]) -> dict[str, Any]:
    return {
        "text": answer.text,
        "score": answer.score,
        "passage": None if answer.passage is None else index[id(answer.passage)],
        "start": answer.start,
        "end": answer.end,
        "sentence": answer.sentence,
        "sentence_start": answer.sentence_start,
        "span_score": answer.span_score,
        "no_answer_score": answer.no_answer_score,
    }


def create_app(
    reader: object,
    *,
    max_wait_ms: float = 5.0,
    max_requests: int = 16,
    model_name: str = "",
    cached: int = 0,
) -> FastAPI:
    """The service around a loaded, warmed-up reader (the caller loads it, so `/health` is true at once)."""
    from fastapi.responses import PlainTextResponse

    metrics = ReaderMetrics()
    batcher = BatchingReader(
        reader, max_wait_ms=max_wait_ms, max_requests=max_requests, metrics=metrics, cached=cached
    )
    config = reader.config  # type: ignore[attr-defined]
    device = str(getattr(reader, "device", "cpu"))
    name = model_name or config.model

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title="Kate reader", version="1", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": name, "device": device, "batching_ms": max_wait_ms}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics_text() -> str:
        return metrics.render()

    # A plain `def`: FastAPI runs it on its thread pool, so concurrent requests wait in the batcher
    # together instead of one after the other.
    @app.post("/v1/answer")
    def answer(req: AnswerRequest) -> dict[str, Any]:
        t0 = time.perf_counter()
        metrics.started()
        error = True
        try:
            passages = [Passage(**p.model_dump()) for p in req.passages]
            answers = batcher.answer(
                req.question, passages, top_k=req.top_k, min_score=req.min_score, no_answer=req.no_answer
            )
            index = {id(p): i for i, p in enumerate(passages)}
            body = {
                "answers": [answer_to_json(a, index) for a in answers],
                "model": name,
                "seconds": round(time.perf_counter() - t0, 4),
            }
            error = False
            return body
        finally:
            metrics.finished(time.perf_counter() - t0, error=error)

    return app


def serve(
    reader: object, *, host: str, port: int, max_wait_ms: float, model_name: str = "", cached: int = 0
) -> None:
    import uvicorn

    app = create_app(reader, max_wait_ms=max_wait_ms, model_name=model_name, cached=cached)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
