"""`kate bench recall`'s measuring: collections, gold passages and recall@K of each ranking method."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_models import tiny_model_folder

from knowledge import DEMO_SITE, demo_questions
from measure.retrieval import (
    Collection,
    cross_lingual,
    dev_collection,
    positions_of_gold,
    recall,
    recall_study,
    render_recall,
    site_collection,
)
from qa_engine.ranker import Ranker, RankerConfig
from qa_engine.types import Passage

WORDS = "form hr 204 101 310 leave expenses remote send where the to query passage"


@pytest.fixture(scope="module")
def ranker(tmp_path_factory):
    folder = tiny_model_folder(tmp_path_factory.mktemp("tiny-encoder"), WORDS, seed=5)
    return Ranker(RankerConfig(model=str(folder)))


def test_positions_of_gold_counts_the_passages_ranked_above_the_best_gold_one():
    scores = np.array([0.9, 0.5, 0.7, 0.1])
    assert positions_of_gold(scores, frozenset([0])) == 0
    assert positions_of_gold(scores, frozenset([1, 3])) == 2
    assert positions_of_gold(scores, frozenset([3])) == 3


def test_cross_lingual_files_are_told_from_the_name():
    assert cross_lingual("multilingualqa.q-fr.c-en")
    assert not cross_lingual("multilingualqa.q-ja.c-ja") and not cross_lingual("xquad.de")


def test_dev_collection_has_one_gold_paragraph_per_question(tmp_path):
    squad = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "Form HR-204 is for leave.",
                        "qas": [
                            {
                                "id": "1",
                                "question": "Which form?",
                                "answers": [{"text": "HR-204", "answer_start": 5}],
                            }
                        ],
                    },
                    {
                        "context": "Expenses use HR-101.",
                        "qas": [
                            {
                                "id": "2",
                                "question": "Expenses form?",
                                "answers": [{"text": "HR-101", "answer_start": 13}],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    path = tmp_path / "toy.en.dev.json"
    path.write_text(json.dumps(squad))
    c = dev_collection(path)
    assert c.name == "toy.en" and c.language == "en" and len(c.passages) == 2
    assert c.questions == [("Which form?", frozenset([0])), ("Expenses form?", frozenset([1]))]


def test_every_demo_question_has_its_page_in_the_demo_collection():
    c = site_collection("demo intranet", DEMO_SITE, demo_questions())
    assert len(c.questions) == len(demo_questions())
    for _, gold in c.questions:
        assert gold and all(0 <= i < len(c.passages) for i in gold)


def test_recall_finds_the_code_with_bm25_and_with_the_hybrid(ranker):
    texts = ["send form hr 204 to leave", "send form hr 101 to expenses", "send form hr 310 to remote"]
    c = Collection("toy", "en", [Passage(t, id=str(i)) for i, t in enumerate(texts)], [])
    c.questions = [(f"where to send form HR {n}", frozenset([i])) for i, n in enumerate((204, 101, 310))]
    methods = {"bm25": ("lexical", 0.0), "hybrid": ("hybrid", 5.0), "dense": ("dense", 0.0)}
    found = recall(ranker, c, methods, ks=(1, 3))
    assert found["bm25"][1] == 100.0 and found["hybrid"][1] == 100.0  # the number decides
    rows = recall_study(ranker, [c], pool=[Passage("leave expenses remote", id="d")], methods=methods)
    assert [r.kind for r in rows] == ["file", "distractors"] and rows[1].passages == 4
    table = "\n".join(render_recall(rows, ks=(1,)))
    assert "| toy + 1 distractors | 4 | 3 |" in table and "mean, files alone" in table
