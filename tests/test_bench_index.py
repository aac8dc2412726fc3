"""`kate bench index`'s page set: training paragraphs cut in two, each question tied to the half that
holds its answer."""

from __future__ import annotations

import json

import numpy as np

from measure.bench_index import page_pool, split_paragraph, traced_mb


def test_a_paragraph_is_cut_after_the_sentence_nearest_its_middle():
    assert split_paragraph("One. Two two. Three three three. Four.") == (
        "One. Two two.",
        "Three three three. Four.",
    )
    assert split_paragraph("育児休業は一年。申請は人事部へ。書類は二つ。") == (
        "育児休業は一年。",
        "申請は人事部へ。書類は二つ。",
    )
    assert split_paragraph("No sentence end here") == ("No sentence end here", "")


def test_every_question_points_at_the_half_with_its_answer(tmp_path):
    context = "Leave is 25 days a year. Ask your manager first. Form HR-204 goes to payroll. Pay is monthly."
    form = context.index("HR-204")
    squad = {"data": [{"title": "HR", "paragraphs": [{"context": context, "qas": [
        {"id": "1", "question": "How long is leave?", "answers": [{"text": "25 days", "answer_start": 9}]},
        {"id": "2", "question": "Which form?", "answers": [{"text": "HR-204", "answer_start": form}]},
    ]}]}]}  # fmt: skip
    (tmp_path / "toy.en.train.json").write_text(json.dumps(squad))
    pages, asked = page_pool(tmp_path)
    assert len(pages) == 2 and {p.language for p in pages} == {"en"}
    assert len({p.passage.url for p in pages}) == 2
    for item in asked:
        assert any(a in pages[item.page].passage.text for a in item.answers), item.question


def test_traced_memory_counts_what_the_build_keeps_not_what_it_dropped():
    assert 7.9 < traced_mb(lambda: np.ones(2**20)) < 8.2  # 8 MB of float64 kept
    assert traced_mb(lambda: float(np.ones(2**20).sum())) < 0.1  # 8 MB made and freed
