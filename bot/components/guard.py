"""Send the messages the NLU should not guess on to the action server's reader, with full confidence.

The intent classifier classifies anything, so an empty message came back as `greet` and a 10,000-character
paste as whatever its first words suggested; and a message in a language the NLU has no examples for
(Portuguese, Chinese, Russian...) would be forced into the nearest scripted intent, a confident wrong
answer. This component runs last in the NLU pipeline and marks such a message `nlu_fallback` with full
confidence; `action_answer_from_knowledge` then answers an empty or over-long message with a clear message
in the user's language, and reads the intranet for the others (the reader is multilingual). The language
comes from components/language.py, which ran first. The length limit is Kate's KATE_MAX_QUESTION_CHARS:
Kate's Settings parse it and `kate up` hands the value to Rasa's environment, where this component reads
it (Rasa runs in its own Python, without Kate's packages; 1000 when unset).
"""

from __future__ import annotations

import os

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.training_data.message import Message

from components.language import NLU_LANGUAGES
from components.stateless import StatelessComponent

DEFAULT_MAX_CHARS = 1000


def max_chars() -> int:
    try:
        return max(1, int(os.environ.get("KATE_MAX_QUESTION_CHARS", "") or DEFAULT_MAX_CHARS))
    except ValueError:
        return DEFAULT_MAX_CHARS


def needs_guard(text: str, limit: int) -> bool:
    return not text.strip() or len(text) > limit


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class MessageGuard(StatelessComponent):
    def process(self, messages: list[Message]) -> list[Message]:
        limit = max_chars()
        for message in messages:
            detected = message.get("detected_language")
            other_language = detected is not None and detected not in NLU_LANGUAGES
            if needs_guard(message.get("text") or "", limit) or other_language:
                intent = {"name": "nlu_fallback", "confidence": 1.0}
                message.set("intent", intent, add_to_output=True)
                message.set("intent_ranking", [intent], add_to_output=True)
        return messages
