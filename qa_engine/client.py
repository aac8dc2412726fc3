"""The reader service seen from an action server: `RemoteReader.answer` works like `Reader.answer`.

Every call has a timeout, a dead or slow service raises `ReaderUnavailable` (the action server then tells
the employee it cannot read the intranet right now, instead of hanging), and connections are pooled, so
concurrent questions reach the service together and are batched there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .types import Answer, Passage


class ReaderUnavailable(RuntimeError):
    """The reader service could not answer (down, too slow, or it returned an error)."""


class RemoteReader:
    def __init__(self, url: str, *, timeout: float = 15.0, connect_timeout: float = 3.0, pool: int = 32):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"KATE_QA_URL must be an http(s) URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = (connect_timeout, timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            resp = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise ReaderUnavailable(f"reader service at {self.url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise ReaderUnavailable(
                f"reader service at {self.url}{path} answered {resp.status_code}: {resp.text[:300]}"
            )
        return resp

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health").json()

    def warm_up(self) -> None:
        self.health()

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        *,
        top_k: int = 3,
        min_score: float | None = None,
        no_answer: bool = False,
    ) -> list[Answer]:
        """The service's answers, each pointing at the caller's own `Passage` object."""
        if not question or not question.strip():
            raise ValueError("the question is empty")
        passages = list(passages)
        body = {
            "question": question,
            "passages": [asdict(p) for p in passages],
            "top_k": top_k,
            "min_score": min_score,
            "no_answer": no_answer,
        }
        resp = self._call("POST", "/v1/answer", json=body)
        try:
            answers = []
            for a in resp.json()["answers"]:
                index = a.pop("passage")
                answers.append(Answer(passage=None if index is None else passages[index], **a))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ReaderUnavailable(f"reader service at {self.url} sent a malformed answer: {exc!r}") from exc
        return answers

    def close(self) -> None:
        self.session.close()
