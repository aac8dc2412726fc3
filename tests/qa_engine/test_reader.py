"""Reader mechanics on tiny real BERT models: chunking, offsets, batching, ranking, no-answer."""

from __future__ import annotations

import pytest
import torch
from tiny_models import random_model, small_vocab_tokenizer, token_ids_at, wired_model, xlmr_tokenizer

from qa_engine import Passage, Reader, ReaderConfig
from qa_engine.features import encode

FILLER = " ".join(f"w{i}" for i in range(120))
CORPUS = FILLER + " alpha beta gamma delta what is the answer leave days policy 25 paid annual employees get"


@pytest.fixture(scope="module")
def small_tok():
    return small_vocab_tokenizer(CORPUS)


@pytest.fixture(scope="module")
def xlmr(tmp_path_factory):
    return xlmr_tokenizer(tmp_path_factory.mktemp("xlmr"))


def reader_for(model, tokenizer, **overrides) -> Reader:
    return Reader(ReaderConfig(model="in-memory", **overrides), model=model, tokenizer=tokenizer)


def test_wired_model_finds_the_wired_span(small_tok):
    text = "employees get 25 paid annual leave days"
    start, end = text.index("25"), text.index("days") + 4
    s_id, e_id = token_ids_at(small_tok, "what is the answer", text, start, end)
    reader = reader_for(wired_model(len(small_tok), {s_id}, {e_id}), small_tok)
    best = reader.answer("what is the answer", [Passage(text, url="http://x")], top_k=1)[0]
    assert (best.text, best.start, best.end) == ("25 paid annual leave days", start, end)
    assert best.passage.url == "http://x"


def test_answer_straddling_a_chunk_boundary_is_found(small_tok):
    # 24-token chunks, 8 shared: place "alpha beta gamma" so the first chunk ends inside it.
    question = "what is the answer"
    filler = FILLER.split()
    cfg = {"max_length": 24, "stride": 8}
    for cut in range(10, 20):
        text = " ".join([*filler[:cut], "alpha", "beta", "gamma", *filler[cut:60]])
        chunks = encode(
            small_tok, [question], [[Passage(text)]], max_length=24, stride=8, max_question_tokens=64
        )
        a, g = text.index("alpha"), text.index("gamma")
        first = chunks[0]
        covered = {int(s) for s, ok in zip(first.offsets[:, 0], first.context, strict=True) if ok}
        if a in covered and g not in covered:
            break
    else:
        pytest.fail("no layout puts the answer across the first chunk border")
    s_id, e_id = token_ids_at(small_tok, question, text, a, g + 5)
    reader = reader_for(wired_model(len(small_tok), {s_id}, {e_id}), small_tok, **cfg)
    best = reader.answer(question, [Passage(text)], top_k=1)[0]
    assert best.text == "alpha beta gamma"
    assert best.start == a


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_batched_equals_unbatched(small_tok, precision):
    model = random_model(len(small_tok), layers=2, seed=1)
    words = CORPUS.split()
    passages = [
        Passage(" ".join(words[i : i + n]), id=str(i)) for i, n in enumerate([5, 40, 12, 90, 3, 60, 25])
    ]
    cfg = {"max_length": 48, "stride": 16, "precision": precision, "device": "cpu"}
    one = reader_for(model, small_tok, batch_size=1, **cfg)
    many = reader_for(model, small_tok, batch_size=64, **cfg)
    assert one.precision == precision
    a = one.answer("what is the leave policy", passages, top_k=5)
    b = many.answer("what is the leave policy", passages, top_k=5)
    assert [(x.passage.id, x.start, x.end) for x in a] == [(x.passage.id, x.start, x.end) for x in b]
    assert torch.allclose(torch.tensor([x.score for x in a]), torch.tensor([x.score for x in b]), atol=1e-4)


def test_answer_many_matches_answer(small_tok):
    model = random_model(len(small_tok), seed=2)
    reader = reader_for(model, small_tok, max_length=40, stride=10)
    passages = [Passage(" ".join(CORPUS.split()[i : i + 30])) for i in (0, 30, 70)]
    questions = ["what is the answer", "leave days policy", "annual paid"]
    together = reader.answer_many([(q, passages) for q in questions], top_k=3)
    for q, answers in zip(questions, together, strict=True):
        alone = reader.answer(q, passages, top_k=3)
        assert [(x.text, x.start) for x in alone] == [(x.text, x.start) for x in answers]


