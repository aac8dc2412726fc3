"""A trainable Rasa component whose trained state is one joblib file in Rasa's model storage.

The intent classifier and the vote extractor (components/intent.py, vote.py) are scikit-learn models:
Rasa hands each a resource in its model storage, trains it once, and loads it in every serving process.
This base class does that bookkeeping, so each component is only its training and its prediction.
"""

from __future__ import annotations

from typing import Any

import joblib
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage

MODEL_FILE = "model.joblib"


class StoredModelComponent(GraphComponent):
    def __init__(
        self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource, model: Any = None
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self.model_storage = model_storage
        self.resource = resource
        self.model = model  # None until trained, or when training had nothing to learn

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> StoredModelComponent:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> StoredModelComponent:
        try:
            with model_storage.read_from(resource) as folder:
                model = joblib.load(folder / MODEL_FILE)
        except (ValueError, FileNotFoundError):
            model = None  # trained on no examples to learn from: the component passes messages through
        return cls(config, model_storage, resource, model)

    def save(self, model: Any) -> Resource:
        """Keeps `model` and writes it to the component's resource (the end of `train`)."""
        self.model = model
        with self.model_storage.write_to(self.resource) as folder:
            joblib.dump(model, folder / MODEL_FILE)
        return self.resource
