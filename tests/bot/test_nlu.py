"""The Rasa project in bot/: data validation, and the trained NLU of the running bot (the `stack`
fixture trains it once per run) on English, French and Japanese messages."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"

# Scripted HR answers are uttered by action_scripted_answer (it adds the vote buttons), so Rasa's
# validator cannot see them used in a rule; every other warning fails the test.
SCRIPTED = re.compile(r"The utterance '(utter_\w+)' is not used in any story or rule")


def test_bot_data_is_valid():
    if not RASA.is_file():
        pytest.fail(".venv-rasa is missing: ./kate.sh test creates it")
    env = {**os.environ, "PYTHONPATH": str(BOT), "RASA_TELEMETRY_ENABLED": "false"}
    result = subprocess.run(
        [str(RASA), "data", "validate"], cwd=BOT, capture_output=True, text=True, timeout=600, env=env
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    warnings = [line for line in output.splitlines() if "UserWarning" in line]
    unexplained = [w for w in warnings if not SCRIPTED.search(w)]
    assert not unexplained, unexplained
    rules = (BOT / "data" / "rules.yml").read_text()
    for w in warnings:
        response = SCRIPTED.search(w).group(1)
        intent = re.sub(r"_(paris|lyon|london|tokyo)$", "", response.removeprefix("utter_"))
        assert f"intent: {intent}\n  - action: action_scripted_answer" in rules, response


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


@pytest.mark.parametrize(("text", "intent", "language"), CASES)
def test_intents_and_language_in_three_languages(stack, text, intent, language):
    parsed = stack.parse(text)
    languages = [e["value"] for e in parsed["entities"] if e["entity"] == "language"]
    assert (parsed["intent"]["name"], languages) == (intent, [language]), parsed["intent"]


@pytest.mark.parametrize(
    ("text", "city"),
    [("Where is the London office?", "London"), ("où se trouve le bureau de Londres ?", "London"),
     ("東京オフィスの住所は？", "Tokyo")],
)  # fmt: skip
def test_office_city_is_extracted_in_every_language(stack, text, city):
    parsed = stack.parse(text)
    assert parsed["intent"]["name"] == "offices"
    assert city in {e["value"] for e in parsed["entities"] if e["entity"] == "city"}


def test_empty_and_overlong_messages_are_not_guessed(stack):
    for text in ("", "   ", "leave " * 400):
        assert stack.parse(text)["intent"] == {"name": "nlu_fallback", "confidence": 1.0}