def test_top_k_is_ranked_and_distinct(small_tok):
    model = random_model(len(small_tok), seed=3)
    reader = reader_for(model, small_tok, max_length=32, stride=8)
    passages = [Passage(" ".join(CORPUS.split()[i : i + 50]), id=str(i)) for i in (0, 50, 80)]
    answers = reader.answer("what is the answer", passages, top_k=6)
    assert len(answers) == 6
    scores = [a.score for a in answers]
    assert scores == sorted(scores, reverse=True)
    for i, a in enumerate(answers):
        assert a.passage.text[a.start : a.end] == a.text
        for b in answers[:i]:
            if a.passage.id == b.passage.id:
                assert a.end <= b.start or b.end <= a.start, (
                    "overlapping spans of one passage were not merged"
                )


def test_scores_are_comparable_across_passages(small_tok):
    """The span wired to the strongest logits wins even though it sits in a different passage: no
    per-chunk normalisation hides which page is better."""
    q = "what is the answer"
    weak, strong = "alpha beta w1 w2", "w3 w4 gamma delta"
    ids = {t for t in small_tok(q, strong)["input_ids"]}
    s_gamma = small_tok.convert_tokens_to_ids("gamma")
    s_alpha = small_tok.convert_tokens_to_ids("alpha")
    e_beta = small_tok.convert_tokens_to_ids("beta")
    e_delta = small_tok.convert_tokens_to_ids("delta")
    assert s_gamma in ids
    model = wired_model(len(small_tok), {s_alpha, s_gamma}, {e_beta, e_delta})
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[s_alpha, 0] = 2.0  # weaker start in the first page
    reader = reader_for(model, small_tok)
    answers = reader.answer(q, [Passage(weak, id="weak"), Passage(strong, id="strong")], top_k=2)
    assert [a.passage.id for a in answers] == ["strong", "weak"]
    assert answers[0].text == "gamma delta" and answers[1].text == "alpha beta"


def test_no_answer_verdict_and_min_score(small_tok):
    text = "employees get 25 paid annual leave days"
    s_id, e_id = token_ids_at(small_tok, "what is the answer", text, text.index("25"), text.index("25") + 2)
    cls_id = small_tok.cls_token_id
    sure = reader_for(wired_model(len(small_tok), {s_id}, {e_id}), small_tok)
    doubtful = reader_for(wired_model(len(small_tok), {s_id}, {e_id}, cls_id=cls_id), small_tok)
    answers = sure.answer("what is the answer", [Passage(text)], top_k=2, no_answer=True)
    assert answers[0].text == "25" and any(a.is_no_answer for a in answers)
    answers = doubtful.answer("what is the answer", [Passage(text)], top_k=2, no_answer=True)
    assert answers[0].is_no_answer and answers[0].text == "" and answers[0].passage is None
    best = sure.answer("what is the answer", [Passage(text)], top_k=3)[0]
    assert sure.answer("what is the answer", [Passage(text)], top_k=3, min_score=best.score + 1) == []


def test_bad_input_is_refused_or_bounded(small_tok, caplog):
    reader = reader_for(random_model(len(small_tok)), small_tok, max_length=32, stride=8, max_chunks=5)
    with pytest.raises(ValueError, match="empty"):
        reader.answer("   ", [Passage("alpha beta")])
    with pytest.raises(ValueError, match="empty"):
        reader.answer("", [])
    assert reader.answer("what", []) == []
    assert reader.answer("what", [Passage(""), Passage("  \n ")]) == []
    long_question = "what is the answer " * 2500  # 10k characters: cut, not an error
    [answer] = reader.answer(long_question, [Passage("alpha beta gamma")], top_k=1, min_score=float("-inf"))
    assert answer.text in "alpha beta gamma"
    many = [
        Passage(f"{FILLER} Room {i}.", id=f"p{i}") for i in range(10)
    ]  # far more than max_chunks: read, bounded
    with caplog.at_level("WARNING", logger="qa_engine.reader"):
        answers = reader.answer("what", many, top_k=10, min_score=float("-inf"))
    assert "reading the first 5" in caplog.text
    # each passage makes at least one chunk, so the first 5 chunks come from the first 5 passages at most
    assert answers and {a.passage.id for a in answers if a.passage} <= {f"p{i}" for i in range(5)}


