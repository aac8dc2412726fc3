"""The vote of a typed feedback message ("that was wrong", "c'est faux", "役に立たない"): up or down.

A button's payload carries its vote itself (`/feedback{"vote": "down", ...}`); this component is for the
employee who types it. It learns from the `vote` entity of the feedback examples (bot/data/nlu/<lang>/
feedback.yml) with the same features as the intent classifier (components/intent.py), and adds the entity
to a message classified `feedback`.

Why not DIET, which extracted it before: DIET trains for minutes on every example of every language (six
seconds an epoch on 1,700 examples, on two CPU cores) to tag one entity on one intent, and the whole
message is the vote anyway. A logistic regression on the feedback examples trains in a second.
"""

from __future__ import annotations

from typing import Any

import scipy.sparse
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression

from components.intent import sentence_features
from components.stored import StoredModelComponent

INTENT_NAME = "feedback"
ENTITY = "vote"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class VoteExtractor(StoredModelComponent, EntityExtractorMixin):
    """Adds `vote: up|down` to a message whose intent is `feedback`."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"C": 10.0, "dense_weight": 3.0}

    def train(self, training_data: TrainingData) -> Resource:
        rows, labels = [], []
        for example in training_data.intent_examples:
            if example.get(INTENT) != INTENT_NAME:
                continue
            votes = [e.get("value") for e in example.get(ENTITIES) or [] if e.get("entity") == ENTITY]
            features = sentence_features(example, float(self.config["dense_weight"]))
            if votes and features is not None:
                rows.append(features)
                labels.append(str(votes[0]))
        if len(set(labels)) < 2:
            return self.resource
        classifier = LogisticRegression(C=float(self.config["C"]), max_iter=3000)
        return self.save(classifier.fit(scipy.sparse.vstack(rows).tocsr(), labels))

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if self.model is None or (message.get(INTENT) or {}).get("name") != INTENT_NAME:
                continue
            features = sentence_features(message, float(self.config["dense_weight"]))
            if features is None or features.shape[1] != self.model.n_features_in_:
                continue
            probabilities = self.model.predict_proba(features)[0]
            best = int(probabilities.argmax())
            text = message.get(TEXT) or ""
            entity = {
                "entity": ENTITY,
                "value": str(self.model.classes_[best]),
                "start": 0,
                "end": len(text),
                "confidence_entity": float(probabilities[best]),
                "extractor": self.__class__.__name__,
            }
            message.set(ENTITIES, [*(message.get(ENTITIES) or []), entity], add_to_output=True)
        return messages
