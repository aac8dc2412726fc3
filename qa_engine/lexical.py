"""BM25 over passages, with one tokenisation for every script Kate meets.

Why a lexical index beside the sentence vectors: employees ask with exact terms the encoder blurs, a form
code ("HR-204"), an extension number, a person's or a tool's name. A vector puts "form HR-204" near every
page about forms; BM25 finds the one page that says "HR-204".

Tokenisation: NFKC, lower case, Latin and Greek accents removed ("congé" and "conge" meet); words of
space-separated scripts as they are; runs of Chinese, Japanese, Korean and Thai characters, which have
no spaces, as overlapping character bigrams (plus the lone character of a one-character run), the usual
choice for BM25 on those scripts: no dictionary, and a word of two or more characters yields its bigrams.

The index is a list of documents, each stored once as term ids and counts; scoring a query touches only
the query's terms (postings sorted by term: numpy arrays, no sparse-matrix library), so it costs
milliseconds over 50,000 passages.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

MAX_QUERY_TERMS = 64  # a 10,000-character message does not make a 10,000-term query
MAX_DOC_CHARS = 20_000  # text of one passage that is indexed (passages are far shorter)

# Scripts written without spaces between words: Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer.
_UNSPACED = (
    "\u0e00-\u0eff\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
)
_TOKEN = re.compile(rf"[{_UNSPACED}]+|[^\W_{_UNSPACED}]+", re.UNICODE)
_UNSPACED_RUN = re.compile(rf"[{_UNSPACED}]")


def _plain(c: str) -> str:
    """A Latin or Greek letter without its accents; any other character as it is (Japanese voiced marks,
    Thai vowels and Devanagari signs are letters of the word there, not accents)."""
    if c.isascii() or not ("\u00c0" <= c < "\u0400" or "\u1e00" <= c < "\u1f00"):
        return c
    return "".join(d for d in unicodedata.normalize("NFD", c) if not unicodedata.combining(d))


# _plain of every character it changes, for str.translate: folding a passage is then one call in C, not
# one Python call per character (a third of an action server's start over 50,000 passages)
_ACCENTS = {
    ord(c): _plain(c) for c in map(chr, [*range(0x00C0, 0x0400), *range(0x1E00, 0x1F00)]) if _plain(c) != c
}


def _fold(text: str) -> str:
    """NFKC (full-width letters and digits become plain ones), lower case, Latin and Greek accents off."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return folded if folded.isascii() else folded.translate(_ACCENTS)


def tokens(text: str) -> list[str]:
    """The terms of `text`: words, and character bigrams of unspaced scripts."""
    out: list[str] = []
    for run in _TOKEN.findall(_fold(text)):
        if _UNSPACED_RUN.match(run):
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


_WORD = re.compile(r"[^\W_]+(?:[-./][^\W_]+)*", re.UNICODE)


def exact_terms(question: str) -> str:
    """The words of a question that mean the same in every language: codes and numbers ("HR-204",
    "4512"), acronyms ("RTT", "IBAN") and names written with a capital inside the sentence ("Lumen",
    "Workday"). Ordinary words are left to the sentence vectors, which match them across languages; BM25 on
    them ranks pages of the question's own language first, relevant or not."""
    kept = []
    for i, match in enumerate(_WORD.finditer(question[:2000])):
        word = match.group()
        if (
            any(c.isdigit() for c in word)
            or (sum(c.isupper() for c in word) >= 2)
            or (i > 0 and word[:1].isupper() and len(word) > 1)  # "I" is no name
        ):
            kept.append(word)
    return " ".join(kept)


