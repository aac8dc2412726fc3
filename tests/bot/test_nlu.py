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
LANGUAGES = sorted(p.name for p in (BOT / "data" / "nlu").iterdir() if p.is_dir())  # <language>/<concern>.yml
RASA = ROOT / ".venv-rasa" / "bin" / "rasa"


def test_bot_data_is_valid():
    if not RASA.is_file():
        pytest.fail(".venv-rasa is missing: ./kate.sh test creates it")
    env = {**os.environ, "PYTHONPATH": str(BOT), "RASA_TELEMETRY_ENABLED": "false"}
    result = subprocess.run(
        [str(RASA), "data", "validate"], cwd=BOT, capture_output=True, text=True, timeout=600, env=env
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert not [line for line in output.splitlines() if "UserWarning" in line]


def test_the_console_lists_exactly_the_intents_with_scripted_answers():
    """HR_INTENTS (the admin console's topics) are the intents whose rule runs action_scripted_answer,
    and contact_hr (action_contact_hr gives the company's contact_hr answer with the contact)."""
    import yaml

    from knowledge.scripted import HR_INTENTS

    rules = yaml.safe_load((BOT / "data" / "rules.yml").read_text(encoding="utf-8"))["rules"]
    scripted = [
        r["steps"][0]["intent"]
        for r in rules
        if r["steps"][-1].get("action") in ("action_scripted_answer", "action_contact_hr")
    ]
    assert sorted(scripted) == sorted(HR_INTENTS)


# Written apart from the training examples (a test below checks that none is a copy): what the NLU must
# generalise to, not what it memorised.
CASES = [
    ("How many paid days off do I get each year?", "leave_policy", "en"),
    ("When is payday this month?", "payroll_date", "en"),
    ("Combien de jours de télétravail ai-je droit par semaine ?", "remote_work", "fr"),
    ("À quelle adresse se trouve le bureau de Lyon ?", "offices", "fr"),
    ("今月の給料日はいつですか？", "payroll_date", "ja"),
    ("育休は最長で何週間ですか？", "parental_leave", "ja"),
    ("bonjour bonjour", "greet", "fr"),
    ("ご回答ありがとうございます", "thanks", "ja"),
    ("Wie viele Urlaubstage bekomme ich als Vollzeitkraft?", "leave_policy", "de"),
    ("Wo finde ich das Büro in Lyon?", "offices", "de"),
    ("¿Qué día del mes se paga la nómina?", "payroll_date", "es"),
    ("¿Puedo trabajar desde casa dos días a la semana?", "remote_work", "es"),
]
CITY_CASES = [
    ("What is the address of the London office?", "London"),
    ("où est situé le bureau de Londres ?", "London"),
    ("東京のオフィスはどこにありますか？", "Tokyo"),
    ("Wie lautet die Adresse des Büros in Tokio?", "Tokyo"),
    ("¿En qué calle está la oficina de París?", "Paris"),
]


def training_examples() -> set[str]:
    """Every NLU training example of bot/data, entity markup removed, lower-cased."""
    import yaml

    seen = set()
    for path in (BOT / "data").rglob("*.yml"):
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            for line in str(item.get("examples") or "").splitlines():
                text = re.sub(r"\[([^\]]*)\](\{[^}]*\}|\([^)]*\))", r"\1", line.strip().removeprefix("- "))
                seen.add(text.strip().lower())
    return seen


FOLLOW_UPS = [
    "et à Lille ?",
    "and for part-time staff?",
    "and in Osaka?",
    "大阪は？",
    "et pour les stagiaires ?",
]


def test_the_test_messages_are_not_training_examples():
    texts = [*(c[0] for c in CASES + CITY_CASES + TYPED_VOTES), *FOLLOW_UPS]
    copies = [t for t in texts if t.lower() in training_examples()]
    assert not copies, copies


def _words(text: str) -> str:
    """Lower-cased words only: "Thx!!" and "thx" are the same message to a classifier."""
    return re.sub(r"[^\w]+", " ", text).strip().lower()


def test_every_language_has_the_same_concerns():
    """bot/data/nlu/<language>/<concern>.yml: one file per concern, the same concerns in every language."""
    concerns = {
        language: sorted(p.name for p in (BOT / "data" / "nlu" / language).glob("*.yml"))
        for language in LANGUAGES
    }
    assert {"en", "fr", "ja"} <= set(LANGUAGES)
    assert all(names == concerns["en"] for names in concerns.values()), concerns
    assert concerns["en"] == ["chitchat.yml", "feedback.yml", "hr.yml", "intranet.yml", "out_of_scope.yml"]


def test_the_held_out_test_set_covers_every_intent_and_copies_no_training_example():
    """bot/nlu-test/ (`kate bot eval`'s test set): 15 messages or more per intent and language, every
    trained intent present, none of them a training example even up to case and punctuation."""
    import yaml

    trained = {_words(t) for t in training_examples()}
    intents = {
        item["intent"]
        for path in (BOT / "data" / "nlu").rglob("*.yml")
        for item in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []
        if "intent" in item
    }
    for language in LANGUAGES:
        data = yaml.safe_load((BOT / "nlu-test" / f"{language}.yml").read_text(encoding="utf-8"))["nlu"]
        per_intent = {
            item["intent"]: [line[2:] for line in item["examples"].splitlines() if line.startswith("- ")]
            for item in data
        }
        assert set(per_intent) == intents, (language, intents ^ set(per_intent))
        assert min(len(v) for v in per_intent.values()) >= 15, language
        messages = [m for v in per_intent.values() for m in v]
        assert len({_words(m) for m in messages}) == len(messages), f"{language}: a message is repeated"
        copies = [m for m in messages if _words(m) in trained]
        assert not copies, (language, copies)


@pytest.mark.parametrize(("text", "intent", "language"), CASES)
def test_intents_and_language_in_every_language(stack, text, intent, language):
    parsed = stack.parse(text)
    languages = [e["value"] for e in parsed["entities"] if e["entity"] == "language"]
    assert (parsed["intent"]["name"], languages) == (intent, [language]), parsed["intent"]


@pytest.mark.parametrize(("text", "city"), CITY_CASES)
def test_office_city_is_extracted_in_every_language(stack, text, city):
    parsed = stack.parse(text)
    assert parsed["intent"]["name"] == "offices"
    assert city in {e["value"] for e in parsed["entities"] if e["entity"] == "city"}


@pytest.mark.parametrize("text", FOLLOW_UPS)
def test_short_follow_ups_go_to_the_reader_not_to_small_talk(stack, text):
    """ "et à Lille ?" is read with the question before it (actions/context.py), not taken for a goodbye."""
    assert stack.parse(text)["intent"]["name"] in ("ask_intranet", "nlu_fallback")


def test_empty_and_overlong_messages_are_not_guessed(stack):
    for text in ("", "   ", "leave " * 400):
        assert stack.parse(text)["intent"] == {"name": "nlu_fallback", "confidence": 1.0}


def test_a_language_the_nlu_does_not_know_goes_to_the_reader_answered_in_english(stack):
    """Portuguese, Chinese, Russian...: no scripted intent is guessed; the multilingual reader reads the
    intranet, and Kate's own words around its answer are English (it has no strings in those languages)."""
    for text in (
        "Quantos dias de férias eu tenho por ano?",
        "这个月的工资什么时候发放？",
        "Когда выплачивается зарплата?",
    ):
        parsed = stack.parse(text)
        languages = [e["value"] for e in parsed["entities"] if e["entity"] == "language"]
        assert parsed["intent"] == {"name": "nlu_fallback", "confidence": 1.0} and languages == ["en"], parsed


TYPED_VOTES = [
    ("that answer is completely wrong", "down"),
    ("Das war wirklich hilfreich", "up"),
    ("die Antwort ist leider falsch", "down"),
    ("回答は間違っています", "down"),
]


@pytest.mark.parametrize(("text", "vote"), TYPED_VOTES)
def test_a_typed_vote_is_feedback_with_its_direction(stack, text, vote):
    """components/vote.py: the up or down of a vote typed instead of pressed, in any language."""
    parsed = stack.parse(text)
    votes = [e["value"] for e in parsed["entities"] if e["entity"] == "vote"]
    assert (parsed["intent"]["name"], votes) == ("feedback", [vote]), parsed
