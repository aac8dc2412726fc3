"""The one settings object: defaults, parsing, clear errors, and what it hands to the reader."""

from pathlib import Path

import pytest

from kate.settings import Settings, SettingsError


def test_defaults_and_reader_config():
    s = Settings.from_env({"KATE_HOME": "/srv/kate"})
    assert s.qa_model == "offline:kate-reader-e5-small"
    assert s.models_dir == Path("/srv/kate/models")
    cfg = s.reader_config()
    assert (cfg.max_length, cfg.stride, cfg.max_answer_tokens, cfg.batch_size) == (384, 128, 30, 64)
    assert cfg.models_dir == "/srv/kate/models" and cfg.device == "auto" and cfg.max_batch_tokens is None
    assert s.reader_config("org/other").model == "org/other"


def test_values_are_parsed():
    s = Settings.from_env(
        {
            "KATE_DEVICE": "cuda:1",
            "KATE_PRECISION": "BF16",
            "KATE_MIN_SCORE": "-2.5",
            "KATE_THREADS": "4",
            "KATE_MAX_BATCH_TOKENS": "4096",
            "KATE_QA_MODEL": "org/m",
        }
    )
    assert (s.device, s.precision, s.min_score, s.threads, s.max_batch_tokens, s.qa_model) == (
        "cuda:1",
        "bf16",
        -2.5,
        4,
        4096,
        "org/m",
    )


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"KATE_BATCH_SIZE": "0"}, "KATE_BATCH_SIZE"),
        ({"KATE_STRIDE": "x"}, "KATE_STRIDE"),
        ({"KATE_STRIDE": "400"}, "KATE_STRIDE"),
        ({"KATE_FETCH_TIMEOUT": "-1"}, "KATE_FETCH_TIMEOUT"),
        ({"KATE_PRECISION": "int4"}, "KATE_PRECISION"),
        ({"KATE_MIN_SCORE": "high"}, "KATE_MIN_SCORE"),
        ({"KATE_LOG_LEVEL": "loud"}, "KATE_LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)
