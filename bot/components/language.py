"""Detect the language of a message (en, fr, ja) and expose it as a `language` entity.

Kate answers in the language of the message. Rasa has no language detection of its own, and the reply
must be chosen before any action runs (scripted responses are conditioned on the `language` slot), so
this component tags every message during NLU. Rules, in order: any kana or CJK ideograph means Japanese
(Kate's only CJK language); French accents, apostrophe elisions or common French words mean French;
otherwise English. It needs no model and never fails, which matters more here than subtle accuracy.
"""

from __future__ import annotations

import re

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.training_data.message import Message

from components.stateless import StatelessComponent

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")
_FRENCH_CHARS = re.compile(r"[àâçéèêëîïôûùüÿœæ]", re.I)
_FRENCH_WORDS = re.compile(
    r"\b(je|j'|tu|il|elle|nous|vous|les|des|une|est|sont|pour|avec|quand|combien|comment|quel|quelle|"
    r"quels|quelles|où|bonjour|salut|merci|au revoir|mon|ma|mes|du|au|aux|qui|que|qu'|c'est|d'|l')\b",
    re.I,
)


def detect_language(text: str) -> str:
    if _JAPANESE.search(text):
        return "ja"
    if _FRENCH_CHARS.search(text) or len(_FRENCH_WORDS.findall(text)) >= 1:
        return "fr"
    return "en"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LanguageDetector(StatelessComponent):
    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get("text") or ""
            language = detect_language(text)
            entities = [e for e in message.get("entities", []) if e.get("entity") != "language"]
            entities.append(
                {
                    "entity": "language",
                    "value": language,
                    "start": 0,
                    "end": len(text),
                    "extractor": "LanguageDetector",
                    "confidence_entity": 1.0,
                }
            )
            message.set("entities", entities, add_to_output=True)
        return messages
