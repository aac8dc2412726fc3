"""The NLU's dense featurizer (bot/components/dense.py) in Rasa's own environment, on the ONNX encoder
`kate up` exported for the running stack."""

from __future__ import annotations

import json
import subprocess

import numpy as np

from core.rasa import BOT_DIR, nlu_encoder, rasa_venv
from core.settings import Settings

MESSAGES = [
    "How many days of annual leave do I get?",
    "Combien de jours de congés payés ai-je par an ?",
    "年次有給休暇は何日もらえますか？",
    "Where is the cafeteria of the Lyon office?",
]
# A button's payload: Rasa takes its intent from it, so it gets no vector; a typed slash is still words.
PAYLOADS = ['/feedback{"vote":"up","answer_id":"a1b2"}', "/greet", "/how many days of leave?"]

# Runs in .venv-rasa: the component as Rasa's graph creates it, on real Messages.
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from rasa.shared.nlu.training_data.message import Message
from components.dense import MultilingualSentenceFeaturizer, EncoderMissing
defaults = MultilingualSentenceFeaturizer.get_default_config()
try:
    MultilingualSentenceFeaturizer({**defaults, "encoder": sys.argv[2] + "-missing"}, "dense")
    print(json.dumps({"missing": None}))
except EncoderMissing as exc:
    print(json.dumps({"missing": str(exc)}))
featurizer = MultilingualSentenceFeaturizer({**defaults, "encoder": sys.argv[2]}, "dense")
messages = [Message.build(text=t) for t in json.loads(sys.argv[3])]
featurizer.process(messages)
out = []
for m in messages:
    sequence, sentence = m.get_dense_features("text")
    out.append({"sequence": sequence is not None,
                "sentence": None if sentence is None else sentence.features.tolist()})
print(json.dumps({"features": out}))
"""


def test_dense_features_in_rasas_environment_match_the_ranker_and_cross_languages(stack):
    settings = Settings.from_env(stack.env)
    encoder = nlu_encoder(settings)  # exported by `kate up` already: found, not rebuilt
    result = subprocess.run(
        [str(rasa_venv(settings) / "bin" / "python"), "-c", SCRIPT, str(BOT_DIR), str(encoder),
         json.dumps(MESSAGES + PAYLOADS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    missing, features = lines[0]["missing"], lines[1]["features"]
    assert missing and "KATE_NLU_ENCODER" in missing and "-missing" in missing  # a clear error, not a crash

    assert all(not f["sequence"] for f in features)  # sentence features only: a linear SVM needs no more
    features, payloads = features[: len(MESSAGES)], features[len(MESSAGES) :]
    assert [p["sentence"] is None for p in payloads] == [True, True, False]
    vectors = np.array([f["sentence"][0] for f in features], dtype=np.float32)
    assert vectors.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    # The same vectors as the ranker's, computed by torch in Kate's environment: the export is faithful.
    from core.models import make_ranker

    ranker = make_ranker(settings)
    expected = ranker.query_vectors(MESSAGES)
    assert np.min(np.sum(vectors * expected, axis=1)) > 0.999

    # What DIET gains: the leave question's French and Japanese twins are nearer to it than an English
    # question on another topic is.
    sims = vectors @ vectors[0]
    assert min(sims[1], sims[2]) > sims[3] + 0.05, sims
