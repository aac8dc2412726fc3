"""The Rasa project in bot/, run with the real Rasa 3.6 in .venv-rasa: data validation, NLU training,
intents and the detected language for English, French and Japanese messages."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
RASA_PY = ROOT / ".venv-rasa" / "bin" / "python"

PARSE = """
import asyncio, json, sys
from rasa.core.agent import Agent

async def main():
    agent = Agent.load(sys.argv[1])
    out = []
    for text in json.loads(sys.argv[2]):
        r = await agent.parse_message(text)
        lang = [e["value"] for e in r["entities"] if e["entity"] == "language"]
        out.append([r["intent"]["name"], r["intent"]["confidence"], lang[0] if lang else None])
    print("RESULT " + json.dumps(out))

asyncio.run(main())
"""


def rasa(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(BOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.run(
        [str(RASA_PY), "-m", "rasa", *args], cwd=BOT, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def nlu_model(tmp_path_factory):
    if not RASA_PY.is_file():
        pytest.fail(".venv-rasa is missing: ./kate.sh test creates it")
    out = tmp_path_factory.mktemp("rasa-models")
    result = rasa("train", "nlu", "--out", str(out), "--fixed-model-name", "nlu")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out / "nlu.tar.gz"


def test_bot_data_is_valid():
    result = rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


CASES = [
    ("How many days of paid leave do I get?", "leave_policy", "en"),
    ("When is payday this month?", "payroll_date", "en"),
    ("Combien de jours de télétravail par semaine ?", "remote_work", "fr"),
    ("Quelle est l'adresse du bureau de Lyon ?", "offices", "fr"),
    ("給料日はいつですか？", "payroll_date", "ja"),
    ("育休は何週間取れますか？", "parental_leave", "ja"),
    ("bonjour", "greet", "fr"),
    ("ありがとうございます", "thanks", "ja"),
]


def test_intents_and_language_in_three_languages(nlu_model):
    script = subprocess.run(
        [str(RASA_PY), "-c", PARSE, str(nlu_model), json.dumps([c[0] for c in CASES])],
        cwd=BOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(BOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    line = next((x for x in script.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, script.stderr[-3000:]
    for (text, intent, lang), (got, confidence, got_lang) in zip(CASES, json.loads(line[7:]), strict=True):
        assert (got, got_lang) == (intent, lang), (text, got, confidence, got_lang)
