"""Span decoding pieces: grapheme-safe offsets, enclosing sentences, the span search constraints."""

import torch

from qa_engine.decoding import enclosing_sentence, snap_span, top_spans


def test_snap_keeps_combining_marks_and_emoji_sequences_whole():
    text = "un cafe\u0301 noir"
    assert snap_span(text, 3, 7) == (3, 8)  # "cafe" + U+0301: the accent comes along
    text = "team 👩\u200d💻 ok"
    assert text[slice(*snap_span(text, 5, 6))] == "👩\u200d💻"  # ZWJ sequence not cut
    text = "wave 👋🏽 hi"
    assert text[slice(*snap_span(text, 5, 6))] == "👋🏽"  # skin tone modifier
    text = "flag 🇫🇷!"
    assert text[slice(*snap_span(text, 5, 7))] == "🇫🇷"
    assert snap_span("  padded  ", 0, 10) == (2, 8)
    assert snap_span("   ", 0, 3)[0] == snap_span("   ", 0, 3)[1]  # nothing left: empty span


def test_start_on_a_combining_mark_moves_back_to_its_base():
    text = "e\u0301te\u0301"
    assert snap_span(text, 1, 5) == (0, 5)


def test_enclosing_sentence_latin_cjk_and_lists():
    text = "Leave is 25 days. It accrues monthly at 2.08 days. Ask HR."
    s, e = enclosing_sentence(text, text.index("2.08"), text.index("2.08") + 4)
    assert text[s:e] == "It accrues monthly at 2.08 days."
    ja = "給与は25日に支払われます。賞与は年2回です。"
    s, e = enclosing_sentence(ja, ja.index("年2回"), ja.index("年2回") + 3)
    assert ja[s:e] == "賞与は年2回です。"
    items = "Equipment\nA laptop is provided\nAn allowance of 30 euros per month"
    s, e = enclosing_sentence(items, items.index("30"), items.index("30") + 2)
    assert items[s:e] == "An allowance of 30 euros per month"


def test_enclosing_sentence_is_bounded():
    text = "x" * 5000 + "ANSWER" + "y" * 5000
    s, e = enclosing_sentence(text, 5000, 5006, max_chars=100)
    assert (s, e) == (4900, 5106)


def test_top_spans_respects_context_order_and_length():
    start = torch.tensor([[9.0, 1.0, 0.0, 5.0, 0.0, 0.0]])
    end = torch.tensor([[9.0, 0.0, 4.0, 0.0, 0.0, 8.0]])
    context = torch.tensor([[False, True, True, True, True, True]])
    scores, starts, ends = top_spans(start, end, context, max_answer_tokens=3, k=3)
    pairs = list(zip(starts[0].tolist(), ends[0].tolist(), strict=True))
    assert pairs[0] == (3, 5)  # 5 + 8; (0, 0) is not context, (1, 5) is too long
    assert all(s <= e < s + 3 and s >= 1 for s, e in pairs)
    assert scores[0].tolist() == sorted(scores[0].tolist(), reverse=True)
