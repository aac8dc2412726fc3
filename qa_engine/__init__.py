"""Kate's extractive multilingual reader: model store, features, batched inference, span decoding,
training and evaluation. Imports nothing from Kate's other packages.

The records (`qa_engine.types`) import no torch, so the knowledge layer and the web app can use them
without loading it; `Reader` is imported on first use (PEP 562), not when the package is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .types import Answer, Passage, ReaderConfig

if TYPE_CHECKING:
    from .reader import Reader

__all__ = ["Answer", "Passage", "Reader", "ReaderConfig"]


def __getattr__(name: str) -> object:
    if name == "Reader":
        from .reader import Reader

        return Reader
    raise AttributeError(f"module 'qa_engine' has no attribute {name!r}")
