"""EM/F1 against hand-computed cases: SQuAD v1.1 rules for en/fr, character tokens for ja/zh."""

import json

import pytest

from qa_engine.evaluate import (
    exact_match,
    f1_score,
    language_of_file,
    language_of_text,
    load_squad,
    score_predictions,
    tokens_characters,
)


def test_english_squad_normalisation():
    assert exact_match("The Eiffel Tower!", "eiffel tower", "en") == 1.0
    # pred: [25, days, of, leave] gold: [25, days] -> P=2/4, R=1, F1=2/3
    assert f1_score("25 days of leave", "25 days", "en") == pytest.approx(2 / 3)
    assert f1_score("a cat", "the dog", "en") == 0.0


def test_french_uses_squad_rules():
    # Only English articles are removed by SQuAD v1.1: "le" stays a token.
    assert exact_match("le 25 décembre", "25 décembre", "fr") == 0.0
    # pred [le, 25, décembre] gold [25, décembre]: P=2/3 R=1 F1=0.8
    assert f1_score("le 25 décembre.", "25 décembre", "fr") == pytest.approx(0.8)
    assert exact_match("Trois jours", "trois jours.", "fr") == 1.0


def test_japanese_character_tokens():
    assert tokens_characters("毎月25日。") == ["毎", "月", "25", "日"]
    # pred [毎,月,25,日] gold [25,日]: P=2/4 R=1 F1=2/3
    assert f1_score("毎月25日", "25日", "ja") == pytest.approx(2 / 3)
    assert exact_match("「25日」", "25日", "ja") == 1.0  # full-width brackets are punctuation


def test_chinese_character_tokens():
    # pred [北,京,市] gold [北,京]: P=2/3 R=1 F1=0.8
    assert f1_score("北京市", "北京", "zh") == pytest.approx(0.8)
    assert exact_match("北京，", "北京", "zh") == 1.0
    assert f1_score("上海", "北京", "zh") == 0.0


def test_max_over_gold_answers_and_file_score(tmp_path):
    data = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": "c",
                        "qas": [
                            {
                                "id": "1",
                                "question": "q",
                                "answers": [
                                    {"text": "25 days", "answer_start": 0},
                                    {"text": "twenty-five days", "answer_start": 0},
                                ],
                            },
                            {"id": "2", "question": "q2", "answers": [{"text": "Paris", "answer_start": 0}]},
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "x.en.dev.json"
    path.write_text(json.dumps(data))
    examples = load_squad(path)
    score = score_predictions(examples, {"1": "25 days", "2": "in Paris"}, "en")
    # q1: EM 1, F1 1 ; q2: EM 0, F1 = 2*(1/2*1)/(1/2+1) = 2/3
    assert score.n == 2
    assert score.exact_match == pytest.approx(50.0)
    assert score.f1 == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_language_from_file_names_and_text():
    assert language_of_file("dev/xquad.zh.dev.json") == "zh"
    assert language_of_file("dev/multilingualqa.q-fr.c-ja.dev.json") == "ja"
    assert language_of_file("train/cmrc2018.zh-cn.dev.json") == "zh"
    assert language_of_file("asai2018.fr.dev.json") == "fr"
    assert language_of_text("これは日本語の文章です。") == "ja"
    assert language_of_text("这是中文文本。") == "zh"
    assert language_of_text("ภาษาไทยไม่มีช่องว่าง") == "th"
    assert language_of_text("plain English") == "en"
