"""Runs one peer's extractive reader inside its own throwaway environment (measure/peers.py makes it).

Standalone on purpose: it imports nothing of Kate, only the peer (Haystack 2.x, or transformers 4.x's
question-answering pipeline) and its dependencies. Reads a job (JSON on stdin), writes results (JSON on
stdout): for the speed job, the seconds of each timed run over every question and passage; for the F1 job,
the best answer of each question read from its own paragraph.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def haystack_reader(model: str, threads: int) -> Callable[[str, list[str]], str]:
    import torch
    from haystack import Document
    from haystack.components.readers import ExtractiveReader
    from haystack.utils import ComponentDevice

    torch.set_num_threads(threads)
    reader = ExtractiveReader(
        model=model, device=ComponentDevice.from_str("cpu"), top_k=3, max_seq_length=384, stride=128
    )
    reader.warm_up()

    def answer(question: str, texts: list[str]) -> str:
        found = reader.run(query=question, documents=[Document(content=t) for t in texts], top_k=3)
        spans = [a for a in found["answers"] if a.data]
        return spans[0].data if spans else ""

    return answer


def pipeline_reader(model: str, threads: int) -> Callable[[str, list[str]], str]:
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    qa = pipeline("question-answering", model=model, tokenizer=model, device=-1)

    def answer(question: str, texts: list[str]) -> str:
        found = qa(question=[question] * len(texts), context=texts, max_seq_len=384, doc_stride=128)
        found = found if isinstance(found, list) else [found]
        best = max(found, key=lambda a: a["score"], default=None)
        return best["answer"] if best else ""

    return answer


PEERS = {"haystack": haystack_reader, "transformers4": pipeline_reader}


def main() -> None:
    job = json.load(sys.stdin)
    answer = PEERS[job["peer"]](job["model"], job.get("threads", 2))
    out: dict = {"versions": versions()}
    if job["kind"] == "speed":
        for q in job["questions"]:  # warm-up: first calls allocate
            answer(q, job["passages"][:4])
        runs = []
        for _ in range(job["repeats"]):
            t0 = time.perf_counter()
            for q in job["questions"]:
                answer(q, job["passages"])
            runs.append(time.perf_counter() - t0)
        out["seconds"] = runs
    else:
        out["answers"] = [answer(item["question"], [item["context"]]) for item in job["items"]]
    json.dump(out, sys.stdout)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("haystack-ai", "transformers", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


if __name__ == "__main__":
    main()
