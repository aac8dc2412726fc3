"""`kate bot eval`'s arithmetic: routing decisions, macro F1, the threshold it picks, the pipelines."""

from __future__ import annotations

from measure.bot_eval import (
    READER,
    Prediction,
    eval_config,
    languages,
    macro_f1,
    routed_accuracy,
    suggest_threshold,
)


def p(gold: str, predicted: str, confidence: float, language: str = "en") -> Prediction:
    return Prediction(text=f"{gold}-{predicted}-{confidence}", language=language, gold=gold,
                      predicted=predicted, confidence=confidence)  # fmt: skip


def test_a_message_under_the_threshold_goes_to_the_reader_and_is_right_only_if_labelled_so():
    assert p("payroll_date", "payroll_date", 0.25).routed(0.3) == READER
    assert not p("payroll_date", "payroll_date", 0.25).right_at(0.3)
    assert p(READER, "expenses", 0.25).right_at(0.3) and not p(READER, "expenses", 0.25).right_at(0.2)
    assert routed_accuracy([p("a", "a", 0.9), p(READER, "b", 0.1)], 0.3) == 1.0


def test_macro_f1_averages_the_gold_intents():
    predictions = [p("a", "a", 1), p("a", "b", 1), p("b", "b", 1), p("c", "b", 1)]
    # a: P 1 R 0.5 -> 2/3; b: P 1/3 R 1 -> 0.5; c: 0
    assert abs(macro_f1(predictions) - (2 / 3 + 0.5 + 0) / 3) < 1e-9


def test_the_threshold_is_the_one_with_the_most_right_decisions_the_higher_on_a_tie():
    # a wrong prediction at 0.42 is worth sending to the reader, a right one at 0.62 is worth keeping
    predictions = [p("a", "a", 0.62), p("a", "a", 0.9), p(READER, "b", 0.42)]
    assert suggest_threshold(predictions) == 0.6
    # nothing to separate: every threshold up to the lowest right confidence is as good, the highest wins
    assert suggest_threshold([p("a", "a", 0.52)]) == 0.5


def test_the_eval_measures_every_language_and_both_pipelines_without_the_fallback():
    assert {"en", "fr", "ja", "de", "es"} <= set(languages())
    shipped = [s["name"] for s in eval_config()["pipeline"]]
    baseline = [s["name"] for s in eval_config(shipped=False)["pipeline"]]
    assert "components.intent.MultilingualIntentClassifier" in shipped and "DIETClassifier" not in shipped
    assert "DIETClassifier" in baseline and "components.dense.MultilingualSentenceFeaturizer" not in baseline
    assert not {"FallbackClassifier", "components.guard.MessageGuard"} & set(shipped + baseline)
