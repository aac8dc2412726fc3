"""The in-process passage index: BM25 for every script, exact terms, and the dense + lexical fusion."""

from __future__ import annotations

import numpy as np
import pytest

from qa_engine.index import PassageIndex, fuse
from qa_engine.lexical import LexicalIndex, bm25, exact_terms, tokens
from qa_engine.types import Passage


def test_tokens_fold_case_accents_width_and_split_unspaced_scripts():
    assert tokens("Congé PARENTAL Ｆｏｒｍ１２") == ["conge", "parental", "form12"]
    assert tokens("育児休業") == ["育児", "児休", "休業"]  # character bigrams, no dictionary
    assert tokens("が") == ["が"]  # a lone character; Japanese voiced marks are kept
    assert tokens("か") != tokens("が")
    assert tokens("ลาคลอด")[:2] == ["ลา", "าค"]
    assert tokens("") == []


def test_bm25_finds_the_document_with_the_rare_term():
    texts = [
        "send form HR-204 to payroll",
        "leave policy: 25 days",
        "parental leave form",
        "form for expenses",
    ]
    scores = bm25(texts, "Where do I send form HR-204?")
    assert int(np.argmax(scores)) == 0
    assert scores[1] == 0.0  # no shared term
    assert bm25(texts, "")[0] == 0.0 and len(bm25([], "form")) == 0


def test_bm25_matches_japanese_without_spaces():
    texts = ["育児休業の申請は人事部へ", "有給休暇は年25日です", "社員食堂の営業時間"]
    assert int(np.argmax(bm25(texts, "育児休業はどう申請しますか"))) == 0


def test_bound_is_the_most_any_document_could_score():
    index = LexicalIndex()
    index.add(["alpha beta", "alpha alpha alpha alpha alpha alpha beta beta beta gamma", "delta"])
    for query in ("alpha beta", "beta gamma", "delta"):
        assert index.scores(query).max() <= index.bound(query) + 1e-6
    assert index.bound("") == 0.0 and index.bound("unknown") == 0.0


def test_index_grows_and_rebuilds_postings():
    index = LexicalIndex()
    index.add(["first page"])
    assert index.scores("second").tolist() == [0.0]
    index.add(["second page"])
    assert index.scores("second")[1] > 0 and len(index) == 2


@pytest.mark.parametrize(
    ("question", "kept"),
    [
        ("Where do I send form HR-204?", "HR-204"),
        ("Who answers on extension 4512?", "4512"),
        ("What is the RTT allowance?", "RTT"),
        ("Who is Marie Curie?", "Marie Curie"),
        ("How many days of leave do I get?", ""),
        ("育児休業はどう申請しますか", ""),
    ],
)
def test_exact_terms_are_codes_numbers_acronyms_and_names(question, kept):
    assert exact_terms(question) == kept


def test_fuse_keeps_the_cosine_scale_and_only_adds_for_matched_terms():
    cosine = np.array([0.80, 0.78, 0.50], dtype=np.float32)
    lexical = np.array([0.0, 3.0, 0.0], dtype=np.float32)
    fused = fuse(cosine, lexical, bound=3.0, weight=0.05)
    assert fused[1] == pytest.approx(0.83) and fused[0] == pytest.approx(0.80)
    assert np.array_equal(fuse(cosine, lexical, bound=0.0, weight=0.05), cosine)  # no exact terms asked


def _unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def forms() -> list[Passage]:
    texts = [
        "Expense claims: fill in form HR-101 and send it to finance.",
        "Parental leave: fill in form HR-204 and send it to HR two months ahead.",
        "Remote work: fill in form HR-310 and ask your manager.",
    ]
    return [
        Passage(t, url=f"http://hr.example/{i}", id=str(i), title=f"Form {i}") for i, t in enumerate(texts)
    ]


def test_hybrid_search_lifts_the_page_with_the_code_dense_search_does_not():
    # the vectors think the expenses page is nearest (forms all look alike to a sentence encoder)
    vectors = _unit([1.0, 0.1, 0.0], [0.97, 0.2, 0.1], [0.9, 0.0, 0.4])
    index = PassageIndex(forms(), vectors)
    q = _unit([1.0, 0.12, 0.02])[0]
    dense = index.search(q, "Where do I send form HR-204?", method="dense")
    hybrid = index.search(q, "Where do I send form HR-204?")
    assert dense.passages[0].id == "0"
    assert hybrid.passages[0].id == "1"
    assert hybrid.cosines[0] == pytest.approx(float(vectors[1] @ q))  # relevance stays the cosine
    np.testing.assert_allclose(hybrid.vectors[0], vectors[1])


def test_search_respects_the_allowed_rows_and_small_collections():
    vectors = _unit([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    index = PassageIndex(forms(), vectors)
    q = vectors[1]
    allowed = np.array([True, False, True])
    found = index.search(q, "form HR-204", top=10, allowed=allowed)
    assert [p.id for p in found.passages] == ["0", "2"] or [p.id for p in found.passages] == ["2", "0"]
    assert len(index.search(q, "x", top=10).passages) == 3
    assert len(index.search(q, "x", allowed=np.zeros(3, dtype=bool)).passages) == 0
    empty = PassageIndex([], np.zeros((0, 3), dtype=np.float32))
    assert empty.search(q, "x").passages == []
    with pytest.raises(ValueError, match="2 passages but 3 vectors"):
        PassageIndex(forms()[:2], vectors)


def test_postings_are_grouped_as_a_stable_sort_groups_them():
    from qa_engine.lexical import grouped_order

    rng = np.random.default_rng(0)
    for keys in (rng.integers(0, 50, 2_000), np.array([3, 1, 3, 0, 1, 3]), np.zeros(0, dtype=np.int64)):
        keys = keys.astype(np.int32)
        assert np.array_equal(grouped_order(keys), np.argsort(keys, kind="stable"))


def test_accents_come_off_every_latin_and_greek_letter_as_they_do_one_by_one():
    import unicodedata

    from qa_engine.lexical import _fold, _plain

    letters = "".join(map(chr, [*range(0x00C0, 0x0400), *range(0x1E00, 0x1F00)]))
    for text in (letters, "Congé payé, ÉTÉ, Ἀθῆναι, ｆｕｌｌ-ｗｉｄｔｈ, 有給休暇は２５日", "Ça va où?"):
        one_by_one = "".join(_plain(c) for c in unicodedata.normalize("NFKC", text).lower())
        assert _fold(text) == one_by_one
    assert _fold("Congé ÉTÉ") == "conge ete"