MIXED = [
    # (passage, answer to wire) covering CJK, combining marks, emoji, ZWJ sequences, full-width forms
    ("本社は東京都新宿区西新宿二丁目にあります。電話は03-1234-5678です。", "東京都新宿区西新宿二丁目"),
    ("Le plat du jour est un café\u0301 crème servi à 10 h.", "un café\u0301"),
    ("Our team 👩\u200d💻 ships on Fridays.", "team 👩\u200d💻"),
    ("Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ株式会社 の住所", "ＡＢＣ株式会社"),
    ("Le congé est de 25 jours ouvrés 🎉 par an.", "25 jours ouvrés 🎉"),
]


@pytest.mark.parametrize(("text", "expected"), MIXED)
def test_exact_offsets_on_mixed_scripts(xlmr, text, expected):
    start = text.index(expected)
    question = "Quelle est la réponse ?"
    s_id, e_id = token_ids_at(xlmr, question, text, start, start + len(expected))
    reader = reader_for(wired_model(len(xlmr), {s_id}, {e_id}), xlmr)
    best = reader.answer(question, [Passage(text)], top_k=1)[0]
    assert best.text == expected
    assert (best.start, best.end) == (start, start + len(expected))
    assert text[best.start : best.end] == best.text


def test_random_model_spans_never_leave_the_context(xlmr):
    reader = reader_for(random_model(len(xlmr), seed=4), xlmr, max_length=40, stride=12)
    passages = [Passage(t) for t, _ in MIXED] + [Passage("短い。" * 40)]
    question = "東京都の本社はどこですか？ Where is the office? 🎉"
    for a in reader.answer(question, passages, top_k=10):
        assert a.passage.text[a.start : a.end] == a.text
        assert a.text == a.text.strip() and a.text
        assert question not in a.text
        assert a.passage.text[a.sentence_start : a.sentence_start + len(a.sentence)] == a.sentence
        assert a.sentence_start <= a.start and a.end <= a.sentence_start + len(a.sentence)


def test_answers_never_cross_a_line_break(small_tok):
    """Passage lines are headings, list items, rows: a span from a heading into the next line is dropped."""
    text = "leave policy\nalpha beta gamma"
    start_id, end_id = small_tok.convert_tokens_to_ids("leave"), small_tok.convert_tokens_to_ids("gamma")
    reader = reader_for(wired_model(len(small_tok), {start_id}, {end_id}), small_tok)
    answers = reader.answer("what is the answer", [Passage(text)], top_k=3)
    assert all("\n" not in a.text for a in answers)
    best = answers[0]  # the wired "leave ... gamma" span is gone; the best left uses one of its edges
    assert best.score > 0 and (best.text.startswith("leave") or best.text.endswith("gamma"))


def test_int8_quantised_reader_keeps_the_mechanics(small_tok):
    """KATE_QUANTIZE=int8: the Linear layers become dynamic int8 (a copy) and spans still come back
    exact and inside their passage; an unknown mode is refused."""
    model = random_model(len(small_tok), layers=2, seed=1)
    config = ReaderConfig(model="in-memory", device="cpu", quantize="int8")
    reader = Reader(config, model=model, tokenizer=small_tok)
    assert any("quantized" in type(m).__module__ for m in reader.model.modules())
    assert not any("quantized" in type(m).__module__ for m in model.modules())  # the original is untouched
    passages = [Passage("employees get 25 paid annual leave days"), Passage(FILLER)]
    for a in reader.answer("what is the answer", passages, top_k=3):
        assert a.passage.text[a.start : a.end] == a.text and a.text
    with pytest.raises(ValueError, match="quantize"):
        Reader(ReaderConfig(model="x", quantize="int4"))


def test_precision_follows_the_cpu(small_tok, monkeypatch):
    """auto: bf16 on a CPU with bf16 instructions (about twice as fast, same answers), fp32 on one without
    (emulated bf16 is slower); fp16 is never used on a CPU; int8 Linear layers get no autocast."""
    from qa_engine import reader as reader_module

    model = random_model(len(small_tok), layers=1, seed=4)
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(reader_module, "cpu_has_native_bf16", lambda native=native: native)
        assert reader_for(model, small_tok, device="cpu").precision == expected
    assert reader_for(model, small_tok, device="cpu", precision="fp16").precision == "fp32"
    assert reader_for(model, small_tok, device="cpu", precision="bf16").precision == "bf16"
    int8 = reader_for(model, small_tok, device="cpu", quantize="int8")
    assert (int8.precision, int8.autocast_dtype) == ("int8", None)
