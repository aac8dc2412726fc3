"""Kate's extractive multilingual reader: model store, features, batched inference, span decoding,
training and evaluation. Imports nothing from Kate's other packages."""

from .reader import Reader
from .types import Answer, Passage, ReaderConfig

__all__ = ["Answer", "Passage", "Reader", "ReaderConfig"]
