"""Rasa's side of Kate: where the bot project and Rasa's own Python environment are, and the environment
Rasa's processes run with (`kate up`, `kate bot eval` and the tests start them)."""

from __future__ import annotations

import os
from pathlib import Path

from .settings import REPOSITORY, Settings

BOT_DIR = REPOSITORY / "bot"


def rasa_venv(settings: Settings | None = None) -> Path:
    """Rasa's environment (`KATE_RASA_VENV`, read by Settings like every other variable)."""
    return (settings or Settings.from_env()).rasa_venv


def nlu_encoder(settings: Settings) -> Path:
    """The ONNX sentence encoder the NLU's dense featurizer reads (bot/components/dense.py), exported
    from the offline base encoder when missing (about 20 s, once)."""
    from qa_engine.sentence_encoder import build_sentence_encoder

    return build_sentence_encoder(settings.models_dir, progress=True)


def rasa_env(
    base: dict[str, str] | None = None, home: Path | None = None, encoder: Path | None = None
) -> dict[str, str]:
    """`encoder`: the folder `nlu_encoder` returns, which the NLU's dense featurizer reads
    (bot/components/dense.py, in the bot's pipeline since its intents are classified on it)."""
    env = dict(os.environ if base is None else base)
    if home is not None:  # Rasa's training cache, else .rasa/ in the working directory
        env["RASA_CACHE_DIRECTORY"] = str(home / "rasa-cache")
    if encoder is not None:
        env["KATE_NLU_ENCODER"] = str(encoder)
    env.update(
        PYTHONPATH=str(BOT_DIR),  # the custom NLU component (components/language.py)
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
    )
    return env
