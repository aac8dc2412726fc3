"""bot/tests/ conversation tests, run with `rasa test core` on the model `kate up` trained for the stack."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.rasa import BOT_DIR, nlu_encoder, rasa_env, rasa_venv
from core.settings import Settings
from kate.stack import bot_fingerprint


def test_conversation_stories_pass(stack, tmp_path):
    encoder = nlu_encoder(Settings.from_env(stack.env))  # built by `kate up` already: found, not rebuilt
    model = stack.home / "bot-models" / f"kate-{bot_fingerprint(encoder=encoder)}.tar.gz"
    assert model.is_file()
    result = subprocess.run(
        [str(rasa_venv() / "bin" / "rasa"), "test", "core", "--model", str(model), "--stories", "tests",
         "--out", str(tmp_path), "--fail-on-prediction-errors", "--no-plot"],
        cwd=BOT_DIR, env=rasa_env(home=Path(stack.home), encoder=encoder), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = (tmp_path / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "None of the test stories failed" in failed, failed
