"""Counters and histograms for the reader service, written in Prometheus' text format.

Kate needs a handful of numbers (requests, errors, forward passes, how many requests shared one, where
the time went), so they are kept here in a few lines rather than through a client library: one lock,
plain floats, rendered on each scrape of `/metrics`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class Histogram:
    name: str
    help: str
    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for bound, n in zip(self.buckets, self.counts, strict=True):
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {n}')
        lines += [
            f'{self.name}_bucket{{le="+Inf"}} {self.count}',
            f"{self.name}_sum {self.total:.6f}",
            f"{self.name}_count {self.count}",
        ]
        return lines


class ReaderMetrics:
    """What `/metrics` reports. Thread-safe: the service's request threads and its batching thread
    both write here."""

    COUNTERS: ClassVar[dict[str, str]] = {
        "kate_reader_requests_total": "questions received",
        "kate_reader_request_errors_total": "questions answered with an error",
        "kate_reader_forward_calls_total": "reader calls (each reads the chunks of one or more questions)",
        "kate_reader_passages_total": "passages read",
        "kate_reader_remembered_total": "questions answered from a remembered reading (KATE_READ_CACHE)",
        "kate_reader_busy_bound_total": "questions read with at most KATE_READ_TOKENS_BUSY tokens of "
        "passages, the reader being behind",
    }

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters = dict.fromkeys(self.COUNTERS, 0.0)
        self.in_flight = 0
        self.latency = Histogram(
            "kate_reader_request_seconds", "time from request to answer", LATENCY_BUCKETS
        )
        self.queue_wait = Histogram(
            "kate_reader_queue_seconds", "time a question waited to join a reader call", LATENCY_BUCKETS
        )
        self.batch_requests = Histogram(
            "kate_reader_batch_requests", "questions sharing one reader call", SIZE_BUCKETS
        )

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.counters["kate_reader_requests_total"] += 1

    def finished(self, seconds: float, *, error: bool = False) -> None:
        with self._lock:
            self.in_flight -= 1
            self.latency.observe(seconds)
            if error:
                self.counters["kate_reader_request_errors_total"] += 1

    def remembered(self) -> None:
        with self._lock:
            self.counters["kate_reader_remembered_total"] += 1

    def busy_bound(self) -> None:
        with self._lock:
            self.counters["kate_reader_busy_bound_total"] += 1

    def batch(self, requests: int, passages: int, waits: Sequence[float]) -> None:
        with self._lock:
            self.counters["kate_reader_forward_calls_total"] += 1
            self.counters["kate_reader_passages_total"] += passages
            self.batch_requests.observe(requests)
            for w in waits:
                self.queue_wait.observe(w)

    def render(self) -> str:
        with self._lock:
            lines: list[str] = []
            for name, help_text in self.COUNTERS.items():
                lines += [
                    f"# HELP {name} {help_text}",
                    f"# TYPE {name} counter",
                    f"{name} {self.counters[name]:g}",
                ]
            lines += [
                "# HELP kate_reader_in_flight questions being answered now",
                "# TYPE kate_reader_in_flight gauge",
                f"kate_reader_in_flight {self.in_flight}",
            ]
            for hist in (self.latency, self.queue_wait, self.batch_requests):
                lines += hist.render()
        return "\n".join(lines) + "\n"
