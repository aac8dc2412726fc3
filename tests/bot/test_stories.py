"""bot/tests/ conversation tests, run with `rasa test core` on the model `kate up` trained for the stack."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.rasa import BOT_DIR, rasa_env, rasa_venv
from kate.stack import bot_fingerprint


def test_conversation_stories_pass(stack, tmp_path):
    model = stack.home / "bot-models" / f"kate-{bot_fingerprint()}.tar.gz"
    assert model.is_file()
    result = subprocess.run(
        [str(rasa_venv() / "bin" / "rasa"), "test", "core", "--model", str(model), "--stories", "tests",
         "--out", str(tmp_path), "--fail-on-prediction-errors", "--no-plot"],
        cwd=BOT_DIR, env=rasa_env(home=Path(stack.home)), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = (tmp_path / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "None of the test stories failed" in failed, failed
