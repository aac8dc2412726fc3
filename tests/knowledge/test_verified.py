"""Verified answers, the question log and question vectors in a real Redis: checks, SQuAD export, and a
Redis crash that loses nothing acknowledged."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.activity import ActivityLog, Asked
from knowledge.question_vectors import QuestionVectors, question_key
from knowledge.store import connect
from knowledge.verified import VerifiedAnswer, VerifiedAnswers, VerifiedError, to_squad


@pytest.mark.parametrize(
    "bad, words",
    [
        (VerifiedAnswer("  ", "25 days"), "question is empty"),
        (VerifiedAnswer("How many days?", " "), "answer is empty"),
        (VerifiedAnswer("How many days?", "x" * 2001), "answer is too long"),
        (VerifiedAnswer("How many days?", "25", source_url="javascript:alert(1)"), "http"),
    ],
)
def test_bad_verified_answers_are_refused(redis_client, bad, words):
    with pytest.raises(VerifiedError, match=words):
        VerifiedAnswers(redis_client).put(bad)


def test_squad_export_points_at_the_answer_and_leaves_typed_ones_out(redis_client):
    store = VerifiedAnswers(redis_client)
    store.put(VerifiedAnswer("Combien de jours ?", "25 days", "fr", "http://i/leave", "Leave",
                             "Staff get 25 days of leave."))  # fmt: skip
    store.put(VerifiedAnswer("How many days?", "25 days", "en", "http://i/leave", "Leave",
                             "Staff get 25 days of leave."))  # fmt: skip
    store.put(VerifiedAnswer("Who is the DPO?", "Ana Lima", "en"))
    moved = store.put(VerifiedAnswer("Edited?", "not in it", "en", "http://i/x", "X", "Some other passage."))
    assert (
        moved.context == ""
    )  # an answer that is not in its passage keeps no passage: served, not trained on
    squad = to_squad(store.all())
    (article,) = squad["data"]
    (paragraph,) = article["paragraphs"]  # one passage, both questions
    assert {qa["question"] for qa in paragraph["qas"]} == {"Combien de jours ?", "How many days?"}
    for qa in paragraph["qas"]:
        start = qa["answers"][0]["answer_start"]
        assert paragraph["context"][start : start + 7] == "25 days"


def test_verified_answers_the_question_log_and_vectors_survive_a_redis_crash(redis_client, redis_server):
    VerifiedAnswers(redis_client).put(VerifiedAnswer("Payday?", "the 25th", "en", by="hr"))
    ActivityLog(redis_client).add(Asked("unsure", "ja"))
    QuestionVectors(redis_client).put({question_key("Payday?"): np.array([0.6, 0.8], dtype=np.float32)})
    redis_server.crash()  # SIGKILL: only what Redis had written survives
    redis_server.start()
    again = connect(redis_server.url)
    assert [(v.question, v.by) for v in VerifiedAnswers(again).all()] == [("Payday?", "hr")]
    assert [a.outcome for a in ActivityLog(again).since(0)] == ["unsure"]
    vector = QuestionVectors(again).get([question_key("PAYDAY ?")])[question_key("payday")]
    assert np.allclose(vector, [0.6, 0.8], atol=1e-3)
    with pytest.raises(VerifiedError, match="line 2"):
        VerifiedAnswers(again).import_jsonl('{"question": "a?", "answer": "b"}\n{"question": ""}\n', by="x")
    assert len(VerifiedAnswers(again).all()) == 1  # nothing of a refused import is written