def grouped_order(keys: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")` for keys in [0, 2**31): each key packed with its position into
    one int64 and the packed values sorted. The same order, 8x faster at 3 million postings (a rebuild
    of 50,000 passages, measured on an AVX-512 CPU): numpy sorts plain integers with SIMD kernels, which
    its stable argsort does not use."""
    packed = (keys.astype(np.int64) << 32) | np.arange(len(keys), dtype=np.int64)
    return np.sort(packed) & 0xFFFFFFFF


class LexicalIndex:
    """BM25 (k1, b) over documents numbered 0..n-1 in the order they were added.

    Built from documents given to `add` (which may be called again); the postings are rebuilt lazily at the
    next query after a change. Documents are never removed: an index is rebuilt from the documents that
    remain (knowledge/live_index.py builds one per snapshot from documents analysed once)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, vocabulary: dict[str, int] | None = None) -> None:
        """`vocabulary`: term -> id, shared with other indexes (an index rebuilt from documents analysed
        once, knowledge/live_index.py); it only grows."""
        self.k1 = k1
        self.b = b
        self.vocabulary: dict[str, int] = {} if vocabulary is None else vocabulary
        self._n_terms = 0  # terms known when the postings were built
        self._terms: list[np.ndarray] = []  # per document: its term ids
        self._counts: list[np.ndarray] = []  # per document: how often each occurs
        # Postings sorted by term: term t's documents are _rows[_start[t]:_start[t + 1]], with their BM25
        # term weights in _weights (None: to be rebuilt after a change).
        self._rows: np.ndarray | None = None
        self._weights = np.zeros(0, dtype=np.float32)
        self._start = np.zeros(1, dtype=np.int64)
        self._idf = np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        return len(self._terms)

    def analyse(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """A document's term ids and counts (new terms join the vocabulary)."""
        counted = Counter(tokens(text[:MAX_DOC_CHARS]))
        ids = [self.vocabulary.setdefault(t, len(self.vocabulary)) for t in counted]
        counts = np.fromiter(counted.values(), dtype=np.float32, count=len(counted))
        return np.asarray(ids, dtype=np.int32), counts

    def add(self, texts: Iterable[str]) -> None:
        self.add_analysed(self.analyse(text) for text in texts)

    def add_analysed(self, documents: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Documents already analysed with this vocabulary (`analyse`)."""
        for ids, counts in documents:
            self._terms.append(ids)
            self._counts.append(counts)
        self._rows = None

    def _build(self) -> None:
        n = len(self._terms)
        rows = np.repeat(np.arange(n, dtype=np.int32), [len(t) for t in self._terms])
        cols = np.concatenate(self._terms) if n else np.zeros(0, dtype=np.int32)
        tf = np.concatenate(self._counts) if n else np.zeros(0, dtype=np.float32)
        lengths = np.bincount(rows, weights=tf, minlength=n).astype(np.float32)
        average = float(lengths.mean()) if n and lengths.sum() else 1.0
        norm = self.k1 * (1 - self.b + self.b * lengths / average)
        weight = tf * (self.k1 + 1) / (tf + norm[rows])
        order = grouped_order(cols)
        self._n_terms = len(self.vocabulary)
        df = np.bincount(cols, minlength=self._n_terms)
        self._start = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        self._weights = weight[order].astype(np.float32)
        self._idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        self._rows = rows[order]

    def _query(self, query: str) -> list[tuple[int, int]]:
        """(term id, times asked) of the query's terms this index's postings know."""
        if self._rows is None:
            self._build()
        ids = (self.vocabulary.get(t, self._n_terms) for t in tokens(query))
        wanted = Counter(i for i in ids if i < self._n_terms)
        return wanted.most_common(MAX_QUERY_TERMS)

    def bound(self, query: str) -> float:
        """The most BM25 any document could score for `query`: every term's idf x (k1 + 1). A score over
        this bound says how much of the question's weight a document matches, a scale that means the same
        for every question (its best document's score does not: it may match one common word)."""
        return float(sum(self._idf[t] * n for t, n in self._query(query)) * (self.k1 + 1))

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every document for `query` (0 where no term matches)."""
        out = np.zeros(len(self), dtype=np.float32)
        for t, times in self._query(query):
            a, b = self._start[t], self._start[t + 1]
            out[self._rows[a:b]] += self._idf[t] * times * self._weights[a:b]  # type: ignore[index]
        return out


def bm25(texts: Sequence[str], query: str) -> np.ndarray:
    """BM25 of `texts` for one query, with an index built for this call (tests, evaluations)."""
    index = LexicalIndex()
    index.add(texts)
    return index.scores(query)
