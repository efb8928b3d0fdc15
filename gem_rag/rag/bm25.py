"""BM25 (Okapi) over a sparse term matrix: the lexical half of hybrid retrieval, and a baseline.

Example:
    >>> index = BM25Index(["the cat sat", "a dog barked"])
    >>> index.search("cat", k=1)
    [(0, ...)]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

_TOKEN = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    "a an and are as at be by for from has have he her his i in is it its of on or she that the their them they this "
    "to was were what when where which who whom why will with you your how did does do".split()
)


STEM = 5  # letters of a word kept as its stem: "termite" and "termites" share "termi"


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without English stop words."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


class BM25Index:
    """Okapi BM25 with parameters ``k1`` and ``b``; documents can be appended."""

    def __init__(self, texts: Sequence[str] = (), *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.vocab: dict[str, int] = {}
        self._doc_terms: list[Counter] = []
        self._matrix: sparse.csc_matrix | None = None
        self._stem_df: Counter | None = None
        self.add(texts)

    def __len__(self) -> int:
        return len(self._doc_terms)

    def add(self, texts: Sequence[str]) -> None:
        """Append documents (their row numbers continue from ``len(self)``)."""
        for text in texts:
            counts = Counter(tokenize(text))
            for term in counts:
                self.vocab.setdefault(term, len(self.vocab))
            self._doc_terms.append(counts)
        self._matrix = None
        self._stem_df = None

    def stem_idf(self, stem: str) -> float:
        """log(1 + N / (1 + df)) of a word stem (its first ``STEM`` letters) over the documents: how rare, and so
        how telling, a question word found in a sentence is."""
        if self._stem_df is None:
            self._stem_df = Counter(s for counts in self._doc_terms for s in {t[:STEM] for t in counts})
        return float(np.log1p(len(self._doc_terms) / (1 + self._stem_df.get(stem, 0))))

    def _weights(self) -> sparse.csc_matrix:
        """(n_docs, n_terms) matrix of BM25 term weights, built lazily."""
        if self._matrix is None:
            rows, cols, tfs = [], [], []
            for row, counts in enumerate(self._doc_terms):
                for term, tf in counts.items():
                    rows.append(row)
                    cols.append(self.vocab[term])
                    tfs.append(tf)
            n_docs = len(self._doc_terms)
            tf = np.asarray(tfs, dtype=np.float32)
            lengths = np.array([sum(c.values()) for c in self._doc_terms], dtype=np.float32)
            avg = max(float(lengths.mean()) if n_docs else 1.0, 1e-6)
            df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(self.vocab)).astype(np.float32)
            idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
            norm = self.k1 * (1 - self.b + self.b * lengths[np.asarray(rows, dtype=np.int64)] / avg)
            weight = idf[np.asarray(cols, dtype=np.int64)] * tf * (self.k1 + 1) / (tf + norm)
            self._matrix = sparse.csc_matrix((weight, (rows, cols)), shape=(n_docs, len(self.vocab)))
        return self._matrix

    def scores(self, query: str) -> np.ndarray:
        """(n_docs,) BM25 score of every document for ``query``."""
        terms = [self.vocab[t] for t in tokenize(query) if t in self.vocab]
        if not terms or not self._doc_terms:
            return np.zeros(len(self._doc_terms), dtype=np.float32)
        return np.asarray(self._weights()[:, terms].sum(axis=1)).ravel()

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """Top ``k`` (row, score) pairs with a positive score, best first."""
        scores = self.scores(query)
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
