"""Loading Kate's models: the reader and the passage ranker, built from registry packages when they are
`offline:` models. Shared by the CLI and the action server, which both load them once per process."""

from __future__ import annotations

import copy
import sys
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:  # loaded on first use: commands that load no model (kate web, sources) load no torch
    from qa_engine import Reader
    from qa_engine.ranker import Ranker


def quiet_libraries() -> None:
    """Kate reports model problems itself (model_store): transformers' load reports and bars are noise."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def ensure_model(settings: Settings, spec: str) -> None:
    """Build an `offline:` model the first time it is used (idempotent, verified)."""
    from qa_engine.model_store import build_offline, offline_name

    if offline_name(spec) is not None:
        build_offline(spec, settings.models_dir, progress=sys.stderr.isatty())


def make_reader(settings: Settings, spec: str | None) -> Reader:
    from qa_engine import Reader

    spec = spec or settings.qa_model
    ensure_model(settings, spec)
    reader = Reader(settings.reader_config(spec))
    reader.warm_up()
    return reader


def make_ranker(
    settings: Settings, store: object | None = None, reader: Reader | None = None
) -> Ranker | None:
    """The passage ranker (KATE_RANKER; `none` turns it off), its base model built when missing. It
    borrows the reader's tokenizer when both models carry the same one."""
    from qa_engine.model_store import resolve
    from qa_engine.ranker import Ranker, same_tokenizer

    cfg = settings.ranker_config()
    if cfg is None:
        return None
    ensure_model(settings, cfg.model)
    tokenizer = None
    if reader is not None:
        reader_folder = resolve(reader.config.model, reader.config.models_dir)
        if same_tokenizer(reader_folder, resolve(cfg.model, cfg.models_dir)):
            # a copy, not the reader's own: the reader tokenizes on its batching thread while the ranker
            # encodes on the model thread, and a Rust tokenizer whose truncation one call sets cannot be
            # used by two threads at once ("Already borrowed")
            tokenizer = copy.deepcopy(reader.tokenizer)
    ranker = Ranker(cfg, store, tokenizer)  # type: ignore[arg-type]
    ranker.warm_up()
    return ranker
