"""Dense multilingual sentence features for the NLU, from the encoder Kate's ranker is built on.

Why: with only word and character n-grams, a classifier learns each language from its own examples, and
a paraphrase that shares few n-grams with them is a guess. Multilingual E5 puts "combien de congés ai-je ?"
next to "how many days of leave do I get?" and next to other phrasings of either, so the intent classifier
(components/intent.py) gets evidence that carries across wordings and languages. The encoder runs here
through ONNX Runtime (Rasa's Python 3.10 environment has no CPU torch): Kate exports it once
(qa_engine/sentence_encoder.py) and hands its folder to Rasa's processes as KATE_NLU_ENCODER.

One session per Rasa process (a module-level cache: Rasa builds the component for training, for each
cross-validation fold and for serving), and the vectors of the latest messages are kept, so a message
seen twice (training folds, the same greeting from many employees) is encoded once.

A button's payload (`/feedback{"vote":"up","answer_id":"..."}`) is not encoded: Rasa takes its intent
from the payload itself (RegexMessageHandler, last in the pipeline), so a vector would be thrown away,
and each payload carries its own answer id, so none is ever seen twice. In a crowd half the messages are
votes: encoding them was a third of Rasa's CPU time (py-spy, `kate bench load --users 50`), taken from
the reader on a small machine. With no vector, the classifier leaves the intent to the payload.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

ENV_VAR = "KATE_NLU_ENCODER"
MAX_TOKENS = 128  # messages are short; a 10k-character paste is stopped by the guard, and cut here anyway
CACHE = 4096  # message vectors kept per process
# Rasa's intent payload, as a button sends it: "/intent", then optionally "@confidence" and "{entities}".
# An intent name has no spaces, so a typed "/how many days?" is still a message to understand.
PAYLOAD = re.compile(r"/[\w-]+(@[0-9.]+)?(\{.*\})?", re.DOTALL)

_LOCK = threading.Lock()
_ENCODERS: dict[str, SentenceEncoder] = {}


class EncoderMissing(RuntimeError):
    pass


class SentenceEncoder:
    """An exported encoder folder: model.onnx (ids, mask -> unit vector) and its tokenizer.json."""

    def __init__(self, folder: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        manifest = json.loads((folder / "kate-build.json").read_text(encoding="utf-8"))
        self.prefix = str(manifest.get("prefix", ""))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one message at a time; Rasa's other work keeps the other core
        self.session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def vector(self, text: str) -> np.ndarray:
        with self._cache_lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        encoded = self.tokenizer.encode(self.prefix + text)
        feed = {
            "input_ids": np.array([encoded.ids], dtype=np.int64),
            "attention_mask": np.array([encoded.attention_mask], dtype=np.int64),
        }
        vector = self.session.run(None, feed)[0][0].astype(np.float32)
        with self._cache_lock:
            self._cache[text] = vector
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return vector


def is_payload(text: str) -> bool:
    """Whether `text` is a button's intent payload, which Rasa parses itself, rather than words."""
    return PAYLOAD.fullmatch(text.strip()) is not None


def encoder_at(location: str) -> SentenceEncoder:
    folder = Path(location).expanduser()
    if not (folder / "model.onnx").is_file():
        raise EncoderMissing(
            f"the NLU's sentence encoder is not at {folder!s} ({ENV_VAR}); Kate builds it before training "
            "the bot (`kate up`, `kate bot eval`), or run `kate bot build-encoder`"
        )
    key = str(folder.resolve())
    with _LOCK:
        if key not in _ENCODERS:
            _ENCODERS[key] = SentenceEncoder(folder)
        return _ENCODERS[key]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class MultilingualSentenceFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds the message's E5 vector as a dense sentence feature of its text."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config(), "encoder": None}

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, config)
        location = self._config.get("encoder") or os.environ.get(ENV_VAR, "")
        if not location:
            raise EncoderMissing(f"{ENV_VAR} is not set: Kate sets it for Rasa's processes")
        self.encoder = encoder_at(location)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> MultilingualSentenceFeaturizer:
        return cls(config, execution_context.node_name)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        pass

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str):
                continue  # training examples of responses or actions: only texts are classified
            if is_payload(text):
                continue  # the payload names its intent: see the module's docstring
            vector = self.encoder.vector(text)[np.newaxis, :]
            self.add_features_to_message(sequence=None, sentence=vector, attribute=TEXT, message=message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
