"""SQuAD-format evaluation: exact match and F1, per file.

Metrics follow the official SQuAD v1.1 script for space-separated languages (lower case, ASCII
punctuation and English articles removed, whitespace tokens, max over the gold answers). Chinese,
Japanese and Thai have no spaces, so for them tokens are single characters of those scripts (runs of
other characters, such as Latin words or numbers, stay whole) and every Unicode punctuation mark is
removed, as the MLQA evaluation does for Chinese.
"""

from __future__ import annotations

import collections
import json
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

CHARACTER_LANGUAGES = {"zh", "ja", "th"}
_ARTICLES_EN = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_ASCII_PUNCT = set(string.punctuation)


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]
    title: str = ""


@dataclass(frozen=True)
class FileScore:
    exact_match: float  # percent
    f1: float  # percent
    n: int
    language: str


def _is_char_token(ch: str) -> bool:
    """Characters of scripts written without spaces: each one is a token."""
    cp = ord(ch)
    return (
        0x3040 <= cp <= 0x30FF  # hiragana, katakana
        or 0x31F0 <= cp <= 0x31FF
        or 0x3400 <= cp <= 0x4DBF  # CJK extension A
        or 0x4E00 <= cp <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF66 <= cp <= 0xFF9F  # half-width katakana
        or 0x20000 <= cp <= 0x2FA1F
        or 0x0E00 <= cp <= 0x0E7F  # Thai
    )


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_squad(text: str) -> str:
    """The SQuAD v1.1 normalisation."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ASCII_PUNCT)
    text = _ARTICLES_EN.sub(" ", text)
    return " ".join(text.split())


def tokens_squad(text: str) -> list[str]:
    return normalize_squad(text).split()


def tokens_characters(text: str) -> list[str]:
    """Character-level tokens for zh/ja/th (with Unicode punctuation removed); other runs split on spaces."""
    tokens: list[str] = []
    word: list[str] = []
    for ch in text.lower():
        if _is_punct(ch) or ch.isspace() or _is_char_token(ch):
            if word:
                tokens.append("".join(word))
                word = []
            if _is_char_token(ch):
                tokens.append(ch)
        else:
            word.append(ch)
    if word:
        tokens.append("".join(word))
    return tokens


def tokenizer_for(language: str) -> Callable[[str], list[str]]:
    return tokens_characters if language in CHARACTER_LANGUAGES else tokens_squad


def exact_match(prediction: str, gold: str, language: str = "en") -> float:
    tok = tokenizer_for(language)
    return float(tok(prediction) == tok(gold))


def f1_score(prediction: str, gold: str, language: str = "en") -> float:
    tok = tokenizer_for(language)
    pred, ref = tok(prediction), tok(gold)
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def same_span(prediction: str, gold: str, min_f1: float = 0.5) -> bool:
    """Whether two spans are one answer ("25 days" and "25 days of paid leave"): token F1 of at least
    `min_f1`, tokens chosen by the gold span's script. Verified answers are matched this way."""
    return f1_score(prediction, gold, language_of_text(gold)) >= min_f1


def best_over_gold(
    metric: Callable[[str, str, str], float], prediction: str, golds: Iterable[str], language: str
) -> float:
    return max((metric(prediction, g, language) for g in golds), default=0.0)


def language_of_file(path: str | Path) -> str | None:
    """The language whose metric applies, from Kate's data file names: the context language of
    `multilingualqa.q-fr.c-ja.dev.json` (c-ja), else a language part such as `.zh.` or `.zh-cn.`."""
    name = Path(path).name.lower()
    match = re.search(r"\.c-([a-z]{2})\.", name) or re.search(r"\.([a-z]{2})(?:-[a-z]+)?\.", name)
    return match.group(1) if match else None


def language_of_text(text: str) -> str:
    """Fallback for unknown files: which metric family the context's script needs."""
    sample = [ch for ch in text[:2000] if not ch.isspace()]
    if not sample:
        return "en"
    share = sum(_is_char_token(ch) for ch in sample) / len(sample)
    if share < 0.3:
        return "en"
    thai = sum(0x0E00 <= ord(ch) <= 0x0E7F for ch in sample)
    kana = sum(0x3040 <= ord(ch) <= 0x30FF for ch in sample)
    return "th" if thai > len(sample) * 0.15 else "ja" if kana else "zh"


def squad_questions(path: str | Path) -> Iterator[tuple[str, str, dict, list[dict]]]:
    """(article title, context, question record, its non-empty gold answers) for every answerable
    question of a SQuAD-format file (v1.1 or v2; unanswerable questions are skipped: v1.1 metrics)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    for article in data.get("data", []):
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                answers = [a for a in qa.get("answers", []) if a.get("text")]
                if not qa.get("is_impossible") and answers:
                    yield article.get("title", ""), paragraph["context"], qa, answers


def load_squad(path: str | Path, limit: int | None = None) -> list[QAExample]:
    """The answerable questions of a SQuAD-format file, the first `limit` of them when given."""
    examples: list[QAExample] = []
    for title, context, qa, answers in squad_questions(path):
        if limit is not None and len(examples) >= limit:
            break
        examples.append(
            QAExample(str(qa["id"]), qa["question"], context, tuple(a["text"] for a in answers), title)
        )
    return examples


def score_predictions(examples: Sequence[QAExample], predictions: dict[str, str], language: str) -> FileScore:
    if not examples:
        return FileScore(0.0, 0.0, 0, language)
    em = f1 = 0.0
    for ex in examples:
        pred = predictions.get(ex.id, "")
        em += best_over_gold(exact_match, pred, ex.answers, language)
        f1 += best_over_gold(f1_score, pred, ex.answers, language)
    n = len(examples)
    return FileScore(100.0 * em / n, 100.0 * f1 / n, n, language)


def predict(
    reader: object, examples: Sequence[QAExample], *, block: int = 64, progress: object = None
) -> dict[str, str]:
    """Best span for each example, `block` questions per reader call so their chunks share batches."""
    from .types import Passage

    predictions: dict[str, str] = {}
    for first in range(0, len(examples), block):
        part = examples[first : first + block]
        results = reader.answer_many([(ex.question, [Passage(ex.context, id=ex.id)]) for ex in part], top_k=1)
        for ex, answers in zip(part, results, strict=True):
            predictions[ex.id] = answers[0].text if answers else ""
        if progress is not None:
            progress.update(len(part))
    return predictions


def score_file(
    reader: object,
    path: str | Path,
    *,
    limit: int | None = None,
    language: str | None = None,
    progress: bool = True,
) -> FileScore:
    """EM/F1 of `reader` on one SQuAD-format file. The metric language is `language`, else the file name's,
    else the script of its first context."""
    import sys

    from tqdm import tqdm

    examples = load_squad(path, limit=limit)
    language = (
        language or language_of_file(path) or (language_of_text(examples[0].context) if examples else "en")
    )
    with tqdm(
        total=len(examples), desc=Path(path).name, unit="q", file=sys.stderr, disable=not progress
    ) as bar:
        predictions = predict(reader, examples, progress=bar)
    return score_predictions(examples, predictions, language)
