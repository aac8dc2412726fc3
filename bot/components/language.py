"""Detect the language of a message and expose it as a `language` entity; route the languages the NLU
was not trained on to the intranet reader.

Kate answers in the language of the message. Rasa has no language detection of its own, and the reply
must be chosen before any action runs (responses are conditioned on the `language` slot), so this
component tags every message during NLU.

How, in order, and why:
1. The script. Kana means Japanese. Chinese characters without kana mean Japanese too, unless the
   identifier is sure it is Chinese and there are at least four of them: an employee of a Japanese
   company types 社員証 far more often than a Chinese sentence. Any other non-Latin script (Cyrillic,
   Greek, Arabic, Hangul, Thai, Devanagari...) is whatever language the identifier names.
2. For Latin script, cues that a short message carries even when a statistical identifier cannot:
   letters only one of Kate's languages uses (ß, ñ, ¿, œ...) and its function words (je, ich, cómo...).
   The language with the most cues wins. Short HR messages are where identifiers fail: py3langid alone
   calls "hello Kate" Spanish and "are you a bot?" Romanian.
3. A Latin-script language Kate does not speak (Portuguese, Italian, Dutch...) only when the identifier
   is all but certain (probability >= 0.999), the message has at least four words, and no cue of Kate's
   languages is there: sending an English question to the reader by mistake would lose HR's answer.
4. Otherwise the identifier restricted to Kate's Latin languages, when it is sure (>= 0.9); else English.
The identifier is py3langid (langid.py's model, bundled in the package: no download, deterministic).
`kate bot eval` and tests/bot/test_language.py measure it on every NLU message of every language.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.training_data.message import Message

from components.stateless import StatelessComponent

# The languages the NLU has examples for, and Kate has strings for (actions/messages.py, domain.yml).
NLU_LANGUAGES = ("en", "fr", "ja", "de", "es")
LATIN = ("en", "fr", "de", "es")
MAX_CHARS = 2000  # the start of a pasted page says its language as well as all of it would

_KANA = re.compile(r"[\u3040-\u30ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_WORD = re.compile(r"[^\W\d_]+")

_CHARS = {"en": "", "fr": "àâçèêëîïôûùœæ", "de": "äöüß", "es": "ñ¿¡áíóú"}
_WORDS = {
    "en": "the my i you is are do does what when where how can hello hi hey thanks thank bye please get we "
    "our who which there any much many",
    "fr": "je j tu il elle nous vous les des une est sont pour avec quand combien comment quel quelle quels "
    "quelles où bonjour salut merci mon ma mes du au aux qui qu c d l svp rh ça coucou bonsoir rebonjour "
    "slt bjr",
    "de": "ich bin und ist nicht wie wann wo gibt habe hab ein eine einen der das mein meine bis mir mich du "
    "bist sind wir mit kann darf muss noch danke hallo tschüss tschüs moin servus gibt's grüezi",
    "es": "el los las una son para con cuándo cuánto cuántos cuántas cómo qué dónde mi mis tengo hay por "
    "del al hola gracias estoy puedo adiós buenas vale holi",
}
_WORD_SETS = {language: frozenset(words.split()) for language, words in _WORDS.items()}


@lru_cache(maxsize=1)
def _identifiers() -> tuple:  # py3langid's LanguageIdentifier, twice: every language, and Kate's
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    full = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    kate = LanguageIdentifier.from_pickled_model(MODEL_FILE, norm_probs=True)
    kate.set_languages(list(LATIN))
    return full, kate


def _word_cues(words: list[str]) -> dict[str, int]:
    """How many of the message's words are function words of each of Kate's Latin-script languages."""
    return {language: sum(w in _WORD_SETS[language] for w in words) for language in LATIN}


def _cues(text: str, word_cues: dict[str, int]) -> dict[str, int]:
    """Word cues plus two for each letter only that language uses."""
    lowered = text.lower()
    return {
        language: 2 * sum(c in lowered for c in _CHARS.get(language, "")) + word_cues[language]
        for language in LATIN
    }


def detect_language(text: str) -> str:
    """The ISO 639-1 code of the message's language: one of NLU_LANGUAGES, or another language the
    identifier knows; English when there is nothing to tell."""
    text = text[:MAX_CHARS]
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "en"
    if _KANA.search(text):
        return "ja"
    latin = sum(bool(_LATIN_LETTER.match(c)) for c in letters)
    full, kate = _identifiers()
    if latin * 2 < len(letters):
        if _HAN.search(text):
            ranked = dict(full.rank(text))
            zh, ja = ranked.get("zh", 0.0), ranked.get("ja", 0.0)
            sure = zh / (zh + ja + 1e-12) > 0.99 and len(_HAN.findall(text)) >= 4
            return "zh" if sure else "ja"
        return str(full.classify(text)[0])
    words = _WORD.findall(text.lower().replace("’", "'").replace("'", " "))
    top, probability = full.classify(text)
    word_cues = _word_cues(words)
    if top not in NLU_LANGUAGES and probability >= 0.999 and len(words) >= 4 and max(word_cues.values()) < 2:
        return str(top)
    ranked = sorted(_cues(text, word_cues).items(), key=lambda kv: kv[1], reverse=True)
    if ranked[0][1] > ranked[1][1]:
        return ranked[0][0]
    language, probability = kate.classify(text)
    return str(language) if probability >= 0.9 else "en"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(StatelessComponent):
    """Sets the `language` entity to the language Kate replies in: the message's when Kate has strings
    for it, English otherwise (the guard sends those messages to the reader: components/guard.py)."""

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get("text") or ""
            detected = detect_language(text)
            entities = [e for e in message.get("entities", []) if e.get("entity") != "language"]
            entities.append(
                {
                    "entity": "language",
                    "value": detected if detected in NLU_LANGUAGES else "en",
                    "start": 0,
                    "end": len(text),
                    "extractor": "LanguageDetector",
                    "confidence_entity": 1.0,
                }
            )
            message.set("entities", entities, add_to_output=True)
            message.set("detected_language", detected, add_to_output=True)
        return messages
